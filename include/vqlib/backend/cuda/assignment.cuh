#pragma once
// Nearest-centroid assignment on the GPU, with the CPU backend's exact semantics.
//
// One thread per point; the block walks the centroids in tiles staged through shared memory.
// Distances are the direct kernel's (cluster/assignment_kernels.hpp), in float32:
//   t_j = (x_j - c_j) * (x_j - c_j) [* w_j],   dist = ((t_0 + t_1) + t_2) + ... + t_{D-1}
// computed with __fsub_rn / __fmul_rn / __fadd_rn, which nvcc never contracts into FMAs, so every
// distance is bit-identical to the CPU's. Centroids are visited in increasing order and replace
// the running minimum only when strictly closer (start: +inf, index 0), so ties go to the lowest
// index and the indices equal CpuBackend::nearest_centroid's.
#include <vqlib/backend/cuda/common.cuh>

#if defined(__CUDACC__)
#include <vqlib/cluster/weights.hpp>
#include <vqlib/core/types.hpp>

#include <math_constants.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace vqlib::cuda {

namespace kernels {

/// MaxD > 0: the point's coordinates are held in registers (d <= MaxD); MaxD = 0: any d,
/// coordinates re-read from global memory (L1).
template <int MaxD>
__global__ void nearest_centroid(const float* __restrict__ points, std::int64_t n,
                                 std::int64_t point_stride, int d,
                                 const float* __restrict__ centroids, std::int64_t k,
                                 const float* __restrict__ weights, int tile_k,
                                 std::int32_t* __restrict__ out) {
    extern __shared__ float tile[];
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = i < n;
    float x[MaxD > 0 ? MaxD : 1];
    if constexpr (MaxD > 0) {
#pragma unroll
        for (int j = 0; j < MaxD; ++j) x[j] = (active && j < d) ? points[j * point_stride + i] : 0.0f;
    }
    float best = CUDART_INF_F;
    std::int32_t best_k = 0;
    for (std::int64_t k0 = 0; k0 < k; k0 += tile_k) {
        const int kt = static_cast<int>(k - k0 < tile_k ? k - k0 : tile_k);
        __syncthreads();
        for (int e = threadIdx.x; e < kt * d; e += blockDim.x) tile[e] = centroids[k0 * d + e];
        __syncthreads();
        if (!active) continue;
        for (int kk = 0; kk < kt; ++kk) {
            const float* c = tile + kk * d;
            float acc = 0.0f;
            if constexpr (MaxD > 0) {
#pragma unroll
                for (int j = 0; j < MaxD; ++j) {
                    if (j < d) {
                        const float diff = __fsub_rn(x[j], c[j]);
                        float term = __fmul_rn(diff, diff);
                        if (weights != nullptr) term = __fmul_rn(term, weights[j]);
                        acc = j == 0 ? term : __fadd_rn(acc, term);
                    }
                }
            } else {
                for (int j = 0; j < d; ++j) {
                    const float diff = __fsub_rn(points[j * point_stride + i], c[j]);
                    float term = __fmul_rn(diff, diff);
                    if (weights != nullptr) term = __fmul_rn(term, weights[j]);
                    acc = j == 0 ? term : __fadd_rn(acc, term);
                }
            }
            if (acc < best) {
                best = acc;
                best_k = static_cast<std::int32_t>(k0 + kk);
            }
        }
    }
    if (active) out[i] = best_k;
}

}  // namespace kernels

/// Largest dimension the assignment kernel takes (one centroid must fit in shared memory).
inline constexpr int kMaxAssignmentDim = 8192;

