#pragma once
// Nearest-centroid assignment: for N points of dimension D and K centroids,
//   a_n = argmin_k sum_j omega_nj (x_nj - c_kj)^2        (ties -> the lowest k)
// with the weights of cluster/weights.hpp (none, per-point, per-coordinate or elementwise).
//
// Layouts. Points are vqlib's column-major N x D (any Eigen::Ref: a MatrixXf, a Map, a block):
// they are read in place, because a column-major matrix holds each coordinate contiguously over
// points, which is what the SIMD lanes of the kernels want. Centroids are K x D, also column-major
// at the API; they are copied once per call into a row-major K x D array (the direct kernel reads
// one centroid at a time) or into the operand of the GEMM path. Elementwise weights are N x D
// column-major like the points.
//
// Two methods:
//   direct  fused distance + argmin (cluster/assignment_kernels.hpp): the distance is the
//           reference's ((x - c)^2 * omega).sum() in float32, the same bits on every instruction
//           set. Work: 3 N K D flops (subtract, multiply, add), 4 N K D with weights.
//   gemm    ||x||^2 - 2 x.c + ||c||^2 (weighted: sum_j omega_nj x_nj^2 - 2 sum_j omega_nj x_nj
//           c_kj + sum_j omega_nj c_kj^2); the point-only term is dropped and the rest is one
//           Eigen GEMM per chunk of 256 points and tile of 512 centroids, [x, 1] * [-2 C^T; |c|^2]
//           (elementwise weights: [omega x, omega] * [-2 C^T; (C*C)^T]), followed by an argmin
//           scan. The expanded form rounds differently from the direct one (cancellation in the
//           subtraction; Eigen's kernel, its use of FMA and its blocking depend on the build
//           flags and the detected cache sizes), so a point whose two nearest centroids are
//           within rounding of each other may get the other one, and results can differ from a
//           build or machine to another. They never depend on the thread count: chunks are fixed
//           by the shapes, and Eigen never splits a product over threads here.
//   automatic  resolve_assignment_method(): direct for D <= 16, GEMM above; decided from the
//           shapes only, never from the data, the machine or the thread count.
//
// Distances, when asked for, are always the direct kernel's value for the chosen centroid (the
// GEMM path recomputes them), times w_n for per-point weights. Per-point weights do not change
// which centroid is nearest; a zero-weight point is assigned to its Euclidean-nearest centroid.
//
// Work is cut into fixed chunks of points run through vqlib::parallel_for (results independent
// of the thread count); problems under about a million point-coordinate-centroid products run on
// the calling thread. Temporaries per chunk: at most 64 KB for the direct path, 512 KB + 2 KB x D
// for the GEMM path. Inputs are not checked for NaN/Inf here (kmeans() does): a point whose
// distances are all NaN is assigned to centroid 0.
#include <vqlib/cluster/assignment_kernels.hpp>
#include <vqlib/cluster/execution.hpp>
#include <vqlib/cluster/weights.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace vqlib {

enum class AssignmentMethod { automatic, direct, gemm };

inline const char* to_string(AssignmentMethod method) {
    switch (method) {
    case AssignmentMethod::automatic: return "automatic";
    case AssignmentMethod::direct: return "direct";
    case AssignmentMethod::gemm: return "gemm";
    }
    return "?";
}

/// The method `automatic` stands for, from the shapes only: the direct kernel for D <= 16 (the
/// compiled kernels: on the AVX-512 machine measured they beat even a bare Eigen GEMM of the
/// same shape at every K, with or without -march=native; see benchmarks/kmeans.cpp), the GEMM
/// path for D > 16 (where the direct kernel re-reads coordinates from memory and runs at a third
/// of the GEMM path's speed). Exception worth knowing: on CPUs without AVX-512, in a build with
/// AVX2 + FMA flags for Eigen (-march=native), the GEMM path measured ~1.4x faster for D >= 12;
/// select it explicitly there.
inline AssignmentMethod resolve_assignment_method(AssignmentMethod requested, Index /*k*/,
                                                  Index d) {
    if (requested != AssignmentMethod::automatic) return requested;
    return d > detail::kMaxCompiledDim ? AssignmentMethod::gemm : AssignmentMethod::direct;
}

struct AssignmentOptions {
    AssignmentMethod method = AssignmentMethod::automatic;
    /// Allow parallel chunks (results are the same either way). Turn off inside your own
    /// parallel loops.
    bool parallel = true;
};

