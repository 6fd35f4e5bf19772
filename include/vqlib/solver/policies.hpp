#pragma once
// The policy roles of the block solver, as concepts, and the error-update policies.
//
// A quantizer policy decides what each group of `step_width()` columns becomes; an error-update
// policy decides how the quantization error of those columns is turned into the OBS error that is
// fed back into the columns not yet quantized.
#include <vqlib/core/types.hpp>
#include <vqlib/solver/context.hpp>

#include <concepts>
#include <type_traits>

namespace vqlib {

/// A quantizer policy for BlockSolver.
///  - step_width(): columns consumed per step (D; 1 for scalar grids).
///  - row_granularity(): rows that must be handled together by one quantize() call (1 when rows
///    are independent; v for VPTQ's column vectors of v rows).
///  - begin(setup): once, before the first block.
///  - begin_block(block): serially, at each block start (fit grids, initialize codebooks).
///  - quantize(step, row_begin, w, q): writes the quantized values of the rows
///    [row_begin, row_begin + w.rows()) of the step's columns into q. Called concurrently for
///    disjoint row ranges: it may write only state that belongs to those rows (their codes).
template <class Q>
concept QuantizerPolicy =
    requires(Q& q, const Q& cq, const SolveSetup& setup, const BlockView& block,
             const StepView& step, Index row_begin, ConstMatrixRef w, MatrixRef out) {
        { cq.step_width() } -> std::convertible_to<Index>;
        { cq.row_granularity() } -> std::convertible_to<Index>;
        q.begin(setup);
        q.begin_block(block);
        q.quantize(step, row_begin, w, out);
    };

/// An error-update policy: error(diff, U_step, err) turns the quantization error diff = w - q
/// (rows x D) into the error fed back through U's rows; `feedback` false means round-to-nearest
/// (errors are still computed, for the statistics, but never fed back).
template <class E>
concept ErrorUpdatePolicy = requires(ConstMatrixRef diff, ConstMatrixRef U_step, MatrixRef err) {
    { E::feedback } -> std::convertible_to<bool>;
    { E::name() } -> std::convertible_to<const char*>;
    E::error(diff, U_step, err);
};

/// The GPTVQ reference's update: each column's error divided by its own U_jj, ignoring the
/// off-diagonal of U within the step. Exact for D = 1 (GPTQ).
struct DiagonalUpdate {
    static constexpr bool feedback = true;
    static const char* name() { return "diagonal"; }
    static void error(ConstMatrixRef diff, ConstMatrixRef U_step, MatrixRef err) {
        err = diff.array().rowwise() / U_step.diagonal().transpose().array();
    }
};

/// The exact joint OBS update: E = (W_P - Q_P) U_PP^-1, so that sum E^2 is the true increase of
/// the proxy loss and the compensation of the remaining columns is optimal (docs/gptvq.md).
struct ExactUpdate {
    static constexpr bool feedback = true;
    static constexpr bool error_sum_is_loss = true;
    static const char* name() { return "exact"; }
    static void error(ConstMatrixRef diff, ConstMatrixRef U_step, MatrixRef err) {
        err = U_step.triangularView<Eigen::Upper>().template solve<Eigen::OnTheRight>(diff);
    }
};

/// Round-to-nearest: no error feedback (errors reported as by the diagonal update).
struct NoFeedback {
    static constexpr bool feedback = false;
    static const char* name() { return "none (round-to-nearest)"; }
    static void error(ConstMatrixRef diff, ConstMatrixRef U_step, MatrixRef err) {
        DiagonalUpdate::error(diff, U_step, err);
    }
};

/// Whether sum E^2 over a solve with the update E and step width D equals the damped proxy loss
/// tr((W - Q) H_damp (W - Q)^T) in exact arithmetic (W - Q = E U then holds column by column):
/// true for ExactUpdate, and for DiagonalUpdate at D = 1 (where it is the exact update). A policy
/// of one's own opts in with `static constexpr bool error_sum_is_loss = true;`.
template <class E>
constexpr bool error_sum_is_loss(Index step_width) {
    if constexpr (requires { E::error_sum_is_loss; }) {
        return E::error_sum_is_loss;
    } else if constexpr (std::is_same_v<E, DiagonalUpdate>) {
        return step_width == 1;
    } else {
        return false;
    }
}

/// The error-update policy chosen at run time (recipes such as gptvq() and pvq() take it in their
/// configuration and dispatch to the matching compile-time policy).
enum class ErrorUpdateKind { diagonal, exact, none };

static_assert(ErrorUpdatePolicy<DiagonalUpdate>);
static_assert(ErrorUpdatePolicy<ExactUpdate>);
static_assert(ErrorUpdatePolicy<NoFeedback>);

}  // namespace vqlib
