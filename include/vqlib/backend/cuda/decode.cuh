#pragma once
// CudaDecodeBackend: the decode trait (backend/decode.hpp) on the GPU, for GPTVQ and VPTQ layers.
// prepare() uploads the layer once (DeviceVqLayer; DeviceVptqLayer, its codes packed into VPTQ's
// int32 word stream); dequantize(), gemv() and matmul() then copy x in, run the kernels of
// dequantize.cuh and gemv.cuh on the default stream and copy the result out before returning.
//
//   dequantize  bit-identical to layer.dequantize() (and so to CpuDecodeBackend)
//   gemv        the fused dequant-GEMV, batch 1..8: sums in a fixed order (the same bits run to
//               run), equal to the CPU's result up to rounding
//   matmul      the fused GEMV on blocks of 8 columns of x
//
// Each call allocates its device scratch (x, y, the GEMV workspace); code that decodes in a loop
// and wants to keep them calls gemv_device() (gemv.cuh) on the prepared layer itself. Without a
// device prepare() throws vqlib::error: check cuda::device_available() and fall back to
// CpuDecodeBackend.
#include <vqlib/backend/cuda/gemv.cuh>

#if defined(__CUDACC__)
#include <vqlib/backend/decode.hpp>

#include <algorithm>
#include <concepts>

namespace vqlib {

namespace cuda::detail {

/// The device form of each supported layer type (none for the others).
template <class Layer>
struct decode_format;

template <>
struct decode_format<VqLayer> {
    using type = DeviceVqLayer;
};

template <>
struct decode_format<VptqLayer> {
    using type = DeviceVptqLayer;
};

template <class L>
concept DeviceDecodeLayer = std::same_as<L, DeviceVqLayer> || std::same_as<L, DeviceVptqLayer>;

/// The scratch gemv_device needs for each layer type.
inline DeviceBuffer<float> gemv_scratch(const DeviceVqLayer&) { return {}; }
inline VptqGemvWorkspace gemv_scratch(const DeviceVptqLayer&) { return {}; }

inline void check_decode_input(const char* what, Index cols, ConstMatrixRef x) {
    VQLIB_CHECK(x.rows() == cols, shape_error, what, ": x has ", x.rows(), " rows: expected ",
                cols, " (the matrix's columns)");
}

/// y = W x, the fused GEMV on blocks of at most kMaxGemvBatch columns of x.
template <DeviceDecodeLayer L>
MatrixXf gemv_by_blocks(const L& layer, ConstMatrixRef x) {
    MatrixXf y(layer.rows(), x.cols());
    if (x.cols() == 0) return y;
    auto scratch = gemv_scratch(layer);
    const Index widest = std::min<Index>(x.cols(), kMaxGemvBatch);
    DeviceBuffer<float> dy(static_cast<std::size_t>(layer.rows() * widest));
    for (Index c0 = 0; c0 < x.cols(); c0 += kMaxGemvBatch) {
        const Index batch = std::min<Index>(kMaxGemvBatch, x.cols() - c0);
        DeviceBuffer<float> dx = upload_input(x.middleCols(c0, batch));
        gemv_device(layer, dx.data(), dy.data(), static_cast<int>(batch), scratch);
        VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
        dy.download(std::span<float>(y.data() + c0 * layer.rows(),
                                     static_cast<std::size_t>(layer.rows() * batch)));
    }
    return y;
}

}  // namespace cuda::detail

struct CudaDecodeBackend {
    template <class Layer>
    using prepared = typename cuda::detail::decode_format<Layer>::type;

    static const char* name() { return "cuda"; }

    static cuda::DeviceVqLayer prepare(const VqLayer& layer) { return cuda::DeviceVqLayer(layer); }

    static cuda::DeviceVptqLayer prepare(const VptqLayer& layer) {
        layer.check_consistent();
        return cuda::DeviceVptqLayer(layer);
    }

    template <cuda::detail::DeviceDecodeLayer L>
    static MatrixXf dequantize(const L& layer) {
        cuda::DeviceBuffer<float> w(static_cast<std::size_t>(layer.rows() * layer.cols()));
        layer.dequantize_device(w.data(), layer.rows());
        VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
        MatrixXf out(layer.rows(), layer.cols());
        w.download(std::span<float>(out.data(), static_cast<std::size_t>(out.size())));
        return out;
    }

    template <cuda::detail::DeviceDecodeLayer L>
    static MatrixXf gemv(const L& layer, ConstMatrixRef x) {
        cuda::detail::check_decode_input("gemv (CUDA)", layer.cols(), x);
        VQLIB_CHECK(x.cols() >= 1 && x.cols() <= max_decode_gemv_batch, shape_error,
                    "gemv (CUDA): x has ", x.cols(), " columns: expected a batch of 1..",
                    max_decode_gemv_batch, " (use matmul() for larger batches)");
        return cuda::detail::gemv_by_blocks(layer, x);
    }

    template <cuda::detail::DeviceDecodeLayer L>
    static MatrixXf matmul(const L& layer, ConstMatrixRef x) {
        cuda::detail::check_decode_input("matmul (CUDA)", layer.cols(), x);
        return cuda::detail::gemv_by_blocks(layer, x);
    }
};

static_assert(cuda::kMaxGemvBatch == max_decode_gemv_batch);
static_assert(DecodeBackend<CudaDecodeBackend, VqLayer>);
static_assert(DecodeBackend<CudaDecodeBackend, VptqLayer>);

}  // namespace vqlib

#endif  // __CUDACC__
