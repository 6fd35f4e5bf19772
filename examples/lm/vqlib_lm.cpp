// vqlib-lm: web-char (tests/data/models/web-char) in C++: fp32 test perplexity, whole-model
// quantization with any vqlib preset (offline or sequential calibration), quantized perplexity.
//
//   vqlib-lm eval                                   fp32 perplexity (and the first-window logits)
//   vqlib-lm list                                   the presets
//   vqlib-lm quantize --method gptvq-2d-2.125-best  per-linear table, bpw, perplexity
//   vqlib-lm sweep --methods a,b,... --json out.json   several presets, both calibrations
//   vqlib-lm plot --json a.json,b.json --svg out.svg  bpw against perplexity of sweep results
//   vqlib-lm hessians --out DIR                     the offline Hessians in vqlib-quantize's layout
//   vqlib-lm check                                  what ctest runs (exit 1 on any failure)
//
// Options: --model DIR, --threads N, --calibration offline|sequential|both, --windows N (of the
// 256 calibration windows), --eval-chars N (default: the protocol's 200,000), --json FILE,
// --only SUBSTRING,... (quantize only those linears), --holdout (held-out losses too),
// --kernels (evaluate again through the decode kernels).
#include "decode.hpp"
#include "lm_quantize.hpp"
#include "plot.hpp"

#include <vqlib/io/npy.hpp>
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
    std::string svg;
    std::filesystem::path out;
    bool quiet = false;
    bool holdout = false;
    bool kernels = false;
    std::vector<std::string> only;
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "vqlib-lm: " << why << "\n"
              << "usage: vqlib-lm eval|list|quantize|sweep|check [--model DIR] [--method NAME | --methods A,B,...]\n"
                 "                [--calibration offline|sequential|both] [--windows N] [--eval-chars N]\n"
                 "                [--only SUBSTRING,...] [--holdout] [--kernels] [--threads N] [--json FILE] [--quiet]\n"
                 "       vqlib-lm plot --json FILE[,FILE...] --svg FILE\n"
                 "       vqlib-lm hessians --out DIR [--windows N]   (for vqlib-quantize --hessians DIR)\n";
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
        } else if (flag == "--only") {
            std::stringstream list(value());
            for (std::string m; std::getline(list, m, ',');)
                if (!m.empty()) o.only.push_back(m);
        } else if (flag == "--kernels") {
            o.kernels = true;
        } else if (flag == "--holdout") {
            o.holdout = true;
        } else if (flag == "--out") {
            o.out = value();
        } else if (flag == "--svg") {
            o.svg = value();
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
                                {"holdout_relative_loss", std::isnan(l.holdout_relative_loss) ? nlohmann::json() : nlohmann::json(l.holdout_relative_loss)},
                                {"percdamp", l.percdamp},
                                {"seconds", l.seconds}});
    }
    return j;
}

void print_linear(const LinearReport& l) {
    std::printf("  %-22s %5lldx%-5lld %7.3f %12.5g %10.3e %10.3e %8.4f %7.2f\n", l.name.c_str(),
                static_cast<long long>(l.rows), static_cast<long long>(l.cols), l.bits_per_weight,
                l.proxy_loss, l.relative_loss, l.holdout_relative_loss, l.percdamp, l.seconds);
}

