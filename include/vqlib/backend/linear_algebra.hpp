#pragma once
// The linear-algebra role of a backend: what the block solver (solver/block_solver.hpp) needs,
// and nothing else, so that the solver compiles with any backend (CUDA's included) without
// pulling in k-means or decode kernels.
#include <vqlib/core/types.hpp>

#include <concepts>

namespace vqlib {

template <class B>
concept LinearAlgebraBackend = requires(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b) {
    { B::name() } -> std::convertible_to<const char*>;
    // c -= a * b: the solver's intra-block and lazy block updates.
    { B::subtract_product(c, a, b) } -> std::same_as<void>;
};

}  // namespace vqlib
