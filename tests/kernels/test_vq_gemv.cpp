// GPTVQ-layout decode kernels: the packed format's dequantization against VqLayer::dequantize()
// (bit for bit), the fused GEMV against dequantize-then-multiply in fp32, for every D, K (4 to
// 65536, non-powers of two included), both strategies, batches 1..8 and every instruction-set
// variant this CPU runs (the variants agree bit for bit), thread-count determinism and errors.
//
// Tolerance of the GEMV against the reference: the two sum the same products in different
// orders, so per entry |y - y_ref| <= 2 (n + 2) u sum_c |w_rc| |x_c| with u = 2^-24 and n the
// columns (the standard bound for two summation orders, products included).
#include <vqlib/core/rng.hpp>
#include <vqlib/kernels/vq_gemv.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/random.hpp"

#include <limits>
#include <string>
#include <vector>

namespace {

using namespace vqlib;
using namespace vqlib::kernels;

using test::isas;
using test::random_matrix;
using test::random_vq_layer;
using test::same_bits;

/// max over entries of |y - ref| / bound (<= 1 passes).
double worst_error(const MatrixXf& y, const MatrixXf& W, const MatrixXf& x) {
    return test::summation_error_ratio(y, W * x, W.cwiseAbs() * x.cwiseAbs(), W.cols() + 2);
}

void check_layer(const VqLayer& layer, std::uint64_t seed) {
    const VqGemvMatrix m = VqGemvMatrix::from_layer(layer);
    const MatrixXf W = layer.dequantize();
    REQUIRE(same_bits(dequantize(m), W));
    REQUIRE(dequantize_half(m) == W.cast<Eigen::half>());
    Rng rng(seed);
    std::vector<VqStrategy> strategies{VqStrategy::gather};
    if (layer.layout.k <= 256) strategies.push_back(VqStrategy::lut);
    for (Index B = 1; B <= max_gemv_batch; ++B) {
        const MatrixXf x = random_matrix(layer.cols(), B, rng);
        for (VqStrategy s : strategies) {
            MatrixXf first;
            for (Isa isa : isas()) {
                // With AVX-512 the lut runs with and without byte-plane lookups (where the CPU
                // has VBMI and the layer allows them).
                for (bool planes : {true, false}) {
                    if (!planes && !(isa == Isa::avx512 && s == VqStrategy::lut &&
                                     m.byte_plane_lookups(isa)))
                        continue;
                    INFO("D " << layer.layout.dim << " K " << layer.layout.k << " B " << B
                              << " strategy " << (s == VqStrategy::lut ? "lut" : "gather")
                              << " isa " << isa_name(isa) << " byte planes " << planes);
                    const MatrixXf y = gemv(m, x, {isa, s, true, planes});
                    CHECK(worst_error(y, W, x) <= 1.0);
                    if (first.size() == 0)
                        first = y;
                    else
                        CHECK(same_bits(y, first));  // the variants agree bit for bit
                }
            }
        }
        const MatrixXf y = gemv(m, x);  // automatic strategy and isa
        CHECK(worst_error(y, W, x) <= 1.0);
    }
}

}  // namespace

TEST_CASE("VQ GEMV: every D and K on odd shapes", "[kernels][vq]") {
    std::uint64_t seed = 1;
    for (Index d : {1, 2, 4, 8}) {
        const Index cols = d == 8 ? 56 : 52;  // columns are whole vectors
        for (Index k : {4, 16, 17, 33, 64, 100, 128, 200, 256, 1000, 65536}) {
            // One band of 37 rows and one column group; and per-row codebooks with two groups.
            check_layer(random_vq_layer(37, cols, d, k, 37, cols, 0, seed), seed + 100);
            ++seed;
            if (k <= 1000) {
                check_layer(random_vq_layer(37, cols, d, k, 1, cols / 2 % d == 0 ? cols / 2 : cols,
                                            0, seed),
                            seed + 100);
                ++seed;
            }
        }
    }
}

TEST_CASE("VQ GEMV: bands not aligned to tiles, normalization scales", "[kernels][vq]") {
    // 3 bands of 13 rows cross the 16-row tiles; normalization blocks of 2 vectors.
    check_layer(random_vq_layer(39, 52, 2, 16, 13, 26, 4, 7), 8);
    check_layer(random_vq_layer(39, 52, 4, 256, 13, 52, 8, 9), 10);
    check_layer(random_vq_layer(39, 52, 1, 300, 3, 52, 5, 11), 12);
    // GPTVQ's own groups: 8 rows per codebook (two bands per tile), 4 rows (four: no register
    // codebooks), 1D to 8D with K <= 16.
    check_layer(random_vq_layer(40, 64, 2, 16, 8, 32, 0, 15), 16);
    check_layer(random_vq_layer(40, 64, 8, 9, 8, 64, 0, 17), 18);
    check_layer(random_vq_layer(36, 64, 1, 4, 4, 32, 0, 19), 20);
    check_layer(random_vq_layer(40, 64, 4, 16, 8, 32, 8, 21), 22);
    // Partial last normalization block (52 = 3 * 16 + 4).
    check_layer(random_vq_layer(21, 52, 4, 64, 21, 52, 16, 13), 14);
}

