// vqlib_quantize_webchar_check: vqlib-quantize on web-char (tests/data/models/web-char), a small
// trained transformer, with its offline Hessians (computed here by examples/lm's forward pass on the
// 256 calibration windows and written in the tool's layout, as `vqlib-lm hessians` does). For each
// method family the tool quantizes all 24 linears; every layer it stores and every dequantized
// weight it writes must be bit-identical to the library's own per-layer call, configured here
// (not through the tool's spec parser), and its report's bpw and losses equal the call's. The
// dequantized checkpoint is then read back as a model and evaluated (test perplexity on a prefix).
#include "lm_quantize.hpp"
#include "tool.hpp"

#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/pvq.hpp>
#include <vqlib/vptq.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <unistd.h>

#ifndef VQLIB_FIXTURES_DIR
#define VQLIB_FIXTURES_DIR "tests/data"
#endif

namespace fs = std::filesystem;
using namespace vqlib;

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
    std::cout << (ok ? "ok    " : "FAIL  ") << what << "\n" << std::flush;
    if (!ok) ++failures;
}

/// The library's own call on one linear: Q in the caller's basis, the stored layer, bpw, loss.
struct Direct {
    MatrixXf Q;
    MatrixXf layer_values;  // the layer's own dequantize() (the rotated basis under +had)
    double bits_per_weight = 0, proxy_loss = 0;
};

template <class Result>
Direct direct_of(const Result& r) {
    return {r.Q, r.layer.dequantize(), r.bits_per_weight, r.proxy_loss};
}

struct Case {
    std::string spec;  // what the tool is given
    std::function<Direct(const MatrixXf&, const MatrixXd&, std::uint64_t seed)> direct;
};

std::vector<Case> cases() {
    GptqConfig<IntGrid> w4{IntGrid(4, false, {}, ScaleStorage::fp16)};
    w4.groups.size = 128;
    GptqConfig<IntGrid> w3act{IntGrid(3, false, {}, ScaleStorage::fp16)};
    w3act.groups.size = 128;
    w3act.hessian.act_order = true;
    w3act.groups.static_groups = true;
    const GptvqConfig gptvq2d = gptvq_presets::paper(2, 2.125, true);
    const VptqConfig v4k256 = vptq_presets::v4_k256();
    const PvqConfig pvq325 = pvq_presets::best(32, 3.25);
    return {
        {"gptq:w4g128", [=](const MatrixXf& W, const MatrixXd& H, std::uint64_t) { return direct_of(gptq(W, H, w4)); }},
        {"gptvq:2d-2.125", [=](const MatrixXf& W, const MatrixXd& H, std::uint64_t) { return direct_of(gptvq(W, H, gptvq2d)); }},
        {"vptq:v4k256", [=](const MatrixXf& W, const MatrixXd& H, std::uint64_t) { return direct_of(vptq(W, H, v4k256)); }},
        {"pvq:3.25", [=](const MatrixXf& W, const MatrixXd& H, std::uint64_t) { return direct_of(pvq(W, H, pvq325)); }},
        {"gptq:w3g128-act+had",
         [=](const MatrixXf& W, const MatrixXd& H, std::uint64_t seed) {
             transform::IncoherenceOptions options;
             options.seed = seed;
             const auto r = incoherent(W, H, options, [&](const MatrixXf& Wr, const MatrixXd& Hr) { return gptq(Wr, Hr, w3act); });
             return direct_of(r.result);
         }},
    };
}

}  // namespace