namespace detail {

inline KernelWeights kernel_weights(WeightKind kind) {
    switch (kind) {
    case WeightKind::per_coordinate: return KernelWeights::per_coordinate;
    case WeightKind::elementwise: return KernelWeights::elementwise;
    case WeightKind::none:
    case WeightKind::per_point: return KernelWeights::none;
    }
    return KernelWeights::none;
}

/// Below this many point x centroid x coordinate products, run on the calling thread.
inline constexpr double kAssignmentParallelWork = 1 << 20;

/// Points per parallel chunk of the direct path: about 2^18 products, a multiple of kLaneBlock.
inline Index direct_chunk_points(Index k, Index d) {
    const Index target = (Index{1} << 18) / std::max<Index>(1, k * d);
    const Index rounded = (target + kLaneBlock - 1) / kLaneBlock * kLaneBlock;
    return std::clamp<Index>(rounded, 256, 16384);
}

inline constexpr Index kGemmRows = 256;          // points per GEMM
inline constexpr Index kGemmTile = 512;          // centroids per GEMM
inline constexpr Index kGemmChunkPoints = 4096;  // points per parallel chunk

/// Centroids prepared for one method, searched for many point sets (kmeans() keeps one across
/// iterations).
class NearestCentroidSearch {
public:
    /// Prepares `centroids` (K x D). Per-coordinate weights are folded into the GEMM operand, so
    /// search() must be given weights of the same kind and, if per-coordinate, the same values.
    void prepare(ConstMatrixRef centroids, const Weights& weights, AssignmentMethod method) {
        k_ = centroids.rows();
        d_ = centroids.cols();
        method_ = resolve_assignment_method(method, k_, d_);
        rows_.resize(static_cast<std::size_t>(k_ * d_));
        for (Index k = 0; k < k_; ++k)
            for (Index j = 0; j < d_; ++j)
                rows_[static_cast<std::size_t>(k * d_ + j)] = centroids(k, j);
        if (method_ != AssignmentMethod::gemm) return;
        if (weights.kind() == WeightKind::elementwise) {
            gemm_rhs_.resize(2 * d_, k_);
            for (Index k = 0; k < k_; ++k)
                for (Index j = 0; j < d_; ++j) {
                    const float c = centroids(k, j);
                    gemm_rhs_(j, k) = -2.0f * c;
                    gemm_rhs_(d_ + j, k) = c * c;
                }
        } else {
            gemm_rhs_.resize(d_ + 1, k_);
            for (Index k = 0; k < k_; ++k) {
                double norm = 0.0;
                for (Index j = 0; j < d_; ++j) {
                    const double c = centroids(k, j);
                    const double lambda =
                        weights.kind() == WeightKind::per_coordinate ? weights.data()[j] : 1.0;
                    gemm_rhs_(j, k) = static_cast<float>(-2.0 * lambda * c);
                    norm += lambda * c * c;
                }
                gemm_rhs_(d_, k) = static_cast<float>(norm);
            }
        }
    }

    AssignmentMethod method() const { return method_; }

