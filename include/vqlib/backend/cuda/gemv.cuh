#pragma once
// Fused dequant-GEMV on the GPU, y = W_hat x for a batch of 1..8 input vectors, reading the
// compressed layer directly (the weights are never written out). fp32 accumulation; the sums run
// in a fixed order (no atomics), so a result is reproducible run to run, but it is not
// bit-identical to the CPU's W * x (another summation order): compare with a tolerance.
//
//   GPTVQ (DeviceVqLayer): a thread per (row, column slice) walks its vectors (index reads
//     coalesced over rows), gathers each D-dimensional centroid and multiplies; the slices'
//     partial sums are added in order by a second kernel.
//   VPTQ (DeviceVptqLayer), packed codes: a block of 128 threads per row block of v rows walks
//     all (group, column) codes of its packed rows, decodes each code from the int32 word stream,
//     gathers centroid (+ residual) and multiplies with the pre-scaled, permuted input; the block
//     reduces its v x batch sums. Outlier columns are a second pass (v0-row blocks). Normalization
//     W[:, n] * scale[n] + bias[n] is folded in: x is scaled per column before the pass and
//     sum_n bias[n] x[n] is added to every output. v > 16 or v0 > 16 fall back to dequantize +
//     a plain GEMV kernel.
//
// Device layout of x and y: x is row-major N x batch (x[n * batch + b]); y is column-major
// M x batch (y[b * M + m]). The host wrappers gemv(layer, X) take Eigen N x batch and return
// M x batch.
#include <vqlib/backend/cuda/dequantize.cuh>

#if defined(__CUDACC__)
#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace vqlib::cuda {

inline constexpr int kMaxGemvBatch = 8;
/// Largest v (and v0) of the fused VPTQ kernel; larger vectors take the fallback.
inline constexpr int kMaxFusedVectorLen = 16;

namespace kernels {

// ---- GPTVQ -------------------------------------------------------------------------------------

template <int B>
__global__ void gemv_vq_partial(const float* __restrict__ codebooks,
                                const std::uint16_t* __restrict__ indices,
                                const float* __restrict__ scales, std::int64_t scale_block,
                                std::int64_t rows, std::int64_t vectors, int dim, std::int64_t k,
                                std::int64_t rows_per_codebook, std::int64_t columns_per_group,
                                std::int64_t bands, std::int64_t slices,
                                std::int64_t vectors_per_slice, const float* __restrict__ x,
                                float* __restrict__ partial) {
    const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const std::int64_t s = static_cast<std::int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
    if (r >= rows || s >= slices) return;
    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;
    const std::int64_t v_begin = s * vectors_per_slice;
    const std::int64_t v_end = v_begin + vectors_per_slice < vectors ? v_begin + vectors_per_slice
                                                                     : vectors;
    const std::int64_t band = r / rows_per_codebook;
    for (std::int64_t v = v_begin; v < v_end; ++v) {
        const std::int64_t cb = (v * dim / columns_per_group) * bands + band;
        const float* c = codebooks + (cb * k + indices[v * rows + r]) * dim;
        for (int j = 0; j < dim; ++j) {
            const std::int64_t col = v * dim + j;
            float w = c[j];
            if (scale_block > 0) w *= scales[(col / scale_block) * rows + r];
            const float* xc = x + col * B;
#pragma unroll
            for (int b = 0; b < B; ++b) acc[b] = fmaf(w, xc[b], acc[b]);
        }
    }
#pragma unroll
    for (int b = 0; b < B; ++b) partial[(s * rows + r) * B + b] = acc[b];
}

template <int B>
__global__ void gemv_sum_partials(const float* __restrict__ partial, std::int64_t rows,
                                  std::int64_t slices, float* __restrict__ y) {
    const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= rows * B) return;
    const std::int64_t r = e / B, b = e % B;
    float sum = 0.0f;
    for (std::int64_t s = 0; s < slices; ++s) sum += partial[(s * rows + r) * B + b];
    y[b * rows + r] = sum;
}

