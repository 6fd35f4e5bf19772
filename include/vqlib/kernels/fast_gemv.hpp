#pragma once
// The free functions shared by the fast mode's formats (kernels/int4_fast.hpp,
// kernels/vq_fast.hpp): gemv() quantizes x to int8 blocks (kernels/int8_activations.hpp) and calls
// the format's own gemv(const Int8Activations&, y, options); matmul() is that gemv up to
// max_gemv_batch columns and dequantize-then-GEMM (exact) above. A format M takes part by having
// rows(), cols(), that member gemv, and a dequantize(const M&) found by ADL.
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/int8_activations.hpp>

#include <concepts>

namespace vqlib::kernels {

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
