#pragma once
// The result core every recipe returns (gptq(), gptvq(), vptq(), pvq()), and the one way a recipe
// runs the block solver with the error update chosen at run time.
//
//   template <class Layer> struct QuantizationResult   layer, Q, proxy_loss, bits_per_weight,
//                                                      seconds, stats, damping used, update run
//   solve(update, options, W, hessian, quantizer)      BlockSolver<Update> for that update
//
// A method's result derives from QuantizationResult<its layer> and adds only what is its own
// (GPTVQ's codebook-update statistics, VPTQ's first-pass loss, ...).
#include <vqlib/backend/cpu_linear_algebra.hpp>
#include <vqlib/backend/linear_algebra.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/timing.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/hessian/prepare.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/solver/block_solver.hpp>
#include <vqlib/solver/policies.hpp>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace vqlib {

template <class Layer>
struct QuantizationResult {
    QuantizationResult() = default;
    /// For layer types that are not default-constructible (a ScalarLayer over a grid without
    /// a default).
    explicit QuantizationResult(Layer quantized) : layer(std::move(quantized)) {}

    /// The quantized layer in its storage format (include/vqlib/formats/).
    Layer layer;
    /// The dequantized weight (= layer.dequantize()), R x C, original column order and domain.
    MatrixXf Q;
    /// tr((W - Q) H (W - Q)^T) with the undamped H as given (NaN when no H was given).
    double proxy_loss = std::numeric_limits<double>::quiet_NaN();
    /// Everything the layer stores, per weight (layer.bits().per_weight()).
    double bits_per_weight = 0.0;
    /// Wall-clock seconds of the whole call.
    double seconds = 0.0;
    /// The (last) solve's statistics.
    SolveStats stats;
    /// Damping actually used (relative to mean diag H) and the number of Cholesky attempts.
    double percdamp_used = 0.0;
    int cholesky_attempts = 0;
    /// The error update the solver ran.
    ErrorUpdateKind update = ErrorUpdateKind::exact;

    /// Records the Hessian preparation's damping and attempts.
    void record(const PreparedHessian& prepared) {
        percdamp_used = prepared.percdamp;
        cholesky_attempts = prepared.attempts;
    }
};

/// The undamped proxy loss tr((W - Q) H (W - Q)^T) of a solve, from its error sum: when
/// stats.error_sum_is_loss, sum E^2 = tr(e H_damp e^T) with e = W_live - Q (dead columns of W
/// zeroed) and H_damp = H + damp I with each dead diagonal taken as 1, so
///   loss = sum E^2 - damp ||e||^2 - sum over dead columns ||Q_j||^2,
/// O(R C) instead of the R C^2 product (H's dead rows and columns are zero, so they add nothing to
/// the undamped loss). W and Q are the solver's input and output, in its domain; NaN when the
/// error sum is not the loss (round-to-nearest, the diagonal update at D > 1).
inline double proxy_loss_from_solve(ConstMatrixRef W, ConstMatrixRef Q,
                                    const PreparedHessian& hessian, const SolveStats& stats) {
    if (!stats.error_sum_is_loss) return std::numeric_limits<double>::quiet_NaN();
    check_shape("Q", Q, W.rows(), W.cols());
    VQLIB_CHECK(hessian.columns() == W.cols(), shape_error, "the prepared Hessian has ",
                hessian.columns(), " columns: expected W.cols() = ", W.cols());
    constexpr Index chunk = 256;
    const Index C = W.cols();
    const Index chunks = (C + chunk - 1) / chunk;
    std::vector<double> live(static_cast<std::size_t>(chunks), 0.0);
    std::vector<double> dead(static_cast<std::size_t>(chunks), 0.0);
    parallel_for(chunks, [&](Index c) {
        double l = 0.0, d = 0.0;
        for (Index j = c * chunk; j < std::min(C, (c + 1) * chunk); ++j) {
            if (hessian.dead[static_cast<std::size_t>(j)]) {
                d += Q.col(j).template cast<double>().squaredNorm();
            } else {
                l += (W.col(j).template cast<double>() - Q.col(j).template cast<double>()).squaredNorm();
            }
        }
        live[static_cast<std::size_t>(c)] = l;
        dead[static_cast<std::size_t>(c)] = d;
    });
    double e2 = 0.0, dead2 = 0.0;
    for (Index c = 0; c < chunks; ++c) {
        e2 += live[static_cast<std::size_t>(c)] + dead[static_cast<std::size_t>(c)];
        dead2 += dead[static_cast<std::size_t>(c)];
    }
    return stats.error_sum - hessian.damp * e2 - dead2;
}

namespace detail {

/// result.proxy_loss as `mode` asks: for `solver`, from_solve() (proxy_loss_from_solve, NaN when
/// unavailable; called only in that mode), falling back to the float64 product of the caller's W,
/// Q and H.
template <class DerivedH, class FromSolve>
double report_loss(LossEvaluation mode, FromSolve&& from_solve, ConstMatrixRef W, ConstMatrixRef Q,
                   const Eigen::MatrixBase<DerivedH>& H) {
    switch (mode) {
    case LossEvaluation::none:
        return std::numeric_limits<double>::quiet_NaN();
    case LossEvaluation::solver:
        if (const double loss = from_solve(); std::isfinite(loss)) return loss;
        [[fallthrough]];
    case LossEvaluation::exact:
        return proxy_loss(W, Q, H);
    }
    throw invalid_argument(detail::concat("loss = ", static_cast<int>(mode),
                                          ": expected solver, exact or none"));
}

}  // namespace detail

/// BlockSolver with the error update `update` (DiagonalUpdate, ExactUpdate or NoFeedback) and the
/// linear-algebra backend `Compute`, run on W with the prepared Hessian and the quantizer.
template <LinearAlgebraBackend Compute = CpuLinearAlgebra, QuantizerPolicy Quantizer>
SolveResult solve(ErrorUpdateKind update, const SolverOptions& options, ConstMatrixRef W,
                  const PreparedHessian& hessian, Quantizer& quantizer) {
    switch (update) {
    case ErrorUpdateKind::diagonal:
        return BlockSolver<DiagonalUpdate, Compute>(options).run(W, hessian, quantizer);
    case ErrorUpdateKind::exact:
        return BlockSolver<ExactUpdate, Compute>(options).run(W, hessian, quantizer);
    case ErrorUpdateKind::none:
        return BlockSolver<NoFeedback, Compute>(options).run(W, hessian, quantizer);
    }
    throw invalid_argument(detail::concat("update = ", static_cast<int>(update),
                                          ": expected diagonal, exact or none"));
}
}  // namespace vqlib
