#include <vqlib/codebook/blockwise_normalization.hpp>
#include <vqlib/core/rng.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using vqlib::BlockwiseNormalizer;
using vqlib::Index;
using vqlib::MatrixXf;
using vqlib::ScaleDomain;
using vqlib::ScaleNorm;

namespace {

/// Rows of weights whose magnitudes span several decades, with a few zero sub-blocks.
MatrixXf random_weights(Index rows, Index cols, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    MatrixXf W(rows, cols);
    for (Index r = 0; r < rows; ++r) {
        const double row_scale = std::pow(10.0, -3.0 + 4.0 * rng.uniform());
        for (Index c = 0; c < cols; ++c) W(r, c) = static_cast<float>(row_scale * rng.normal());
    }
    W.block(1, 0, 1, 32).setZero();  // one zero (row, sub-block) for bs <= 32
    return W;
}

/// Every scale sits on its sub-block column's grid: 10^(code*step + m) or code*step + m, exactly.
void check_on_grid(const vqlib::NormalizationScales& s) {
    const Index top = (Index{1} << s.bits) - 1;
    for (Index j = 0; j < s.sub_blocks(); ++j)
        for (Index r = 0; r < s.rows(); ++r) {
            const Index code = s.codes(r, j);
            CHECK(code <= top);
            // The level k * step + m, summed exactly in double and rounded to float once.
            const auto level = static_cast<float>(static_cast<double>(code) *
                                                      static_cast<double>(s.steps[j]) +
                                                  static_cast<double>(s.offsets[j]));
            const float expected =
                s.domain == ScaleDomain::log10 ? std::pow(10.0f, level) : level;
            CHECK(s.scales(r, j) == expected);
        }
}

}  // namespace

TEST_CASE("codebook/normalization: hand-computed log-domain example") {
    MatrixXf W = MatrixXf::Zero(3, 16);  // bs 8: two sub-block columns
    W(0, 0) = 100.0f;   // max |w|: row 0: 100 | 1
    W(0, 5) = -50.0f;
    W(0, 9) = -1.0f;
    W(0, 12) = 0.5f;
    W(1, 2) = 1.0f;     // row 1: 1 | 0.001
    W(1, 10) = 0.001f;
    W(1, 15) = -0.0005f;
    W(2, 3) = 2.0f;     // row 2: 2 | 0.1
    W(2, 4) = -1.5f;
    W(2, 8) = 0.1f;
    const BlockwiseNormalizer normalizer({.block_size = 8, .bits = 4});
    const auto out = normalizer.normalize(W);
    const auto& s = out.scales;
    REQUIRE(s.scales.rows() == 3);
    REQUIRE(s.scales.cols() == 2);
    // Column 0: l = {2, 0, log10 2}, m = 0, step = 2/15; l'/step = {15, 0, 2.26}.
    // Column 1: l = {0, -3, -1}, m = -3, step = 3/15;   l'/step = {15, 0, 10}.
    CHECK(s.offsets[0] == 0.0f);
    CHECK_THAT(s.offsets[1], WithinAbs(-3.0, 1e-6));
    CHECK_THAT(s.steps[0], WithinAbs(2.0 / 15.0, 1e-7));
    CHECK_THAT(s.steps[1], WithinAbs(0.2, 1e-6));
    vqlib::NormalizationCodes codes(3, 2);
    codes << 15, 15, 0, 0, 2, 10;
    CHECK(s.codes == codes);
    CHECK_THAT(s.scales(0, 0), WithinRel(100.0f, 1e-5f));
    CHECK_THAT(s.scales(1, 0), WithinRel(1.0f, 1e-6f));
    CHECK_THAT(s.scales(2, 0), WithinRel(static_cast<float>(std::pow(10.0, 4.0 / 15.0)), 1e-5f));
    CHECK_THAT(s.scales(0, 1), WithinRel(1.0f, 1e-5f));
    CHECK_THAT(s.scales(1, 1), WithinRel(0.001f, 1e-5f));
    CHECK_THAT(s.scales(2, 1), WithinRel(0.1f, 1e-5f));
    check_on_grid(s);
    // The normalized block: each weight over its sub-block's scale.
    CHECK_THAT(out.weights(0, 0), WithinRel(1.0f, 1e-5f));
    CHECK_THAT(out.weights(0, 5), WithinRel(-0.5f, 1e-5f));
    CHECK_THAT(out.weights(1, 10), WithinRel(1.0f, 1e-5f));
    CHECK_THAT(out.weights(2, 3), WithinRel(static_cast<float>(2.0 / std::pow(10.0, 4.0 / 15.0)), 1e-5f));
    CHECK_THAT(out.weights(2, 8), WithinRel(1.0f, 1e-5f));
    CHECK(out.weights(1, 0) == 0.0f);
    // Bits: 3 x 2 codes at 4 bits, plus an fp32 offset and step per sub-block column.
    CHECK(s.codes_bits() == 24.0);
    CHECK(s.offsets_bits() == 2.0 * 2.0 * 32.0);
    CHECK(s.total_bits() == 24.0 + 128.0);
}