// ---- VPTQ --------------------------------------------------------------------------------------

/// xs[p * B + b] = x[n * B + b] * scale[n], n = perm[p] (scale 1 without normalization).
template <int B>
__global__ void vptq_prepare_input(VptqKernelArgs a, const float* __restrict__ x,
                                   float* __restrict__ xs) {
    const std::int64_t p = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= a.N) return;
    const std::int64_t n = a.perm != nullptr ? a.perm[p] : p;
    const float s = a.scale != nullptr ? a.scale[n] : 1.0f;
#pragma unroll
    for (int b = 0; b < B; ++b) xs[p * B + b] = x[n * B + b] * s;
}

/// bias_dot[b] = sum_n bias[n] x[n, b] (one block; zeros without normalization).
template <int B>
__global__ void vptq_bias_dot(VptqKernelArgs a, const float* __restrict__ x,
                              float* __restrict__ bias_dot) {
    __shared__ float partial[32][B];
    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;
    if (a.bias != nullptr)
        for (std::int64_t n = threadIdx.x; n < a.N; n += blockDim.x)
#pragma unroll
            for (int b = 0; b < B; ++b) acc[b] = fmaf(a.bias[n], x[n * B + b], acc[b]);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int b = 0; b < B; ++b) {
        float v = acc[b];
        for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
        if (lane == 0) partial[warp][b] = v;
    }
    __syncthreads();
    if (threadIdx.x < B) {
        float sum = 0.0f;
        for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) sum += partial[w][threadIdx.x];
        bias_dot[threadIdx.x] = sum;
    }
}

/// Sums acc[t][b] (t < rows_here) over the block (blockDim.x = 32 * warps, warps <= 8) into
/// shared[t * B + b], in a fixed order.
template <int B, int V>
__device__ __forceinline__ void block_reduce(float (&acc)[V][B], int rows_here,
                                             float* shared /* 8 * V * B */) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int t = 0; t < V; ++t) {
        if (t < rows_here) {
#pragma unroll
            for (int b = 0; b < B; ++b) {
                float v = acc[t][b];
                for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
                if (lane == 0) shared[(warp * V + t) * B + b] = v;
            }
        }
    }
    __syncthreads();
    const int warps = static_cast<int>(blockDim.x >> 5);
    for (int e = threadIdx.x; e < rows_here * B; e += blockDim.x) {
        const int t = e / B, b = e % B;
        float sum = 0.0f;
        for (int w = 0; w < warps; ++w) sum += shared[(w * V + t) * B + b];
        shared[8 * V * B + e] = sum;  // results after the per-warp area
    }
    __syncthreads();
}

