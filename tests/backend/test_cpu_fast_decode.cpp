// CpuFastDecodeBackend: satisfies DecodeBackend for GPTVQ, VPTQ and INT4 layers; picks the fast
// format where the layer (and, for GPTVQ and VPTQ, the CPU) allows it and says why not otherwise; its
// gemv/matmul stay within the documented bound of dequantize(p) x (the fast layers) or equal
// CpuDecodeBackend's bit for bit (the exact ones); the same bits for any thread count.
#include <vqlib/backend/cpu_decode.hpp>
#include <vqlib/backend/cpu_fast_decode.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/formats/minifloat_grid.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/fast_decode.hpp"
#include "../support/random.hpp"

#include <string>

namespace {

using namespace vqlib;
using B = CpuFastDecodeBackend;

static_assert(!DecodeBackend<B, ScalarLayer<MinifloatGrid>>, "no fast format for minifloat layers");

bool gptvq_fast_here() {
    return kernels::detail::best_fast_isa() != kernels::detail::FastIsa::portable;
}

bool gptvq4_fast_here() {
    return kernels::detail::best_fast_isa() == kernels::detail::FastIsa::avx512 && kernels::detail::fast_has_vbmi();
}

/// The backend's contract on a layer it prepares in its fast format.
template <class Layer>
void check_fast_layer(const Layer& layer, std::uint64_t seed) {
    const auto p = B::prepare(layer);
    REQUIRE(p.is_fast());
    REQUIRE(p.exact_reason().empty());
    const MatrixXf W = B::dequantize(p);
    Rng rng(seed);
    for (Index batch = 1; batch <= max_decode_gemv_batch; ++batch) {
        const MatrixXf x = test::fast_test_input(layer.cols(), batch, rng);
        const kernels::Int8Activations a(x);
        const MatrixXf y = B::gemv(p, x);
        CHECK(test::fast_error_ratio(y, W, x, a) <= 1.0);
        CHECK(test::same_bits(B::matmul(p, x), y));
    }
    const MatrixXf xp = test::random_matrix(layer.cols(), 13, rng);
    CHECK((B::matmul(p, xp) - W * xp).norm() <= 1e-5 * (W * xp).norm());
    set_num_threads(1);
    const MatrixXf x = test::fast_test_input(layer.cols(), 3, rng);
    const MatrixXf y1 = B::gemv(p, x);
    set_num_threads(3);
    CHECK(test::same_bits(B::gemv(p, x), y1));
    set_num_threads(0);
}

}  // namespace

TEST_CASE("fast decode backend: the concept", "[backend][decode][fast]") {
    STATIC_REQUIRE(DecodeBackend<B, VqLayer>);
    STATIC_REQUIRE(DecodeBackend<B, VptqLayer>);
    STATIC_REQUIRE(DecodeBackend<B, ScalarLayer<IntGrid>>);
    CHECK(std::string(B::name()) == "cpu-fast");
}

TEST_CASE("fast decode backend: INT4", "[backend][decode][fast][int4]") {
    check_fast_layer(test::random_int4_layer(37, 300, 128, false, 1), 2);
    check_fast_layer(test::random_int4_layer(19, 77, 0, true, 3), 4);
    // Groups of 10 columns: the exact format, with the reason, the same bits as CpuDecodeBackend.
    const auto layer = test::random_int4_layer(23, 50, 10, false, 5);
    const auto p = B::prepare(layer);
    CHECK_FALSE(p.is_fast());
    CHECK_THAT(p.exact_reason(), Catch::Matchers::Contains("group_size = 10"));
    Rng rng(6);
    const MatrixXf x = test::random_matrix(50, 4, rng);
    const auto e = CpuDecodeBackend::prepare(layer);
    CHECK(test::same_bits(B::gemv(p, x), CpuDecodeBackend::gemv(e, x)));
    CHECK(test::same_bits(B::dequantize(p), layer.dequantize()));
}

TEST_CASE("fast decode backend: GPTVQ", "[backend][decode][fast][gptvq]") {
    const VqLayer paper = test::random_vq_layer(40, 512, 2, 16, 8, 256, 0, 7);
    if (gptvq_fast_here()) {
        check_fast_layer(paper, 8);
        check_fast_layer(test::random_vq_layer(45, 96, 2, 11, 45, 32, 64, 9), 10);
    } else {
        const auto p = B::prepare(paper);
        CHECK_FALSE(p.is_fast());
        CHECK_THAT(p.exact_reason(), Catch::Matchers::Contains("AVX2"));
    }
    const VqLayer four = test::random_vq_layer(130, 64, 4, 200, 130, 32, 0, 16);
    if (gptvq4_fast_here()) {
        check_fast_layer(four, 17);
    } else {
        const auto p = B::prepare(four);
        CHECK_FALSE(p.is_fast());
        CHECK_THAT(p.exact_reason(), Catch::Matchers::Contains("VBMI"));
    }
    // 3-D codewords: exact, as CpuDecodeBackend.
    const VqLayer three = test::random_vq_layer(37, 63, 3, 200, 37, 63, 0, 11);
    const auto p = B::prepare(three);
    CHECK_FALSE(p.is_fast());
    CHECK_THAT(p.exact_reason(), Catch::Matchers::Contains("dim = 3"));
    Rng rng(12);
    const MatrixXf x = test::random_matrix(63, 5, rng);
    CHECK(test::same_bits(B::gemv(p, x), CpuDecodeBackend::gemv(CpuDecodeBackend::prepare(three), x)));
    CHECK(test::same_bits(B::dequantize(p), three.dequantize()));
    VqLayer bad = test::random_vq_layer(16, 64, 2, 4, 16, 32, 0, 13);
    bad.indices(3, 1) = 4;
    CHECK_THROWS_AS(B::prepare(bad), invalid_argument);
}

TEST_CASE("fast decode backend: VPTQ", "[backend][decode][fast][vptq]") {
    test::VptqSpec s;
    s.m = 37;
    s.n = 2 * 32;
    s.v = 8;
    s.k = 300;
    s.kr = 4;
    s.groups = 2;
    const VptqLayer plain = test::random_vptq_layer(s, 14);
    if (kernels::detail::fast_has_vbmi()) {
        check_fast_layer(plain, 15);
    } else {
        CHECK_THAT(B::prepare(plain).exact_reason(), Catch::Matchers::Contains("VBMI"));
    }
    // v = 6: exact, the same bits as CpuDecodeBackend.
    s.v = 6;
    s.outliers = 3;
    s.n = 3 + 2 * 25;
    s.norm = s.perm = true;
    const VptqLayer six = test::random_vptq_layer(s, 16);
    const auto p = B::prepare(six);
    CHECK_FALSE(p.is_fast());
    CHECK_THAT(p.exact_reason(), Catch::Matchers::Contains("vector_len = 6"));
    Rng rng(17);
    const MatrixXf x = test::random_matrix(six.cols(), 6, rng);
    CHECK(test::same_bits(B::gemv(p, x), CpuDecodeBackend::gemv(CpuDecodeBackend::prepare(six), x)));
}