TEST_CASE("codebook/normalization: hand-computed linear-domain example") {
    MatrixXf W = MatrixXf::Zero(3, 8);
    W(0, 1) = -1.0f;  // max |w|: 1, 4, 2.4 -> m = 1, range 3, 2 bits: step 1
    W(1, 7) = 4.0f;
    W(2, 0) = 2.4f;
    const BlockwiseNormalizer normalizer(
        {.block_size = 8, .bits = 2, .domain = ScaleDomain::linear});
    const auto out = normalizer.normalize(W);
    CHECK(out.scales.offsets[0] == 1.0f);
    CHECK(out.scales.steps[0] == 1.0f);
    CHECK(out.scales.codes(0, 0) == 0);
    CHECK(out.scales.codes(1, 0) == 3);
    CHECK(out.scales.codes(2, 0) == 1);
    CHECK(out.scales.scales(0, 0) == 1.0f);
    CHECK(out.scales.scales(1, 0) == 4.0f);
    CHECK(out.scales.scales(2, 0) == 2.0f);
    CHECK(out.weights(2, 0) == 1.2f);
    check_on_grid(out.scales);
}

TEST_CASE("codebook/normalization: one row keeps its own norm as the scale") {
    MatrixXf W = MatrixXf::Zero(1, 8);
    W(0, 0) = 3.0f;
    W(0, 1) = -4.0f;
    const struct {
        ScaleNorm norm;
        float expected;
    } cases[] = {{ScaleNorm::max_abs, 4.0f}, {ScaleNorm::l2, 5.0f}, {ScaleNorm::l1, 7.0f}};
    for (const auto& c : cases) {
        const auto log = BlockwiseNormalizer({.block_size = 8, .norm = c.norm}).normalize(W);
        CHECK(log.scales.steps[0] == 0.0f);  // a single row: zero range
        CHECK(log.scales.codes(0, 0) == 0);
        CHECK_THAT(log.scales.scales(0, 0), WithinRel(c.expected, 1e-6f));
        const auto lin = BlockwiseNormalizer(
                             {.block_size = 8, .norm = c.norm, .domain = ScaleDomain::linear})
                             .normalize(W);
        CHECK(lin.scales.scales(0, 0) == c.expected);
    }
}

TEST_CASE("codebook/normalization: scales on the grid, bounded error, exact round trip") {
    const MatrixXf W = random_weights(16, 128, 21);
    for (const auto domain : {ScaleDomain::log10, ScaleDomain::linear})
        for (const auto norm : {ScaleNorm::max_abs, ScaleNorm::l2, ScaleNorm::l1})
            for (const Index bs : {Index{8}, Index{32}, Index{128}}) {
                const BlockwiseNormalizer normalizer(
                    {.block_size = bs, .bits = 4, .norm = norm, .domain = domain});
                const auto out = normalizer.normalize(W);
                const auto& s = out.scales;
                REQUIRE(s.scales.cols() == 128 / bs);
                CHECK(s.scales.allFinite());
                CHECK(out.weights.allFinite());
                check_on_grid(s);
                if (domain == ScaleDomain::log10 && norm == ScaleNorm::max_abs) {
                    // |l'_q - l'| <= step / 2 away from zero sub-blocks; the largest row of each
                    // column takes the top code.
                    for (Index j = 0; j < s.sub_blocks(); ++j) {
                        CHECK(s.codes.col(j).maxCoeff() == 15);
                        for (Index r = 0; r < s.rows(); ++r) {
                            const float m = W.row(r).segment(j * bs, bs).cwiseAbs().maxCoeff();
                            if (m == 0.0f) continue;
                            const double err = std::abs(std::log10(s.scales(r, j)) - std::log10(m));
                            CHECK(err <= 0.5 * s.steps[j] + 1e-5);
                        }
                    }
                }
                const MatrixXf back = BlockwiseNormalizer::denormalize(out.weights, s);
                for (Index c = 0; c < W.cols(); ++c)
                    for (Index r = 0; r < W.rows(); ++r)
                        CHECK_THAT(back(r, c), WithinRel(W(r, c), 3e-7f));
            }
}