    /// assignment[n] (and distances[n] if not empty) for every point.
    void search(ConstMatrixRef points, const Weights& weights, std::span<std::int32_t> assignment,
                std::span<float> distances, bool parallel) const {
        const Index n = points.rows();
        if (n == 0) return;
        const bool big =
            static_cast<double>(n) * static_cast<double>(k_) * static_cast<double>(d_) >=
            kAssignmentParallelWork;
        if (method_ == AssignmentMethod::gemm)
            search_gemm(points, weights, assignment, distances, parallel && big);
        else
            search_direct(points, weights, assignment, distances, parallel && big);
        if (weights.kind() == WeightKind::per_point && !distances.empty())
            for (Index i = 0; i < n; ++i)
                distances[static_cast<std::size_t>(i)] *= weights.data()[i];
    }

private:
    void search_direct(ConstMatrixRef points, const Weights& weights,
                       std::span<std::int32_t> assignment, std::span<float> distances,
                       bool parallel) const {
        const Index n = points.rows();
        const KernelWeights mode = kernel_weights(weights.kind());
        const DirectKernelFn kernel = assignment_kernels().direct_for(mode, d_);
        const Index chunk = direct_chunk_points(k_, d_);
        const Index chunks = (n + chunk - 1) / chunk;
        run_chunks(chunks, parallel, [&](Index c) {
            const Index i0 = c * chunk;
            const Index m = std::min(n, i0 + chunk) - i0;
            std::vector<float> own_best;
            float* best = distances.empty() ? nullptr : distances.data() + i0;
            if (best == nullptr) {
                own_best.resize(static_cast<std::size_t>(m));
                best = own_best.data();
            }
            std::int32_t* index = assignment.data() + i0;
            std::fill(best, best + m, std::numeric_limits<float>::infinity());
            std::fill(index, index + m, 0);

            DirectTask task;
            task.point_stride = points.outerStride();
            task.weights = weights.data();
            if (mode == KernelWeights::elementwise) task.weights += i0;
            task.weight_stride = weights.outer_stride();
            task.centroids = rows_.data();
            task.d = d_;
            task.k_end = k_;

            const Index full = m / kLaneBlock * kLaneBlock;
            if (full > 0) {
                task.points = points.data() + i0;
                task.n = full;
                task.best = best;
                task.index = index;
                kernel(task);
            }
            if (full < m) {
                // The last few points run through the same kernel, padded to a full lane block.
                const Index tail = m - full;
                std::vector<float> x(static_cast<std::size_t>(kLaneBlock * d_), 0.0f);
                std::vector<float> w(mode == KernelWeights::elementwise ? x.size() : 0, 0.0f);
                for (Index j = 0; j < d_; ++j)
                    for (Index i = 0; i < tail; ++i) {
                        x[static_cast<std::size_t>(j * kLaneBlock + i)] = points(i0 + full + i, j);
                        if (!w.empty())
                            w[static_cast<std::size_t>(j * kLaneBlock + i)] =
                                weights(i0 + full + i, j);
                    }
                std::array<float, kLaneBlock> tail_best;
                std::array<std::int32_t, kLaneBlock> tail_index;
                tail_best.fill(std::numeric_limits<float>::infinity());
                tail_index.fill(0);
                task.points = x.data();
                task.point_stride = kLaneBlock;
                if (!w.empty()) {
                    task.weights = w.data();
                    task.weight_stride = kLaneBlock;
                }
                task.n = kLaneBlock;
                task.best = tail_best.data();
                task.index = tail_index.data();
                kernel(task);
                std::copy_n(tail_best.begin(), tail, best + full);
                std::copy_n(tail_index.begin(), tail, index + full);
            }
        });
    }

    void search_gemm(ConstMatrixRef points, const Weights& weights,
                     std::span<std::int32_t> assignment, std::span<float> distances,
                     bool parallel) const {
        const Index n = points.rows();
        const KernelWeights mode = kernel_weights(weights.kind());
        const bool elementwise = mode == KernelWeights::elementwise;
        const Index inner = gemm_rhs_.rows();
        const ScanKernelFn scan = assignment_kernels().scan;
        const Index chunks = (n + kGemmChunkPoints - 1) / kGemmChunkPoints;
        run_chunks_with_products(chunks, parallel, [&](Index c) {
            MatrixXf lhs(kGemmRows, inner);
            MatrixXf scores = MatrixXf::Zero(kGemmRows, std::min(kGemmTile, k_));
            std::array<float, kGemmRows> best;
            std::array<std::int32_t, kGemmRows> index;
            const Index chunk_end = std::min(n, (c + 1) * kGemmChunkPoints);
            for (Index r0 = c * kGemmChunkPoints; r0 < chunk_end; r0 += kGemmRows) {
                const Index m = std::min(kGemmRows, chunk_end - r0);
                if (elementwise) {
                    for (Index j = 0; j < d_; ++j)
                        for (Index i = 0; i < m; ++i) {
                            const float w = weights(r0 + i, j);
                            lhs(i, j) = w * points(r0 + i, j);
                            lhs(i, d_ + j) = w;
                        }
                } else {
                    lhs.topLeftCorner(m, d_) = points.middleRows(r0, m);
                    lhs.col(d_).head(m).setOnes();
                }
                best.fill(std::numeric_limits<float>::infinity());
                index.fill(0);
                ScanTask task;
                task.scores = scores.data();
                task.score_stride = scores.outerStride();
                task.n = (m + kLaneBlock - 1) / kLaneBlock * kLaneBlock;
                task.best = best.data();
                task.index = index.data();
                for (Index k0 = 0; k0 < k_; k0 += kGemmTile) {
                    const Index kt = std::min(kGemmTile, k_ - k0);
                    scores.topLeftCorner(m, kt).noalias() =
                        lhs.topRows(m) * gemm_rhs_.middleCols(k0, kt);
                    task.k_begin = k0;
                    task.k_end = k0 + kt;
                    scan(task);
                }
                std::copy_n(index.begin(), m, assignment.data() + r0);
                if (distances.empty()) continue;
                for (Index i = 0; i < m; ++i) {
                    const Index p = r0 + i;
                    const Index a = index[static_cast<std::size_t>(i)];
                    const float* w = weights.data();
                    if (elementwise) w += p;
                    distances[static_cast<std::size_t>(p)] =
                        direct_distance(points.data() + p, points.outerStride(),
                                        rows_.data() + a * d_, d_, mode, w, weights.outer_stride());
                }
            }
        });
    }