int main(int argc, char** argv) {
    const fs::path model_dir = argc > 1 ? fs::path(argv[1]) : fs::path(VQLIB_FIXTURES_DIR) / "models" / "web-char";
    const fs::path dir = fs::temp_directory_path() / ("vqlib-quantize-webchar-" + std::to_string(getpid()));
    fs::remove_all(dir);
    const auto start = std::chrono::steady_clock::now();

    // The model, its corpus and the offline Hessians of the 256 calibration windows (32768 tokens).
    const lm::WebChar fp = lm::load_web_char(model_dir);
    const lm::Corpus corpus = lm::load_corpus(model_dir, fp.config);
    const lm::Reference ref = lm::read_reference(model_dir);
    const Index T = fp.config.ctx;
    const std::vector<std::int32_t> ids = lm::calibration_ids(corpus, ref, 256, T);
    const auto hessians = lm::offline_hessians(fp, ids, T);
    lm::write_offline_hessians(dir / "hessians", hessians, static_cast<Index>(ids.size()));
    const io::SafetensorsFile original = io::read_safetensors(model_dir / "model.safetensors");
    std::map<std::string, std::pair<Index, lm::LinearInput>> linears;  // name -> (index, input)
    for (Index i = 0; i < fp.linear_count(); ++i)
        linears[lm::WebChar::linear_name(i)] = {i, lm::linear_inputs[static_cast<std::size_t>(i % 6)]};
    // Evaluated on a prefix of the test text (the full protocol is vqlib_lm_check's).
    constexpr Index eval_chars = 20000;
    const double fp32 = lm::test_perplexity(fp, corpus.test, eval_chars).perplexity;
    std::printf("info  web-char loaded, Hessians written, fp32 perplexity %.6f on %lld test characters (%.1f s)\n",
                fp32, static_cast<long long>(eval_chars),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

    for (const Case& c : cases()) {
        const auto t0 = std::chrono::steady_clock::now();
        quantize::Options o;
        o.model = model_dir / "model.safetensors";
        o.hessians = dir / "hessians";
        o.out = dir / "out";
        o.overwrite = true;
        o.method = c.spec;
        o.dequantized = io::Dtype::F32;
        o.quiet = true;
        const quantize::Report report = quantize::quantize_checkpoint(o);
        const double tool_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        expect(report.linears.size() == 24, c.spec + ": 24 linears quantized (" + std::to_string(report.linears.size()) + ")");
        std::set<std::string> kept;
        for (const auto& [name, why] : report.kept) kept.insert(name);
        expect(kept == std::set<std::string>{"emb.weight", "head.weight", "pos"},
               c.spec + ": the embeddings, positions and head kept (no Hessian)");

        const auto layers = io::load_layer_checkpoint(o.out / "model.vqlib.safetensors");
        const io::SafetensorsFile deq = io::read_safetensors(o.out / "dequantized" / "model.safetensors");
        bool identical = true, same_report = true;
        double energy_error = 0;  // the relative loss's float32 denominator against the float64 one
        for (const quantize::LinearReport& r : report.linears) {
            const auto it = linears.find(r.name);
            if (it == linears.end()) {
                identical = false;
                std::cout << "  unexpected linear " << r.name << "\n";
                continue;
            }
            const auto [index, input] = it->second;
            const MatrixXf& W = fp.linear(index);
            const MatrixXd& H = hessians[static_cast<std::size_t>(index / 6)][static_cast<std::size_t>(input)];
            const Direct d = c.direct(W, H, quantize::rotation_seed(r.name));
            const std::string prefix = r.name.substr(0, r.name.size() - 7);
            const MatrixXf stored = std::visit([](const auto& l) -> MatrixXf { return l.dequantize(); }, layers.at(prefix));
            const auto values = deq.tensors.at(r.name).to_floats();
            const MatrixXf written = Eigen::Map<const RowMajorMatrixXf>(values.data(), W.rows(), W.cols());
            if (!(stored == d.layer_values) || !(written == d.Q)) {
                identical = false;
                std::cout << "  differs: " << r.name << "\n";
            }
            const double e = quantize::weight_energy(W, H);
            energy_error = std::max(energy_error, std::abs(e / proxy_loss(W, MatrixXf::Zero(W.rows(), W.cols()), H) - 1));
            if (r.bits_per_weight != d.bits_per_weight || r.proxy_loss != d.proxy_loss || r.relative_loss != d.proxy_loss / e) {
                same_report = false;
                std::printf("  report differs: %s bpw %.17g / %.17g, loss %.17g / %.17g\n", r.name.c_str(),
                            r.bits_per_weight, d.bits_per_weight, r.proxy_loss, d.proxy_loss);
            }
        }
        expect(identical, c.spec + ": every stored layer and dequantized weight bit-identical to the library's call");
        expect(same_report, c.spec + ": the report's bpw, proxy and relative losses equal the call's");
        expect(energy_error <= 1e-5, vqlib::detail::concat(c.spec, ": tr(W H W^T) in float32 within ", energy_error,
                                                           " (relative) of the float64 figure"));
        bool copied = true;
        for (const auto& [name, t] : original.tensors)
            if (!linears.count(name)) copied = copied && deq.tensors.count(name) && deq.tensors.at(name) == t;
        expect(copied && deq.tensors.size() == original.tensors.size(),
               c.spec + ": every other tensor of the dequantized checkpoint copied bit for bit");
        // The dequantized checkpoint (with the config.json the tool copies) read back as a model.
        const lm::WebChar back = lm::load_web_char(o.out / "dequantized");
        const double ppl = lm::test_perplexity(back, corpus.test, eval_chars).perplexity;
        double bits = 0, weights = 0;
        for (const auto& r : report.linears) {
            bits += r.bits_per_weight * static_cast<double>(r.rows * r.cols);
            weights += static_cast<double>(r.rows * r.cols);
        }
        std::printf("info  %-22s %.3f bpw, perplexity %.6f (%+.2f%%), tool %.1f s\n", c.spec.c_str(), bits / weights, ppl,
                    100 * (ppl / fp32 - 1), tool_seconds);
        expect(std::isfinite(ppl) && ppl < 1.2 * fp32, c.spec + ": the dequantized checkpoint evaluates as a model (within +20%)");
    }
    fs::remove_all(dir);
    std::cout << (failures ? "FAILED: " + std::to_string(failures) + " checks\n" : "all checks passed\n");
    return failures ? 1 : 0;
}
