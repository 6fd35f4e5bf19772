#pragma once
// The backend trait: the hot operations of the algorithms, behind one interface.
//
// Algorithms are templated on a backend type and call only what the Backend concept names, so a
// new backend (the CUDA one, or a SIMD-specialized CPU one) drops in without touching them. The
// reference CPU backend (cpu.hpp) is the default everywhere.
#include <vqlib/core/types.hpp>

#include <concepts>
#include <cstdint>
#include <span>

namespace vqlib {

template <class B>
concept Backend = requires(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b, ConstMatrixRef points,
                           ConstMatrixRef centroids, std::span<std::int32_t> out,
                           std::span<const float> weights) {
    { B::name() } -> std::convertible_to<const char*>;
    // c -= a * b: the solver's intra-block and lazy block updates.
    { B::subtract_product(c, a, b) } -> std::same_as<void>;
    // out[i] = argmin_k sum_j weights[j] * (points(i, j) - centroids(k, j))^2 (weights may be
    // empty: unweighted); ties go to the lowest index.
    { B::nearest_centroid(points, centroids, weights, out) } -> std::same_as<void>;
};

}  // namespace vqlib
