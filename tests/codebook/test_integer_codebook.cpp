#include <vqlib/codebook/integer_codebook.hpp>
#include <vqlib/core/rng.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using vqlib::CodebookScaleScope;
using vqlib::Index;
using vqlib::IntegerCodebookOptions;
using vqlib::MatrixXf;
using vqlib::ScaleStorage;

namespace {

/// Two codebooks of K = 2 centroids of D = 2: ranges 6 and 0.75.
MatrixXf two_codebooks() {
    MatrixXf c(4, 2);
    c << 6.0f, -3.0f,    // codebook 0
        1.0f, 2.2f,      //
        0.75f, -0.75f,   // codebook 1
        0.1f, 0.3f;      //
    return c;
}

MatrixXf random_codebooks(Index count, Index k, Index dim, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    MatrixXf c(count * k, dim);
    for (Index j = 0; j < dim; ++j)
        for (Index i = 0; i < c.rows(); ++i) c(i, j) = static_cast<float>(rng.normal());
    return c;
}

}  // namespace

TEST_CASE("codebook/integer: round half to even, scale from the largest magnitude") {
    MatrixXf c(6, 1);  // one codebook of K = 6 scalars; 4 bits: imax = 7, scale = 7 / 7 = 1
    c << -7.0f, 3.5f, 0.5f, 1.5f, -2.5f, 2.5f;
    const auto q = vqlib::quantize_codebooks(c, 6, {.bits = 4});
    REQUIRE(q.scales.size() == 1);
    CHECK(q.scales[0] == 1.0f);
    const std::int16_t expected[] = {-7, 4, 0, 2, -2, 2};
    for (Index i = 0; i < 6; ++i) CHECK(q.codes(i, 0) == expected[i]);
    const MatrixXf v = q.dequantize();
    for (Index i = 0; i < 6; ++i) CHECK(v(i, 0) == static_cast<float>(expected[i]));
}

TEST_CASE("codebook/integer: per-codebook and shared scopes") {
    const MatrixXf c = two_codebooks();
    SECTION("per codebook: scales 6/3 and 0.75/3") {
        const auto q = vqlib::quantize_codebooks(c, 2, {.bits = 3});  // imin -4, imax 3
        REQUIRE(q.count == 2);
        REQUIRE(q.scales.size() == 2);
        CHECK(q.scales[0] == 2.0f);
        CHECK(q.scales[1] == 0.25f);
        CHECK(q.scale_of(1) == 0.25f);
        // codebook 0: 6/2 = 3, -3/2 = -1.5 -> -2, 1/2 = 0.5 -> 0, 2.2/2 = 1.1 -> 1
        // codebook 1: 3, -3, 0.4 -> 0, 1.2 -> 1
        vqlib::CodebookCodes expected(4, 2);
        expected << 3, -2, 0, 1, 3, -3, 0, 1;
        CHECK(q.codes == expected);
        MatrixXf values(4, 2);
        values << 6.0f, -4.0f, 0.0f, 2.0f, 0.75f, -0.75f, 0.0f, 0.25f;
        CHECK(q.dequantize() == values);
    }
    SECTION("shared: one scale 6/3 for both, codebook 1 collapses to zero") {
        const auto q = vqlib::quantize_codebooks(c, 2, {.bits = 3, .scope = CodebookScaleScope::shared});
        REQUIRE(q.scales.size() == 1);
        CHECK(q.scales[0] == 2.0f);
        CHECK(q.scale_of(0) == 2.0f);
        CHECK(q.scale_of(1) == 2.0f);
        vqlib::CodebookCodes expected(4, 2);
        expected << 3, -2, 0, 1, 0, 0, 0, 0;
        CHECK(q.codes == expected);
    }
}

TEST_CASE("codebook/integer: an all-zero codebook keeps zeros, scale 0, no NaN") {
    MatrixXf c = two_codebooks();
    c.bottomRows(2).setZero();
    for (const auto scope : {CodebookScaleScope::per_codebook, CodebookScaleScope::shared}) {
        const auto q = vqlib::quantize_codebooks(c, 2, {.bits = 8, .scope = scope});
        const MatrixXf v = q.dequantize();
        CHECK(v.allFinite());
        CHECK(v.bottomRows(2).isZero(0.0f));
        if (scope == CodebookScaleScope::per_codebook) CHECK(q.scales[1] == 0.0f);
    }
    const MatrixXf zeros = MatrixXf::Zero(8, 2);
    const auto q = vqlib::quantize_codebooks(zeros, 4, {.bits = 8, .scope = CodebookScaleScope::shared});
    CHECK(q.scales[0] == 0.0f);
    CHECK(q.codes.isZero());
    CHECK(q.dequantize().isZero(0.0f));
}

