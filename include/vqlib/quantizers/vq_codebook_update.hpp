#pragma once
// The codebook update ("M-step") of GPTVQ: with the assignments fixed, move the codebook entries
// to minimize the layer loss L(C) = tr((W - Q(C)) H (W - Q(C))^T), Q(C) the dequantized layer.
//
// Two methods:
//  - adam: the reference's loop (docs/gptvq.md): Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) for 25
//    steps on all codebooks from the current ones; if the loss at a step exceeds the initial loss
//    (or is NaN), restart from the initial codebooks with lr / 10. The last step is not checked.
//  - least_squares: L is quadratic in the entries. Holding all but one column group fixed, each
//    band's codebook of that group is an independent least-squares problem of K * D unknowns,
//    solved from its normal equations in float64 (with a tiny ridge so that unused centroids stay
//    where they are). Sweeping the groups in order (block coordinate descent) converges to the
//    joint least-squares solution; it costs O(R * C * columns_per_group) for the normal equations
//    plus one float32 R x C x C product per sweep (the gradient E H is carried in float32: its
//    rounding perturbs the solution at float32 noise), where solving all groups jointly would
//    cost O(R * C^2) scattered updates. Its losses cost one product in all: the loss before is
//    sum E o E H from the gradient the sweeps start from, and each candidate is judged by its
//    change of the loss from there (float32 products on H's lower triangle, summed in float64:
//    half a product each; within 1e-6 relative of the float64 loss, tests/quantizers).
// SVD-factored layers (layer.basis set, quantizers/vq_svd_codebooks.hpp): least squares solves
// for each codebook's r coefficients in the shared basis, so every codebook stays U''_g V'; Adam
// moves the entries freely and the requantization projects them back.
// Either way `requantize(layer)` is called afterwards (e.g. INT8 codebooks), and the better of
// the updated and the original codebooks (by L after requantization) is kept unless
// `keep_if_worse` (the reference returns the update unconditionally). least_squares also tries
// the solution clamped to each codebook's previous range (see update_codebooks).
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <Eigen/Cholesky>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace vqlib {

enum class CodebookUpdateMethod { none, adam, least_squares };

struct CodebookUpdateOptions {
    CodebookUpdateMethod method = CodebookUpdateMethod::least_squares;
    /// Adam: initial learning rate, steps per attempt, and how many restarts (lr / 10 each).
    double learning_rate = 1e-3;
    int steps = 25;
    int max_restarts = 8;
    /// least_squares: sweeps of block coordinate descent over the column groups (each step an
    /// exact solve; one sweep is exact when there is a single column group).
    int sweeps = 2;
    /// Return the update even when it raised the loss (the reference's behaviour).
    bool keep_if_worse = false;

};

struct CodebookUpdateStats {
    double loss_before = 0.0;
    double loss_after = 0.0;
    int restarts = 0;
    bool kept = true;
    double seconds = 0.0;
};

namespace detail {

/// For each weight (r, i): the flat index into the layer's stacked codebooks and its coefficient
/// (the normalization scale, or 1). Calls f(r, i, flat_entry, coefficient).
template <class F>
void for_each_weight_entry(const VqLayer& layer, Index r, F&& f) {
    const VqLayout& L = layer.layout;
    for (Index i = 0; i < L.cols; ++i) {
        const Index v = i / L.dim;
        const Index cg = i / L.columns_per_group;
        const Index centroid = L.codebook_of(r, cg) * L.k + layer.indices(r, v);
        const float a = layer.scale_block > 0 ? layer.scales(r, i / layer.scale_block) : 1.0f;
        f(i, centroid, i % L.dim, a);
    }
}

/// Rows per parallel chunk of the products with H: large enough that packing H's panels for
/// each chunk costs little next to the product.
inline constexpr Index hessian_product_rows = 256;

/// residual * H by fixed row chunks (Eigen's own threading stays off: deterministic).
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> times_hessian(
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& residual,
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& H) {
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> out(residual.rows(), H.cols());
    parallel_for_ranges(residual.rows(), hessian_product_rows, [&](Index r0, Index r1) {
        out.middleRows(r0, r1 - r0).noalias() = residual.middleRows(r0, r1 - r0) * H;
    });
    return out;
}

/// Gradient of L with respect to every codebook entry: dL/dQ = -2 (W - Q) H, scattered.
inline MatrixXd codebook_gradient(const VqLayer& layer, const MatrixXd& residual_times_h) {
    MatrixXd grad = MatrixXd::Zero(layer.codebooks.rows(), layer.codebooks.cols());
    for (Index r = 0; r < layer.rows(); ++r) {
        for_each_weight_entry(layer, r, [&](Index i, Index centroid, Index j, float a) {
            grad(centroid, j) += -2.0 * a * residual_times_h(r, i);
        });
    }
    return grad;
}

inline void adam_update(VqLayer& layer, ConstMatrixRef W, const MatrixXd& H,
                        const CodebookUpdateOptions& options, CodebookUpdateStats& stats) {
    const MatrixXf initial = layer.codebooks;
    const MatrixXd Wd = W.cast<double>();
    // The loss as computed at every step (same summation), so that the first step, which
    // evaluates the initial codebooks, never triggers a restart by rounding.
    auto loss_of = [&](const MatrixXd& residual, const MatrixXd& rh) {
        return rh.cwiseProduct(residual).sum();
    };
    const MatrixXd residual0 = Wd - layer.dequantize().cast<double>();
    const double loss0 = loss_of(residual0, times_hessian(residual0, H));
    double lr = options.learning_rate;
    constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    for (int attempt = 0; attempt <= options.max_restarts; ++attempt) {
        MatrixXd params = initial.cast<double>();
        MatrixXd m = MatrixXd::Zero(params.rows(), params.cols());
        MatrixXd v = m;
        bool restart = false;
        for (int step = 1; step <= options.steps; ++step) {
            layer.codebooks = params.cast<float>();
            const MatrixXd residual = Wd - layer.dequantize().cast<double>();
            const MatrixXd rh = times_hessian(residual, H);
            const double loss = loss_of(residual, rh);
            if (!std::isfinite(loss) || loss > loss0) {
                restart = true;
                break;
            }
            const MatrixXd g = codebook_gradient(layer, rh);
            m = beta1 * m + (1 - beta1) * g;
            v = beta2 * v + (1 - beta2) * g.cwiseProduct(g);
            const double c1 = 1 - std::pow(beta1, step), c2 = 1 - std::pow(beta2, step);
            params.array() -= lr * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
        }
        if (!restart) {
            layer.codebooks = params.cast<float>();
            return;
        }
        ++stats.restarts;
        lr /= 10.0;
    }
    layer.codebooks = initial;  // every attempt diverged: keep the codebooks
}

/// Exact minimization over the codebooks of one column group, the others fixed, for every band
/// (independent problems of K * D unknowns): with E = W - Q and the current E H, the change
/// delta of the band's codebook solves (sum_r A_r^T H_gg A_r) delta = sum_r A_r^T (E H)_r,g,
/// where A_r maps codebook entries to the row's weights in the group and H_gg is H restricted
/// to the group's columns. Q (the dequantized layer) and E H are updated afterwards.
inline void least_squares_group(VqLayer& layer, const MatrixXd& H, const MatrixXf& Hf, MatrixXd& Q,
                                MatrixXf& EH, Index cg, bool last) {
    const VqLayout& L = layer.layout;
    const Index unknowns = L.k * L.dim;
    const Index c = L.columns_per_group;
    const Index col0 = cg * c;
    const MatrixXd Hgg = H.block(col0, col0, c, c);
    MatrixXd dQ = MatrixXd::Zero(L.rows, c);
    const bool factored = layer.codebook_rank() > 0;
    const MatrixXd basis = layer.basis.cast<double>();  // r x (K D)
    parallel_for(L.bands(), [&](Index band) {
        const Index book = L.codebook_of(band * L.rows_per_codebook, cg);
        const Index rows = L.rows_per_codebook;
        MatrixXd normal = MatrixXd::Zero(unknowns, unknowns);
        VectorXd rhs = VectorXd::Zero(unknowns);
        // Each weight's slot (flat codebook entry) and coefficient, for the band's rows.
        std::vector<Index> slot(static_cast<std::size_t>(rows * c));
        std::vector<double> coef(static_cast<std::size_t>(rows * c));
        const Index r0 = band * rows;
        for (Index rr = 0; rr < rows; ++rr) {
            const Index r = r0 + rr;
            for (Index i = 0; i < c; ++i) {
                const Index col = col0 + i;
                const auto s = static_cast<std::size_t>(rr * c + i);
                slot[s] = layer.indices(r, col / L.dim) * L.dim + col % L.dim;
                coef[s] = layer.scale_block > 0 ? layer.scales(r, col / layer.scale_block) : 1.0;
                rhs[slot[s]] += coef[s] * static_cast<double>(EH(r, col0 + i));
            }
        }
        // T costs 3 c * unknowns per row, the entry-wise scatter c^2: the cheaper one.
        if (unknowns > c) {
            // Many unknowns (e.g. 4-D, K = 256: 1024 against 256 columns): normal += A_r^T
            // H_gg A_r entry by entry, one D x D block of H_gg per pair of the row's vectors
            // (a vector's D columns share one scale).
            for (Index rr = 0; rr < rows; ++rr) {
                const Index* sl = slot.data() + rr * c;
                const double* co = coef.data() + rr * c;
                for (Index v1 = 0; v1 < c; v1 += L.dim)
                    for (Index v2 = 0; v2 < c; v2 += L.dim)
                        normal.block(sl[v1], sl[v2], L.dim, L.dim) +=
                            (co[v1] * co[v2]) * Hgg.block(v1, v2, L.dim, L.dim);
            }
        } else {
            // normal += A_r^T (H_gg A_r) for each row: T = H_gg A_r is a scatter of H_gg's
            // columns, A_r^T T a gather of T's rows. By tiles of H_gg's rows, each tile (in
            // cache) serving every row of the band (T's sums run as row by row; normal's
            // contributions arrive tile by tile).
            // Plain loops: the expressions are too short for Eigen's per-call overhead.
            constexpr Index tile = 64;
            std::vector<double> T(static_cast<std::size_t>(tile * unknowns));
            for (Index i0 = 0; i0 < c; i0 += tile) {
                const Index ib = std::min(tile, c - i0);
                for (Index rr = 0; rr < rows; ++rr) {
                    const Index* sl = slot.data() + rr * c;
                    const double* co = coef.data() + rr * c;
                    std::fill(T.begin(), T.end(), 0.0);
                    for (Index i = 0; i < c; ++i) {
                        double* t = T.data() + sl[i] * tile;
                        const double* h = Hgg.data() + i * c + i0;
                        const double a = co[i];
                        for (Index k = 0; k < ib; ++k) t[k] += a * h[k];
                    }
                    for (Index ii = 0; ii < ib; ++ii) {
                        const double a = co[i0 + ii];
                        double* n = normal.data() + sl[i0 + ii];
                        for (Index u = 0; u < unknowns; ++u) n[u * unknowns] += a * T[static_cast<std::size_t>(u * tile + ii)];
                    }
                }
            }
        }
        // SVD-factored codebooks change only inside the basis' row space: entries = B^T u, so
        // the unknowns become u's r coefficients (normal -> B normal B^T, rhs -> B rhs).
        if (factored) {
            normal = (basis * normal * basis.transpose()).eval();
            rhs = (basis * rhs).eval();
        }
        // A tiny ridge keeps unused centroids (and directions H does not see) where they are.
        const double trace = normal.diagonal().sum();
        normal.diagonal().array() += trace > 0 ? 1e-9 * trace / static_cast<double>(normal.rows()) : 1.0;
        Eigen::LLT<MatrixXd> llt(normal);
        if (llt.info() != Eigen::Success) return;
        const VectorXd delta = factored ? VectorXd(basis.transpose() * llt.solve(rhs)) : VectorXd(llt.solve(rhs));
        if (!delta.allFinite()) return;
        auto entries = layer.codebook(book);
        for (Index k = 0; k < L.k; ++k)
            for (Index j = 0; j < L.dim; ++j) entries(k, j) += static_cast<float>(delta[k * L.dim + j]);
        // The change of the band's weights, from the stored (float) codebook values.
        for (Index r = r0; r < r0 + L.rows_per_codebook; ++r) {
            for (Index i = 0; i < c; ++i) {
                const Index col = col0 + i;
                const double a = layer.scale_block > 0 ? layer.scales(r, col / layer.scale_block) : 1.0;
                const double q = static_cast<double>(static_cast<float>(
                    a * entries(layer.indices(r, col / L.dim), col % L.dim)));
                dQ(r, i) = q - Q(r, col);
            }
        }
    });
    Q.middleCols(col0, c) += dQ;
    // E H changes by -dQ H[group, :] (a float32 product, fixed row chunks: deterministic). In the
    // last sweep only the groups still to come read it.
    const Index from = last ? col0 + c : 0;
    if (from >= L.cols) return;
    const MatrixXf dQf = dQ.cast<float>();
    parallel_for_ranges(L.rows, hessian_product_rows, [&](Index r0, Index r1) {
        EH.block(r0, from, r1 - r0, L.cols - from).noalias() -=
            dQf.middleRows(r0, r1 - r0) * Hf.block(col0, from, c, L.cols - from);
    });
}

/// Block coordinate descent over the column groups (Gauss-Seidel): each step is the minimizer
/// over one group's codebooks, from float64 normal equations and the gradient E H carried in
/// float32 (SGEMMs; its rounding moves the solution by float32 noise, not the loss it is judged
/// by, which update_codebooks computes separately); with one column group it is the
/// least-squares solution in one sweep. A sweep costs about one float32 product of the layer
/// with H (the last one half: only the groups after each step need E H).
/// EH is (W - Q) H for the current codebooks on entry (it is updated in place).
/// Hf is H in float32.
inline void least_squares_update(VqLayer& layer, const MatrixXd& H, const MatrixXf& Hf, MatrixXf& EH,
                                 int sweeps) {
    MatrixXd Q = layer.dequantize().cast<double>();
    for (int sweep = 0; sweep < sweeps; ++sweep)
        for (Index cg = 0; cg < layer.layout.column_groups(); ++cg)
            least_squares_group(layer, H, Hf, Q, EH, cg, sweep + 1 == sweeps);
}

}  // namespace detail

namespace detail {

/// sum a o b in float64.
template <class A, class B>
double inner_product(const A& a, const B& b) {
    double s = 0.0;
    for (Index j = 0; j < a.cols(); ++j) s += a.col(j).template cast<double>().dot(b.col(j).template cast<double>());
    return s;
}

/// The change of the loss from Q0 to Q by fixed 128-row chunks (the loss is a sum over rows),
/// E0 H = (W - Q0) H given: with delta = Q - Q0, L(Q) - L(Q0) = delta H delta^T - 2 delta . E0 H,
/// float32 products (H's lower triangle), summed in float64. Only the chunks with `wanted[c]`
/// set are computed (all when `wanted` is empty); the others are 0.
inline std::vector<double> loss_changes(const MatrixXf& Q, const MatrixXf& Q0, const MatrixXf& EH0,
                                        const MatrixXf& Hf, const std::vector<char>& wanted = {}) {
    constexpr Index chunk = loss_row_chunk;
    const Index chunks = (Q.rows() + chunk - 1) / chunk;
    std::vector<double> out(static_cast<std::size_t>(chunks), 0.0);
    parallel_for(chunks, [&](Index c) {
        if (!wanted.empty() && !wanted[static_cast<std::size_t>(c)]) return;
        const Index r0 = c * chunk;
        const Index rows = std::min(Q.rows(), r0 + chunk) - r0;
        const MatrixXf delta = Q.middleRows(r0, rows) - Q0.middleRows(r0, rows);
        out[static_cast<std::size_t>(c)] = lower_quadratic_form<float>(delta, Hf) -
                                           2.0 * inner_product(delta, EH0.middleRows(r0, rows));
    });
    return out;
}

inline double sum(const std::vector<double>& values) {
    double s = 0.0;
    for (double v : values) s += v;
    return s;
}

/// Clamps each codebook of `layer` to the value range of the same codebook in `reference`.
inline void clamp_codebooks(VqLayer& layer, const MatrixXf& reference) {
    const Index k = layer.layout.k;
    for (Index c = 0; c < layer.layout.codebook_count(); ++c) {
        const auto before = reference.middleRows(c * k, k);
        auto book = layer.codebook(c);
        book = book.cwiseMax(before.minCoeff()).cwiseMin(before.maxCoeff());
    }
}

}  // namespace detail

/// Updates the codebooks of `layer` for the weight W (R x C, the original weight) and the
/// undamped Hessian H. `requantize(layer)` re-applies the codebook storage format afterwards.
/// stats.loss_before / loss_after: float64 products for adam and none; for least_squares float32
/// products summed in float64 (about 1e-7 relative, within 1e-6 in the tests), the decisions
/// taken on the change of the loss, whose own rounding is that of float32 products.
template <class Requantize>
CodebookUpdateStats update_codebooks(VqLayer& layer, ConstMatrixRef W, const MatrixXd& H,
                                     const CodebookUpdateOptions& options,
                                     Requantize&& requantize) {
    check_shape("W", W, layer.rows(), layer.cols());
    check_shape("H", H, layer.cols(), layer.cols());
    const auto start = std::chrono::steady_clock::now();
    CodebookUpdateStats stats;
    if (options.method != CodebookUpdateMethod::least_squares) {
        // The loss now (float64, the figure every later one is compared with; the least-squares
        // branch has its own, from the gradient it computes anyway).
        stats.loss_before = proxy_loss(W, layer.dequantize(), H);
        stats.loss_after = stats.loss_before;
    }
    if (options.method == CodebookUpdateMethod::none) return stats;
    const MatrixXf original = layer.codebooks;
    if (options.method == CodebookUpdateMethod::adam) {
        detail::adam_update(layer, W, H, options, stats);
        requantize(layer);
        stats.loss_after = proxy_loss(W, layer.dequantize(), H);
    } else {
        // (W - Q0) H in float32: the gradient the sweeps start from, and the loss before,
        // sum (W - Q0) o (W - Q0) H, float32 products summed in float64.
        const MatrixXf Hf = H.cast<float>();
        const MatrixXf Q0 = layer.dequantize();
        const MatrixXf E0 = W - Q0;
        const MatrixXf EH0 = detail::times_hessian<float>(E0, Hf);
        stats.loss_before = detail::inner_product(E0, EH0);
        MatrixXf EH = EH0;
        detail::least_squares_update(layer, H, Hf, EH, options.sweeps);
        // The exact solution sometimes stretches a codebook's range for a rarely used centroid,
        // which coarsens every entry once the codebook is requantized with a per-codebook scale.
        // Both the solution and the solution clamped to each codebook's previous range are
        // requantized; the better is kept. Each candidate Q0 + delta is judged by its change
        // of the loss, delta H delta^T - 2 delta . (W - Q0) H (float32 products, H's lower
        // triangle, summed in float64: the error is float32 rounding of the change, not of
        // the loss).
        VqLayer clamped = layer;
        detail::clamp_codebooks(clamped, original);
        const bool any_clamped = clamped.codebooks != layer.codebooks;
        requantize(layer);
        const MatrixXf Q = layer.dequantize();
        std::vector<double> changes = detail::loss_changes(Q, Q0, EH0, Hf);
        double change = detail::sum(changes);
        if (any_clamped) {
            // Only the row chunks that clamping changed are evaluated again.
            requantize(clamped);
            const MatrixXf Qc = clamped.dequantize();
            constexpr Index chunk = detail::loss_row_chunk;
            std::vector<char> differs(changes.size(), 0);
            for (std::size_t c = 0; c < changes.size(); ++c) {
                const Index r0 = static_cast<Index>(c) * chunk;
                const Index rows = std::min(Q.rows(), r0 + chunk) - r0;
                differs[c] = Qc.middleRows(r0, rows) != Q.middleRows(r0, rows);
            }
            std::vector<double> clamped_changes = detail::loss_changes(Qc, Q0, EH0, Hf, differs);
            for (std::size_t c = 0; c < changes.size(); ++c)
                if (!differs[c]) clamped_changes[c] = changes[c];
            const double clamped_change = detail::sum(clamped_changes);
            if (clamped_change < change) {
                layer.codebooks = clamped.codebooks;
                change = clamped_change;
            }
        }
        if (options.keep_if_worse || change <= 0.0) {
            stats.loss_after = stats.loss_before + change;
        } else {
            layer.codebooks = original;
            stats.loss_after = stats.loss_before;
            stats.kept = false;
        }
    }
    if (options.method == CodebookUpdateMethod::adam && !options.keep_if_worse && !(stats.loss_after <= stats.loss_before)) {
        layer.codebooks = original;
        stats.loss_after = stats.loss_before;
        stats.kept = false;
    }
    stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return stats;
}

}  // namespace vqlib
