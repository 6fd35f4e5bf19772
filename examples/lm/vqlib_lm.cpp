// vqlib-lm: web-char (tests/data/models/web-char) in C++: fp32 test perplexity, whole-model
// quantization with any vqlib preset (offline or sequential calibration), quantized perplexity.
//
//   vqlib-lm eval                                   fp32 perplexity (and the first-window logits)
//   vqlib-lm list                                   the presets
//   vqlib-lm quantize --method gptvq-2d-2.125-best  per-linear table, bpw, perplexity
//   vqlib-lm sweep --methods a,b,... --json out.json   several presets, both calibrations
//
// Options: --model DIR, --threads N, --calibration offline|sequential|both, --windows N (of the
// 256 calibration windows), --eval-chars N (default: the protocol's 200,000), --json FILE.
#include "lm_quantize.hpp"

#include <vqlib/io/temporary_file.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>

#ifndef VQLIB_FIXTURES_DIR
#define VQLIB_FIXTURES_DIR "tests/data"
#endif

namespace {

using namespace vqlib;
using namespace vqlib::lm;

struct Options {
    std::string command;
    std::filesystem::path model = std::filesystem::path(VQLIB_FIXTURES_DIR) / "models" / "web-char";
    std::vector<std::string> methods;
    std::vector<Calibration> calibrations{Calibration::sequential};
    Index windows = 256;
    Index eval_chars = 0;
    int threads = 0;
    std::string json;
    bool quiet = false;
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "vqlib-lm: " << why << "\n"
              << "usage: vqlib-lm eval|list|quantize|sweep [--model DIR] [--method NAME | --methods A,B,...]\n"
                 "                [--calibration offline|sequential|both] [--windows N] [--eval-chars N]\n"
                 "                [--threads N] [--json FILE] [--quiet]\n";
    std::exit(2);
}

Index parse_index(const std::string& flag, const std::string& value) {
    try {
        std::size_t used = 0;
        const long long v = std::stoll(value, &used);
        if (used == value.size() && v >= 0) return static_cast<Index>(v);
    } catch (const std::exception&) {
    }
    usage(flag + " " + value + ": expected a non-negative integer");
}

Options parse(int argc, char** argv) {
    Options o;
    if (argc < 2) usage("no command");
    o.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(flag + ": missing value");
            return argv[++i];
        };
        if (flag == "--model") {
            o.model = value();
        } else if (flag == "--method" || flag == "--methods") {
            std::stringstream list(value());
            for (std::string m; std::getline(list, m, ',');)
                if (!m.empty()) o.methods.push_back(m);
        } else if (flag == "--calibration") {
            const std::string c = value();
            if (c == "offline") o.calibrations = {Calibration::offline};
            else if (c == "sequential") o.calibrations = {Calibration::sequential};
            else if (c == "both") o.calibrations = {Calibration::offline, Calibration::sequential};
            else usage("--calibration " + c + ": expected offline, sequential or both");
        } else if (flag == "--windows") {
            o.windows = parse_index(flag, value());
        } else if (flag == "--eval-chars") {
            o.eval_chars = parse_index(flag, value());
        } else if (flag == "--threads") {
            o.threads = static_cast<int>(parse_index(flag, value()));
        } else if (flag == "--json") {
            o.json = value();
        } else if (flag == "--quiet") {
            o.quiet = true;
        } else {
            usage("unknown option " + flag);
        }
    }
    return o;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

nlohmann::json to_json(const ModelReport& r, const Method& m, double ppl, double fp32) {
    nlohmann::json j;
    j["method"] = r.method;
    j["family"] = m.family;
    j["description"] = m.description;
    j["calibration"] = calibration_name(r.calibration);
    j["calibration_tokens"] = r.calibration_tokens;
    j["bits_per_weight"] = r.bits_per_weight;
    j["perplexity"] = ppl;
    j["relative_to_fp32"] = ppl / fp32 - 1;
    j["quantization_seconds"] = r.seconds;
    for (const LinearReport& l : r.linears) {
        j["linears"].push_back({{"name", l.name},
                                {"rows", l.rows},
                                {"cols", l.cols},
                                {"bits_per_weight", l.bits_per_weight},
                                {"proxy_loss", l.proxy_loss},
                                {"relative_loss", l.relative_loss},
                                {"percdamp", l.percdamp},
                                {"seconds", l.seconds}});
    }
    return j;
}