/// What ctest runs: the forward pass against PyTorch's figures (perplexity, first-window logits,
/// an offline Hessian), quantized perplexity, the decode kernels against the dequantized weights,
/// and bit-identical sequential quantization for 1 and 2 threads.
int check(const Options& o) {
    int failures = 0;
    auto expect = [&](bool ok, const std::string& what) {
        std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
        std::fflush(stdout);
        if (!ok) ++failures;
    };
    const WebChar fp = load_web_char(o.model);
    const Corpus corpus = load_corpus(o.model, fp.config);
    const Reference ref = read_reference(o.model);
    const Index T = fp.config.ctx;

    // 1. The forward pass: logits of the first test window, then the protocol's perplexity.
    const io::SafetensorsFile logits_file = io::read_safetensors(o.model / "reference_first_window_logits.safetensors");
    const MatrixXf expected = lm::detail::tensor_matrix(logits_file, "logits", T, fp.config.vocab, "reference logits");
    const Activations logits = forward(fp, std::span(corpus.test).first(static_cast<std::size_t>(T)), T);
    const double logit_error = (MatrixXf(logits) - expected).cwiseAbs().maxCoeff();
    expect(logit_error <= 1e-4 * std::max(1.0f, expected.cwiseAbs().maxCoeff()),
           vqlib::detail::concat("first-window logits within ", logit_error, " of PyTorch's (max |logit| ",
                                 expected.cwiseAbs().maxCoeff(), ")"));
    const Perplexity base = test_perplexity(fp, corpus.test, ref.eval_chars);
    const double rel = std::abs(base.perplexity / ref.fp32_test_perplexity - 1);
    expect(rel <= 1e-4, vqlib::detail::concat("fp32 test perplexity ", base.perplexity, " (PyTorch ",
                                              ref.fp32_test_perplexity, ", relative ", rel, ")"));

    // 2. The offline Hessian of blocks.1.q on the 256 calibration windows against PyTorch's.
    const std::vector<std::int32_t> ids = calibration_ids(corpus, ref, 256, T);
    const auto hessians = offline_hessians(fp, ids, T);
    const io::SafetensorsFile h_file = io::read_safetensors(o.model / "hessians" / "blocks.1.q.safetensors");
    const MatrixXd h_ref =
        lm::detail::tensor_matrix(h_file, "H", fp.config.d, fp.config.d, "reference Hessian").cast<double>();
    const double h_error = (hessians[1][0] - h_ref).norm() / h_ref.norm();
    expect(h_error <= 1e-5, vqlib::detail::concat("offline Hessian of blocks.1.q within ", h_error,
                                                  " (relative Frobenius) of PyTorch's"));

    // 3. GPTQ w4 g128, sequential: within 0.2% of fp32 (measured: +0.07%).
    const std::vector<std::int32_t> calibration = calibration_ids(corpus, ref, o.windows, T);
    {
        WebChar model = fp;
        const ModelReport report = quantize_model(model, calibration, T, find_method("gptq-w4g128"), Calibration::sequential);
        const Perplexity q = test_perplexity(model, corpus.test, ref.eval_chars);
        expect(q.perplexity > base.perplexity && q.perplexity <= 1.002 * base.perplexity,
               vqlib::detail::concat("gptq-w4g128 sequential: ", report.bits_per_weight, " bpw, perplexity ",
                                     q.perplexity, " (fp32 ", base.perplexity, ")"));
    }

    // 4. Decode kernels: GPTVQ 2D layers (rotated, so the rotation path runs too) and INT4 layers
    //    through the fused GEMV, 8 tokens a call, against the dequantized weights in a GEMM.
    const Index short_eval = 20000;
    for (const char* name : {"gptvq-2d-2.125-best-had", "gptq-w4g128"}) {
        WebChar model = fp;
        std::vector<QuantizedLinear> layers;
        quantize_model(model, calibration, T, find_method(name), Calibration::offline, {}, &layers);
        const Perplexity dense = test_perplexity(model, corpus.test, short_eval);
        for (const QuantizedLinear& l : layers)
            model.blocks[static_cast<std::size_t>(l.index / 6)].kernel[static_cast<std::size_t>(l.index % 6)] =
                decode_kernel(l.layer, l.name, l.rotation);
        const Perplexity kernel = test_perplexity(model, corpus.test, short_eval);
        const double d = std::abs(kernel.perplexity / dense.perplexity - 1);
        expect(layers.size() == 24 && d <= 1e-5,
               vqlib::detail::concat(name, " through the decode kernels: perplexity ", kernel.perplexity,
                                     ", dequantized ", dense.perplexity, " (relative ", d, ", first ",
                                     short_eval, " test characters)"));
    }

    // 5. Sequential quantization is bit-identical for 1 and 2 threads.
    {
        std::array<WebChar, 2> models = {fp, fp};
        for (int t = 0; t < 2; ++t) {
            set_num_threads(t + 1);
            quantize_model(models[static_cast<std::size_t>(t)], calibration, T, find_method("gptvq-2d-2.125-best"),
                           Calibration::sequential);
        }
        set_num_threads(o.threads);
        bool same = true;
        for (Index i = 0; i < fp.linear_count(); ++i) same = same && models[0].linear(i) == models[1].linear(i);
        expect(same, "gptvq-2d-2.125-best sequential: the same weights with 1 and 2 threads");
    }
    // 6. The end-to-end presets on the reference layer fixture (tests/data/reference/layer_256x512):
    //    none may lose more than the reference implementation's run at the same rate.
    {
        const std::filesystem::path dir = std::filesystem::path(VQLIB_FIXTURES_DIR) / "reference" / "layer_256x512";
        const MatrixXf W = vqlib::load_npy_matrix(dir / "W.npy");
        const MatrixXd H = vqlib::load_npy_matrix_d(dir / "H.npy");
        for (const EndToEndPreset& p : end_to_end_presets()) {
            if (p.fixture == nullptr) continue;
            const nlohmann::json meta = lm::detail::read_json(dir / p.fixture / "meta.json");
            const double reference = meta.at("proxy_loss").get<double>();
            const double loss = find_method(p.method).run(W, H).proxy_loss;
            expect(loss <= reference, vqlib::detail::concat(p.method, " on the layer fixture: proxy loss ", loss,
                                                            " (the reference's ", p.fixture, ": ", reference, ")"));
        }
    }
    std::printf("%s\n", failures == 0 ? "vqlib-lm check passed" : "vqlib-lm check FAILED");
    return failures == 0 ? 0 : 1;
}