/// Device-level assignment: `points` column-major n x d (coordinate j of point i at
/// points[j * point_stride + i]), `centroids` row-major k x d, `weights` d values or nullptr,
/// `out` n indices. All pointers are device pointers; the launch is asynchronous on `stream`.
inline void nearest_centroid_device(const float* points, Index n, Index point_stride, Index d,
                                    const float* centroids, Index k, const float* weights,
                                    std::int32_t* out, cudaStream_t stream = nullptr) {
    VQLIB_CHECK(d >= 0 && d <= kMaxAssignmentDim, shape_error, "cuda::nearest_centroid: d = ", d,
                ": expected 0..", kMaxAssignmentDim);
    VQLIB_CHECK(k >= 1 && k <= std::numeric_limits<std::int32_t>::max(), shape_error,
                "cuda::nearest_centroid: k = ", k, ": expected 1..2^31-1");
    if (n == 0) return;
    constexpr int threads = 256;
    const int dd = static_cast<int>(d);
    // 32 KB of centroids per tile.
    const Index tile_k = std::min<Index>(k, std::max<Index>(1, 8192 / std::max<Index>(dd, 1)));
    const std::size_t shared = static_cast<std::size_t>(tile_k * std::max<Index>(dd, 1)) * sizeof(float);
    const unsigned blocks = blocks_for(n, threads);
    const int tk = static_cast<int>(tile_k);
    if (dd <= 4)
        kernels::nearest_centroid<4><<<blocks, threads, shared, stream>>>(
            points, n, point_stride, dd, centroids, k, weights, tk, out);
    else if (dd <= 8)
        kernels::nearest_centroid<8><<<blocks, threads, shared, stream>>>(
            points, n, point_stride, dd, centroids, k, weights, tk, out);
    else if (dd <= 16)
        kernels::nearest_centroid<16><<<blocks, threads, shared, stream>>>(
            points, n, point_stride, dd, centroids, k, weights, tk, out);
    else
        kernels::nearest_centroid<0><<<blocks, threads, shared, stream>>>(
            points, n, point_stride, dd, centroids, k, weights, tk, out);
    VQLIB_CUDA_CHECK_LAUNCH();
}

/// Host wrapper with CpuBackend::nearest_centroid's contract: copies to the device, runs,
/// copies the indices back. Throws shape_error as the CPU backend does, vqlib::error without a
/// device or on a CUDA failure.
inline void nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                             std::span<const float> weights, std::span<std::int32_t> out) {
    VQLIB_CHECK(points.cols() == centroids.cols(), shape_error, "points have ", points.cols(),
                " dimensions but centroids have ", centroids.cols());
    VQLIB_CHECK(static_cast<Index>(out.size()) == points.rows(), shape_error, "out has ",
                out.size(), " entries: expected ", points.rows());
    VQLIB_CHECK(weights.empty() || static_cast<Index>(weights.size()) == points.cols(),
                shape_error, "weights has ", weights.size(), " entries: expected 0 or ",
                points.cols());
    VQLIB_CHECK(centroids.rows() > 0, shape_error, "centroids is empty");
    require_device("cuda::nearest_centroid");
    const Index n = points.rows(), d = points.cols(), k = centroids.rows();
    if (n == 0) return;

    DeviceBuffer<float> d_points(static_cast<std::size_t>(n * d));
    if (d > 0)
        VQLIB_CUDA_CHECK(cudaMemcpy2D(d_points.data(), n * sizeof(float), points.data(),
                                      points.outerStride() * sizeof(float), n * sizeof(float),
                                      static_cast<std::size_t>(d), cudaMemcpyHostToDevice));
    std::vector<float> rowmajor(static_cast<std::size_t>(k * d));
    for (Index c = 0; c < k; ++c)
        for (Index j = 0; j < d; ++j) rowmajor[static_cast<std::size_t>(c * d + j)] = centroids(c, j);
    DeviceBuffer<float> d_centroids{std::span<const float>(rowmajor)};
    DeviceBuffer<float> d_weights{weights};
    DeviceBuffer<std::int32_t> d_out(static_cast<std::size_t>(n));
    nearest_centroid_device(d_points.data(), n, n, d, d_centroids.data(), k,
                            weights.empty() ? nullptr : d_weights.data(), d_out.data());
    VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
    d_out.download(out);
}

/// The same with the weight forms of cluster/weights.hpp: none and per-point weights (which do
/// not change the nearest centroid) run unweighted, per-coordinate weights as above; elementwise
/// weights are not supported here (invalid_argument).
inline void nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids, const Weights& weights,
                             std::span<std::int32_t> out) {
    switch (weights.kind()) {
    case WeightKind::none:
    case WeightKind::per_point: nearest_centroid(points, centroids, std::span<const float>{}, out); return;
    case WeightKind::per_coordinate:
        nearest_centroid(points, centroids,
                         std::span<const float>(weights.data(), static_cast<std::size_t>(points.cols())),
                         out);
        return;
    case WeightKind::elementwise: break;
    }
    throw invalid_argument(::vqlib::detail::concat("cuda::nearest_centroid: weights of kind ",
                                          to_string(weights.kind()),
                                          ": expected none, per_point or per_coordinate"));
}

}  // namespace vqlib::cuda

#endif  // __CUDACC__
