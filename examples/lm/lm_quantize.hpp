#pragma once
// Whole-model quantization of web-char with any vqlib method, calibrated two ways:
//   offline     every linear's Hessian from the fp32 model (VPTQ's offline Hessians);
//   sequential  GPTQ's way: block by block, each group of linears reading one input (q/k/v, o, up,
//               down) gets its Hessian from the activations of the model whose earlier linears are
//               already quantized, and is quantized before the forward pass goes on.
// A method is a named preset (methods.hpp) turning (W, H) into a quantized layer.
#include "web_char.hpp"

#include <vqlib/hessian.hpp>
#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/transform/incoherent_recipe.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vqlib::lm {

/// What quantizing one linear gives: the dequantized weight, its bits, the proxy loss
/// tr((W - Q) H (W - Q)^T) with the H it was given, and the layer in vqlib's storage format.
struct LinearOutcome {
    MatrixXf Q;
    double bits_per_weight = 0;
    double proxy_loss = 0;
    double percdamp = 0;
    double seconds = 0;
    std::optional<io::QuantizedLayer> layer;
    /// Incoherence processing: the layer is in the rotated basis, the decode applies this.
    std::optional<transform::IncoherenceTransform> rotation;
};

/// A named preset of some method, run on one linear.
struct Method {
    std::string name;         // e.g. "gptvq-2d-2.125-best"
    std::string family;       // gptq, gptvq, vptq, pvq
    std::string description;  // the configuration in words
    std::function<LinearOutcome(const MatrixXf& W, const MatrixXd& H)> run;
    /// Optional: the run for a linear of the model's block `block`, for presets whose
    /// configuration depends on the block (rates graded by depth). `run` stays the one used on a
    /// lone layer (check's layer fixture).
    std::function<LinearOutcome(Index block, const MatrixXf& W, const MatrixXd& H)> run_in_block{};
};

/// Every preset the lm tool knows (methods.cpp).
const std::vector<Method>& methods();
const Method& find_method(const std::string& name);

/// A quantized linear in its storage format, for decode kernels or checkpoints.
struct QuantizedLinear {
    std::string name;
    Index index = 0;  // block * 6 + position in linear_names
    io::QuantizedLayer layer;
    std::optional<transform::IncoherenceTransform> rotation;
};

/// The presets chosen end to end on web-char (docs/lm.md): per family and target rate, the run of
/// lowest test perplexity, with the reference fixture of the same rate (if there is one) that
/// `vqlib-lm check` compares its layer loss with.
struct EndToEndPreset {
    const char* family;
    double target_bpw;
    const char* method;
    const char* fixture;  // folder in tests/data/reference/layer_256x512, or nullptr
};
const std::vector<EndToEndPreset>& end_to_end_presets();

enum class Calibration { offline, sequential };
inline const char* calibration_name(Calibration c) { return c == Calibration::offline ? "offline" : "sequential"; }

struct LinearReport {
    std::string name;
    Index rows = 0, cols = 0;
    double bits_per_weight = 0;
    double proxy_loss = 0;
    /// proxy_loss / tr(W H W^T): the loss relative to quantizing the layer to zero.
    double relative_loss = 0;
    /// The same relative loss under a held-out Hessian (of the fp32 model on other data), when
    /// one was given: how well the fit to the calibration tokens carries over.
    double holdout_relative_loss = std::numeric_limits<double>::quiet_NaN();
    double percdamp = 0;
    double seconds = 0;
};

struct ModelReport {
    std::string method;
    Calibration calibration = Calibration::sequential;
    Index calibration_tokens = 0;
    std::vector<LinearReport> linears;
    /// Bits of every quantized linear over their weights (embeddings, LayerNorms, head stay fp32).
    double bits_per_weight = 0;
    /// Wall seconds of the whole quantization, Hessians and forward passes included.
    double seconds = 0;
};

/// The Hessians of every linear input of the unquantized model on `ids` (windows of T): one per
/// block and input (q/k/v share theirs), in float64.
inline std::vector<std::array<MatrixXd, 4>> offline_hessians(const WebChar& fp, std::span<const std::int32_t> ids,
                                                             Index T) {
    std::vector<std::array<MatrixXd, 4>> out(fp.blocks.size());
    Activations x = embed(fp, ids, T);
    for (Index b = 0; b < static_cast<Index>(fp.blocks.size()); ++b) {
        forward_block(fp, b, x, T, [&](Index blk, LinearInput g, const Activations& a) {
            HessianAccumulator acc(a.cols());
            acc.add_rows(a);
            out[static_cast<std::size_t>(blk)][static_cast<std::size_t>(g)] = acc.finalize();
        });
    }
    return out;
}