/// Main (grouped) columns: one block per row block r; y[b * M + r*v + t] = sum + bias_dot[b].
template <int B>
__global__ void gemv_vptq_main(VptqKernelArgs a, const float* __restrict__ xs,
                               const float* __restrict__ bias_dot, float* __restrict__ y) {
    constexpr int V = kMaxFusedVectorLen;
    __shared__ float shared[9 * V * B];
    const std::int64_t r = blockIdx.x;
    const int v = static_cast<int>(a.v);
    float acc[V][B];
#pragma unroll
    for (int t = 0; t < V; ++t)
#pragma unroll
        for (int b = 0; b < B; ++b) acc[t][b] = 0.0f;
    const std::int64_t columns = a.group_num * a.group_size;
    const std::uint32_t index_mask = a.b >= 32 ? 0xffffffffu : ((1u << a.b) - 1u);
    for (std::int64_t q = threadIdx.x; q < columns; q += blockDim.x) {
        const std::int64_t g = q / a.group_size, c = q - g * a.group_size;
        const std::uint32_t code =
            read_packed_code(a.words + (g * a.R + r) * a.W, c, a.T, a.mask);
        const float* cent = a.centroids + (g * a.k + (code & index_mask)) * a.v;
        const float* rcent =
            a.res_centroids != nullptr
                ? a.res_centroids + (g * a.k_res + (a.b >= 32 ? 0u : code >> a.b)) * a.v
                : nullptr;
        const float* xp = xs + (a.outlier_size + q) * B;
        float xv[B];
#pragma unroll
        for (int b = 0; b < B; ++b) xv[b] = xp[b];
#pragma unroll
        for (int t = 0; t < V; ++t) {
            if (t < v) {
                float w = cent[t];
                if (rcent != nullptr) w += rcent[t];
#pragma unroll
                for (int b = 0; b < B; ++b) acc[t][b] = fmaf(w, xv[b], acc[t][b]);
            }
        }
    }
    const int rows_here = static_cast<int>(a.M - r * a.v < a.v ? a.M - r * a.v : a.v);
    block_reduce<B, V>(acc, rows_here, shared);
    for (int e = threadIdx.x; e < rows_here * B; e += blockDim.x) {
        const int t = e / B, b = e % B;
        y[b * a.M + r * a.v + t] = shared[8 * V * B + e] + bias_dot[b];
    }
}

/// Outlier columns: one block per outlier row block r0 (v0 rows); adds to y (each block owns
/// its rows, so no atomics). Runs after gemv_vptq_main on the same stream.
template <int B>
__global__ void gemv_vptq_outliers(VptqKernelArgs a, const float* __restrict__ xs,
                                   float* __restrict__ y) {
    constexpr int V = kMaxFusedVectorLen;
    __shared__ float shared[9 * V * B];
    const std::int64_t r = blockIdx.x;
    const int v0 = static_cast<int>(a.v0);
    float acc[V][B];
#pragma unroll
    for (int t = 0; t < V; ++t)
#pragma unroll
        for (int b = 0; b < B; ++b) acc[t][b] = 0.0f;
    for (std::int64_t c = threadIdx.x; c < a.outlier_size; c += blockDim.x) {
        const float* cent = a.outlier_centroids + a.outlier_indices[r * a.outlier_size + c] * a.v0;
        const float* xp = xs + c * B;
#pragma unroll
        for (int t = 0; t < V; ++t) {
            if (t < v0) {
                const float w = cent[t];
#pragma unroll
                for (int b = 0; b < B; ++b) acc[t][b] = fmaf(w, xp[b], acc[t][b]);
            }
        }
    }
    const int rows_here = static_cast<int>(a.M - r * a.v0 < a.v0 ? a.M - r * a.v0 : a.v0);
    block_reduce<B, V>(acc, rows_here, shared);
    for (int e = threadIdx.x; e < rows_here * B; e += blockDim.x) {
        const int t = e / B, b = e % B;
        y[b * a.M + r * a.v0 + t] += shared[8 * V * B + e];
    }
}

/// Plain GEMV on a dense column-major W (M x N, ld M): y[b*M + m] = sum_n W(m, n) x[n*B + b].
template <int B>
__global__ void gemv_dense(const float* __restrict__ w, std::int64_t M, std::int64_t N,
                           const float* __restrict__ x, float* __restrict__ y) {
    const std::int64_t m = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (m >= M) return;
    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;
    for (std::int64_t n = 0; n < N; ++n) {
        const float wv = w[n * M + m];
#pragma unroll
        for (int b = 0; b < B; ++b) acc[b] = fmaf(wv, x[n * B + b], acc[b]);
    }
#pragma unroll
    for (int b = 0; b < B; ++b) y[b * M + m] = acc[b];
}

}  // namespace kernels

namespace detail {

/// Calls f(std::integral_constant<int, B>{}) for the runtime batch 1..8.
template <class F>
void dispatch_batch(int batch, F&& f) {
    switch (batch) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default:
        throw invalid_argument(::vqlib::detail::concat("cuda::gemv: batch = ", batch,
                                                       ": expected 1..", kMaxGemvBatch));
    }
}

