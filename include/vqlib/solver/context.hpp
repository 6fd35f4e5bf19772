#pragma once
// What the block solver shows its quantizer policy at each stage.
#include <vqlib/core/types.hpp>

#include <vector>

namespace vqlib {

/// Given once, before the first block.
struct SolveSetup {
    /// The weight as passed by the caller (original column order, dead columns not zeroed).
    ConstMatrixRef W_input;
    /// The weight with dead columns zeroed, original column order (GPTQ's static groups read it).
    ConstMatrixRef W_live;
    /// The solver's column order: perm[k] = original column at solver position k.
    const Permutation& perm;
    /// dead[j]: original column j has no calibration signal.
    const std::vector<bool>& dead;
    /// Upper Cholesky factor of the damped inverse Hessian (solver order).
    const MatrixXf& U;
    Index block_size;
};

/// Given at the start of each lazy-update block, before any of its rows are processed.
struct BlockView {
    /// Solver-order columns [begin, end) of this block.
    Index begin;
    Index end;
    /// The working weight in solver order: every column >= begin holds the state at the start
    /// of this block (all earlier blocks' updates applied, none of this block's).
    ConstMatrixRef W;
    const MatrixXf& U;
    const Permutation& perm;
};

/// Given for each step of `width` columns.
struct StepView {
    /// Solver-order index of the first column of the step.
    Index column;
    Index width;
    /// U restricted to the step's columns (width x width, upper triangular).
    ConstMatrixRef U_step;
};

}  // namespace vqlib
