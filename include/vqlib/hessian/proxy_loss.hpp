#pragma once
// The layer-wise proxy loss tr((W - Q) H (W - Q)^T), in float64, and how a recipe reports it.
//
//   proxy_loss(W, Q, H)      the float64 product, R C^2 multiply-adds (H's symmetry halves them)
//   proxy_loss_f32(W, Q, H)  the same tiles with float32 products, for reports
//   LossEvaluation           what a recipe's result.proxy_loss holds: from the solver's own error
//                            sum when that equals the loss (O(R C), solver/result.hpp's
//                            proxy_loss_from_solve), the float64 product, or nothing
#include <vqlib/core/checks.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <limits>
#include <type_traits>
#include <vector>

namespace vqlib {

/// What a recipe computes for result.proxy_loss = tr((W - Q) H (W - Q)^T), H undamped.
enum class LossEvaluation {
    /// From the solve's own error sum (GPTQ's loss accounting): sum E^2 equals the damped loss in
    /// exact arithmetic, so the undamped one is sum E^2 - damp ||W - Q||^2 - (dead columns), an
    /// O(R C) correction (proxy_loss_from_solve). It differs from `exact` by float32 rounding
    /// of the solve: within 1e-7 relative on the GPTQ fixtures (tests/gptq). Used where the
    /// update makes it exact (the exact update, or the diagonal one with one column per step)
    /// and the result's Q is the solver's; elsewhere the recipe falls back to `exact`.
    solver,
    /// The float64 product (proxy_loss()), R C^2 multiply-adds.
    exact,
    /// Not computed: result.proxy_loss is NaN.
    none,
};

namespace detail {
inline constexpr Index loss_row_chunk = 128;
inline constexpr Index loss_column_tile = 128;
}  // namespace detail

namespace detail {

/// sum over the rows of d of d H d^T, reading only the lower triangle of H: for each 128-column
/// tile J, d_J H_JJ d_J^T plus 2 d_J . (d_below H_below,J), products in `Scalar`, each tile's sum
/// added in float64.
template <class Scalar>
double lower_quadratic_form(const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& d,
                            const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& H) {
    using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    constexpr Index tile = loss_column_tile;
    const Index C = d.cols();
    Matrix t(d.rows(), tile);
    double s = 0.0;
    for (Index j0 = 0; j0 < C; j0 += tile) {
        const Index jb = std::min(tile, C - j0);
        const Index below = C - j0 - jb;
        const auto dj = d.middleCols(j0, jb);
        auto tj = t.leftCols(jb);
        tj.noalias() = dj * H.block(j0, j0, jb, jb).template selfadjointView<Eigen::Lower>();
        const double diag = static_cast<double>(tj.cwiseProduct(dj).sum());
        double off = 0.0;
        if (below > 0) {
            tj.noalias() = d.rightCols(below) * H.block(j0 + jb, j0, below, jb);
            off = static_cast<double>(tj.cwiseProduct(dj).sum());
        }
        s += diag + 2.0 * off;
    }
    return s;
}

/// The tiled product of proxy_loss in `Scalar` (double, or float for proxy_loss_f32): fixed
/// 128-row chunks in parallel (lower_quadratic_form), summed in order.
template <class Scalar = double>
double proxy_loss_lower(ConstMatrixRef W, ConstMatrixRef Q,
                        const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& H) {
    using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    constexpr Index chunk = loss_row_chunk;
    const Index chunks = (W.rows() + chunk - 1) / chunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
    parallel_for(chunks, [&](Index c) {
        const Index r0 = c * chunk;
        const Index rows = std::min(W.rows(), r0 + chunk) - r0;
        const Matrix d = (W.middleRows(r0, rows) - Q.middleRows(r0, rows)).template cast<Scalar>();
        partial[static_cast<std::size_t>(c)] = lower_quadratic_form<Scalar>(d, H);
    });
    double total = 0.0;
    for (double p : partial) total += p;
    return total;
}

/// Checks the shapes, converts H to `Scalar` unless it already is one (read in place), runs the tiles.
template <class Scalar, class DerivedH>
double proxy_loss_in(ConstMatrixRef W, ConstMatrixRef Q, const Eigen::MatrixBase<DerivedH>& H) {
    check_shape("Q", Q, W.rows(), W.cols());
    check_shape("H", H, W.cols(), W.cols());
    if constexpr (std::is_same_v<typename DerivedH::Scalar, Scalar>) {
        return proxy_loss_lower<Scalar>(W, Q, H.derived());
    } else {
        const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> converted = H.template cast<Scalar>();
        return proxy_loss_lower<Scalar>(W, Q, converted);
    }
}

}  // namespace detail

/// tr((W - Q) H (W - Q)^T) = sum over rows of d H d^T with d = W - Q, in float64, reading only the
/// lower triangle of H (taken as symmetric): for each 128-column tile J, the tile's own
/// d_J H_JJ d_J^T plus 2 d_J . (d_below H_below,J). Fixed 128-row chunks in parallel, summed in
/// order: deterministic for any thread count. A double H with direct access is read in place,
/// any other is converted once. With H = 2/n X X^T it is 2/n ||(W - Q) X||^2.
template <class DerivedH>
double proxy_loss(ConstMatrixRef W, ConstMatrixRef Q, const Eigen::MatrixBase<DerivedH>& H) {
    return detail::proxy_loss_in<double>(W, Q, H);
}

/// proxy_loss with float32 products: H rounded to float32 (a float H is read in place), the same
/// tiles, each tile's sum added in float64. About twice as fast as proxy_loss; for reports that
/// float32 rounding does not disturb (the relative difference is that of float32 dot products of
/// length C, about 1e-6 on LLM-like layers; see docs/quantize.md). Deterministic for any thread
/// count, like proxy_loss.
template <class DerivedH>
double proxy_loss_f32(ConstMatrixRef W, ConstMatrixRef Q, const Eigen::MatrixBase<DerivedH>& H) {
    return detail::proxy_loss_in<float>(W, Q, H);
}

}  // namespace vqlib
