#pragma once
// The reference CPU backend: Eigen products and plain loops. Operations are single-threaded on
// purpose: callers parallelize over fixed chunks (core/threading.hpp), which keeps every result
// independent of the thread count.
#include <vqlib/backend/backend.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <limits>

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
        const Index d = points.cols();
        for (Index i = 0; i < points.rows(); ++i) {
            float best = std::numeric_limits<float>::infinity();
            std::int32_t best_k = 0;
            for (Index k = 0; k < centroids.rows(); ++k) {
                float dist = 0.0f;
                for (Index j = 0; j < d; ++j) {
                    const float diff = points(i, j) - centroids(k, j);
                    dist += (weights.empty() ? 1.0f : weights[static_cast<std::size_t>(j)]) *
                            diff * diff;
                }
                if (dist < best) {
                    best = dist;
                    best_k = static_cast<std::int32_t>(k);
                }
            }
            out[static_cast<std::size_t>(i)] = best_k;
        }
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
