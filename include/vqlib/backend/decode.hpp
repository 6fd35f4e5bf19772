#pragma once
// The decode trait: what a backend provides to run a quantized layer at inference time.
//
// A decode backend turns a quantized layer (the result of a method: VqLayer, VptqLayer,
// ScalarLayer<IntGrid>, ...) into its own prepared form once, then multiplies inputs with it many
// times. Code written against DecodeBackend<B, Layer> runs on the CPU kernels
// (backend/cpu_decode.hpp, CpuDecodeBackend) and the CUDA ones (backend/cuda/decode.cuh,
// CudaDecodeBackend) alike; docs/backends.md shows how to add one.
//
// Contract, for a layer of M rows (output features) and N columns (input features):
//   B::template prepared<Layer>  the backend's form of the layer (movable; may own device memory)
//   B::prepare(layer)            validates and re-lays out the layer. Throws shape_error or
//                                invalid_argument, naming the field, for an inconsistent layer or
//                                one outside what the backend supports; vqlib::error when the
//                                backend cannot run here (e.g. no CUDA device).
//   p.rows(), p.cols()           M and N.
//   B::dequantize(p)             the M x N fp32 weights: the same values as layer.dequantize()
//                                (a backend whose prepared form rounds the weights further,
//                                as CpuFastDecodeBackend's int8 codebooks do, returns the weights
//                                it multiplies with and documents how far they may be off).
//   B::gemv(p, x)                W x for x of N x B, 1 <= B <= max_decode_gemv_batch (8): the
//                                decode path, fused (the weights are never written out).
//   B::matmul(p, x)              W x for any batch B >= 0 (prefill): gemv up to 8 columns,
//                                whatever suits the backend above.
// gemv and matmul return M x B and throw shape_error naming `x` when x has not N rows (and gemv
// when B is outside 1..8). Their results equal dequantize(p) * x up to the rounding of another
// summation order (fp32 accumulation), or, for a backend that rounds the activations
// (CpuFastDecodeBackend: int8 blocks), within the bound that backend documents; they are
// deterministic: the same inputs give the same bits on every call. Results of two backends agree
// only up to that rounding. The operations are
// static and never modify the prepared layer.
#include <vqlib/core/types.hpp>

#include <concepts>

namespace vqlib {

/// The largest batch every decode backend's gemv accepts.
inline constexpr Index max_decode_gemv_batch = 8;

/// The prepared form of `Layer` in decode backend `B`.
template <class B, class Layer>
using decode_prepared_t = typename B::template prepared<Layer>;

template <class B, class Layer>
concept DecodeBackend =
    requires { typename decode_prepared_t<B, Layer>; } &&
    std::movable<decode_prepared_t<B, Layer>> &&
    requires(const Layer& layer, const decode_prepared_t<B, Layer>& p, ConstMatrixRef x) {
        { B::name() } -> std::convertible_to<const char*>;
        { B::prepare(layer) } -> std::same_as<decode_prepared_t<B, Layer>>;
        { p.rows() } -> std::convertible_to<Index>;
        { p.cols() } -> std::convertible_to<Index>;
        { B::dequantize(p) } -> std::same_as<MatrixXf>;
        { B::gemv(p, x) } -> std::same_as<MatrixXf>;
        { B::matmul(p, x) } -> std::same_as<MatrixXf>;
    };

/// W x for one use of a layer: prepares it and multiplies. Prepare once and keep the result
/// (B::prepare) when the layer is used more than once.
template <class B, class Layer>
    requires DecodeBackend<B, Layer>
MatrixXf decode_matmul(const Layer& layer, ConstMatrixRef x) {
    return B::matmul(B::prepare(layer), x);
}

}  // namespace vqlib
