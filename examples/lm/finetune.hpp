#pragma once
// End-to-end tuning of a quantized web-char model (knowledge distillation from the fp32 model on
// calibration windows of the train split). What is tuned are the continuous parameters that the
// quantized format already stores, so the bit count does not change:
//   - the LayerNorms' weights and biases (fp32, outside the quantized linears, like the
//     embeddings and the head, which stay frozen);
//   - a multiplicative factor on each stored continuous value of every quantized linear whose
//     format has them: GPTQ's per-(row, group) scales, PVQ's per-row norms, GPTVQ's codebook
//     entries. The tuned values are rounded to the layer's storage (fp16 scales, INT8 codebooks
//     with their scales refitted) and written back into the layer; the model then runs the
//     layer's own dequantization, so what is evaluated is exactly what is stored.
// The loss is the cross-entropy of the quantized model's next-character distribution against the
// fp32 model's (KL divergence plus the teacher's entropy), minimized with Adam. The backward pass
// is written out by hand for the architecture of web_char.hpp; every sum runs in an order fixed by
// the shapes alone, so the result is the same for any thread count.
#include "lm_quantize.hpp"

#include <vqlib/codebook/integer_codebook.hpp>
#include <vqlib/formats/pvq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>
#include <vqlib/formats/scalar_layer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <vector>

namespace vqlib::lm {

/// Gradients of a loss w.r.t. the LayerNorm parameters and every linear weight of a model.
struct ModelGradients {
    struct BlockGradients {
        Eigen::RowVectorXf ln1_weight, ln1_bias, ln2_weight, ln2_bias;
        std::array<MatrixXf, 6> linear;
    };
    std::vector<BlockGradients> blocks;
    Eigen::RowVectorXf lnf_weight, lnf_bias;
    /// Which linears' weight gradients distillation_loss computes, by WebChar::linear index
    /// (empty: all); the others stay empty (the input gradients flow through them either way).
    std::vector<bool> wanted_linears;

