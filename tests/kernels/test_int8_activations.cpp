// Int8Activations: per 32-input block d = max|x| / 127, q = round(x / d) with |x - d q| <= d / 2,
// the block sums, zero blocks, the padding past cols, non-finite inputs refused by name.
#include <vqlib/core/rng.hpp>
#include <vqlib/kernels/int8_activations.hpp>

#include <catch2/catch.hpp>

#include "../support/fast_decode.hpp"

#include <cmath>
#include <limits>

namespace {

using namespace vqlib;
using namespace vqlib::kernels;

}  // namespace

TEST_CASE("Int8Activations: scales, values, sums and padding", "[kernels][fast]") {
    Rng rng(4);
    MatrixXf x = test::fast_test_input(75, 3, rng);
    x.block(32, 1, 32, 1).setZero();  // one all-zero block
    const Int8Activations a(x);
    REQUIRE(a.cols() == 75);
    REQUIRE(a.batch() == 3);
    REQUIRE(a.blocks() == 3);
    REQUIRE(a.padded_cols() == 96);
    for (Index b = 0; b < 3; ++b)
        for (Index k = 0; k < 3; ++k) {
            const Index c0 = 32 * k, c1 = std::min<Index>(75, c0 + 32);
            float amax = 0.0f;
            for (Index c = c0; c < c1; ++c) amax = std::max(amax, std::abs(x(c, b)));
            const float d = a.d()[b * 3 + k];
            CHECK(d == amax / 127.0f);
            int sum = 0, top = 0;
            for (Index c = c0; c < 32 * (k + 1); ++c) {
                const int q = a.q()[b * 96 + c];
                sum += q;
                top = std::max(top, std::abs(q));
                if (c >= 75) CHECK(q == 0);
                else CHECK(std::abs(x(c, b) - d * static_cast<float>(q)) <= 0.5f * d * (1.0f + 1e-6f));
            }
            CHECK(a.sums()[b * 3 + k] == sum);
            CHECK(top == (amax > 0.0f ? 127 : 0));
        }
    CHECK(a.d()[1 * 3 + 1] == 0.0f);
    const MatrixXf xq = a.dequantize();
    CHECK((xq - x).cwiseAbs().maxCoeff() <= 0.5f * 30.0f * 5.0f / 127.0f);
}

TEST_CASE("Int8Activations: non-finite inputs", "[kernels][fast]") {
    MatrixXf x = MatrixXf::Ones(40, 2);
    x(33, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(Int8Activations(x), numerical_error);
    CHECK_THROWS_WITH(Int8Activations(x), Catch::Contains("x(33, 1)"));
    x(33, 1) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(Int8Activations(x), Catch::Contains("x(33, 1)"));
}
