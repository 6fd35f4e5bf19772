#pragma once
// The backend roles (backend/backend.hpp) on the GPU: CudaLinearAlgebra (the solver's
// products), CudaAssignment (k-means E-steps and codebook lookups), CudaDequantize, and
// CudaBackend with all three. Each operation is a host-callable static function that copies its
// operands to the device, runs a kernel and copies the result back, so it drops into any
// algorithm templated on that role; it pays a host-device round trip per call, which only large
// operands amortize. Without a device every operation throws vqlib::error (check
// vqlib::cuda::device_available() and fall back to the CPU roles).
//
//   nearest_centroid  bit-identical to CpuAssignment's direct kernel (assignment.cuh)
//   dequantize        bit-identical to CpuDequantize (dequantize.cuh)
//   subtract_product  c -= a * b with a shared-memory tiled kernel (no cuBLAS dependency);
//                     fp32 with FMAs in another order than Eigen: equal up to rounding
#include <vqlib/backend/cuda/assignment.cuh>
#include <vqlib/backend/cuda/dequantize.cuh>

#if defined(__CUDACC__)
#include <vqlib/backend/backend.hpp>

namespace vqlib::cuda {

namespace kernels {

/// C (m x n, ld ldc) -= A (m x kk, ld lda) * B (kk x n, ld ldb), column-major, 16 x 16 tiles.
static __global__ void subtract_product(float* __restrict__ c, std::int64_t ldc,
                                 const float* __restrict__ a, std::int64_t lda,
                                 const float* __restrict__ b, std::int64_t ldb, std::int64_t m,
                                 std::int64_t n, std::int64_t kk) {
    constexpr int T = 16;
    __shared__ float as[T][T + 1];
    __shared__ float bs[T][T + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;  // tx: row within the tile, ty: column
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * T + tx;
    const std::int64_t col = static_cast<std::int64_t>(blockIdx.y) * T + ty;
    float acc = 0.0f;
    for (std::int64_t k0 = 0; k0 < kk; k0 += T) {
        // as[tx][ty] = A(row, k0 + ty); bs[tx][ty] = B(k0 + tx, col)
        as[tx][ty] = (row < m && k0 + ty < kk) ? a[(k0 + ty) * lda + row] : 0.0f;
        bs[tx][ty] = (k0 + tx < kk && col < n) ? b[col * ldb + k0 + tx] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int q = 0; q < T; ++q) acc = fmaf(as[tx][q], bs[q][ty], acc);
        __syncthreads();
    }
    if (row < m && col < n) c[col * ldc + row] -= acc;
}

}  // namespace kernels

/// c -= a * b on the device (host operands in, host result out).
inline void subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b) {
    VQLIB_CHECK(a.rows() == c.rows() && b.cols() == c.cols() && a.cols() == b.rows(), shape_error,
                "subtract_product: c is ", c.rows(), "x", c.cols(), ", a ", a.rows(), "x",
                a.cols(), ", b ", b.rows(), "x", b.cols());
    const Index m = c.rows(), n = c.cols(), kk = a.cols();
    if (m == 0 || n == 0 || kk == 0) return;
    require_device("cuda::subtract_product");
    auto to_device = [](ConstMatrixRef x) {
        DeviceBuffer<float> d(static_cast<std::size_t>(x.rows() * x.cols()));
        VQLIB_CUDA_CHECK(cudaMemcpy2D(d.data(), x.rows() * sizeof(float), x.data(),
                                      x.outerStride() * sizeof(float), x.rows() * sizeof(float),
                                      static_cast<std::size_t>(x.cols()), cudaMemcpyHostToDevice));
        return d;
    };
    DeviceBuffer<float> da = to_device(a), db = to_device(b), dc = to_device(c);
    const dim3 block(16, 16);
    const dim3 grid(blocks_for(m, 16), blocks_for(n, 16));
    kernels::subtract_product<<<grid, block>>>(dc.data(), m, da.data(), m, db.data(), kk, m, n, kk);
    VQLIB_CUDA_CHECK_LAUNCH();
    VQLIB_CUDA_CHECK(cudaMemcpy2D(c.data(), c.outerStride() * sizeof(float), dc.data(),
                                  m * sizeof(float), m * sizeof(float),
                                  static_cast<std::size_t>(n), cudaMemcpyDeviceToHost));
}

}  // namespace vqlib::cuda

namespace vqlib {

/// The linear-algebra role on the GPU (the block solver's products).
struct CudaLinearAlgebra {
    static const char* name() { return "cuda"; }
    static void subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b) {
        cuda::subtract_product(c, a, b);
    }
};

/// The nearest-centroid role on the GPU (k-means E-steps, codebook lookups); the same indices
/// as CpuAssignment's direct kernel.
struct CudaAssignment {
    static const char* name() { return "cuda"; }
    static void nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                                 const Weights& weights, std::span<std::int32_t> out) {
        cuda::nearest_centroid(points, centroids, weights, out);
    }
    /// Per-coordinate weights as a span (empty: unweighted).
    static void nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                                 std::span<const float> weights, std::span<std::int32_t> out) {
        cuda::nearest_centroid(points, centroids, weights, out);
    }
};

/// The dequantization role on the GPU.
struct CudaDequantize {
    static const char* name() { return "cuda"; }
    static void dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out) {
        cuda::dequantize(layer, column_begin, out);
    }
};

/// The CUDA backend, every role (see the top of this file). Throws vqlib::error without a device.
struct CudaBackend : CudaLinearAlgebra, CudaAssignment, CudaDequantize {
    static const char* name() { return "cuda"; }
};

static_assert(LinearAlgebraBackend<CudaLinearAlgebra>);
static_assert(AssignmentBackend<CudaAssignment>);
static_assert(DequantizeBackend<CudaDequantize>);
static_assert(Backend<CudaBackend>);

}  // namespace vqlib

#endif  // __CUDACC__