TEST_CASE("VQ GEMV: byte-plane lookups over 64-row quads", "[kernels][vq]") {
    // 8-bit codes (64 < K <= 256: planes of 128 and 256 bytes; K <= 64 float tables) with every 64 rows in one
    // band: one band of 200 rows (13 tiles: a partial last quad and a partial last tile), bands
    // of 64 and 128 rows, two column groups, normalization blocks, D = 1..8.
    std::uint64_t seed = 300;
    for (Index k : {33, 64, 65, 100, 128, 129, 200, 256}) {
        check_layer(random_vq_layer(200, 96, 4, k, 200, 48, 0, seed), seed + 1);
        seed += 2;
    }
    check_layer(random_vq_layer(192, 64, 2, 256, 64, 32, 0, 320), 321);
    check_layer(random_vq_layer(256, 96, 4, 100, 128, 96, 8, 322), 323);
    check_layer(random_vq_layer(136, 40, 8, 150, 136, 40, 16, 324), 325);
    check_layer(random_vq_layer(70, 33, 1, 256, 70, 33, 3, 326), 327);
    check_layer(random_vq_layer(576, 48, 3, 250, 576, 24, 0, 328), 329);  // chunks of 32 tiles

    const auto planes = VqGemvMatrix::from_layer(random_vq_layer(192, 64, 2, 256, 64, 32, 0, 1));
    CHECK(planes.plane_k() == 256);
    CHECK(planes.byte_plane_lookups(Isa::avx512) == cpu_has_vbmi());
    CHECK_FALSE(planes.byte_plane_lookups(Isa::avx2));
    CHECK_FALSE(planes.byte_plane_lookups(Isa::portable));
    // Bands of 32 rows split the quads; K <= 64 keeps the float tables (their register lookups
    // are faster there).
    CHECK_FALSE(VqGemvMatrix::from_layer(random_vq_layer(192, 64, 2, 256, 32, 32, 0, 1))
                    .byte_plane_lookups(Isa::avx512));
    CHECK_FALSE(VqGemvMatrix::from_layer(random_vq_layer(192, 64, 2, 64, 192, 32, 0, 1))
                    .byte_plane_lookups(Isa::avx512));
    CHECK(VqGemvMatrix::from_layer(random_vq_layer(64, 64, 2, 100, 64, 32, 0, 1)).plane_k() == 128);
}

TEST_CASE("VQ GEMV: the lut's table buffer is kept per thread and can be released", "[kernels][vq]") {
    const VqLayer layer = random_vq_layer(64, 256, 2, 16, 64, 256, 0, 51);
    const VqGemvMatrix m = VqGemvMatrix::from_layer(layer);
    Rng rng(52);
    const MatrixXf x = random_matrix(256, 2, rng);
    release_table_buffer();
    CHECK(kernels::detail::TableScratch::held_bytes() == 0);
    const MatrixXf y1 = gemv(m, x, {Isa::automatic, VqStrategy::lut, true});
    CHECK(kernels::detail::TableScratch::held_bytes() >= kernels::detail::vq_table_bytes(m, 2));
    // A second call reuses the buffer (stale tables from another x must not leak into y).
    const MatrixXf x2 = random_matrix(256, 2, rng);
    const MatrixXf y2 = gemv(m, x2, {Isa::automatic, VqStrategy::lut, true});
    release_table_buffer();
    CHECK(kernels::detail::TableScratch::held_bytes() == 0);
    CHECK(same_bits(gemv(m, x2, {Isa::automatic, VqStrategy::lut, true}), y2));
    CHECK(same_bits(gemv(m, x, {Isa::automatic, VqStrategy::lut, true}), y1));
}

