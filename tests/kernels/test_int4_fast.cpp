// INT4 fast mode: the fast layout dequantizes to the exact format's weights bit for bit; the GEMV
// (int8 activations) stays within fp32 rounding of W x_q and within the documented bound of W x,
// on odd shapes, symmetric and asymmetric, groups of 32 / 128 / one per row, batches 1..8, every
// fast variant (bit for bit among themselves) and thread count; errors.
#include <vqlib/core/rng.hpp>
#include <vqlib/kernels/int4_fast.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/fast_decode.hpp"
#include "../support/random.hpp"

namespace {

using namespace vqlib;
using namespace vqlib::kernels;

}  // namespace

TEST_CASE("INT4 fast: layout and GEMV on odd shapes", "[kernels][fast][int4]") {
    std::uint64_t seed = 1;
    for (bool symmetric : {true, false})
        for (Index rows : {5, 37})
            for (Index cols : {53, 256, 300})
                for (Index group : {0, 32, 128}) {
                    INFO("symmetric " << symmetric << " rows " << rows << " cols " << cols << " group " << group);
                    const auto layer = test::random_int4_layer(rows, cols, group, symmetric, seed);
                    const Int4GemvMatrix e = Int4GemvMatrix::from_layer(layer);
                    const Int4FastMatrix m = Int4FastMatrix::from_layer(layer);
                    REQUIRE(m.rows() == rows);
                    REQUIRE(m.cols() == cols);
                    const MatrixXf W = dequantize(m);
                    REQUIRE(test::same_bits(W, dequantize(e)));
                    test::check_fast_gemv(m, W, seed + 100);
                    ++seed;
                }
}

TEST_CASE("INT4 fast: thread count, prefill, bytes and errors", "[kernels][fast][int4]") {
    const auto m = Int4FastMatrix::from_layer(test::random_int4_layer(301, 515, 128, false, 5));
    Rng rng(3);
    test::check_fast_threads_and_prefill(m, rng);

    const auto s = Int4FastMatrix::from_layer(test::random_int4_layer(32, 256, 128, true, 1));
    CHECK(s.bits().per_weight() == Approx(4.125));
    CHECK(s.stream_bytes() == 32u * 256 / 2 + 2u * 32 * 2);

    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(514, 1)), shape_error);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(515, 9)), shape_error);
    CHECK_THROWS_WITH(Int4FastMatrix::from_layer(test::random_int4_layer(16, 96, 48, true, 2)),
                      Catch::Contains("group_size = 48"));
    MatrixXf bad = test::fast_test_input(515, 3, rng);
    bad(7, 2) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(gemv(m, bad), numerical_error);
}
