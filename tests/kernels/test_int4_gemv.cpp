// The INT4 baseline: the format built from a ScalarLayer<IntGrid> dequantizes bit for bit like
// the layer; the fused GEMV agrees with dequantize-then-multiply (fp32) on odd shapes, symmetric
// and asymmetric, batches 1..8, every instruction-set variant (bit for bit among themselves);
// round-to-nearest quantization; thread-count determinism; errors.
//
// Tolerance: the kernel computes s * (sum_c q_c x_c - z * sum_c x_c) per group, so the bound
// is 2 (n + 4) u sum_c s (|q_c| + |z|) |x_c| per entry, u = 2^-24.
#include <vqlib/core/rng.hpp>
#include <vqlib/kernels/int4_gemv.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/random.hpp"

#include <limits>

#include <vector>

namespace {

using namespace vqlib;
using namespace vqlib::kernels;

using test::isas;
using test::random_int4_layer;
using test::random_matrix;
using test::same_bits;

double worst_error(const MatrixXf& y, const Int4GemvMatrix& m, const MatrixXf& x) {
    const MatrixXf W = dequantize(m);
    const MatrixXf ref = W * x;
    MatrixXf A(m.rows(), m.cols());
    for (Index c = 0; c < m.cols(); ++c)
        for (Index r = 0; r < m.rows(); ++r) {
            const Index g = c / m.group_size();
            A(r, c) = m.scale(r, g) * (static_cast<float>(m.code(r, c)) + m.zero(r, g));
        }
    return test::summation_error_ratio(y, ref, A * x.cwiseAbs(), m.cols() + 4);
}

void check_gemv(const Int4GemvMatrix& m, std::uint64_t seed) {
    Rng rng(seed);
    for (Index B = 1; B <= max_gemv_batch; ++B) {
        const MatrixXf x = random_matrix(m.cols(), B, rng);
        MatrixXf first;
        for (Isa isa : isas()) {
            INFO("rows " << m.rows() << " cols " << m.cols() << " group " << m.group_size()
                         << " symmetric " << m.symmetric() << " B " << B << " isa " << isa_name(isa));
            const MatrixXf y = gemv(m, x, {isa, VqStrategy::automatic, true});
            CHECK(worst_error(y, m, x) <= 1.0);
            if (first.size() == 0)
                first = y;
            else
                CHECK(same_bits(y, first));
        }
    }
}

}  // namespace

TEST_CASE("INT4 GEMV: from a ScalarLayer, odd shapes", "[kernels][int4]") {
    std::uint64_t seed = 1;
    for (bool symmetric : {true, false})
        for (Index cols : {52, 53, 300})
            for (Index group : {0, 16, 128}) {
                const auto layer = random_int4_layer(37, cols, group, symmetric, seed);
                const Int4GemvMatrix m = Int4GemvMatrix::from_layer(layer);
                REQUIRE(same_bits(dequantize(m), layer.dequantize()));
                REQUIRE(dequantize_half(m) == layer.dequantize().cast<Eigen::half>());
                check_gemv(m, seed + 100);
                ++seed;
            }
}

TEST_CASE("INT4: bits and bytes", "[kernels][int4]") {
    const auto m = Int4GemvMatrix::from_layer(random_int4_layer(32, 256, 128, true, 1));
    CHECK(m.bits().per_weight() == Approx(4.125));
    CHECK(m.stream_bytes() == 32u * 256 / 2 + 2u * 32 * 2);
    const auto a = Int4GemvMatrix::from_layer(random_int4_layer(32, 256, 128, false, 1));
    CHECK(a.bits().per_weight() == Approx(4.15625));
}

TEST_CASE("INT4: round-to-nearest quantization", "[kernels][int4]") {
    Rng rng(9);
    const MatrixXf w = random_matrix(37, 301, rng);
    for (bool symmetric : {true, false}) {
        const auto m = Int4GemvMatrix::quantize_rtn(w, 128, symmetric);
        const MatrixXf W = dequantize(m);
        for (Index c = 0; c < w.cols(); ++c)
            for (Index r = 0; r < w.rows(); ++r) {
                const float s = m.scale(r, c / 128);
                // Half a step (plus the fp16 rounding of the scale); asymmetric grids round the
                // zero point, which moves the range by up to half a step: one step at its ends.
                CHECK(std::abs(W(r, c) - w(r, c)) <= (symmetric ? 0.52f : 1.02f) * s + 1e-6f);
            }
        check_gemv(m, 10);
    }
}

TEST_CASE("INT4 GEMV: thread count, prefill and errors", "[kernels][int4]") {
    const auto m = Int4GemvMatrix::from_layer(random_int4_layer(301, 515, 128, false, 5));
    Rng rng(3);
    const MatrixXf x = random_matrix(515, 8, rng);
    set_num_threads(1);
    const MatrixXf y1 = gemv(m, x);
    set_num_threads(3);
    const MatrixXf y3 = gemv(m, x);
    set_num_threads(0);
    CHECK(same_bits(y1, y3));
    CHECK(same_bits(y1, gemv(m, x, {Isa::automatic, VqStrategy::automatic, false})));

    const MatrixXf xp = random_matrix(515, 12, rng);
    CHECK(worst_error(matmul(m, xp), m, xp) <= 1.0);

    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(514, 1)), shape_error);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(515, 9)), shape_error);
    auto layer = random_int4_layer(16, 64, 16, true, 2);
    layer.params[3].scale = 0.1f;  // not an fp16 value
    CHECK_THROWS_AS(Int4GemvMatrix::from_layer(layer), invalid_argument);
    layer = random_int4_layer(16, 64, 16, true, 2);
    layer.g_idx[20] = 0;  // act-order groups
    CHECK_THROWS_AS(Int4GemvMatrix::from_layer(layer), invalid_argument);
    ScalarLayer<IntGrid> three{IntGrid(3, true, {}, ScaleStorage::fp16), 16, {}, {}, {}};
    CHECK_THROWS_AS(Int4GemvMatrix::from_layer(three), invalid_argument);
    CHECK_THROWS_AS(Int4GemvMatrix::quantize_rtn(MatrixXf::Zero(4, 4), 7), invalid_argument);
    layer = random_int4_layer(16, 64, 16, true, 2);
    layer.params[5].scale = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(Int4GemvMatrix::from_layer(layer), numerical_error);
    MatrixXf w = MatrixXf::Ones(4, 4);
    w(1, 2) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(Int4GemvMatrix::quantize_rtn(w, 2), Catch::Contains("w(1, 2)"));
}
