#pragma once
// CpuFastDecodeBackend: the decode trait (backend/decode.hpp) on the CPU kernels' fast mode, which
// quantizes the activations to int8 blocks of 32 and multiplies with integer dot products
// (kernels/int8_activations.hpp, kernels/int4_fast.hpp, kernels/vq_fast.hpp), as llama.cpp's CPU
// kernels do. Each layer is prepared into its fast format where the layer and the CPU allow, and
// into the exact format (CpuDecodeBackend's) otherwise; is_fast() and exact_reason() say which:
//
//   ScalarLayer<IntGrid>, 4 bit  kernels::Int4FastMatrix  groups of a multiple of 32 columns
//                                                          (portable, AVX2, AVX-512 VNNI)
//   VqLayer, D = 2, K <= 16 or   kernels::VqFastMatrix    int8 codebooks; on CPUs with AVX-512
//            D = 4, K <= 256                               VNNI (4-D: and VBMI; elsewhere the
//                                                          exact kernels are faster than the
//                                                          portable fast one)
//   VptqLayer, v = 8             kernels::VptqFastMatrix  int8 codebooks; on CPUs with AVX-512
//                                                          VNNI and VBMI
//
// Error, for a fast layer with weights W = dequantize(p): |y - W x| <= sum over 32-input blocks
// of (d_blk / 2) sum_{c in blk} |W(r, c)|, d_blk = max|x_blk| / 127, plus fp32 rounding; about
// 4e-3 relative (RMS) on normal activations (VPTQ: the same in stored order, W without its
// normalization and x' = the permuted, scaled x; kernels/vptq_fast.hpp). The int8 codebooks of
// GPTVQ and VPTQ move each weight by at most half a step of its codebook (max|c| / 254), so
// dequantize(p) differs from layer.dequantize() by that much. The same bits for every
// instruction-set variant and thread count. Exact layers behave as in CpuDecodeBackend.
#include <vqlib/backend/cpu_decode.hpp>
#include <vqlib/backend/decode.hpp>
#include <vqlib/kernels.hpp>
#include <vqlib/kernels/int4_fast.hpp>
#include <vqlib/kernels/vptq_fast.hpp>
#include <vqlib/kernels/vq_fast.hpp>

#include <string>
#include <utility>
#include <variant>

namespace vqlib {

namespace kernels {

/// A layer prepared for the fast mode: its fast format, or its exact one with the reason.
template <class Fast, class Exact>
class FastOrExact {
public:
    explicit FastOrExact(Fast fast) : m_(std::move(fast)) {}
    FastOrExact(Exact exact, std::string reason) : m_(std::move(exact)), reason_(std::move(reason)) {}

    bool is_fast() const { return m_.index() == 0; }
    /// Why the exact format was kept (empty when fast).
    const std::string& exact_reason() const { return reason_; }
    const Fast& fast() const { return std::get<0>(m_); }
    const Exact& exact() const { return std::get<1>(m_); }
    Index rows() const { return is_fast() ? fast().rows() : exact().rows(); }
    Index cols() const { return is_fast() ? fast().cols() : exact().cols(); }
    std::size_t stream_bytes() const { return is_fast() ? fast().stream_bytes() : exact().stream_bytes(); }