    bool wants(Index linear) const {
        return wanted_linears.empty() || wanted_linears[static_cast<std::size_t>(linear)];
    }
};

namespace detail {

/// dx += LayerNorm's input gradient for output gradient dy; dweight, dbias += their gradients.
inline void norm_backward(const Activations& dy, const Eigen::RowVectorXf& weight, const NormCache& cache, Index T,
                          Activations& dx, Eigen::RowVectorXf& dweight, Eigen::RowVectorXf& dbias) {
    dweight += (dy.array() * cache.xhat.array()).matrix().colwise().sum();
    dbias += dy.colwise().sum();
    const float n = static_cast<float>(dy.cols());
    for_row_ranges(dy.rows(), T, [&](Index r0, Index r1) {
        for (Index t = r0; t < r1; ++t) {
            const Eigen::RowVectorXf g = (dy.row(t).array() * weight.array()).matrix();
            const float mg = g.sum() / n;
            const float mgx = (g.array() * cache.xhat.row(t).array()).sum() / n;
            dx.row(t).array() += cache.inv(t) * (g.array() - mg - cache.xhat.row(t).array() * mgx);
        }
    });
}

/// x W (rows of x in window-sized ranges).
inline Activations times(const Activations& x, const MatrixXf& W, Index T) {
    Activations y(x.rows(), W.cols());
    for_row_ranges(x.rows(), T, [&](Index r0, Index r1) {
        y.middleRows(r0, r1 - r0).noalias() = x.middleRows(r0, r1 - r0) * W;
    });
    return y;
}

/// The weight gradient dYᵀ X (out x in) of y = x Wᵀ, in 64-row slices of fixed shape.
inline MatrixXf weight_gradient(const Activations& dy, const Activations& x) {
    MatrixXf G(dy.cols(), x.cols());
    parallel_for_ranges(dy.cols(), 64, [&](Index r0, Index r1) {
        G.middleRows(r0, r1 - r0).noalias() = dy.middleCols(r0, r1 - r0).transpose() * x;
    });
    return G;
}

struct BlockCache {
    Activations x0, y1, q, k, v, probs, a, x1, y2, h, g;
    NormCache n1, n2;
};

inline void attention_backward(const Activations& da, const BlockCache& c, Index T, Index heads, Activations& dq,
                               Activations& dk, Activations& dv) {
    const Index d = c.q.cols(), hd = d / heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    dq.resize(c.q.rows(), d);
    dk.resize(c.q.rows(), d);
    dv.resize(c.q.rows(), d);
    for_row_ranges(c.q.rows(), T, [&](Index r0, Index r1) {
        Activations dP(T, T);
        for (Index w0 = r0; w0 < r1; w0 += T) {
            for (Index h = 0; h < heads; ++h) {
                const auto P = c.probs.middleRows((w0 / T * heads + h) * T, T);
                const auto dO = da.block(w0, h * hd, T, hd);
                dv.block(w0, h * hd, T, hd).noalias() = P.transpose() * dO;
                dP.noalias() = dO * c.v.block(w0, h * hd, T, hd).transpose();
                for (Index t = 0; t < T; ++t) {
                    float dot = 0;
                    for (Index s = 0; s <= t; ++s) dot += dP(t, s) * P(t, s);
                    for (Index s = 0; s <= t; ++s) dP(t, s) = P(t, s) * (dP(t, s) - dot) * scale;
                    for (Index s = t + 1; s < T; ++s) dP(t, s) = 0;
                }
                dq.block(w0, h * hd, T, hd).noalias() = dP * c.k.block(w0, h * hd, T, hd);
                dk.block(w0, h * hd, T, hd).noalias() = dP.transpose() * c.q.block(w0, h * hd, T, hd);
            }
        }
    });
}

inline void block_forward(const Block& block, const WebCharConfig& config, Activations& x, Index T, BlockCache& c) {
    c.x0 = x;
    c.y1 = layer_norm(x, block.ln1_weight, block.ln1_bias, config.eps, T, &c.n1);
    c.q = lm::linear(c.y1, block.linear[0], T);
    c.k = lm::linear(c.y1, block.linear[1], T);
    c.v = lm::linear(c.y1, block.linear[2], T);
    c.a = attention(c.q, c.k, c.v, T, config.heads, &c.probs);
    x += lm::linear(c.a, block.linear[3], T);
    c.x1 = x;
    c.y2 = layer_norm(x, block.ln2_weight, block.ln2_bias, config.eps, T, &c.n2);
    c.h = lm::linear(c.y2, block.linear[4], T);
    c.g = c.h;
    gelu_in_place(c.g, T);
    x += lm::linear(c.g, block.linear[5], T);
}

/// dx: the gradient w.r.t. the block's output on entry, w.r.t. its input on return.
inline void block_backward(const Block& block, const WebCharConfig& config, const BlockCache& c, Index T,
                           Activations& dx, ModelGradients::BlockGradients& grad, const std::array<bool, 6>& wanted) {
    // MLP: x2 = x1 + gelu(LN2(x1) upᵀ) downᵀ.
    if (wanted[5]) grad.linear[5] = weight_gradient(dx, c.g);
    Activations dh = times(dx, block.linear[5], T);
    const float r = static_cast<float>(1.0 / std::sqrt(2.0));
    const float phi = static_cast<float>(1.0 / std::sqrt(2.0 * 3.14159265358979323846));
    for_row_ranges(dh.rows(), T, [&](Index r0, Index r1) {
        for (Index t = r0; t < r1; ++t)
            for (Index j = 0; j < dh.cols(); ++j) {
                const float u = c.h(t, j);
                dh(t, j) *= 0.5f * (1.0f + std::erf(u * r)) + u * phi * std::exp(-0.5f * u * u);
            }
    });
    if (wanted[4]) grad.linear[4] = weight_gradient(dh, c.y2);
    const Activations dy2 = times(dh, block.linear[4], T);
    norm_backward(dy2, block.ln2_weight, c.n2, T, dx, grad.ln2_weight, grad.ln2_bias);
    // Attention: x1 = x0 + attention(LN1(x0)) oᵀ.
    if (wanted[3]) grad.linear[3] = weight_gradient(dx, c.a);
    const Activations da = times(dx, block.linear[3], T);
    Activations dq, dk, dv;
    attention_backward(da, c, T, config.heads, dq, dk, dv);
    if (wanted[0]) grad.linear[0] = weight_gradient(dq, c.y1);
    if (wanted[1]) grad.linear[1] = weight_gradient(dk, c.y1);
    if (wanted[2]) grad.linear[2] = weight_gradient(dv, c.y1);
    Activations dy1 = times(dq, block.linear[0], T);
    dy1 += times(dk, block.linear[1], T);
    dy1 += times(dv, block.linear[2], T);
    norm_backward(dy1, block.ln1_weight, c.n1, T, dx, grad.ln1_weight, grad.ln1_bias);
}

}  // namespace detail

/// The distillation loss of `m` on windows of T ids, mean over tokens of -sum_v p_v log q_v with
/// p the rows of `teacher` (probabilities) and q the softmax of m's logits; with `grad`, also its
/// gradients (w.r.t. the LayerNorms and the linear weights that grad->wanted_linears asks for).
inline double distillation_loss(const WebChar& m, std::span<const std::int32_t> ids, Index T, const Activations& teacher,
                                ModelGradients* grad = nullptr) {
    const Index N = static_cast<Index>(ids.size());
    VQLIB_CHECK(teacher.rows() == N && teacher.cols() == m.config.vocab, shape_error, "teacher probabilities are ",
                teacher.rows(), " x ", teacher.cols(), ": expected ", N, " x ", m.config.vocab);
    std::vector<detail::BlockCache> caches(m.blocks.size());
    Activations x = embed(m, ids, T);
    for (std::size_t b = 0; b < m.blocks.size(); ++b) detail::block_forward(m.blocks[b], m.config, x, T, caches[b]);
    NormCache nf;
    const Activations yf = layer_norm(x, m.lnf_weight, m.lnf_bias, m.config.eps, T, &nf);
    Activations dlogits = lm::linear(yf, m.head, T);
    std::vector<double> row_loss(static_cast<std::size_t>(N));
    for_row_ranges(N, T, [&](Index r0, Index r1) {
        for (Index t = r0; t < r1; ++t) {
            const float mx = dlogits.row(t).maxCoeff();
            double s = 0;
            for (Index v = 0; v < dlogits.cols(); ++v) s += std::exp(static_cast<double>(dlogits(t, v) - mx));
            const double lse = mx + std::log(s);
            double loss = 0;
            for (Index v = 0; v < dlogits.cols(); ++v) {
                const double logq = dlogits(t, v) - lse;
                loss -= teacher(t, v) * logq;
                dlogits(t, v) = static_cast<float>((std::exp(logq) - teacher(t, v)) / static_cast<double>(N));
            }
            row_loss[static_cast<std::size_t>(t)] = loss;
        }
    });
    const double loss = std::accumulate(row_loss.begin(), row_loss.end(), 0.0) / static_cast<double>(N);
    if (!grad) return loss;
    VQLIB_CHECK(grad->wanted_linears.empty() ||
                    grad->wanted_linears.size() == m.blocks.size() * 6,
                invalid_argument, "wanted_linears has ", grad->wanted_linears.size(), " entries: expected 0 or ",
                m.blocks.size() * 6);
    grad->blocks.assign(m.blocks.size(), {});
    for (auto& g : grad->blocks) {
        for (auto* v : {&g.ln1_weight, &g.ln1_bias, &g.ln2_weight, &g.ln2_bias}) v->setZero(m.config.d);
    }
    grad->lnf_weight.setZero(m.config.d);
    grad->lnf_bias.setZero(m.config.d);
    const Activations dyf = detail::times(dlogits, m.head, T);
    Activations dx = Activations::Zero(N, m.config.d);
    detail::norm_backward(dyf, m.lnf_weight, nf, T, dx, grad->lnf_weight, grad->lnf_bias);
    for (std::size_t b = m.blocks.size(); b-- > 0;) {
        std::array<bool, 6> wanted{};
        for (Index j = 0; j < 6; ++j) wanted[static_cast<std::size_t>(j)] = grad->wants(static_cast<Index>(b) * 6 + j);
        detail::block_backward(m.blocks[b], m.config, caches[b], T, dx, grad->blocks[b], wanted);
    }
    return loss;
}

/// The fp32 model's next-character probabilities on windows of T ids (the distillation targets).
inline Activations teacher_probabilities(const WebChar& fp, std::span<const std::int32_t> ids, Index T) {
    Activations p = forward(fp, ids, T);
    for_row_ranges(p.rows(), T, [&](Index r0, Index r1) {
        for (Index t = r0; t < r1; ++t) {
            const float mx = p.row(t).maxCoeff();
            double s = 0;
            for (Index v = 0; v < p.cols(); ++v) s += std::exp(static_cast<double>(p(t, v) - mx));
            for (Index v = 0; v < p.cols(); ++v)
                p(t, v) = static_cast<float>(std::exp(static_cast<double>(p(t, v) - mx)) / s);
        }
    });
    return p;
}

/// One quantized linear's tunable values: the model weight is
///   to_model(base ∘ θ[group]),
/// with base the layer's dequantized weights in its quantized domain (before its column order and
/// rotations are undone), group(r, c) the stored value (a scale, a norm, a codebook entry) that
/// entry (r, c) is a multiple of, and θ one factor per stored value (1 at the start). to_quantized is the adjoint of to_model (its
/// inverse: the domain maps are orthogonal), which carries a weight gradient into the quantized
/// domain. store(θ) writes the factors into the layer's values at their storage width.
struct ValueTuning {
    MatrixXf base;
    std::vector<std::int32_t> group;  // column-major, as base
    Index groups = 0;
    std::function<void(MatrixXf&)> to_model;
    std::function<void(MatrixXf&)> to_quantized;
    std::function<void(io::QuantizedLayer&, std::span<const double>)> store;