inline void check_batch(int batch) {
    VQLIB_CHECK_RANGE("batch", batch, 1, kMaxGemvBatch);
}

/// x (N x batch, column-major Eigen) to the device's row-major layout.
inline DeviceBuffer<float> upload_input(ConstMatrixRef x) {
    std::vector<float> rm(static_cast<std::size_t>(x.size()));
    for (Index n = 0; n < x.rows(); ++n)
        for (Index b = 0; b < x.cols(); ++b)
            rm[static_cast<std::size_t>(n * x.cols() + b)] = x(n, b);
    return DeviceBuffer<float>(std::span<const float>(rm));
}

inline MatrixXf download_output(const DeviceBuffer<float>& y, Index m, Index batch) {
    MatrixXf out(m, batch);
    y.download(std::span<float>(out.data(), static_cast<std::size_t>(out.size())));
    return out;
}

}  // namespace detail

/// Device GEMV for a GPTVQ layer: y (M x batch, column-major) = W_hat x (x row-major N x batch).
/// `workspace` is grown as needed (slices x M x batch floats of partial sums); keep it between
/// calls to avoid reallocating.
inline void gemv_device(const DeviceVqLayer& layer, const float* x, float* y, int batch,
                        DeviceBuffer<float>& workspace, cudaStream_t stream = nullptr) {
    detail::check_batch(batch);
    const VqLayout& L = layer.layout;
    const Index vectors = L.vectors_per_row();
    // Enough (row, slice) threads to fill a large GPU: about 2^17.
    const Index slices = std::clamp<Index>((Index{1} << 17) / std::max<Index>(L.rows, 1), 1,
                                           std::max<Index>(vectors, 1));
    const Index per_slice = (vectors + slices - 1) / slices;
    const std::size_t need = static_cast<std::size_t>(slices * L.rows * batch);
    if (workspace.size() < need) workspace = DeviceBuffer<float>(need);
    detail::dispatch_batch(batch, [&](auto bc) {
        constexpr int B = decltype(bc)::value;
        const dim3 block(32, 8);
        const dim3 grid(blocks_for(L.rows, 32), blocks_for(slices, 8));
        kernels::gemv_vq_partial<B><<<grid, block, 0, stream>>>(
            layer.codebooks.data(), layer.indices.data(), layer.scales.data(), layer.scale_block,
            L.rows, vectors, static_cast<int>(L.dim), L.k, L.rows_per_codebook,
            L.columns_per_group, L.bands(), slices, per_slice, x, workspace.data());
        VQLIB_CUDA_CHECK_LAUNCH();
        kernels::gemv_sum_partials<B><<<blocks_for(L.rows * B, 256), 256, 0, stream>>>(
            workspace.data(), L.rows, slices, y);
        VQLIB_CUDA_CHECK_LAUNCH();
    });
}

/// Scratch of the VPTQ GEMV: the permuted, scaled input, the bias term and (fallback only) W.
struct VptqGemvWorkspace {
    DeviceBuffer<float> xs;
    DeviceBuffer<float> bias_dot;
    DeviceBuffer<float> dense;
};