TEST_CASE("codebook/normalization: zero sub-blocks and an all-zero block stay finite") {
    MatrixXf W = random_weights(4, 32, 5);
    W.middleCols(8, 8).setZero();  // a whole zero sub-block column
    W.block(2, 24, 1, 8).setZero();
    for (const auto domain : {ScaleDomain::log10, ScaleDomain::linear}) {
        const BlockwiseNormalizer normalizer({.block_size = 8, .domain = domain});
        const auto out = normalizer.normalize(W);
        CHECK(out.scales.scales.allFinite());
        CHECK((out.scales.scales.array() > 0.0f).all());
        CHECK(out.weights.allFinite());
        CHECK(out.weights.middleCols(8, 8).isZero(0.0f));
        CHECK(out.weights.block(2, 24, 1, 8).isZero(0.0f));
        CHECK(out.scales.steps[1] == 0.0f);
        CHECK(out.scales.scales.col(1).isOnes(0.0f));  // zero scales are left at 1
        check_on_grid(out.scales);

        const auto zero = normalizer.normalize(MatrixXf::Zero(3, 16));
        CHECK(zero.weights.isZero(0.0f));
        CHECK(zero.scales.scales.isOnes(0.0f));
        CHECK(zero.scales.codes.isZero());
    }
}

TEST_CASE("codebook/normalization: fp16 offsets and steps, blocks of a larger matrix") {
    const MatrixXf W = random_weights(8, 64, 9);
    const BlockwiseNormalizer normalizer(
        {.block_size = 16, .offset_storage = vqlib::ScaleStorage::fp16});
    const auto out = normalizer.normalize(W.middleCols(16, 32));  // a view, no copy needed
    const auto& s = out.scales;
    REQUIRE(s.cols() == 32);
    for (Index j = 0; j < s.sub_blocks(); ++j) {
        CHECK(s.offsets[j] == static_cast<float>(Eigen::half(s.offsets[j])));
        CHECK(s.steps[j] == static_cast<float>(Eigen::half(s.steps[j])));
    }
    check_on_grid(s);
    CHECK(s.offsets_bits() == 2.0 * 2.0 * 16.0);
    CHECK(s.codes_bits() == 8.0 * 2.0 * 4.0);
    const MatrixXf back = BlockwiseNormalizer::denormalize(out.weights, s);
    for (Index c = 0; c < 32; ++c)
        for (Index r = 0; r < 8; ++r) CHECK_THAT(back(r, c), WithinRel(W(r, 16 + c), 3e-7f));
}

TEST_CASE("codebook/normalization: invalid arguments") {
    CHECK_THROWS_AS(BlockwiseNormalizer({.block_size = 4}), vqlib::invalid_argument);
    CHECK_THROWS_AS(BlockwiseNormalizer({.block_size = 256}), vqlib::invalid_argument);
    CHECK_THROWS_AS(BlockwiseNormalizer({.block_size = 8, .bits = 0}), vqlib::invalid_argument);
    CHECK_THROWS_AS(BlockwiseNormalizer({.block_size = 8, .bits = 17}), vqlib::invalid_argument);
    const BlockwiseNormalizer normalizer({.block_size = 8});
    CHECK_THROWS_AS(normalizer.normalize(MatrixXf::Ones(2, 20)), vqlib::shape_error);
    CHECK_THROWS_AS(normalizer.normalize(MatrixXf(0, 16)), vqlib::shape_error);
    MatrixXf W = MatrixXf::Ones(2, 16);
    W(1, 9) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(normalizer.normalize(W), vqlib::numerical_error);
    W(1, 9) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(normalizer.normalize(W), vqlib::numerical_error);
    W(1, 9) = 1.0f;
    const auto out = normalizer.normalize(W);
    CHECK_THROWS_AS(BlockwiseNormalizer::denormalize(MatrixXf::Ones(2, 8), out.scales),
                    vqlib::shape_error);
    // An L2 norm that overflows float.
    const MatrixXf huge = MatrixXf::Constant(1, 8, 3e38f);
    CHECK_THROWS_AS(BlockwiseNormalizer({.block_size = 8, .norm = ScaleNorm::l2}).normalize(huge),
                    vqlib::numerical_error);
}
