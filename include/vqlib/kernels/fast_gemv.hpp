#pragma once
// What the fast mode's formats share (kernels/int4_fast.hpp, kernels/vq_fast.hpp,
// kernels/vptq_fast.hpp): the choice of kernel variant, and the free functions: gemv() quantizes x to int8 blocks (kernels/int8_activations.hpp) and calls
// the format's own gemv(const Int8Activations&, y, options); matmul() is that gemv up to
// max_gemv_batch columns and dequantize-then-GEMM (exact) above. A format M takes part by having
// rows(), cols(), that member gemv, and a dequantize(const M&) found by ADL.
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/fast_kernels.hpp>
#include <vqlib/kernels/int8_activations.hpp>

#include <concepts>

namespace vqlib::kernels {

namespace detail {

/// The fast variant for `isa` (GemvOptions::isa): automatic = the best this CPU runs; avx512 needs
/// AVX-512 VNNI, avx2 AVX2/FMA/F16C. Throws invalid_argument for one this CPU cannot run.
inline FastIsa resolve_fast_isa(Isa isa, bool has_avx2_variant = true) {
    const FastIsa best = best_fast_isa();
    switch (isa) {
    case Isa::automatic:
        return best == FastIsa::avx2 && !has_avx2_variant ? FastIsa::portable : best;
    case Isa::portable: return FastIsa::portable;
    case Isa::avx2:
        VQLIB_CHECK(best != FastIsa::portable, invalid_argument,
                    "isa = avx2: the fast kernels' AVX2 variant needs AVX2, FMA and F16C");
        return has_avx2_variant ? FastIsa::avx2 : FastIsa::portable;
    case Isa::avx512:
        VQLIB_CHECK(best == FastIsa::avx512, invalid_argument,
                    "isa = avx512: the fast kernels' AVX-512 variant needs AVX-512 F/BW/VL and VNNI");
        return FastIsa::avx512;
    }
    return FastIsa::portable;
}

inline FastActivations fast_activations(const Int8Activations& a) {
    return {a.q(), a.padded_cols(), a.d(), a.sums(), a.blocks()};
}

}  // namespace detail

template <class M>
concept FastGemvFormat = requires(const M& m, const Int8Activations& a, Eigen::Ref<MatrixXf> y,
                                  const GemvOptions& o) {
    { m.rows() } -> std::convertible_to<Index>;
    { m.cols() } -> std::convertible_to<Index>;
    m.gemv(a, y, o);
    { dequantize(m) } -> std::same_as<MatrixXf>;
};

/// y = W x, x quantized to int8 on the way (1 <= batch <= 8). To share one quantization among
/// layers that read the same x, build an Int8Activations and call m.gemv(activations, y).
template <FastGemvFormat M>
void gemv(const M& m, const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y, const GemvOptions& options = {}) {
    detail::check_gemv_shapes("gemv (fast)", m.rows(), m.cols(), x, y);
    thread_local Int8Activations a;
    a.assign(x);
    m.gemv(a, y, options);
}

template <FastGemvFormat M>
MatrixXf gemv(const M& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    MatrixXf y(m.rows(), x.cols());
    gemv(m, x, y, options);
    return y;
}

/// Any batch: the fast GEMV up to max_gemv_batch columns, dequantize-then-GEMM above.
template <FastGemvFormat M>
MatrixXf matmul(const M& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    detail::check_matmul_shapes("matmul (fast)", m.cols(), x);
    if (x.cols() >= 1 && x.cols() <= max_gemv_batch) return gemv(m, x, options);
    return detail::dense_matmul(dequantize(m), x, options.parallel);
}

}  // namespace vqlib::kernels
