#pragma once
// What the fast mode's formats share (kernels/int4_fast.hpp, kernels/vq_fast.hpp,
// kernels/vptq_fast.hpp): the choice of kernel variant, the int8 codebooks, and the free
// functions: gemv() quantizes x to int8 blocks (kernels/int8_activations.hpp) and calls the
// format's gemv(const Int8Activations&, y, options), or hands x to a format that quantizes it
// itself (VPTQ: its permuted, scaled columns); matmul() is that gemv up to max_gemv_batch columns
// and dequantize-then-GEMM (exact) above. A format M takes part by having rows(), cols(), one of
// those member gemv, and a dequantize(const M&) found by ADL (FastGemvFormat).
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/fast_kernels.hpp>
#include <vqlib/kernels/int8_activations.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <vector>

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

/// The int8 codebooks of the VQ fast formats: codebook c is books.middleRows(c k, k) (k codewords
/// of books.cols() coordinates), stored with one scale s = max|c| / 127 as q = round(c / s)
/// clamped to [-127, 127], written as the byte q + 128 at tables[entry(c, i, j)] (coordinate j of
/// codeword i). `tables` is sized and filled with 128 by the caller (its layout may pad); an
/// all-zero codebook keeps scale 0 and bytes 128. scales gets `count` entries.
template <class Entry>
void quantize_int8_codebooks(const MatrixXf& books, Index k, Index count, std::vector<std::uint8_t>& tables,
                             std::vector<float>& scales, Entry&& entry) {
    scales.assign(static_cast<std::size_t>(count), 0.0f);
    for (Index c = 0; c < count; ++c) {
        const auto book = books.middleRows(c * k, k);
        const float amax = book.cwiseAbs().maxCoeff();
        if (amax == 0.0f) continue;
        const float s = amax / 127.0f;
        scales[static_cast<std::size_t>(c)] = s;
        for (Index i = 0; i < k; ++i)
            for (Index j = 0; j < books.cols(); ++j) {
                const float q = std::clamp(std::nearbyint(book(i, j) / s), -127.0f, 127.0f);
                tables[entry(c, i, j)] = static_cast<std::uint8_t>(static_cast<int>(q) + 128);
            }
    }
}

}  // namespace detail

/// A fast-mode format: rows(), cols(), dequantize(m) found by ADL, and a member gemv taking
/// either int8 activations (Int8ActivationsGemv: the free gemv quantizes x, and callers can share
/// one quantization) or float x (the format quantizes what it needs itself, as VPTQ's permuted,
/// scaled main columns).
template <class M>
concept Int8ActivationsGemv = requires(const M& m, const Int8Activations& a, Eigen::Ref<MatrixXf> y,
                                       const GemvOptions& o) { m.gemv(a, y, o); };

template <class M>
concept FastGemvFormat = requires(const M& m, const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y,
                                  const GemvOptions& o) {
    { m.rows() } -> std::convertible_to<Index>;
    { m.cols() } -> std::convertible_to<Index>;
    { dequantize(m) } -> std::same_as<MatrixXf>;
} && (Int8ActivationsGemv<M> || requires(const M& m, const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y,
                                         const GemvOptions& o) { m.gemv(x, y, o); });

/// y = W x, x quantized to int8 on the way (1 <= batch <= 8). To share one quantization among
/// layers that read the same x, build an Int8Activations and call m.gemv(activations, y).
template <FastGemvFormat M>
void gemv(const M& m, const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y, const GemvOptions& options = {}) {
    detail::check_gemv_shapes("gemv (fast)", m.rows(), m.cols(), x, y);
    if constexpr (Int8ActivationsGemv<M>) {
        thread_local Int8Activations a;
        a.assign(x);
        m.gemv(a, y, options);
    } else {
        m.gemv(x, y, options);
    }
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