TEST_CASE("VQ GEMV: code widths and bits", "[kernels][vq]") {
    const auto m4 = VqGemvMatrix::from_layer(random_vq_layer(32, 512, 2, 16, 32, 256, 0, 1));
    CHECK(m4.code_bits() == 4);
    CHECK(m4.bits().codes == 32.0 * 256 * 4);
    CHECK(m4.stream_bytes() == m4.codes().size() + 4 * m4.codebooks().size());
    const auto m8 = VqGemvMatrix::from_layer(random_vq_layer(32, 512, 4, 256, 32, 256, 0, 1));
    CHECK(m8.code_bits() == 8);
    CHECK(m8.codes().size() == 2u * 128 * 16);
    const auto m16 = VqGemvMatrix::from_layer(random_vq_layer(17, 16, 2, 257, 17, 16, 0, 1));
    CHECK(m16.code_bits() == 16);
    CHECK(m16.codes().size() == 2u * 8 * 32);  // two tiles, padded
}

TEST_CASE("VQ GEMV: the cost model", "[kernels][vq]") {
    // One band of 256 rows, D = 4, K = 256: the tables are amortized.
    const auto band = VqGemvMatrix::from_layer(random_vq_layer(256, 256, 4, 256, 256, 256, 0, 3));
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
        CHECK(band.choose_strategy(1, isa, false) == VqStrategy::lut);
        CHECK(band.choose_strategy(2, isa, false) == VqStrategy::lut);
        // At B = 8 a gathered table read per vector and column costs as much as D = 4 gathered
        // coordinates.
        CHECK(band.choose_strategy(8, isa, false) == VqStrategy::gather);
    }
    // Byte-plane lookups (AVX-512 VBMI) cost half a gathered float: on a taller band (tables
    // amortized over 1024 rows) lut wins at B = 8 too.
    CHECK(band.lookup_cost(Isa::avx512) == (cpu_has_vbmi() ? 0.5 : 1.0));
    const auto tall = VqGemvMatrix::from_layer(random_vq_layer(1024, 256, 4, 256, 1024, 256, 0, 3));
    CHECK(tall.choose_strategy(8, Isa::avx512) ==
          (cpu_has_vbmi() ? VqStrategy::lut : VqStrategy::gather));
    CHECK(tall.choose_strategy(8, Isa::avx512, false) == VqStrategy::gather);
    const auto d8 = VqGemvMatrix::from_layer(random_vq_layer(256, 256, 8, 16, 256, 256, 0, 3));
    CHECK(d8.choose_strategy(8, Isa::portable) == VqStrategy::lut);
    // D = 2, K = 16: gathered lookups lose at B = 8, register lookups win with AVX2; with
    // AVX-512 the gather strategy permutes the codebook in registers and wins at B = 8.
    const auto d2 = VqGemvMatrix::from_layer(random_vq_layer(256, 256, 2, 16, 256, 256, 0, 3));
    CHECK(d2.choose_strategy(8, Isa::portable) == VqStrategy::gather);
    CHECK(d2.choose_strategy(8, Isa::avx2) == VqStrategy::lut);
    CHECK(d2.choose_strategy(1, Isa::avx512) == VqStrategy::lut);
    CHECK(d2.choose_strategy(8, Isa::avx512) == VqStrategy::gather);
    CHECK(d2.register_codebooks(Isa::avx512));
    CHECK_FALSE(d2.register_codebooks(Isa::avx2));
    // GPTVQ's 2D 2.125 bpw groups, 8 rows x 256 columns: a table entry per weight; the register
    // gather wins at every batch.
    const auto paper = VqGemvMatrix::from_layer(random_vq_layer(64, 512, 2, 16, 8, 256, 0, 3));
    CHECK(paper.register_codebooks(Isa::avx512));
    CHECK(paper.choose_strategy(1, Isa::avx512) == VqStrategy::gather);
    CHECK_FALSE(VqGemvMatrix::from_layer(random_vq_layer(64, 512, 2, 16, 4, 256, 0, 3))
                    .register_codebooks(Isa::avx512));
    CHECK_FALSE(VqGemvMatrix::from_layer(random_vq_layer(39, 256, 2, 16, 13, 256, 0, 3))
                    .register_lookups(Isa::avx512));
    // Sliced register lookups up to K = 128 with AVX-512 only; dearer per slice.
    const auto k64 = VqGemvMatrix::from_layer(random_vq_layer(256, 256, 2, 64, 256, 256, 0, 3));
    const auto k200 = VqGemvMatrix::from_layer(random_vq_layer(256, 256, 2, 200, 256, 256, 0, 3));
    CHECK(k64.register_lookups(Isa::avx512));
    CHECK_FALSE(k64.register_lookups(Isa::avx2));
    CHECK_FALSE(k200.register_lookups(Isa::avx512));
    CHECK(k64.lookup_cost(Isa::avx512) > d2.lookup_cost(Isa::avx512));
    CHECK(k64.lookup_cost(Isa::avx512) < k200.lookup_cost(Isa::avx512, false));
    CHECK(k200.lookup_cost(Isa::avx512, false) == 1.0);
    // Per-row codebooks: building tables costs more than it saves.
    const auto per_row = VqGemvMatrix::from_layer(random_vq_layer(16, 256, 4, 256, 1, 256, 0, 3));
    CHECK(per_row.choose_strategy(1) == VqStrategy::gather);
    // K > 256: always gather.
    const auto large_k = VqGemvMatrix::from_layer(random_vq_layer(16, 16, 2, 4096, 16, 16, 0, 3));
    CHECK(large_k.choose_strategy(1) == VqStrategy::gather);
}

