#pragma once
// The codebook update ("M-step") of GPTVQ: with the assignments fixed, move the codebook entries
// to minimize the layer loss L(C) = tr((W - Q(C)) H (W - Q(C))^T), Q(C) the dequantized layer.
//
// Two methods:
//  - adam: the reference's loop (spec §4.6): Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) for 25
//    steps on all codebooks from the current ones; if the loss at a step exceeds the initial loss
//    (or is NaN), restart from the initial codebooks with lr / 10. The last step is not checked.
//  - least_squares: L is quadratic in the entries, and rows are independent given their
//    codebooks, so each band of rows_per_codebook rows (which owns one codebook per column group)
//    is an independent linear least-squares problem of column_groups * K * D unknowns, solved
//    exactly from its normal equations (in float64, with a tiny ridge towards the current entries
//    so that unused centroids and directions H does not see stay where they are).
// Either way `requantize(layer)` is called afterwards (e.g. INT8 codebooks), and the better of
// the updated and the original codebooks (by L after requantization) is kept unless
// `keep_if_worse` (the reference returns the update unconditionally). least_squares also tries
// the solution clamped to each codebook's previous range (see update_codebooks).
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/quantizers/vq_layer.hpp>

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

/// residual * H by fixed row chunks (Eigen's own threading stays off: deterministic).
inline MatrixXd times_hessian(const MatrixXd& residual, const MatrixXd& H) {
    MatrixXd out(residual.rows(), H.cols());
    parallel_for_ranges(residual.rows(), 64, [&](Index r0, Index r1) {
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

inline void least_squares_update(VqLayer& layer, const MatrixXd& H, ConstMatrixRef W) {
    const VqLayout& L = layer.layout;
    const Index per_codebook = L.k * L.dim;
    const Index unknowns = L.column_groups() * per_codebook;
    const Index C = L.cols;
    parallel_for(L.bands(), [&](Index band) {
        // normal = sum_r A_r^T H A_r and rhs = sum_r A_r^T H w_r, where A_r (C x unknowns) has
        // one entry per weight: A_r(i, slot_i) = coef_i. Built as T = H A_r (scatter of H's
        // columns), then normal(:, slot_i) += coef_i T(i, :)^T (contiguous, by symmetry).
        MatrixXd normal = MatrixXd::Zero(unknowns, unknowns);
        VectorXd rhs = VectorXd::Zero(unknowns);
        MatrixXd T(C, unknowns);
        MatrixXd Tt(unknowns, C);
        std::vector<Index> slot(static_cast<std::size_t>(C));
        std::vector<double> coef(static_cast<std::size_t>(C));
        // Local unknown p = cg * K * D + centroid * D + j for the band's codebook of group cg.
        auto local = [&](Index i, Index centroid) {
            const Index cg = i / L.columns_per_group;
            return cg * per_codebook + (centroid - L.codebook_of(band * L.rows_per_codebook, cg) * L.k) * L.dim;
        };
        for (Index r = band * L.rows_per_codebook; r < (band + 1) * L.rows_per_codebook; ++r) {
            detail::for_each_weight_entry(layer, r, [&](Index i, Index centroid, Index j, float a) {
                slot[static_cast<std::size_t>(i)] = local(i, centroid) + j;
                coef[static_cast<std::size_t>(i)] = a;
            });
            T.setZero();
            for (Index i = 0; i < C; ++i)
                T.col(slot[static_cast<std::size_t>(i)]) += coef[static_cast<std::size_t>(i)] * H.col(i);
            Tt = T.transpose();
            const VectorXd hw = H * W.row(r).transpose().cast<double>();
            for (Index i = 0; i < C; ++i) {
                const auto s = static_cast<std::size_t>(i);
                normal.col(slot[s]) += coef[s] * Tt.col(i);
                rhs[slot[s]] += coef[s] * hw[i];
            }
        }
        // Current entries of the band's codebooks, in the same local order.
        VectorXd current(unknowns);
        for (Index cg = 0; cg < L.column_groups(); ++cg) {
            const Index c = L.codebook_of(band * L.rows_per_codebook, cg);
            for (Index k = 0; k < L.k; ++k)
                for (Index j = 0; j < L.dim; ++j)
                    current[cg * per_codebook + k * L.dim + j] = layer.codebooks(c * L.k + k, j);
        }
        const double trace = normal.diagonal().sum();
        const double ridge = trace > 0 ? 1e-9 * trace / static_cast<double>(unknowns) : 1.0;
        normal.diagonal().array() += ridge;
        rhs += ridge * current;
        // Positive definite thanks to the ridge: the blocked Cholesky factorization.
        Eigen::LLT<MatrixXd> llt(normal);
        VectorXd solution = llt.info() == Eigen::Success ? VectorXd(llt.solve(rhs)) : current;
        if (!solution.allFinite()) solution = current;
        for (Index cg = 0; cg < L.column_groups(); ++cg) {
            const Index c = L.codebook_of(band * L.rows_per_codebook, cg);
            for (Index k = 0; k < L.k; ++k)
                for (Index j = 0; j < L.dim; ++j)
                    layer.codebooks(c * L.k + k, j) =
                        static_cast<float>(solution[cg * per_codebook + k * L.dim + j]);
        }
    });
}

}  // namespace detail

namespace detail {

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
template <class Requantize>
CodebookUpdateStats update_codebooks(VqLayer& layer, ConstMatrixRef W, const MatrixXd& H,
                                     const CodebookUpdateOptions& options,
                                     Requantize&& requantize) {
    check_shape("W", W, layer.rows(), layer.cols());
    check_shape("H", H, layer.cols(), layer.cols());
    const auto start = std::chrono::steady_clock::now();
    CodebookUpdateStats stats;
    stats.loss_before = proxy_loss(W, layer.dequantize(), H);
    stats.loss_after = stats.loss_before;
    if (options.method == CodebookUpdateMethod::none) return stats;
    const MatrixXf original = layer.codebooks;
    if (options.method == CodebookUpdateMethod::adam) {
        detail::adam_update(layer, W, H, options, stats);
        requantize(layer);
        stats.loss_after = proxy_loss(W, layer.dequantize(), H);
    } else {
        // The exact solution sometimes stretches a codebook's range for a rarely used centroid,
        // which coarsens every entry once the codebook is requantized with a per-codebook scale.
        // Both the solution and the solution clamped to each codebook's previous range are
        // requantized; the better is kept.
        detail::least_squares_update(layer, H, W);
        VqLayer clamped = layer;
        detail::clamp_codebooks(clamped, original);
        requantize(layer);
        requantize(clamped);
        stats.loss_after = proxy_loss(W, layer.dequantize(), H);
        const double clamped_loss = proxy_loss(W, clamped.dequantize(), H);
        if (clamped_loss < stats.loss_after) {
            layer.codebooks = clamped.codebooks;
            stats.loss_after = clamped_loss;
        }
    }
    if (!options.keep_if_worse && !(stats.loss_after <= stats.loss_before)) {
        layer.codebooks = original;
        stats.loss_after = stats.loss_before;
        stats.kept = false;
    }
    stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return stats;
}

}  // namespace vqlib
