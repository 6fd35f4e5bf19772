#pragma once
// GPTQ (Frantar et al., 2022) assembled from vqlib's components:
//   Hessian preparation (dead columns, damping with escalation, optional act-order, U = chol(H^-1))
//   + the lazy-batch BlockSolver with one column per step
//   + a ScalarQuantizer over a scalar grid (INT asym/sym, FP8/FP4 minifloats), with groups
//   + the exact (= diagonal, for one column) OBS error update; NoFeedback gives round-to-nearest.
//
//   vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(4, /*symmetric=*/false)};
//   config.groups.size = 128;
//   auto result = vqlib::gptq(W, H, config);       // result.layer.dequantize(), result.proxy_loss
#include <vqlib/backend/cpu.hpp>
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/quantizers/minifloat_grid.hpp>
#include <vqlib/quantizers/scalar_grid.hpp>
#include <vqlib/quantizers/scalar_layer.hpp>
#include <vqlib/quantizers/scalar_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>

#include <limits>

namespace vqlib {

template <ScalarGrid G = IntGrid>
struct GptqConfig {
    G grid;
    GroupOptions groups{};
    /// Damping, act-order and the Cholesky retry policy.
    HessianOptions hessian{};
    SolverOptions solver{};
};

template <ScalarGrid G>
struct GptqResult {
    ScalarLayer<G> layer;
    /// The dequantized layer (= layer.dequantize()), original column order.
    MatrixXf Q;
    SolveStats stats;
    /// tr((W - Q) H (W - Q)^T) with the undamped H as given (NaN when no H was given).
    double proxy_loss = std::numeric_limits<double>::quiet_NaN();
    /// Damping actually used (relative to mean diag H) and the number of Cholesky attempts.
    double percdamp_used = 0.0;
    int cholesky_attempts = 0;
};

namespace detail {

template <ErrorUpdatePolicy Update, ScalarGrid G>
GptqResult<G> run_scalar(ConstMatrixRef W, const PreparedHessian& prepared,
                         const GptqConfig<G>& config) {
    ScalarQuantizer<G> quantizer(config.grid, config.groups);
    BlockSolver<Update> solver(config.solver);
    SolveResult solved = solver.run(W, prepared, quantizer);
    GptqResult<G> out{quantizer.layer(), std::move(solved.Q), solved.stats};
    out.percdamp_used = prepared.percdamp;
    out.cholesky_attempts = prepared.attempts;
    return out;
}

/// A prepared identity Hessian (for round-to-nearest without calibration data).
inline PreparedHessian identity_hessian(Index columns) {
    PreparedHessian p;
    p.U = MatrixXf::Identity(columns, columns);
    p.perm.resize(static_cast<std::size_t>(columns));
    for (Index k = 0; k < columns; ++k) p.perm[static_cast<std::size_t>(k)] = k;
    p.dead.assign(static_cast<std::size_t>(columns), false);
    return p;
}

}  // namespace detail

/// GPTQ on W (R x C) with the Hessian H (C x C, float or double, undamped).
template <ScalarGrid G, class DerivedH>
GptqResult<G> gptq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                   const GptqConfig<G>& config) {
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    const PreparedHessian prepared = prepare_hessian(H, config.hessian);
    // With one column per step the exact OBS update is the diagonal one; it is the cheaper to run.
    auto out = detail::run_scalar<DiagonalUpdate>(W, prepared, config);
    out.proxy_loss = proxy_loss(W, out.Q, H);
    return out;
}

/// Round-to-nearest with the same grids and groups as GPTQ, but no error feedback. With H, dead
/// columns are zeroed and act-order / proxy loss are available; without, the weight is taken as
/// it is.
template <ScalarGrid G, class DerivedH>
GptqResult<G> rtn(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                  const GptqConfig<G>& config) {
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    const PreparedHessian prepared = prepare_hessian(H, config.hessian);
    auto out = detail::run_scalar<NoFeedback>(W, prepared, config);
    out.proxy_loss = proxy_loss(W, out.Q, H);
    return out;
}

template <ScalarGrid G>
GptqResult<G> rtn(ConstMatrixRef W, const GptqConfig<G>& config) {
    VQLIB_CHECK(!config.hessian.act_order, invalid_argument,
                "act_order = true: round-to-nearest without a Hessian has no column order to use");
    return detail::run_scalar<NoFeedback>(W, detail::identity_hessian(W.cols()), config);
}

}  // namespace vqlib