void print_linear(const LinearReport& l) {
    std::printf("  %-22s %5lldx%-5lld %7.3f %12.5g %10.3e %8.4f %7.2f\n", l.name.c_str(),
                static_cast<long long>(l.rows), static_cast<long long>(l.cols), l.bits_per_weight,
                l.proxy_loss, l.relative_loss, l.percdamp, l.seconds);
}

int run(const Options& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    if (o.command == "list") {
        for (const Method& m : methods()) std::printf("%-24s %-6s %s\n", m.name.c_str(), m.family.c_str(), m.description.c_str());
        return 0;
    }
    const auto t_load = std::chrono::steady_clock::now();
    const WebChar fp = load_web_char(o.model);
    const Corpus corpus = load_corpus(o.model, fp.config);
    const Reference ref = read_reference(o.model);
    const Index T = fp.config.ctx;
    const Index chars = o.eval_chars > 0 ? o.eval_chars : ref.eval_chars;
    std::printf("web-char: %lld blocks, d %lld, vocab %lld; %zu train / %zu test characters (%.2f s to load)\n",
                static_cast<long long>(fp.config.layers), static_cast<long long>(fp.config.d),
                static_cast<long long>(fp.config.vocab), corpus.train.size(), corpus.test.size(),
                seconds_since(t_load));

    auto t = std::chrono::steady_clock::now();
    const Perplexity base = test_perplexity(fp, corpus.test, chars);
    std::printf("fp32 test perplexity %.6f over %lld tokens (reference %.6f, relative %.1e; %.1f s)\n",
                base.perplexity, static_cast<long long>(base.tokens), ref.fp32_test_perplexity,
                base.perplexity / ref.fp32_test_perplexity - 1, seconds_since(t));
    if (o.command == "eval") return 0;
    if (o.command != "quantize" && o.command != "sweep") usage("unknown command " + o.command);
    if (o.methods.empty()) usage(o.command + ": give --method NAME (vqlib-lm list shows them)");
    if (o.command == "quantize" && o.methods.size() != 1) usage("quantize: give one --method (sweep runs several)");
    for (const std::string& name : o.methods) find_method(name);  // unknown names fail before any work

    const std::vector<std::int32_t> ids = calibration_ids(corpus, ref, o.windows, T);
    nlohmann::json out;
    out["model"] = o.model.filename().string();
    out["fp32_perplexity"] = base.perplexity;
    out["eval_tokens"] = base.tokens;
    out["threads"] = num_threads();
    out["runs"] = nlohmann::json::array();
    for (const std::string& name : o.methods) {
        const Method& method = find_method(name);
        for (Calibration cal : o.calibrations) {
            WebChar model = fp;
            std::printf("\n%s (%s), %s calibration on %lld tokens\n", method.name.c_str(), method.description.c_str(),
                        calibration_name(cal), static_cast<long long>(ids.size()));
            if (!o.quiet)
                std::printf("  %-22s %11s %7s %12s %10s %8s %7s\n", "linear", "shape", "bpw", "proxy loss",
                            "relative", "damp", "s");
            const ModelReport report = quantize_model(model, ids, T, method, cal, [&](const LinearReport& l) {
                if (!o.quiet) print_linear(l);
                std::fflush(stdout);
            });
            t = std::chrono::steady_clock::now();
            const Perplexity q = test_perplexity(model, corpus.test, chars);
            std::printf("%s %s: %.4f bits per weight, quantized in %.1f s; test perplexity %.6f (fp32 %.6f, %+.2f%%)\n",
                        method.name.c_str(), calibration_name(cal), report.bits_per_weight, report.seconds,
                        q.perplexity, base.perplexity, 100 * (q.perplexity / base.perplexity - 1));
            std::fflush(stdout);
            out["runs"].push_back(to_json(report, method, q.perplexity, base.perplexity));
        }
    }
    if (!o.json.empty()) {
        const std::string text = out.dump(1) + "\n";
        io::detail::temporary_file file(o.json, "JSON");
        file.write(text.data(), text.size());
        file.commit();
        std::printf("\nwrote %s\n", o.json.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (const vqlib::error& e) {
        std::cerr << "vqlib-lm: " << e.what() << "\n";
        return 1;
    }
}
