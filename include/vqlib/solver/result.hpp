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
#include <vqlib/core/timing.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/hessian/prepare.hpp>
#include <vqlib/solver/block_solver.hpp>
#include <vqlib/solver/policies.hpp>

#include <limits>
#include <utility>

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
