#pragma once
// The reference CPU backend: Eigen products and plain loops. Operations are single-threaded on
// purpose: callers parallelize over fixed chunks (core/threading.hpp), which keeps every result
// independent of the thread count.
#include <vqlib/backend/backend.hpp>
#include <vqlib/cluster/assignment.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

namespace vqlib {

struct CpuBackend {
    static const char* name() { return "cpu"; }

    static void subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b) {
        if (a.cols() == 1) {
            c.noalias() -= a.col(0) * b.row(0);  // rank-1 update, no GEMM packing
        } else {
            c.noalias() -= a * b;
        }
    }

    static void nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                                 std::span<const float> weights, std::span<std::int32_t> out) {
        VQLIB_CHECK(points.cols() == centroids.cols(), shape_error, "points have ", points.cols(),
                    " dimensions but centroids have ", centroids.cols());
        VQLIB_CHECK(static_cast<Index>(out.size()) == points.rows(), shape_error, "out has ",
                    out.size(), " entries: expected ", points.rows());
        VQLIB_CHECK(weights.empty() || static_cast<Index>(weights.size()) == points.cols(),
                    shape_error, "weights has ", weights.size(), " entries: expected 0 or ",
                    points.cols());
        VQLIB_CHECK(centroids.rows() > 0, shape_error, "centroids is empty");
        // The direct kernel of cluster/assignment.hpp, on this thread: float32 distances
        // ((x - c)^2 * w) summed in coordinate order, ties to the lowest index.
        const Weights metric = weights.empty() ? Weights{} : Weights::per_coordinate(weights);
        assign_nearest(points, centroids, metric, out, {},
                       {AssignmentMethod::direct, /*parallel=*/false});
    }

    static void dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out) {
        const Index rows = layer.codes.rows();
        VQLIB_CHECK(out.rows() == rows && column_begin >= 0 &&
                        column_begin + out.cols() <= layer.codes.cols(),
                    shape_error, "out is ", out.rows(), "x", out.cols(), " at column ",
                    column_begin, ": expected ", rows, " rows within ", layer.codes.cols(),
                    " columns");
        for (Index j = 0; j < out.cols(); ++j) {
            const Index g = layer.g_idx[static_cast<std::size_t>(column_begin + j)];
            const float* scale = layer.scales.data() + g * rows;
            const float* zero = layer.zeros.data() + g * rows;
            for (Index r = 0; r < rows; ++r)
                out(r, j) = scale[r] * (layer.lut[layer.codes(r, column_begin + j)] - zero[r]);
        }
    }
};

static_assert(Backend<CpuBackend>);

}  // namespace vqlib