TEST_CASE("VQ GEMV: results do not depend on the thread count", "[kernels][vq]") {
    // Bands of 100 rows; and one band of 576 rows (byte-plane lookups where the CPU has VBMI,
    // in chunks of 32 tiles).
    for (const VqLayer& layer : {random_vq_layer(300, 512, 2, 256, 100, 256, 0, 21),
                                 random_vq_layer(576, 128, 4, 200, 576, 64, 0, 22)}) {
        const VqGemvMatrix m = VqGemvMatrix::from_layer(layer);
        Rng rng(5);
        const MatrixXf x = random_matrix(layer.cols(), 3, rng);
        for (VqStrategy s : {VqStrategy::lut, VqStrategy::gather}) {
            set_num_threads(1);
            const MatrixXf y1 = gemv(m, x, {Isa::automatic, s, true});
            set_num_threads(3);
            const MatrixXf y3 = gemv(m, x, {Isa::automatic, s, true});
            set_num_threads(0);
            const MatrixXf ys = gemv(m, x, {Isa::automatic, s, false});
            CHECK(same_bits(y1, y3));
            CHECK(same_bits(y1, ys));
        }
    }
}

TEST_CASE("VQ matmul: prefill batches go through dequantize-then-GEMM", "[kernels][vq]") {
    const VqLayer layer = random_vq_layer(37, 52, 4, 16, 37, 52, 0, 31);
    const VqGemvMatrix m = VqGemvMatrix::from_layer(layer);
    Rng rng(6);
    const MatrixXf x = random_matrix(52, 13, rng);
    CHECK(worst_error(matmul(m, x), layer.dequantize(), x) <= 1.0);
    const MatrixXf x4 = random_matrix(52, 4, rng);
    CHECK(same_bits(matmul(m, x4), gemv(m, x4)));
}

TEST_CASE("VQ GEMV: errors", "[kernels][vq]") {
    VqLayer layer = random_vq_layer(37, 52, 4, 16, 37, 52, 0, 41);
    const VqGemvMatrix m = VqGemvMatrix::from_layer(layer);
    MatrixXf y(37, 1);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(51, 1), y), shape_error);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(52, 9)), shape_error);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(52, 0)), shape_error);
    MatrixXf y_bad(36, 1);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(52, 1), y_bad), shape_error);
    CHECK_THROWS_WITH(gemv(m, MatrixXf::Zero(51, 1), y), Catch::Contains("x has 51 rows"));
    CHECK_THROWS_AS(matmul(m, MatrixXf::Zero(50, 20)), shape_error);

    VqLayer bad = layer;
    bad.indices(3, 2) = 16;
    CHECK_THROWS_AS(VqGemvMatrix::from_layer(bad), invalid_argument);
    bad = layer;
    bad.layout.columns_per_group = 26;  // codebook count no longer matches
    CHECK_THROWS_AS(VqGemvMatrix::from_layer(bad), shape_error);
    bad = layer;
    bad.scale_block = 6;  // not a multiple of D = 4
    bad.scales = MatrixXf::Ones(37, 9);
    CHECK_THROWS_AS(VqGemvMatrix::from_layer(bad), invalid_argument);
    bad = layer;
    bad.codebooks(5, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(VqGemvMatrix::from_layer(bad), numerical_error);
    CHECK_THROWS_WITH(VqGemvMatrix::from_layer(bad), Catch::Contains("codebooks(5, 1)"));
    bad = layer;
    bad.scale_block = 4;
    bad.scales = MatrixXf::Ones(37, 13);
    bad.scales(2, 3) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(VqGemvMatrix::from_layer(bad), Catch::Contains("scales(2, 3)"));

    const auto large = VqGemvMatrix::from_layer(random_vq_layer(16, 16, 2, 300, 16, 16, 0, 3));
    CHECK_THROWS_AS(gemv(large, MatrixXf::Zero(16, 1), {Isa::automatic, VqStrategy::lut, true}),
                    invalid_argument);
}
