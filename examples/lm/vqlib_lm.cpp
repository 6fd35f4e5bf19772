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
// --kernels (evaluate again through the decode kernels), --finetune EPOCHS (then tune the
// quantized model end to end, finetune.hpp; --finetune-lr X, default 3e-3; --finetune-windows N,
// default 1024: the 256 calibration windows and more of the train split; --finetune-what
// all|norms|scales).
#include "decode.hpp"
#include "finetune.hpp"
#include "lm_quantize.hpp"
#include "plot.hpp"

#include <vqlib/io/npy.hpp>
#include <vqlib/io/temporary_file.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
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
    Index finetune_epochs = 0;
    double finetune_lr = 0;
    Index finetune_windows = 1024;
    std::string finetune_what = "all";
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "vqlib-lm: " << why << "\n"
              << "usage: vqlib-lm eval|list|quantize|sweep|check [--model DIR] [--method NAME | --methods A,B,...]\n"
                 "                [--calibration offline|sequential|both] [--windows N] [--eval-chars N]\n"
                 "                [--only SUBSTRING,...] [--holdout] [--kernels] [--threads N] [--json FILE] [--quiet]\n"
                 "                [--finetune EPOCHS [--finetune-lr X] [--finetune-windows N] [--finetune-what all|norms|scales]]\n"
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
        } else if (flag == "--finetune") {
            o.finetune_epochs = parse_index(flag, value());
        } else if (flag == "--finetune-lr") {
            const std::string v = value();
            try {
                o.finetune_lr = std::stod(v);
            } catch (const std::exception&) {
                usage("--finetune-lr " + v + ": expected a positive number");
            }
            if (!(o.finetune_lr > 0)) usage("--finetune-lr " + v + ": expected a positive number");
        } else if (flag == "--finetune-windows") {
            o.finetune_windows = parse_index(flag, value());
        } else if (flag == "--finetune-what") {
            o.finetune_what = value();
            if (o.finetune_what != "all" && o.finetune_what != "norms" && o.finetune_what != "scales")
                usage("--finetune-what " + o.finetune_what + ": expected all, norms or scales");
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

/// A small random web-char-shaped model (2 blocks), for gradient checks.
WebChar random_model(std::mt19937_64& rng) {
    WebChar m;
    m.config.vocab = 6;
    m.config.d = 8;
    m.config.heads = 2;
    m.config.ff = 12;
    m.config.layers = 2;
    m.config.ctx = 4;
    std::normal_distribution<float> n(0.0f, 0.5f);
    auto fill = [&](auto& x) {
        for (Index i = 0; i < x.size(); ++i) x.data()[i] = n(rng);
    };
    const WebCharConfig& c = m.config;
    m.embedding.resize(c.vocab, c.d);
    m.position.resize(c.ctx, c.d);
    m.head.resize(c.vocab, c.d);
    m.lnf_weight.resize(c.d);
    m.lnf_bias.resize(c.d);
    for (auto* x : {&m.embedding, &m.position, &m.head}) fill(*x);
    fill(m.lnf_weight);
    fill(m.lnf_bias);
    m.lnf_weight.array() += 1.0f;
    for (Index b = 0; b < c.layers; ++b) {
        Block block;
        for (auto* v : {&block.ln1_weight, &block.ln1_bias, &block.ln2_weight, &block.ln2_bias}) {
            v->resize(c.d);
            fill(*v);
        }
        block.ln1_weight.array() += 1.0f;
        block.ln2_weight.array() += 1.0f;
        const std::array<std::pair<Index, Index>, 6> shapes = {std::pair{c.d, c.d}, std::pair{c.d, c.d}, std::pair{c.d, c.d},
                                                               std::pair{c.d, c.d}, std::pair{c.ff, c.d}, std::pair{c.d, c.ff}};
        for (std::size_t l = 0; l < 6; ++l) {
            block.linear[l].resize(shapes[l].first, shapes[l].second);
            fill(block.linear[l]);
        }
        m.blocks.push_back(std::move(block));
    }
    return m;
}

/// The end-to-end tuning (finetune.hpp): its hand-written gradients against central differences
/// on a small random model; each tunable format's scale map against its layer; a tuning run on
/// the trained model (loss and perplexity down, bits and layers consistent, thread-count identity).
void finetune_checks(const std::function<void(bool, const std::string&)>& expect, const WebChar& fp,
                     const Corpus& corpus, const Reference& ref, int threads) {
    {
        std::mt19937_64 rng(7);
        WebChar m = random_model(rng);
        const Index T = m.config.ctx;
        std::vector<std::int32_t> ids(3 * static_cast<std::size_t>(T));
        for (auto& id : ids) id = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(m.config.vocab));
        Activations teacher(static_cast<Index>(ids.size()), m.config.vocab);
        for (Index t = 0; t < teacher.rows(); ++t) {
            for (Index v = 0; v < teacher.cols(); ++v) teacher(t, v) = std::exp(std::normal_distribution<float>(0, 1)(rng));
            teacher.row(t) /= teacher.row(t).sum();
        }
        ModelGradients grad;
        distillation_loss(m, ids, T, teacher, &grad);
        double err = 0, norm = 0;
        Index checked = 0;
        auto probe = [&](float& x, float analytic) {
            const float h = 2e-3f, x0 = x;
            x = x0 + h;
            const double up = distillation_loss(m, ids, T, teacher);
            x = x0 - h;
            const double down = distillation_loss(m, ids, T, teacher);
            x = x0;
            const double fd = (up - down) / (2.0 * h);
            err += (fd - analytic) * (fd - analytic);
            norm += double(analytic) * analytic;
            ++checked;
        };
        for (std::size_t b = 0; b < m.blocks.size(); ++b) {
            Block& block = m.blocks[b];
            const auto& g = grad.blocks[b];
            for (Index i = 0; i < m.config.d; ++i) {
                probe(block.ln1_weight(i), g.ln1_weight(i));
                probe(block.ln1_bias(i), g.ln1_bias(i));
                probe(block.ln2_weight(i), g.ln2_weight(i));
                probe(block.ln2_bias(i), g.ln2_bias(i));
            }
            for (std::size_t l = 0; l < 6; ++l)
                for (Index i = 0; i < block.linear[l].size(); ++i) probe(block.linear[l].data()[i], g.linear[l].data()[i]);
        }
        for (Index i = 0; i < m.config.d; ++i) {
            probe(m.lnf_weight(i), grad.lnf_weight(i));
            probe(m.lnf_bias(i), grad.lnf_bias(i));
        }
        const double rel = std::sqrt(err / norm);
        expect(rel <= 1e-3, vqlib::detail::concat("distillation gradients of a random 2-block model against central ",
                                                  "differences: ", checked, " parameters, relative error ", rel));
    }
    {
        // Weight gradients asked for a subset of the linears: the same values, the others skipped.
        std::mt19937_64 rng(8);
        const WebChar m = random_model(rng);
        const Index T = m.config.ctx;
        std::vector<std::int32_t> ids(2 * static_cast<std::size_t>(T));
        for (auto& id : ids) id = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(m.config.vocab));
        Activations teacher = Activations::Constant(static_cast<Index>(ids.size()), m.config.vocab,
                                                    1.0f / static_cast<float>(m.config.vocab));
        ModelGradients all, some;
        distillation_loss(m, ids, T, teacher, &all);
        some.wanted_linears.assign(m.blocks.size() * 6, false);
        some.wanted_linears[1] = some.wanted_linears[10] = true;
        distillation_loss(m, ids, T, teacher, &some);
        bool same = some.blocks[0].linear[1] == all.blocks[0].linear[1] &&
                    some.blocks[1].linear[4] == all.blocks[1].linear[4] &&
                    some.blocks[0].ln1_weight == all.blocks[0].ln1_weight && some.lnf_bias == all.lnf_bias;
        for (Index l = 0; l < static_cast<Index>(m.blocks.size()) * 6; ++l)
            if (l != 1 && l != 10) same = same && some.blocks[static_cast<std::size_t>(l / 6)].linear[static_cast<std::size_t>(l % 6)].size() == 0;
        expect(same, "distillation gradients for 2 of the linears: the same as with all, the others not computed");
    }
    const Index T = fp.config.ctx;
    const std::vector<std::int32_t> calibration = calibration_ids(corpus, ref, 256, T);
    // Each tunable format: the scale map reproduces the layer, its gradient is the adjoint.
    for (const char* name : {"gptq-w3g128-act-had", "pvq-2.125-best", "gptvq-2d-2.125-best-had"}) {
        WebChar model = fp;
        std::vector<QuantizedLinear> layers;
        quantize_model(model, calibration, T, find_method(name), Calibration::offline, {}, &layers,
                       nullptr, [](const std::string& n) { return n == "blocks.1.up.weight" || n == "blocks.1.q.weight"; });
        bool exact = layers.size() == 2, adjoint = true;
        for (QuantizedLinear& l : layers) {
            const auto s = value_tuning(l);
            if (!s) {
                exact = false;
                continue;
            }
            std::vector<double> theta(static_cast<std::size_t>(s->groups), 1.0);
            exact = exact && s->weight(theta) == model.linear(l.index) && model_weight(l) == model.linear(l.index);
            // <G, weight(θ)> is linear in θ: its gradient is s->gradient(G), for any θ.
            std::mt19937_64 rng(3);
            std::normal_distribution<float> n(0.0f, 1.0f);
            MatrixXf G(s->base.rows(), s->base.cols());
            for (Index i = 0; i < G.size(); ++i) G.data()[i] = n(rng);
            for (auto& t : theta) t = 1.0 + 0.1 * n(rng);
            const std::vector<double> g = s->gradient(G);
            const double f0 = G.cast<double>().cwiseProduct(s->weight(theta).cast<double>()).sum();
            for (Index k : {Index{0}, s->groups / 3, s->groups - 1}) {
                std::vector<double> t2 = theta;
                t2[static_cast<std::size_t>(k)] += 1.0;
                const double f1 = G.cast<double>().cwiseProduct(s->weight(t2).cast<double>()).sum();
                adjoint = adjoint && std::abs((f1 - f0) - g[static_cast<std::size_t>(k)]) <=
                                         1e-3 * (std::abs(g[static_cast<std::size_t>(k)]) + 1e-2 * std::abs(f0) / static_cast<double>(s->groups) + 1e-6);
            }
            io::QuantizedLayer same = l.layer;
            s->store(same, std::vector<double>(static_cast<std::size_t>(s->groups), 1.0));
            QuantizedLinear copy{l.name, l.index, same, l.rotation};
            exact = exact && model_weight(copy) == model.linear(l.index);
        }
        expect(exact, vqlib::detail::concat(name, ": the scale map at θ = 1 and the stored layer give the model's weights"));
        expect(adjoint, vqlib::detail::concat(name, ": the scale gradient is the adjoint of the scale map"));
    }
    // A short tuning run: GPTQ INT3, 2 epochs on 64 windows, 1 and 2 threads.
    {
        const std::vector<std::int32_t> ids = calibration_ids(corpus, ref, 64, T);
        FinetuneOptions fo;
        fo.epochs = 2;
        std::array<WebChar, 2> models = {fp, fp};
        std::array<std::vector<QuantizedLinear>, 2> layers;
        std::array<FinetuneReport, 2> reports;
        double bits_before = 0;
        for (int t = 0; t < 2; ++t) {
            set_num_threads(t + 1);
            quantize_model(models[static_cast<std::size_t>(t)], calibration, T, find_method("gptq-w3g128-act-had"),
                           Calibration::offline, {}, &layers[static_cast<std::size_t>(t)]);
            if (t == 0)
                for (const QuantizedLinear& l : layers[0])
                    bits_before += std::visit([](const auto& q) { return q.bits().total(); }, l.layer);
            reports[static_cast<std::size_t>(t)] =
                finetune(models[static_cast<std::size_t>(t)], layers[static_cast<std::size_t>(t)], fp, ids, T, fo);
        }
        set_num_threads(threads);
        const Index short_eval = 20000;
        WebChar untuned = fp;
        quantize_model(untuned, calibration, T, find_method("gptq-w3g128-act-had"), Calibration::offline);
        const double before = test_perplexity(untuned, corpus.test, short_eval).perplexity;
        const double after = test_perplexity(models[0], corpus.test, short_eval).perplexity;
        double bits_after = 0;
        bool consistent = true;
        for (const QuantizedLinear& l : layers[0]) {
            bits_after += std::visit([](const auto& q) { return q.bits().total(); }, l.layer);
            consistent = consistent && model_weight(l) == models[0].linear(l.index);
        }
        bool same = reports[0].loss_after == reports[1].loss_after;
        for (Index i = 0; i < fp.linear_count(); ++i) same = same && models[0].linear(i) == models[1].linear(i);
        for (std::size_t b = 0; b < fp.blocks.size(); ++b)
            same = same && models[0].blocks[b].ln1_weight == models[1].blocks[b].ln1_weight &&
                   models[0].blocks[b].ln2_bias == models[1].blocks[b].ln2_bias;
        const FinetuneReport& r = reports[0];
        expect(r.loss_after < r.loss_before && r.loss_after > r.teacher_entropy && after < before,
               vqlib::detail::concat("gptq-w3g128-act-had tuned end to end: distillation loss ", r.loss_before, " -> ",
                                     r.loss_after, " (floor ", r.teacher_entropy, "), perplexity on the first ",
                                     short_eval, " test characters ", before, " -> ", after));
        expect(consistent && bits_after == bits_before && r.scale_parameters > 0 && r.norm_parameters == 4 * 4 * 256 + 2 * 256,
               vqlib::detail::concat("tuned layers: the model runs what they store, ", bits_after, " bits (before ",
                                     bits_before, "), ", r.scale_parameters, " scales and ", r.norm_parameters,
                                     " LayerNorm parameters tuned"));
        expect(same, "end-to-end tuning: the same model with 1 and 2 threads");
    }
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
    // 7. End-to-end tuning (finetune.hpp).
    finetune_checks(expect, fp, corpus, ref, o.threads);
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
                (o.kernels || o.finetune_epochs > 0) ? &layers : nullptr, o.holdout ? &holdout : nullptr, selected);
            t = std::chrono::steady_clock::now();
            const Perplexity q = test_perplexity(model, corpus.test, chars);
            std::printf("%s %s: %.4f bits per weight, quantized in %.1f s; test perplexity %.6f (fp32 %.6f, %+.2f%%)\n",
                        method.name.c_str(), calibration_name(cal), report.bits_per_weight, report.seconds,
                        q.perplexity, base.perplexity, 100 * (q.perplexity / base.perplexity - 1));
            std::fflush(stdout);
            out["runs"].push_back(to_json(report, method, q.perplexity, base.perplexity));
            double dense_perplexity = q.perplexity;  // of the model the kernels below run
            if (o.finetune_epochs > 0) {
                FinetuneOptions fo;
                fo.epochs = o.finetune_epochs;
                if (o.finetune_lr > 0) fo.norm_learning_rate = fo.scale_learning_rate = o.finetune_lr;
                fo.tune_norms = o.finetune_what != "scales";
                fo.tune_scales = o.finetune_what != "norms";
                const std::vector<std::int32_t> ft_ids = finetune_ids(corpus, ref, o.finetune_windows, T);
                const FinetuneReport ft = finetune(model, layers, fp, ft_ids, T, fo);
                const Perplexity f = test_perplexity(model, corpus.test, chars);
                dense_perplexity = f.perplexity;
                std::printf("%s %s tuned end to end (%s, %lld epochs on %zu tokens, %lld steps, %lld norm and %lld "
                            "scale parameters, %.1f s): distillation loss %.5f -> %.5f (floor %.5f); test perplexity "
                            "%.6f (%+.2f%%)\n",
                            method.name.c_str(), calibration_name(cal), o.finetune_what.c_str(),
                            static_cast<long long>(fo.epochs), ft_ids.size(), static_cast<long long>(ft.steps),
                            static_cast<long long>(ft.norm_parameters), static_cast<long long>(ft.scale_parameters),
                            ft.seconds, ft.loss_before, ft.loss_after, ft.teacher_entropy, f.perplexity,
                            100 * (f.perplexity / base.perplexity - 1));
                std::fflush(stdout);
                nlohmann::json j = to_json(report, method, f.perplexity, base.perplexity);
                j["method"] = method.name + "+ft";
                j["quantization_seconds"] = report.seconds + ft.seconds;
                j["finetune"] = {{"epochs", fo.epochs}, {"tokens", ft_ids.size()}, {"steps", ft.steps},
                                 {"what", o.finetune_what}, {"norm_learning_rate", fo.norm_learning_rate},
                                 {"scale_learning_rate", fo.scale_learning_rate},
                                 {"norm_parameters", ft.norm_parameters}, {"scale_parameters", ft.scale_parameters},
                                 {"loss_before", ft.loss_before}, {"loss_after", ft.loss_after},
                                 {"teacher_entropy", ft.teacher_entropy}, {"seconds", ft.seconds},
                                 {"untuned_perplexity", q.perplexity}};
                out["runs"].push_back(std::move(j));
            }
            if (o.kernels) {
                // The same model with every quantized linear run by its decode kernel (8 tokens a call).
                for (const QuantizedLinear& l : layers)
                    model.blocks[static_cast<std::size_t>(l.index / 6)].kernel[static_cast<std::size_t>(l.index % 6)] =
                        decode_kernel(l.layer, l.name, l.rotation);
                t = std::chrono::steady_clock::now();
                const Perplexity k = test_perplexity(model, corpus.test, chars);
                std::printf("%s %s through the decode kernels: test perplexity %.6f (dequantized %.6f; %.1f s)\n",
                            method.name.c_str(), calibration_name(cal), k.perplexity, dense_perplexity, seconds_since(t));
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