    MatrixXf weight(std::span<const double> theta) const {
        MatrixXf W(base.rows(), base.cols());
        for (Index i = 0; i < base.size(); ++i)
            W.data()[i] = static_cast<float>(base.data()[i] * theta[static_cast<std::size_t>(group[static_cast<std::size_t>(i)])]);
        to_model(W);
        return W;
    }
    /// d loss / d θ from the model-domain weight gradient G.
    std::vector<double> gradient(MatrixXf G) const {
        to_quantized(G);
        std::vector<double> g(static_cast<std::size_t>(groups), 0.0);
        for (Index i = 0; i < base.size(); ++i)
            g[static_cast<std::size_t>(group[static_cast<std::size_t>(i)])] += double(G.data()[i]) * double(base.data()[i]);
        return g;
    }
};

/// The weight a quantized linear gives the model: its layer dequantized, its rotation undone.
inline MatrixXf model_weight(const QuantizedLinear& l) {
    MatrixXf W = std::visit([](const auto& layer) -> MatrixXf { return layer.dequantize(); }, l.layer);
    if (l.rotation) l.rotation->restore_weights(W);
    return W;
}

/// The stored values of `l` that tuning can move, or nothing for the formats it does not cover
/// (VPTQ, FP8 grids, SVD-factored or shared-scale GPTVQ codebooks).
inline std::optional<ValueTuning> value_tuning(const QuantizedLinear& l) {
    ValueTuning s;
    std::function<void(MatrixXf&)> inner_to_model = [](MatrixXf&) {}, inner_to_quantized = [](MatrixXf&) {};
    if (const auto* q = std::get_if<ScalarLayer<IntGrid>>(&l.layer)) {
        s.base = q->dequantize();
        const Index R = q->rows();
        s.groups = static_cast<Index>(q->params.size());
        s.group.resize(static_cast<std::size_t>(s.base.size()));
        for (Index c = 0; c < q->cols(); ++c)
            for (Index r = 0; r < R; ++r)
                s.group[static_cast<std::size_t>(c * R + r)] = static_cast<std::int32_t>(q->g_idx[static_cast<std::size_t>(c)] * R + r);
        s.store = [](io::QuantizedLayer& layer, std::span<const double> theta) {
            auto& q = std::get<ScalarLayer<IntGrid>>(layer);
            for (std::size_t k = 0; k < q.params.size(); ++k)
                q.params[k].scale = round_scale(static_cast<float>(q.params[k].scale * theta[k]), q.grid.storage());
        };
    } else if (const auto* p = std::get_if<PvqLayer<unsigned __int128>>(&l.layer)) {
        s.base = p->dequantize_rotated();
        const Index R = p->rows, C = p->cols;
        s.groups = R;
        s.group.resize(static_cast<std::size_t>(s.base.size()));
        for (Index c = 0; c < C; ++c)
            for (Index r = 0; r < R; ++r) s.group[static_cast<std::size_t>(c * R + r)] = static_cast<std::int32_t>(r);
        const PvqDomain domain = p->domain();
        inner_to_model = [domain](MatrixXf& W) { domain.restore(W); };
        inner_to_quantized = [domain](MatrixXf& G) { domain.to_quantized(G); };
        s.store = [](io::QuantizedLayer& layer, std::span<const double> theta) {
            auto& p = std::get<PvqLayer<unsigned __int128>>(layer);
            for (std::size_t r = 0; r < p.row_norms.size(); ++r)
                p.row_norms[r] = round_scale(static_cast<float>(p.row_norms[r] * theta[r]), p.norm_storage);
        };
    } else if (const auto* v = std::get_if<VqLayer>(&l.layer)) {
        const VqLayout& L = v->layout;
        const bool integer = v->codebook_scale_count > 0;
        if (v->codebook_rank() > 0 || (integer && v->codebook_scale_count != L.codebook_count())) return std::nullopt;
        s.base = v->dequantize();
        const Index R = v->rows(), D = L.dim;
        s.groups = v->codebooks.size();
        s.group.resize(static_cast<std::size_t>(s.base.size()));
        for (Index r = 0; r < R; ++r)
            for (Index vec = 0; vec < L.vectors_per_row(); ++vec) {
                const Index row = L.codebook_of(r, vec * D / L.columns_per_group) * L.k + v->indices(r, vec);
                for (Index j = 0; j < D; ++j)  // codebooks is column-major: entry (row, j) at j * rows + row
                    s.group[static_cast<std::size_t>((vec * D + j) * R + r)] =
                        static_cast<std::int32_t>(j * v->codebooks.rows() + row);
            }
        s.store = [integer](io::QuantizedLayer& layer, std::span<const double> theta) {
            auto& v = std::get<VqLayer>(layer);
            for (Index i = 0; i < v.codebooks.size(); ++i)
                v.codebooks.data()[i] = static_cast<float>(v.codebooks.data()[i] * theta[static_cast<std::size_t>(i)]);
            if (integer) {
                const ScaleStorage storage = v.codebook_scale_bits == 16 ? ScaleStorage::fp16 : ScaleStorage::fp32;
                v.codebooks = quantize_codebooks(v.codebooks, v.layout.k,
                                                 {v.codebook_bits, CodebookScaleScope::per_codebook, storage})
                                  .dequantize();
            } else {
                const ScaleStorage storage = v.codebook_bits == 16 ? ScaleStorage::fp16 : ScaleStorage::fp32;
                for (Index i = 0; i < v.codebooks.size(); ++i)
                    v.codebooks.data()[i] = vqlib::detail::round_value(v.codebooks.data()[i], storage);
            }
        };
    } else {
        return std::nullopt;
    }
    const std::optional<transform::IncoherenceTransform> rotation = l.rotation;
    s.to_model = [inner_to_model, rotation](MatrixXf& W) {
        inner_to_model(W);
        if (rotation) rotation->restore_weights(W);
    };
    s.to_quantized = [inner_to_quantized, rotation](MatrixXf& G) {
        if (rotation) rotation->transform_weights(G);
        inner_to_quantized(G);
    };
    return s;
}

/// Windows of T train ids for tuning: the calibration windows of reference.json (the first
/// `windows` of them), then, beyond its 256, windows at evenly spaced starts over the train split.
inline std::vector<std::int32_t> finetune_ids(const Corpus& corpus, const Reference& ref, Index windows, Index T) {
    const Index listed = static_cast<Index>(ref.calibration_window_starts.size());
    std::vector<std::int32_t> ids = calibration_ids(corpus, ref, std::min(windows, listed), T);
    const Index extra = windows - std::min(windows, listed);
    if (extra > 0) {
        const Index span = static_cast<Index>(corpus.train.size()) - T;
        VQLIB_CHECK(span > extra, invalid_argument, "windows = ", windows, ": the train split holds fewer windows");
        const Index stride = span / extra;
        for (Index i = 0; i < extra; ++i) {
            const auto s = static_cast<std::ptrdiff_t>(i * stride + stride / 2);
            ids.insert(ids.end(), corpus.train.begin() + s, corpus.train.begin() + s + T);
        }
    }
    return ids;
}

struct FinetuneOptions {
    Index epochs = 4;
    Index batch_windows = 16;            // windows of T tokens per Adam step
    double norm_learning_rate = 3e-3;   // LayerNorm weights and biases
    double scale_learning_rate = 3e-3;  // the factors θ on the stored values
    bool tune_norms = true;
    bool tune_scales = true;
    std::uint64_t seed = 1;  // the order of the windows in each epoch
};

struct FinetuneReport {
    double loss_before = 0, loss_after = 0;  // distillation loss on the windows, start and end (as stored)
    double teacher_entropy = 0;              // its floor: the loss of the fp32 model itself
    Index steps = 0;
    Index norm_parameters = 0, scale_parameters = 0;
    double seconds = 0;
};

namespace detail {

/// Adam on a flat vector of parameters.
struct Adam {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    std::vector<double> m, v;
    Index t = 0;
    void step(std::span<double> x, std::span<const double> g) {
        if (m.empty()) m.assign(x.size(), 0.0), v.assign(x.size(), 0.0);
        ++t;
        const double c1 = 1 - std::pow(beta1, static_cast<double>(t)), c2 = 1 - std::pow(beta2, static_cast<double>(t));
        for (std::size_t i = 0; i < x.size(); ++i) {
            m[i] = beta1 * m[i] + (1 - beta1) * g[i];
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
            x[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
        }
    }
};

/// The LayerNorm vectors of a model, or of its gradients (the same fields in the same order):
/// per block ln1 weight, bias, ln2 weight, bias; then the final LayerNorm's.
template <class Model, class Vector = std::conditional_t<std::is_const_v<Model>, const Eigen::RowVectorXf, Eigen::RowVectorXf>>
std::vector<Vector*> layer_norm_vectors(Model& m) {
    std::vector<Vector*> out;
    for (auto& b : m.blocks)
        for (auto* v : {&b.ln1_weight, &b.ln1_bias, &b.ln2_weight, &b.ln2_bias}) out.push_back(v);
    out.push_back(&m.lnf_weight);
    out.push_back(&m.lnf_bias);
    return out;
}
inline std::vector<Eigen::RowVectorXf*> norm_parameters(WebChar& m) { return layer_norm_vectors(m); }
inline std::vector<const Eigen::RowVectorXf*> norm_gradients(const ModelGradients& g) { return layer_norm_vectors(g); }

}  // namespace detail

/// Tunes `model` (whose linears are the dequantized `layers`) towards `fp` on windows of T ids:
/// its LayerNorms in place and the stored scales of `layers`, which are rewritten; the model's
/// linears are then each layer's own dequantization.
inline FinetuneReport finetune(WebChar& model, std::vector<QuantizedLinear>& layers, const WebChar& fp,
                               std::span<const std::int32_t> ids, Index T, const FinetuneOptions& options) {
    VQLIB_CHECK(options.epochs >= 0, invalid_argument, "epochs = ", options.epochs, ": expected >= 0");
    VQLIB_CHECK(options.batch_windows >= 1, invalid_argument, "batch_windows = ", options.batch_windows, ": expected >= 1");
    VQLIB_CHECK(!ids.empty() && static_cast<Index>(ids.size()) % T == 0, invalid_argument, "ids: ", ids.size(),
                " tokens: expected whole windows of T = ", T);
    const auto start = std::chrono::steady_clock::now();
    FinetuneReport report;
    const Index windows = static_cast<Index>(ids.size()) / T;
    const Activations teacher = teacher_probabilities(fp, ids, T);
    {
        double h = 0;
        for (Index i = 0; i < teacher.size(); ++i)
            if (teacher.data()[i] > 0) h -= double(teacher.data()[i]) * std::log(double(teacher.data()[i]));
        report.teacher_entropy = h / static_cast<double>(teacher.rows());
    }
    report.loss_before = distillation_loss(model, ids, T, teacher);

    struct Tuned {
        QuantizedLinear* layer;
        ValueTuning tuning;
        std::vector<double> theta;
        detail::Adam adam;
    };
    std::vector<Tuned> tuned;
    if (options.tune_scales)
        for (QuantizedLinear& l : layers)
            if (auto s = value_tuning(l)) {
                Tuned t{&l, std::move(*s), {}, {}};
                t.theta.assign(static_cast<std::size_t>(t.tuning.groups), 1.0);
                t.adam.lr = options.scale_learning_rate;
                report.scale_parameters += t.tuning.groups;
                tuned.push_back(std::move(t));
            }
    // Weight gradients only for the linears being tuned.
    std::vector<bool> wanted(model.blocks.size() * 6, false);
    for (const Tuned& t : tuned) wanted[static_cast<std::size_t>(t.layer->index)] = true;
    std::vector<Eigen::RowVectorXf*> norms = detail::norm_parameters(model);
    std::vector<double> norm_values;
    for (auto* v : norms) norm_values.insert(norm_values.end(), v->data(), v->data() + v->size());
    detail::Adam norm_adam;
    norm_adam.lr = options.norm_learning_rate;
    if (options.tune_norms) report.norm_parameters = static_cast<Index>(norm_values.size());

    std::vector<Index> order(static_cast<std::size_t>(windows));
    std::iota(order.begin(), order.end(), Index{0});
    std::mt19937_64 rng(options.seed);
    std::vector<std::int32_t> batch;
    for (Index epoch = 0; epoch < options.epochs; ++epoch) {
        std::shuffle(order.begin(), order.end(), rng);
        for (Index w0 = 0; w0 < windows; w0 += options.batch_windows) {
            const Index w1 = std::min(windows, w0 + options.batch_windows);
            batch.clear();
            Activations target((w1 - w0) * T, teacher.cols());
            for (Index w = w0; w < w1; ++w) {
                const auto s = static_cast<std::size_t>(order[static_cast<std::size_t>(w)] * T);
                batch.insert(batch.end(), ids.begin() + static_cast<std::ptrdiff_t>(s),
                             ids.begin() + static_cast<std::ptrdiff_t>(s) + T);
                target.middleRows((w - w0) * T, T) = teacher.middleRows(static_cast<Index>(s), T);
            }
            ModelGradients grad;
            grad.wanted_linears = wanted;
            distillation_loss(model, batch, T, target, &grad);
            ++report.steps;
            if (options.tune_norms) {
                std::vector<double> g;
                for (const auto* v : detail::norm_gradients(grad)) g.insert(g.end(), v->data(), v->data() + v->size());
                norm_adam.step(norm_values, g);
                std::size_t at = 0;
                for (auto* v : norms)
                    for (Index i = 0; i < v->size(); ++i) (*v)(i) = static_cast<float>(norm_values[at++]);
            }
            parallel_for(static_cast<Index>(tuned.size()), [&](Index i) {
                Tuned& t = tuned[static_cast<std::size_t>(i)];
                const Index index = t.layer->index;
                const std::vector<double> g = t.tuning.gradient(grad.blocks[static_cast<std::size_t>(index / 6)].linear[static_cast<std::size_t>(index % 6)]);
                t.adam.step(t.theta, g);
                model.linear(index) = t.tuning.weight(t.theta);
            });
        }
    }
    // The factors into the layers at their storage width; the model runs what is stored.
    for (Tuned& t : tuned) {
        t.tuning.store(t.layer->layer, t.theta);
        model.linear(t.layer->index) = model_weight(*t.layer);
    }
    report.loss_after = distillation_loss(model, ids, T, teacher);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace vqlib::lm