/// Device GEMV for a VPTQ layer in its packed format: y (M x batch, column-major) = W_hat x
/// (x row-major N x batch, original column order).
inline void gemv_device(const DeviceVptqLayer& layer, const float* x, float* y, int batch,
                        VptqGemvWorkspace& ws, cudaStream_t stream = nullptr) {
    detail::check_batch(batch);
    const VptqKernelArgs a = kernel_args(layer);
    const bool fused = a.v <= kMaxFusedVectorLen && (a.outlier_size == 0 || a.v0 <= kMaxFusedVectorLen);
    if (!fused) {
        if (ws.dense.size() < static_cast<std::size_t>(a.M * a.N))
            ws.dense = DeviceBuffer<float>(static_cast<std::size_t>(a.M * a.N));
        layer.dequantize_device(ws.dense.data(), a.M, stream);
        detail::dispatch_batch(batch, [&](auto bc) {
            constexpr int B = decltype(bc)::value;
            kernels::gemv_dense<B><<<blocks_for(a.M, 128), 128, 0, stream>>>(ws.dense.data(), a.M,
                                                                             a.N, x, y);
            VQLIB_CUDA_CHECK_LAUNCH();
        });
        return;
    }
    if (ws.xs.size() < static_cast<std::size_t>(a.N * kMaxGemvBatch))
        ws.xs = DeviceBuffer<float>(static_cast<std::size_t>(a.N * kMaxGemvBatch));
    if (ws.bias_dot.size() < static_cast<std::size_t>(kMaxGemvBatch))
        ws.bias_dot = DeviceBuffer<float>(static_cast<std::size_t>(kMaxGemvBatch));
    detail::dispatch_batch(batch, [&](auto bc) {
        constexpr int B = decltype(bc)::value;
        kernels::vptq_prepare_input<B><<<blocks_for(a.N, 256), 256, 0, stream>>>(a, x, ws.xs.data());
        VQLIB_CUDA_CHECK_LAUNCH();
        kernels::vptq_bias_dot<B><<<1, 256, 0, stream>>>(a, x, ws.bias_dot.data());
        VQLIB_CUDA_CHECK_LAUNCH();
        kernels::gemv_vptq_main<B><<<static_cast<unsigned>(a.R), 128, 0, stream>>>(
            a, ws.xs.data(), ws.bias_dot.data(), y);
        VQLIB_CUDA_CHECK_LAUNCH();
        if (a.outlier_size > 0) {
            kernels::gemv_vptq_outliers<B><<<static_cast<unsigned>(a.R0), 128, 0, stream>>>(
                a, ws.xs.data(), y);
            VQLIB_CUDA_CHECK_LAUNCH();
        }
    });
}

/// Host wrapper: Y = W_hat X for a GPTVQ layer, X N x batch (batch 1..8); returns M x batch.
inline MatrixXf gemv(const VqLayer& layer, ConstMatrixRef x) {
    VQLIB_CHECK(x.rows() == layer.cols(), shape_error, "cuda::gemv: x has ", x.rows(),
                " rows: expected ", layer.cols());
    detail::check_batch(static_cast<int>(x.cols()));
    const DeviceVqLayer device(layer);
    DeviceBuffer<float> dx = detail::upload_input(x);
    DeviceBuffer<float> dy(static_cast<std::size_t>(layer.rows() * x.cols()));
    DeviceBuffer<float> workspace;
    gemv_device(device, dx.data(), dy.data(), static_cast<int>(x.cols()), workspace);
    VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
    return detail::download_output(dy, layer.rows(), x.cols());
}

/// Host wrapper: Y = W_hat X for a VPTQ layer (codes packed, then decoded from the word stream
/// on the device), X N x batch (batch 1..8, original column order); returns M x batch.
inline MatrixXf gemv(const VptqLayer& layer, ConstMatrixRef x) {
    layer.check_consistent();
    VQLIB_CHECK(x.rows() == layer.cols(), shape_error, "cuda::gemv: x has ", x.rows(),
                " rows: expected ", layer.cols());
    detail::check_batch(static_cast<int>(x.cols()));
    const DeviceVptqLayer device(layer);
    DeviceBuffer<float> dx = detail::upload_input(x);
    DeviceBuffer<float> dy(static_cast<std::size_t>(layer.rows() * x.cols()));
    VptqGemvWorkspace ws;
    gemv_device(device, dx.data(), dy.data(), static_cast<int>(x.cols()), ws);
    VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
    return detail::download_output(dy, layer.rows(), x.cols());
}

}  // namespace vqlib::cuda

#endif  // __CUDACC__