TEST_CASE("codebook/integer: an fp16 scale is rounded first, and codes clip at imin and imax") {
    // 8 bits: imax = 127. The range 1.4 * 127 * 2^-24 gives a raw scale of 1.4 * 2^-24, which
    // fp16 (subnormal spacing 2^-24) stores as 2^-24: the extremes then exceed the grid and clip.
    const float ulp = std::ldexp(1.0f, -24);
    const float range = 1.4f * 127.0f * ulp;
    MatrixXf c(4, 1);
    c << -range, range, 2.5f * ulp, 3.5f * ulp;
    const auto q = vqlib::quantize_codebooks(
        c, 4, {.bits = 8, .scale_storage = ScaleStorage::fp16});
    CHECK(q.scales[0] == ulp);
    CHECK(q.codes(0, 0) == -128);  // -177.8 clipped to imin
    CHECK(q.codes(1, 0) == 127);   // 177.8 clipped to imax
    CHECK(q.codes(2, 0) == 2);     // ties to even
    CHECK(q.codes(3, 0) == 4);
    CHECK(q.dequantize()(0, 0) == -128.0f * ulp);
    CHECK(q.scales_bits() == 16.0);

    // The same range with an fp32 scale stays inside the grid.
    const auto q32 = vqlib::quantize_codebooks(c, 4, {.bits = 8});
    CHECK(q32.codes(0, 0) == -127);
    CHECK(q32.codes(1, 0) == 127);
}

TEST_CASE("codebook/integer: codes * scale are the quantized values, within half a step") {
    const Index count = 6, k = 16, dim = 2;
    const MatrixXf c = random_codebooks(count, k, dim, 7);
    for (const auto scope : {CodebookScaleScope::per_codebook, CodebookScaleScope::shared}) {
        for (const auto storage : {ScaleStorage::fp32, ScaleStorage::fp16}) {
            const IntegerCodebookOptions options{.bits = 4, .scope = scope, .scale_storage = storage};
            const auto q = vqlib::quantize_codebooks(c, k, options);
            const MatrixXf v = q.dequantize();
            for (Index g = 0; g < count; ++g) {
                const float s = q.scale_of(g);
                CHECK(s > 0.0f);
                for (Index j = 0; j < dim; ++j)
                    for (Index i = g * k; i < (g + 1) * k; ++i) {
                        CHECK(q.codes(i, j) >= -8);
                        CHECK(q.codes(i, j) <= 7);
                        CHECK(v(i, j) == static_cast<float>(q.codes(i, j)) * s);
                        CHECK(std::abs(v(i, j) - c(i, j)) <= 0.5001f * s);
                    }
            }
            // The storage policy writes the same values in place.
            MatrixXf in_place = c;
            vqlib::IntegerCodebookStorage{options}.quantize(in_place, k);
            CHECK(in_place == v);
            // Bit accounting: entries at 4 bits, scales at their width.
            const double scales = scope == CodebookScaleScope::per_codebook ? count : 1.0;
            const int width = storage == ScaleStorage::fp32 ? 32 : 16;
            CHECK(q.entries_bits() == static_cast<double>(count * k * dim * 4));
            CHECK(q.scales_bits() == scales * width);
            CHECK(q.total_bits() == q.entries_bits() + q.scales_bits());
        }
    }
}

TEST_CASE("codebook/integer: storage policy reports widths and scale counts") {
    const vqlib::IntegerCodebookStorage per{{.bits = 8, .scale_storage = ScaleStorage::fp16}};
    CHECK(per.entry_bits() == 8);
    CHECK(per.scale_bits() == 16);
    CHECK(per.scales_for(32) == 32);
    const vqlib::IntegerCodebookStorage shared{{.bits = 6, .scope = CodebookScaleScope::shared}};
    CHECK(shared.entry_bits() == 6);
    CHECK(shared.scale_bits() == 32);
    CHECK(shared.scales_for(32) == 1);
}

TEST_CASE("codebook/integer: invalid arguments") {
    const MatrixXf c = two_codebooks();
    CHECK_THROWS_AS(vqlib::quantize_codebooks(c, 2, {.bits = 1}), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::quantize_codebooks(c, 2, {.bits = 17}), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::quantize_codebooks(c, 3), vqlib::shape_error);
    CHECK_THROWS_AS(vqlib::quantize_codebooks(c, 0), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::quantize_codebooks(MatrixXf(0, 2), 2), vqlib::shape_error);
    MatrixXf bad = c;
    bad(3, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(vqlib::quantize_codebooks(bad, 2), vqlib::numerical_error);
    bad(3, 1) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(vqlib::quantize_codebooks(bad, 2), vqlib::numerical_error);
}