/// Reads --json (comma-separated sweep results), writes --svg.
int plot(const Options& o) {
    if (o.json.empty() || o.svg.empty()) usage("plot: give --json FILE[,FILE...] and --svg FILE");
    std::vector<PlotPoint> points;
    double fp32 = 0;
    std::stringstream list(o.json);
    for (std::string file; std::getline(list, file, ',');) {
        const nlohmann::json j = lm::detail::read_json(file);
        VQLIB_CHECK(j.contains("runs") && j["runs"].is_array() && j.contains("fp32_perplexity"), io_error, file,
                    ": not a vqlib-lm sweep result (expected \"runs\" and \"fp32_perplexity\")");
        fp32 = j["fp32_perplexity"].get<double>();
        for (const auto& r : j["runs"])
            points.push_back({r.at("method").get<std::string>(), r.at("family").get<std::string>(),
                              r.at("calibration").get<std::string>(), r.at("bits_per_weight").get<double>(),
                              r.at("perplexity").get<double>()});
    }
    const std::string svg = perplexity_svg(points, fp32, fp32 * 1.12);
    io::detail::temporary_file file(o.svg, "SVG");
    file.write(svg.data(), svg.size());
    file.commit();
    std::printf("wrote %s (%zu runs)\n", o.svg.c_str(), points.size());
    return 0;
}

int run(const Options& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    if (o.command == "check") return check(o);
    if (o.command == "plot") return plot(o);
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

    if (o.command == "hessians") {
        if (o.out.empty()) usage("hessians: give --out DIR");
        const auto t = std::chrono::steady_clock::now();
        const std::vector<std::int32_t> ids = calibration_ids(corpus, ref, o.windows, T);
        write_offline_hessians(o.out, offline_hessians(fp, ids, T), static_cast<Index>(ids.size()));
        std::printf("wrote the offline Hessians of %lld blocks (%zu tokens) to %s (%.2f s)\n",
                    static_cast<long long>(fp.config.layers), ids.size(), o.out.string().c_str(), seconds_since(t));
        return 0;
    }
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
    // Held-out Hessians: the fp32 model on the windows of the test split after the evaluated
    // characters (or, when they do not fit, the first ones), as many tokens as the calibration.
    std::vector<std::array<MatrixXd, 4>> holdout;
    if (o.holdout) {
        const std::size_t tokens = ids.size();
        std::size_t from = static_cast<std::size_t>(chars);
        if (from + tokens > corpus.test.size()) from = 0;
        holdout = offline_hessians(fp, std::span(corpus.test).subspan(from, tokens), T);
    }
    // --only: the linears whose name contains one of the given substrings (the rest stay fp32).
    std::function<bool(const std::string&)> selected;
    if (!o.only.empty())
        selected = [&](const std::string& name) {
            for (const std::string& part : o.only)
                if (name.find(part) != std::string::npos) return true;
            return false;
        };
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
            std::vector<QuantizedLinear> layers;
            std::printf("\n%s (%s), %s calibration on %lld tokens\n", method.name.c_str(), method.description.c_str(),
                        calibration_name(cal), static_cast<long long>(ids.size()));
            if (!o.quiet)
                std::printf("  %-22s %11s %7s %12s %10s %10s %8s %7s\n", "linear", "shape", "bpw", "proxy loss",
                            "relative", "held-out", "damp", "s");
            const ModelReport report = quantize_model(
                model, ids, T, method, cal,
                [&](const LinearReport& l) {
                    if (!o.quiet) print_linear(l);
                    std::fflush(stdout);
                },
                o.kernels ? &layers : nullptr, o.holdout ? &holdout : nullptr, selected);
            t = std::chrono::steady_clock::now();
            const Perplexity q = test_perplexity(model, corpus.test, chars);
            std::printf("%s %s: %.4f bits per weight, quantized in %.1f s; test perplexity %.6f (fp32 %.6f, %+.2f%%)\n",
                        method.name.c_str(), calibration_name(cal), report.bits_per_weight, report.seconds,
                        q.perplexity, base.perplexity, 100 * (q.perplexity / base.perplexity - 1));
            std::fflush(stdout);
            out["runs"].push_back(to_json(report, method, q.perplexity, base.perplexity));
            if (o.kernels) {
                // The same model with every quantized linear run by its decode kernel (8 tokens a call).
                for (const QuantizedLinear& l : layers)
                    model.blocks[static_cast<std::size_t>(l.index / 6)].kernel[static_cast<std::size_t>(l.index % 6)] =
                        decode_kernel(l.layer, l.name, l.rotation);
                t = std::chrono::steady_clock::now();
                const Perplexity k = test_perplexity(model, corpus.test, chars);
                std::printf("%s %s through the decode kernels: test perplexity %.6f (dequantized %.6f; %.1f s)\n",
                            method.name.c_str(), calibration_name(cal), k.perplexity, q.perplexity, seconds_since(t));
                out["runs"].back()["kernel_perplexity"] = k.perplexity;
            }
            if (!o.json.empty()) {  // after every run (atomically), so a long sweep keeps what it measured
                const std::string text = out.dump(1) + "\n";
                io::detail::temporary_file file(o.json, "JSON");
                file.write(text.data(), text.size());
                file.commit();
            }
        }
    }
    if (!o.json.empty()) std::printf("\nwrote %s\n", o.json.c_str());
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
