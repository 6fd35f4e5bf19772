#pragma once
// CpuDecodeBackend: the decode trait (backend/decode.hpp) on the CPU decode kernels
// (vqlib/kernels.hpp). Each layer type is prepared into its kernel format:
//
//   VqLayer (GPTVQ)             kernels::VqGemvMatrix    codes in 16-row tiles, fp32 codebooks
//   VptqLayer (VPTQ)            kernels::VptqGemvMatrix  the packed 32-bit code words as stored
//   ScalarLayer<IntGrid>, 4 bit kernels::Int4GemvMatrix  codes in 16-row tiles, fp16 scales
//
// dequantize() equals layer.dequantize() bit for bit. gemv() and matmul() take GemvOptions as an
// optional third argument (instruction set, GPTVQ strategy, threading); the results do not depend
// on the thread count, nor on the instruction set once the GPTVQ strategy is fixed (the automatic
// choice weighs the instruction set; kernels/common.hpp, kernels/vq_gemv.hpp). Other layer types
// have no CPU decode format: DecodeBackend<CpuDecodeBackend, Layer> is false for them.
#include <vqlib/backend/decode.hpp>
#include <vqlib/kernels.hpp>
#include <vqlib/formats/scalar_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <concepts>

namespace vqlib {

namespace detail {

/// The kernel format of each supported layer type (none for the others).
template <class Layer>
struct cpu_decode_format;

template <>
struct cpu_decode_format<VqLayer> {
    using type = kernels::VqGemvMatrix;
};

template <>
struct cpu_decode_format<VptqLayer> {
    using type = kernels::VptqGemvMatrix;
};

template <>
struct cpu_decode_format<ScalarLayer<IntGrid>> {
    using type = kernels::Int4GemvMatrix;
};

template <class M>
concept CpuDecodeMatrix = std::same_as<M, kernels::VqGemvMatrix> ||
                          std::same_as<M, kernels::VptqGemvMatrix> ||
                          std::same_as<M, kernels::Int4GemvMatrix>;

}  // namespace detail

struct CpuDecodeBackend {
    template <class Layer>
    using prepared = typename detail::cpu_decode_format<Layer>::type;

    static const char* name() { return "cpu"; }

    /// The layer in its kernel format (from_layer of the format; see the top of this file).
    template <class Layer>
        requires requires { typename prepared<Layer>; }
    static prepared<Layer> prepare(const Layer& layer) {
        return prepared<Layer>::from_layer(layer);
    }

    template <detail::CpuDecodeMatrix M>
    static MatrixXf dequantize(const M& m) {
        return kernels::dequantize(m);
    }

    template <detail::CpuDecodeMatrix M>
    static MatrixXf gemv(const M& m, ConstMatrixRef x, const kernels::GemvOptions& options = {}) {
        return kernels::gemv(m, x, options);
    }

    template <detail::CpuDecodeMatrix M>
    static MatrixXf matmul(const M& m, ConstMatrixRef x, const kernels::GemvOptions& options = {}) {
        return kernels::matmul(m, x, options);
    }
};

static_assert(kernels::max_gemv_batch == max_decode_gemv_batch);
static_assert(DecodeBackend<CpuDecodeBackend, VqLayer>);
static_assert(DecodeBackend<CpuDecodeBackend, VptqLayer>);
static_assert(DecodeBackend<CpuDecodeBackend, ScalarLayer<IntGrid>>);

}  // namespace vqlib