/// Writes `hessians` (offline_hessians' result, from `tokens` tokens) into `dir` in the layout
/// vqlib-quantize reads (docs/quantize.md): one float64 safetensors file per block and input,
/// tensor "H", metadata "input_of" naming the weights it serves (q/k/v share one file) and
/// "tokens". Each file is written atomically.
inline void write_offline_hessians(const std::filesystem::path& dir, const std::vector<std::array<MatrixXd, 4>>& hessians,
                                   Index tokens) {
    std::filesystem::create_directories(dir);
    for (Index b = 0; b < static_cast<Index>(hessians.size()); ++b) {
        for (Index g = 0; g < 4; ++g) {
            std::string served;
            for (std::size_t l = 0; l < 6; ++l)
                if (linear_inputs[l] == static_cast<LinearInput>(g))
                    served += (served.empty() ? "" : ",") + WebChar::linear_name(b * 6 + static_cast<Index>(l));
            constexpr std::array<const char*, 4> files = {"qkv", "o", "up", "down"};
            const MatrixXd& H = hessians[static_cast<std::size_t>(b)][static_cast<std::size_t>(g)];
            const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows = H;
            io::write_safetensors(dir / ("blocks." + std::to_string(b) + "." + files[static_cast<std::size_t>(g)] + ".safetensors"),
                                  {{"H", io::Tensor::from_bits(io::Dtype::F64, {H.rows(), H.cols()},
                                                               std::span<const double>(rows.data(), static_cast<std::size_t>(rows.size())))}},
                                  {{"input_of", served}, {"tokens", std::to_string(tokens)}});
        }
    }
}

/// Quantizes every linear of `model` in place (each weight replaced by its dequantized Q) with
/// `method`, calibrated on `ids`. `on_linear` (if set) sees each linear's report as it finishes;
/// `layers` (if given) receives each quantized layer (with its rotation, if any); `holdout` (if
/// given) adds held-out relative losses; `selected` (if set) picks the linears to quantize.
inline ModelReport quantize_model(WebChar& model, std::span<const std::int32_t> ids, Index T,
                                  const Method& method, Calibration calibration,
                                  const std::function<void(const LinearReport&)>& on_linear = {},
                                  std::vector<QuantizedLinear>* layers = nullptr,
                                  const std::vector<std::array<MatrixXd, 4>>* holdout = nullptr,
                                  const std::function<bool(const std::string&)>& selected = {}) {
    const auto start = std::chrono::steady_clock::now();
    ModelReport report;
    report.method = method.name;
    report.calibration = calibration;
    report.calibration_tokens = static_cast<Index>(ids.size());
    auto quantize_group = [&](Index b, LinearInput g, const MatrixXd& H) {
        for (std::size_t l = 0; l < 6; ++l) {
            if (linear_inputs[l] != g) continue;
            const Index index = b * 6 + static_cast<Index>(l);
            if (selected && !selected(WebChar::linear_name(index))) continue;
            MatrixXf& W = model.linear(index);
            LinearOutcome q = method.run_in_block ? method.run_in_block(b, W, H) : method.run(W, H);
            LinearReport r;
            r.name = WebChar::linear_name(index);
            r.rows = W.rows();
            r.cols = W.cols();
            r.bits_per_weight = q.bits_per_weight;
            r.proxy_loss = q.proxy_loss;
            r.relative_loss = q.proxy_loss / proxy_loss(W, MatrixXf::Zero(W.rows(), W.cols()), H);
            if (holdout) {
                const MatrixXd& Hh = (*holdout)[static_cast<std::size_t>(b)][static_cast<std::size_t>(g)];
                r.holdout_relative_loss = proxy_loss(W, q.Q, Hh) / proxy_loss(W, MatrixXf::Zero(W.rows(), W.cols()), Hh);
            }
            r.percdamp = q.percdamp;
            r.seconds = q.seconds;
            W = q.Q;
            if (layers && q.layer) layers->push_back({r.name, index, std::move(*q.layer), std::move(q.rotation)});
            if (on_linear) on_linear(r);
            report.linears.push_back(std::move(r));
        }
    };
    if (calibration == Calibration::offline) {
        const auto hessians = offline_hessians(model, ids, T);
        for (Index b = 0; b < static_cast<Index>(model.blocks.size()); ++b)
            for (Index g = 0; g < 4; ++g)
                quantize_group(b, static_cast<LinearInput>(g),
                               hessians[static_cast<std::size_t>(b)][static_cast<std::size_t>(g)]);
    } else {
        Activations x = embed(model, ids, T);
        for (Index b = 0; b < static_cast<Index>(model.blocks.size()); ++b) {
            forward_block(model, b, x, T, [&](Index blk, LinearInput g, const Activations& a) {
                HessianAccumulator acc(a.cols());
                acc.add_rows(a);
                quantize_group(blk, g, acc.finalize());
            });
        }
    }
    double bits = 0, weights = 0;
    for (const LinearReport& r : report.linears) {
        const double n = static_cast<double>(r.rows * r.cols);
        bits += n * r.bits_per_weight;
        weights += n;
    }
    report.bits_per_weight = bits / weights;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace vqlib::lm
