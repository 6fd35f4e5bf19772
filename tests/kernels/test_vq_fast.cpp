// GPTVQ fast mode (2-D K <= 16, 4-D K <= 256): int8 codebooks within half a step (s / 2, times the
// normalization) of the layer's codewords, codes kept; the GEMV within fp32 rounding of W_fast x_q
// and within the documented bound of W_fast x, on odd shapes (rows not a multiple of 16 or 64,
// K below the code width, 8 / 16 / 24 rows per codebook in 2-D, 64 / 128 / one band in 4-D,
// groups of 32 / 64 / one per row, normalization), batches 1..8, every fast variant (bit for bit)
// and thread count; unsupported layouts refused by field.
#include <vqlib/core/rng.hpp>
#include <vqlib/kernels/vq_fast.hpp>
#include <vqlib/kernels/vq_gemv.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/fast_decode.hpp"
#include "../support/random.hpp"

#include <cmath>

namespace {

using namespace vqlib;
using namespace vqlib::kernels;

/// max over weights of |W_fast - W_layer| / (s_cb / 2 * normalization).
double codebook_error_ratio(const VqFastMatrix& m, const VqLayer& layer) {
    const MatrixXf Wf = dequantize(m);
    const MatrixXf W = layer.dequantize();
    const VqLayout& L = layer.layout;
    double worst = 0.0;
    for (Index r = 0; r < L.rows; ++r)
        for (Index c = 0; c < L.cols; ++c) {
            const Index cb = L.codebook_of(r, c / L.columns_per_group);
            const float amax = layer.codebooks.middleRows(cb * L.k, L.k).cwiseAbs().maxCoeff();
            double bound = 0.5 * amax / 127.0 * (1.0 + 1e-5);
            if (layer.scale_block > 0) bound *= layer.scales(r, c / layer.scale_block);
            worst = std::max(worst, std::abs(double(Wf(r, c)) - double(W(r, c))) / (bound + 1e-30));
        }
    return worst;
}

}  // namespace

TEST_CASE("GPTVQ fast: codebooks, codes and GEMV on odd shapes", "[kernels][fast][gptvq]") {
    std::uint64_t seed = 1;
    struct Case {
        Index rows, cols, d, k, rpc, cpg, scale_block;
    };
    for (const Case& c : {Case{37, 64, 2, 16, 37, 32, 0}, Case{48, 128, 2, 5, 8, 64, 0}, Case{48, 96, 2, 16, 24, 32, 32},
                          Case{40, 70, 2, 16, 8, 70, 0}, Case{16, 256, 2, 16, 16, 256, 64}, Case{24, 62, 2, 3, 24, 62, 0},
                          Case{70, 96, 4, 256, 70, 32, 0}, Case{128, 64, 4, 200, 64, 64, 32},
                          Case{192, 128, 4, 77, 64, 64, 0}, Case{64, 44, 4, 16, 64, 44, 0}}) {
        INFO("rows " << c.rows << " cols " << c.cols << " d " << c.d << " k " << c.k << " rpc " << c.rpc << " cpg "
                     << c.cpg << " scale_block " << c.scale_block);
        const VqLayer layer = test::random_vq_layer(c.rows, c.cols, c.d, c.k, c.rpc, c.cpg, c.scale_block, seed);
        REQUIRE(VqFastMatrix::supported(layer));
        const VqFastMatrix m = VqFastMatrix::from_layer(layer);
        for (Index r = 0; r < c.rows; ++r)
            for (Index v = 0; v < c.cols / c.d; ++v) REQUIRE(m.code(r, v) == layer.indices(r, v));
        CHECK(codebook_error_ratio(m, layer) <= 1.0);
        test::check_fast_gemv(m, dequantize(m), seed + 100);
        ++seed;
    }
}

TEST_CASE("GPTVQ fast: bytes, thread count, prefill and errors", "[kernels][fast][gptvq]") {
    // GPTVQ's 2.125 bpw grouping: a codebook per 8 rows x 256 columns.
    const VqLayer paper = test::random_vq_layer(64, 512, 2, 16, 8, 256, 0, 3);
    const VqFastMatrix p = VqFastMatrix::from_layer(paper);
    const double bits = 8.0 * static_cast<double>(p.stream_bytes()) / (64.0 * 512.0);
    CHECK(bits == Approx(2.0 + 0.125 + 32.0 / 2048.0));
    CHECK(bits < 8.0 * static_cast<double>(VqGemvMatrix::from_layer(paper).stream_bytes()) / (64.0 * 512.0));

    const VqFastMatrix m = VqFastMatrix::from_layer(test::random_vq_layer(301, 512, 2, 16, 43 * 7, 256, 128, 5));
    Rng rng(3);
    test::check_fast_threads_and_prefill(m, rng);

    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(511, 1)), shape_error);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(512, 9)), shape_error);
    auto refuse = [](const VqLayer& layer, const char* field) {
        CHECK_FALSE(VqFastMatrix::supported(layer));
        CHECK_THROWS_WITH(VqFastMatrix::from_layer(layer), Catch::Contains(field));
    };
    refuse(test::random_vq_layer(32, 48, 3, 16, 32, 48, 0, 1), "dim = 3");
    refuse(test::random_vq_layer(64, 64, 4, 257, 64, 64, 0, 1), "k = 257");
    refuse(test::random_vq_layer(64, 64, 4, 16, 32, 64, 0, 1), "rows_per_codebook = 32");
    refuse(test::random_vq_layer(32, 64, 2, 17, 32, 64, 0, 1), "k = 17");
    refuse(test::random_vq_layer(32, 64, 2, 16, 4, 64, 0, 1), "rows_per_codebook = 4");
    refuse(test::random_vq_layer(32, 96, 2, 16, 32, 48, 0, 1), "columns_per_group = 48");
    refuse(test::random_vq_layer(32, 96, 2, 16, 32, 96, 48, 1), "scale_block = 48");
    VqLayer bad = test::random_vq_layer(32, 64, 2, 16, 32, 64, 0, 1);
    bad.indices(3, 5) = 16;
    CHECK_THROWS_WITH(VqFastMatrix::from_layer(bad), Catch::Contains("row 3, vector 5"));
}
