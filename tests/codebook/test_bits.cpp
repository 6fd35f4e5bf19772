#include <vqlib/codebook/bits.hpp>

#include <catch2/catch.hpp>

#include <cmath>

using Catch::Matchers::WithinAbs;
using vqlib::VqBitsConfig;

TEST_CASE("codebook/bits: the paper's formula reproduces the preset table (docs/gptvq.md)") {
    const struct {
        vqlib::Index dim, k;
        int codebook_bits;
        vqlib::Index l, bs;
        double bpv;
    } rows[] = {
        {1, 4, 16, 512, 0, 2.125},     // 1D 2.125, 16-bit codebook
        {1, 4, 8, 256, 0, 2.125},      // 1D 2.125, 8-bit codebook
        {1, 4, 8, 512, 64, 2.125},     // 1D 2.125, scaling bs64
        {1, 4, 8, 128, 0, 2.25},       // 1D 2.25
        {1, 4, 8, 256, 64, 2.1875},    // 1D 2.25 row with scaling
        {1, 8, 8, 512, 0, 3.125},      // 1D 3.125
        {1, 16, 16, 2048, 0, 4.125},   // 1D 4.125, 16-bit codebook
        {2, 16, 16, 4096, 0, 2.125},   // 2D 2.125, 16-bit codebook
        {2, 16, 8, 2048, 0, 2.125},    // 2D 2.125, 8-bit codebook
        {2, 16, 8, 4096, 64, 2.125},   // 2D 2.125, scaling
        {2, 16, 8, 1024, 0, 2.25},     // 2D 2.25
        {2, 64, 8, 8192, 0, 3.125},    // 2D 3.125 (the mobile configuration)
        {2, 64, 16, 16384, 0, 3.125},  // 2D 3.125, 16-bit codebook
        {2, 256, 8, 32768, 0, 4.125},  // 2D 4.125
        {4, 256, 8, 65536, 0, 2.125},  // 4D 2.125
        {4, 256, 8, 65536, 64, 2.1875},
        {4, 256, 8, 32768, 0, 2.25},   // 4D 2.25
    };
    for (const auto& r : rows) {
        const VqBitsConfig c{.dim = r.dim, .k = r.k, .codebook_bits = r.codebook_bits,
                             .weights_per_codebook = r.l, .normalization_block = r.bs};
        CHECK_THAT(vqlib::paper_bits_per_value(c), WithinAbs(r.bpv, 1e-12));
    }
}

TEST_CASE("codebook/bits: the exact count adds what the paper leaves out") {
    VqBitsConfig c{.dim = 2, .k = 16, .codebook_bits = 8, .weights_per_codebook = 2048};
    auto b = vqlib::exact_bits_per_value(c);
    CHECK(b.indices == 2.0);
    CHECK(b.codebook_entries == 0.125);
    CHECK(b.codebook_scales == 16.0 / 2048.0);  // one fp16 scale per codebook
    CHECK(b.normalization_codes == 0.0);
    CHECK(b.total() == 2.125 + 16.0 / 2048.0);

    c.codebooks_per_scale = 8;  // shared: one scale per 8 codebooks of a column group
    c.codebook_scale_bits = 32;
    CHECK(vqlib::exact_bits_per_value(c).codebook_scales == 32.0 / (8.0 * 2048.0));

    c.codebook_bits = 16;  // float codebooks carry no scale
    c.codebook_scale_bits = 0;
    CHECK(vqlib::exact_bits_per_value(c).total() == 2.25);

    // Normalization: 4-bit codes per 64 weights of a row, two 16-bit values per 64-column
    // sub-block of 4096 rows.
    VqBitsConfig n{.dim = 2, .k = 16, .codebook_bits = 8, .weights_per_codebook = 4096,
                   .normalization_block = 64, .normalization_rows = 4096};
    b = vqlib::exact_bits_per_value(n);
    CHECK(b.normalization_codes == 0.0625);
    CHECK(b.normalization_offsets == 32.0 / (4096.0 * 64.0));
    CHECK(b.total() == 2.0 + 0.0625 + 16.0 / 4096.0 + 0.0625 + 32.0 / (4096.0 * 64.0));
    n.normalization_rows = 0;
    CHECK_THROWS_AS(vqlib::exact_bits_per_value(n), vqlib::invalid_argument);

    // Whole-bit indices: K = 10 needs 4 bits where the formula says log2(10).
    const VqBitsConfig odd{.dim = 1, .k = 10, .codebook_bits = 8, .weights_per_codebook = 1024,
                           .codebook_scale_bits = 0};
    CHECK(vqlib::exact_bits_per_value(odd).indices == 4.0);
    CHECK_THAT(vqlib::paper_bits_per_value(odd), WithinAbs(std::log2(10.0) + 80.0 / 1024.0, 1e-12));
}

TEST_CASE("codebook/bits: invalid configurations") {
    CHECK_THROWS_AS(vqlib::paper_bits_per_value({.dim = 0}), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::paper_bits_per_value({.k = 0}), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::paper_bits_per_value({.weights_per_codebook = 0}),
                    vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::paper_bits_per_value({.normalization_block = -1}),
                    vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::exact_bits_per_value({.codebooks_per_scale = 0}),
                    vqlib::invalid_argument);
}