    AssignmentMethod method_ = AssignmentMethod::direct;
    Index k_ = 0;
    Index d_ = 0;
    std::vector<float> rows_;  // row-major K x D
    MatrixXf gemm_rhs_;        // (D + 1) x K, or 2D x K for elementwise weights
};

inline void check_assignment_shapes(ConstMatrixRef points, ConstMatrixRef centroids,
                                    const Weights& weights) {
    VQLIB_CHECK(points.cols() >= 1, shape_error, "points have ", points.cols(),
                " columns: expected the dimension d >= 1");
    VQLIB_CHECK(centroids.cols() == points.cols(), shape_error, "centroids are ", centroids.rows(),
                "x", centroids.cols(), ": expected d = ", points.cols(),
                " columns like the points");
    VQLIB_CHECK(
        centroids.rows() >= 1 && centroids.rows() <= std::numeric_limits<std::int32_t>::max(),
        shape_error, "centroids have ", centroids.rows(),
        " rows: expected 1 to 2^31 - 1 centroids");
    const Index n = points.rows();
    const Index d = points.cols();
    switch (weights.kind()) {
    case WeightKind::none: break;
    case WeightKind::per_point:
        VQLIB_CHECK(weights.rows() == n, shape_error, "per-point weights have ", weights.rows(),
                    " entries: expected one per point, n = ", n);
        break;
    case WeightKind::per_coordinate:
        VQLIB_CHECK(weights.cols() == d, shape_error, "per-coordinate weights have ",
                    weights.cols(), " entries: expected one per coordinate, d = ", d);
        break;
    case WeightKind::elementwise:
        VQLIB_CHECK(weights.rows() == n && weights.cols() == d, shape_error,
                    "elementwise weights are ", weights.rows(), "x", weights.cols(),
                    ": expected n x d = ", n, "x", d);
        break;
    }
}

}  // namespace detail

/// Writes the nearest centroid of every point to `assignment` (N entries) and, if `distances` is
/// not empty (N entries), its weighted distance. Shapes are checked (shape_error); values are not.
inline void assign_nearest(ConstMatrixRef points, ConstMatrixRef centroids, const Weights& weights,
                           std::span<std::int32_t> assignment, std::span<float> distances = {},
                           const AssignmentOptions& options = {}) {
    detail::check_assignment_shapes(points, centroids, weights);
    const Index n = points.rows();
    VQLIB_CHECK(static_cast<Index>(assignment.size()) == n, shape_error, "assignment has ",
                assignment.size(), " entries: expected one per point, n = ", n);
    VQLIB_CHECK(distances.empty() || static_cast<Index>(distances.size()) == n, shape_error,
                "distances has ", distances.size(), " entries: expected 0 or n = ", n);
    detail::NearestCentroidSearch search;
    search.prepare(centroids, weights, options.method);
    search.search(points, weights, assignment, distances, options.parallel);
}

/// The nearest centroid of every point.
inline std::vector<std::int32_t> nearest_centroids(ConstMatrixRef points, ConstMatrixRef centroids,
                                                   const Weights& weights = {},
                                                   const AssignmentOptions& options = {}) {
    std::vector<std::int32_t> assignment(static_cast<std::size_t>(points.rows()));
    assign_nearest(points, centroids, weights, assignment, {}, options);
    return assignment;
}

}  // namespace vqlib