    template <class F>
    decltype(auto) visit(F&& f) const {
        return std::visit(std::forward<F>(f), m_);
    }

private:
    std::variant<Fast, Exact> m_;
    std::string reason_;
};

template <class F, class E>
MatrixXf dequantize(const FastOrExact<F, E>& m) {
    return m.visit([](const auto& a) { return dequantize(a); });
}

template <class F, class E>
MatrixXf gemv(const FastOrExact<F, E>& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    return m.visit([&](const auto& a) { return gemv(a, x, options); });
}

template <class F, class E>
MatrixXf matmul(const FastOrExact<F, E>& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    return m.visit([&](const auto& a) { return matmul(a, x, options); });
}

}  // namespace kernels

namespace detail {

template <class Layer>
struct cpu_fast_decode_format;

template <>
struct cpu_fast_decode_format<VqLayer> {
    using type = kernels::FastOrExact<kernels::VqFastMatrix, kernels::VqGemvMatrix>;
};

template <>
struct cpu_fast_decode_format<ScalarLayer<IntGrid>> {
    using type = kernels::FastOrExact<kernels::Int4FastMatrix, kernels::Int4GemvMatrix>;
};

template <>
struct cpu_fast_decode_format<VptqLayer> {
    using type = kernels::FastOrExact<kernels::VptqFastMatrix, kernels::VptqGemvMatrix>;
};

}  // namespace detail

struct CpuFastDecodeBackend {
    template <class Layer>
    using prepared = typename detail::cpu_fast_decode_format<Layer>::type;

    static const char* name() { return "cpu-fast"; }

    /// The fast format where the layer and this CPU allow it, else the exact one (the top of this
    /// file). Throws as CpuDecodeBackend::prepare for layers neither format takes.
    static prepared<VqLayer> prepare(const VqLayer& layer) {
        std::string why = kernels::VqFastMatrix::unsupported_reason(layer.layout, layer.scale_block);
        const kernels::detail::FastIsa best = kernels::detail::best_fast_isa();
        if (why.empty() && best == kernels::detail::FastIsa::portable)
            why = "this CPU has no AVX2 (the exact kernels are faster than the portable fast one)";
        if (why.empty() && layer.layout.dim == 4 &&
            (best != kernels::detail::FastIsa::avx512 || !kernels::detail::fast_has_vbmi()))
            why = "this CPU has no AVX-512 VNNI and VBMI (the 4-D fast kernel's byte permutes)";
        if (why.empty()) return prepared<VqLayer>(kernels::VqFastMatrix::from_layer(layer));
        return {kernels::VqGemvMatrix::from_layer(layer), std::move(why)};
    }

    static prepared<ScalarLayer<IntGrid>> prepare(const ScalarLayer<IntGrid>& layer) {
        kernels::Int4GemvMatrix exact = kernels::Int4GemvMatrix::from_layer(layer);
        if (exact.group_size() % kernels::Int8Activations::block == 0 || exact.groups() == 1)
            return prepared<ScalarLayer<IntGrid>>(kernels::Int4FastMatrix::from_matrix(exact));
        std::string why = ::vqlib::detail::concat("group_size = ", exact.group_size(),
                                                  ": the fast mode needs a multiple of 32");
        return {std::move(exact), std::move(why)};
    }

    static prepared<VptqLayer> prepare(const VptqLayer& layer) {
        std::string why = kernels::VptqFastMatrix::unsupported_reason(layer.layout);
        if (why.empty() && !kernels::detail::fast_has_vbmi())
            why = "this CPU has no AVX-512 VNNI and VBMI (the exact kernels are faster than the portable fast one)";
        if (why.empty()) return prepared<VptqLayer>(kernels::VptqFastMatrix::from_layer(layer));
        return {kernels::VptqGemvMatrix::from_layer(layer), std::move(why)};
    }

    template <class M>
    static MatrixXf dequantize(const M& m) {
        return kernels::dequantize(m);
    }

    template <class M>
    static MatrixXf gemv(const M& m, ConstMatrixRef x, const kernels::GemvOptions& options = {}) {
        return kernels::gemv(m, x, options);
    }

    template <class M>
    static MatrixXf matmul(const M& m, ConstMatrixRef x, const kernels::GemvOptions& options = {}) {
        return kernels::matmul(m, x, options);
    }
};

static_assert(DecodeBackend<CpuFastDecodeBackend, VqLayer>);
static_assert(DecodeBackend<CpuFastDecodeBackend, VptqLayer>);
static_assert(DecodeBackend<CpuFastDecodeBackend, ScalarLayer<IntGrid>>);

}  // namespace vqlib
