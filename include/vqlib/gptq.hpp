#pragma once
// GPTQ (Frantar et al., 2022) assembled from vqlib's components:
//   Hessian preparation (dead columns, damping with escalation, optional act-order, U = chol(H^-1))
//   + the lazy-batch BlockSolver with one column per step
//   + a ScalarQuantizer over a scalar grid (INT asym/sym, FP8/FP4 minifloats), with groups
//   + the exact (= diagonal, for one column) OBS error update; NoFeedback gives round-to-nearest
//   = the result core of solver/result.hpp with a ScalarLayer<G> (formats/scalar_layer.hpp).
//
//   vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(4, /*symmetric=*/false)};
//   config.groups.size = 128;
//   auto result = vqlib::gptq(W, H, config);       // result.layer.dequantize(), result.proxy_loss
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/formats/minifloat_grid.hpp>
#include <vqlib/formats/scalar_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>
#include <vqlib/quantizers/scalar_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>
#include <vqlib/solver/result.hpp>

#include <chrono>
#include <utility>

namespace vqlib {

template <ScalarGrid G = IntGrid>
struct GptqConfig {
    G grid;
    GroupOptions groups{};
    /// Damping, act-order and the Cholesky retry policy.
    HessianOptions hessian{};
    SolverOptions solver{};
    /// With one column per step the exact OBS update is the diagonal one (the cheaper to run);
    /// `none` is round-to-nearest (rtn() sets it).
    ErrorUpdateKind update = ErrorUpdateKind::diagonal;
    /// How result.proxy_loss is computed: from the solver's error sum (O(R C); round-to-nearest
    /// falls back to the float64 product), the float64 product (R C^2), or not at all.
    LossEvaluation loss = LossEvaluation::solver;
};

/// GPTQ's result: the common core (solver/result.hpp) with a ScalarLayer.
template <ScalarGrid G>
struct GptqResult : QuantizationResult<ScalarLayer<G>> {
    using QuantizationResult<ScalarLayer<G>>::QuantizationResult;
};

namespace detail {

/// The recipe: the grid's quantizer policy, the solver with the configured update, the result.
template <ScalarGrid G>
GptqResult<G> run_scalar(ConstMatrixRef W, const PreparedHessian& prepared,
                         const GptqConfig<G>& config, ErrorUpdateKind update) {
    const auto start = std::chrono::steady_clock::now();
    ScalarQuantizer<G> quantizer(config.grid, config.groups);
    SolveResult solved = solve(update, config.solver, W, prepared, quantizer);
    GptqResult<G> out(quantizer.layer());
    out.Q = std::move(solved.Q);
    out.stats = solved.stats;
    out.update = update;
    out.record(prepared);
    out.bits_per_weight = out.layer.bits_per_weight();
    out.seconds = seconds_since(start) + prepared.seconds;
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

template <ScalarGrid G, class DerivedH>
GptqResult<G> gptq_with(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                        const GptqConfig<G>& config, ErrorUpdateKind update) {
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    const PreparedHessian prepared = prepare_hessian(H, config.hessian);
    auto out = run_scalar(W, prepared, config, update);
    out.proxy_loss = report_loss(
        config.loss, [&] { return proxy_loss_from_solve(W, out.Q, prepared, out.stats); }, W, out.Q, H);
    return out;
}

}  // namespace detail

/// GPTQ on W (R x C) with the Hessian H (C x C, float or double, undamped).
template <ScalarGrid G, class DerivedH>
GptqResult<G> gptq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                   const GptqConfig<G>& config) {
    return detail::gptq_with(W, H, config, config.update);
}

/// GPTQ on a Hessian already prepared (prepare_hessian(H, config.hessian)): one preparation
/// serves every layer that reads the same input (q/k/v, gate/up). proxy_loss comes from the
/// solver's error sum (LossEvaluation::solver, the default, or exact: the same figure, since the
/// undamped H is not here); NaN with loss = none or round-to-nearest.
template <ScalarGrid G>
GptqResult<G> gptq(ConstMatrixRef W, const PreparedHessian& prepared, const GptqConfig<G>& config) {
    VQLIB_CHECK(prepared.columns() == W.cols(), shape_error, "the prepared Hessian has ",
                prepared.columns(), " columns: expected W.cols() = ", W.cols());
    auto out = detail::run_scalar(W, prepared, config, config.update);
    if (config.loss != LossEvaluation::none)
        out.proxy_loss = proxy_loss_from_solve(W, out.Q, prepared, out.stats);
    return out;
}

/// Round-to-nearest with the same grids and groups as GPTQ, but no error feedback. With H, dead
/// columns are zeroed and act-order / proxy loss are available; without, the weight is taken as
/// it is.
template <ScalarGrid G, class DerivedH>
GptqResult<G> rtn(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                  const GptqConfig<G>& config) {
    return detail::gptq_with(W, H, config, ErrorUpdateKind::none);
}

template <ScalarGrid G>
GptqResult<G> rtn(ConstMatrixRef W, const GptqConfig<G>& config) {
    VQLIB_CHECK(!config.hessian.act_order, invalid_argument,
                "act_order = true: round-to-nearest without a Hessian has no column order to use");
    return detail::run_scalar(W, detail::identity_hessian(W.cols()), config,
                              ErrorUpdateKind::none);
}

}  // namespace vqlib
