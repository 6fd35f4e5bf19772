#pragma once
// The nearest-centroid role of a backend: k-means' E-steps (cluster/kmeans.hpp) and the
// codebook lookups of the VQ and VPTQ quantizer policies take an object of this role, as faiss's
// Clustering::train takes an Index.
//
//   a.nearest_centroid(points, centroids, weights, out)
//     out[i] = argmin_k sum_j omega_ij (points(i, j) - centroids(k, j))^2, ties to the lowest
//     index, with the weights of cluster/weights.hpp (none, per-point, per-coordinate,
//     elementwise). A backend that cannot handle a weight form throws invalid_argument naming it.
#include <vqlib/cluster/weights.hpp>
#include <vqlib/core/types.hpp>

#include <concepts>
#include <cstdint>
#include <span>

namespace vqlib {

template <class A>
concept AssignmentBackend = requires(const A& a, ConstMatrixRef points, ConstMatrixRef centroids,
                                     const Weights& weights, std::span<std::int32_t> out) {
    { a.name() } -> std::convertible_to<const char*>;
    { a.nearest_centroid(points, centroids, weights, out) } -> std::same_as<void>;
};

}  // namespace vqlib
