#pragma once
// Test support for the fast decode mode (kernels/int4_fast.hpp, kernels/vq_fast.hpp): the fast
// variants this CPU runs, activations with outlier blocks, and the two bounds every fast GEMV is
// checked against:
//   against W x_q (x_q = the int8 activations' values d q): fp32 rounding only, at most
//     2 (blocks + 2) u |W| |x_q| per entry (one product and one FMA per block, u = 2^-24);
//   against W x: the activations' rounding on top, sum_blk (d_blk / 2) sum_{c in blk} |W(r, c)|.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/kernels/fast_kernels.hpp>
#include <vqlib/kernels/int8_activations.hpp>

#include <catch2/catch.hpp>

#include "decode_layers.hpp"
#include "random.hpp"

#include <cmath>
#include <vector>

namespace vqlib::test {

/// The fast variants this CPU runs, portable first (as GemvOptions::isa values).
inline std::vector<kernels::Isa> fast_isas() {
    using kernels::detail::FastIsa;
    std::vector<kernels::Isa> out{kernels::Isa::portable};
    const FastIsa best = kernels::detail::best_fast_isa();
    if (best != FastIsa::portable) out.push_back(kernels::Isa::avx2);
    if (best == FastIsa::avx512) out.push_back(kernels::Isa::avx512);
    return out;
}

/// Normal activations with every seventh 32-block scaled by 30 (LLM activations have outlier
/// channels; the per-block scales must keep the other blocks accurate).
inline MatrixXf fast_test_input(Index cols, Index batch, Rng& rng) {
    MatrixXf x = random_matrix(cols, batch, rng);
    for (Index c = 0; c < cols; ++c)
        if ((c / 32) % 7 == 3) x.row(c) *= 30.0f;
    return x;
}

/// max over entries of |y - W x_q| / (2 (blocks + 2) u |W| |x_q|).
inline double fast_rounding_ratio(const MatrixXf& y, const MatrixXf& W, const kernels::Int8Activations& a) {
    const MatrixXf xq = a.dequantize();
    const MatrixXd ref = W.cast<double>() * xq.cast<double>();
    const MatrixXd mag = W.cast<double>().cwiseAbs() * xq.cast<double>().cwiseAbs();
    const double u = std::ldexp(1.0, -24);
    double worst = 0.0;
    for (Index b = 0; b < y.cols(); ++b)
        for (Index r = 0; r < y.rows(); ++r) {
            const double bound = 2.0 * static_cast<double>(a.blocks() + 2) * u * mag(r, b) + 1e-30;
            worst = std::max(worst, std::abs(double(y(r, b)) - ref(r, b)) / bound);
        }
    return worst;
}

/// max over entries of |y - W x| / (the documented bound: activation rounding + fp32 rounding).
inline double fast_error_ratio(const MatrixXf& y, const MatrixXf& W, const MatrixXf& x,
                               const kernels::Int8Activations& a) {
    const MatrixXd ref = W.cast<double>() * x.cast<double>();
    const MatrixXd mag = W.cast<double>().cwiseAbs() * a.dequantize().cast<double>().cwiseAbs();
    const double u = std::ldexp(1.0, -24);
    double worst = 0.0;
    for (Index b = 0; b < y.cols(); ++b)
        for (Index r = 0; r < y.rows(); ++r) {
            double act = 0.0;
            for (Index c = 0; c < W.cols(); ++c)
                act += 0.5 * a.d()[b * a.blocks() + c / kernels::Int8Activations::block] * std::abs(W(r, c));
            const double bound = act * (1.0 + 1e-6) + 2.0 * static_cast<double>(a.blocks() + 2) * u * mag(r, b) + 1e-30;
            worst = std::max(worst, std::abs(double(y(r, b)) - ref(r, b)) / bound);
        }
    return worst;
}

/// Checks a fast GEMV format against its dequantized weights W: both bounds, batches 1..8, every
/// fast variant (bit for bit among themselves), the pre-quantized overload where the format has one.
template <class M>
void check_fast_gemv(const M& m, const MatrixXf& W, std::uint64_t seed) {
    Rng rng(seed);
    for (Index B = 1; B <= kernels::max_gemv_batch; ++B) {
        const MatrixXf x = fast_test_input(m.cols(), B, rng);
        const kernels::Int8Activations a(x);
        MatrixXf first;
        for (kernels::Isa isa : fast_isas()) {
            INFO("rows " << m.rows() << " cols " << m.cols() << " B " << B << " isa " << kernels::isa_name(isa));
            kernels::GemvOptions o;
            o.isa = isa;
            const MatrixXf y = gemv(m, x, o);  // found by ADL at instantiation
            CHECK(fast_rounding_ratio(y, W, a) <= 1.0);
            CHECK(fast_error_ratio(y, W, x, a) <= 1.0);
            if constexpr (requires(MatrixXf& out) { m.gemv(a, out, o); }) {  // pre-quantized x
                MatrixXf y2(m.rows(), B);
                m.gemv(a, y2, o);
                CHECK(same_bits(y, y2));
            }
            if (first.size() == 0)
                first = y;
            else
                CHECK(same_bits(y, first));
        }
    }
}

/// The same bits for 1 and 3 threads and without threads, matmul = gemv up to 8 columns, and the
/// exact dequantize-then-GEMM above (batch 8 and 12 on `cols` inputs from `rng`).
template <class M>
void check_fast_threads_and_prefill(const M& m, Rng& rng) {
    const MatrixXf x = fast_test_input(m.cols(), 8, rng);
    set_num_threads(1);
    const MatrixXf y1 = gemv(m, x);
    set_num_threads(3);
    const MatrixXf y3 = gemv(m, x);
    set_num_threads(0);
    CHECK(same_bits(y1, y3));
    kernels::GemvOptions serial;
    serial.parallel = false;
    CHECK(same_bits(y1, gemv(m, x, serial)));
    CHECK(same_bits(matmul(m, x), y1));
    const MatrixXf xp = random_matrix(m.cols(), 12, rng);
    const MatrixXf W = dequantize(m);
    CHECK((matmul(m, xp) - W * xp).norm() <= 1e-5 * (W * xp).norm());
}

}  // namespace vqlib::test
