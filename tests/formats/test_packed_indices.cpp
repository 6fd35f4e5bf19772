// Tests of vqlib/formats/packed_indices.hpp: golden vectors worked out by hand from the format
// (docs/vptq.md), round trips at every width 1..32 against an independent bit-by-bit
// packer, and one malformed input per error.
#include <vqlib/formats/packed_indices.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using Catch::Matchers::Contains;
using vqlib::io::PackedLayout;

namespace {

PackedLayout layout_of(std::int64_t groups, std::int64_t rows, std::int64_t codes_per_row,
                       int index_bits, int residual_bits) {
    PackedLayout layout;
    layout.groups = groups;
    layout.rows = rows;
    layout.codes_per_row = codes_per_row;
    layout.index_bits = index_bits;
    layout.residual_bits = residual_bits;
    return layout;
}

/// The format's definition, one bit at a time: code j's bit i is stream bit j*T + i, and stream
/// bit s is bit s % 32 of word s / 32; the row is zero-padded to whole words.
std::vector<std::uint32_t> reference_pack_row(const std::vector<std::uint64_t>& codes, int bits) {
    std::vector<bool> stream;
    for (const std::uint64_t code : codes)
        for (int i = 0; i < bits; ++i) stream.push_back(((code >> i) & 1u) != 0);
    while (stream.size() % 32 != 0) stream.push_back(false);
    std::vector<std::uint32_t> words(stream.size() / 32, 0u);
    for (std::size_t s = 0; s < stream.size(); ++s)
        if (stream[s]) words[s / 32] |= std::uint32_t{1} << (s % 32);
    return words;
}

/// Splits merged codes into (index, residual) for a layout with index_bits b.
void split(const std::vector<std::uint32_t>& codes, int b, std::vector<std::uint32_t>& indices,
           std::vector<std::uint32_t>& residuals) {
    indices.clear();
    residuals.clear();
    for (const std::uint32_t code : codes) {
        indices.push_back(static_cast<std::uint32_t>(code & ((std::uint64_t{1} << b) - 1)));
        residuals.push_back(static_cast<std::uint32_t>(std::uint64_t{code} >> b));
    }
}

struct golden {
    const char* name;
    int index_bits;
    int residual_bits;
    std::vector<std::uint32_t> codes;  // one row
    std::vector<std::uint32_t> words;  // worked out by hand
};

template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const vqlib::error& e) {
        return e.what();
    }
    return "(no exception)";
}

}  // namespace

TEST_CASE("io/packed_indices: layout sizes", "[io][packed_indices]") {
    const PackedLayout l = layout_of(2, 3, 5, 8, 5);  // T = 13: 65 bits per row -> 3 words
    CHECK(l.total_bits() == 13);
    CHECK(l.words_per_row() == 3);
    CHECK(l.total_words() == 18);
    CHECK(l.total_codes() == 30);
    CHECK(l.shape() == std::array<std::int64_t, 3>{2, 3, 3});
    CHECK(l.index_limit() == 256);
    CHECK(l.residual_limit() == 32);

    // VPTQ's packed_groupsize = ceil(group_size * T / 32), e.g. v8-k65536-256 on 4096 columns.
    CHECK(layout_of(1, 512, 4096, 16, 8).words_per_row() == 4096 * 24 / 32);
    CHECK(layout_of(1, 1, 4095, 12, 0).words_per_row() == (4095 * 12 + 31) / 32);
    CHECK(layout_of(1, 1, 1, 32, 0).words_per_row() == 1);
    CHECK(layout_of(1, 1, 0, 7, 0).words_per_row() == 0);
    CHECK(layout_of(1, 1, 33, 1, 0).words_per_row() == 2);

    PackedLayout limited = layout_of(1, 1, 1, 12, 12);
    limited.num_centroids = 4000;
    limited.num_res_centroids = 4096;
    CHECK(limited.index_limit() == 4000);
    CHECK(limited.residual_limit() == 4096);
    CHECK_NOTHROW(limited.validate());
    CHECK(layout_of(1, 1, 1, 32, 0).index_limit() == std::uint64_t{1} << 32);
    CHECK(layout_of(1, 1, 1, 8, 0).residual_limit() == 1);
}

TEST_CASE("io/packed_indices: invalid layouts are invalid_argument", "[io][packed_indices]") {
    const auto fails = [](const PackedLayout& l, const std::string& keyword) {
        CHECK_THROWS_AS(l.validate(), vqlib::invalid_argument);
        CHECK_THAT(message_of([&] { l.validate(); }), Contains(keyword));
    };
    fails(layout_of(1, 1, 1, 0, 0), "index_bits = 0");
    fails(layout_of(1, 1, 1, 33, 0), "index_bits = 33");
    fails(layout_of(1, 1, 1, 16, 17), "residual_bits = 17");
    fails(layout_of(1, 1, 1, 8, -1), "residual_bits = -1");
    fails(layout_of(-1, 1, 1, 8, 0), "groups = -1");
    fails(layout_of(1, -2, 1, 8, 0), "rows = -2");
    fails(layout_of(1, 1, -3, 8, 0), "codes_per_row = -3");
    fails(layout_of(std::int64_t{1} << 30, std::int64_t{1} << 30, 1, 8, 0), "too many");
    fails(layout_of(1, 1, std::int64_t{1} << 62, 8, 0), "too many");

    PackedLayout l = layout_of(1, 1, 1, 8, 0);
    l.num_centroids = 257;
    fails(l, "num_centroids = 257");
    l = layout_of(1, 1, 1, 8, 0);
    l.num_res_centroids = 4;
    fails(l, "num_res_centroids = 4 with residual_bits = 0");
    l = layout_of(1, 1, 1, 8, 2);
    l.num_res_centroids = 5;
    fails(l, "num_res_centroids = 5");

    // Every operation validates first.
    const PackedLayout bad = layout_of(1, 1, 1, 0, 0);
    const std::vector<std::uint32_t> one{0};
    CHECK_THROWS_AS(vqlib::io::pack_codes(bad, one), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::io::unpack_codes(bad, std::span<const std::uint32_t>(one)),
                    vqlib::invalid_argument);
}

TEST_CASE("io/packed_indices: merged codes put the residual above the index",
          "[io][packed_indices]") {
    using vqlib::io::code_index;
    using vqlib::io::code_residual;
    using vqlib::io::merge_code;
    CHECK(merge_code(0x12, 0x3, 8) == 0x312u);
    CHECK(merge_code(0xBEEF, 0xDEAD, 16) == 0xDEADBEEFu);
    CHECK(merge_code(0xFFFFFFFFu, 0, 32) == 0xFFFFFFFFu);
    CHECK(code_index(0xDEADBEEFu, 16) == 0xBEEFu);
    CHECK(code_residual(0xDEADBEEFu, 16) == 0xDEADu);
    CHECK(code_index(0xFFFFFFFFu, 32) == 0xFFFFFFFFu);
    CHECK(code_residual(0xFFFFFFFFu, 32) == 0u);
    CHECK(code_index(0x1FFFu, 1) == 1u);
    CHECK(code_residual(0x1FFFu, 1) == 0xFFFu);
}

TEST_CASE("io/packed_indices: golden vectors worked out by hand", "[io][packed_indices]") {
    const std::vector<golden> cases = {
        // T = 13 (b = 8, b_r = 5), 5 codes = 65 bits -> 3 words.
        //   code 0 0x1FFF at bits  0..12 of word 0            -> word 0 |= 0x00001FFF
        //   code 1 0x0001 at bits 13..25 of word 0            -> word 0 |= 0x00002000
        //   code 2 0x1000 at stream bits 26..38: its low 6 bits (0) end word 0, its high 7
        //          bits (0x1000 >> 6 = 0x40) are bits 0..6 of word 1  -> word 1 |= 0x00000040
        //   code 3 0x0AAA at stream bits 39..51 = bits 7..19 of word 1 -> word 1 |= 0x00055500
        //   code 4 0x1555 at stream bits 52..64: low 12 bits 0x555 are bits 20..31 of word 1
        //          (|= 0x55500000), its top bit is bit 0 of word 2     -> word 2 = 0x00000001
        //   word 2's bits 1..31 are padding.
        {"T=13 straddling", 8, 5, {0x1FFF, 0x0001, 0x1000, 0x0AAA, 0x1555},
         {0x00003FFF, 0x55555540, 0x00000001}},
        // T = 32 (b = b_r = 16): each code is one word, residual in the high half.
        {"T=32", 16, 16, {0xDEADBEEF, 0x00000001, 0x80000000},
         {0xDEADBEEF, 0x00000001, 0x80000000}},
        // T = 17 (b = 16, b_r = 1), 3 codes = 51 bits -> 2 words.
        //   code 0 0x1FFFF at bits 0..16 of word 0                       -> 0x0001FFFF
        //   code 1 0x15555 at stream bits 17..33: low 15 bits 0x5555 are bits 17..31 of word 0
        //          (0x5555 << 17 = 0xAAAA0000), high 2 bits 0b10 are bits 0..1 of word 1 (0x2)
        //   code 2 0x10001 at stream bits 34..50 = bits 2..18 of word 1  -> 0x00040004
        {"T=17", 16, 1, {0x1FFFF, 0x15555, 0x10001}, {0xAAABFFFF, 0x00040006}},
        // T = 1: code j is bit j; codes 1 at j = 0, 3, 6, ..., 33 of 35 codes.
        //   word 0: bits 0, 3, ..., 30 = 0x49249249; word 1: code 33 is bit 1 -> 0x2.
        {"T=1",
         1,
         0,
         {1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0,
          1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0},
         {0x49249249, 0x00000002}},
        // T = 24 (b = 16, b_r = 8: VPTQ's v8-k65536-256), 4 codes = 96 bits, no padding.
        //   word 0 = code 0 0xAB1234 | low byte of code 1 (0xFF) << 24      = 0xFFAB1234
        //   word 1 = code 1 >> 8 (0x01FF) | low 16 bits of code 2 (0) << 16 = 0x000001FF
        //   word 2 = code 2 >> 16 (0xFF) | code 3 0x7F8001 << 8             = 0x7F8001FF
        {"T=24", 16, 8, {0xAB1234, 0x01FFFF, 0xFF0000, 0x7F8001},
         {0xFFAB1234, 0x000001FF, 0x7F8001FF}},
        // b = 4 < b_r = 12 (T = 16): residuals wider than the index must come back whole.
        //   code 0 = 0xFFF << 4 | 0xA = 0xFFFA, code 1 = 0x123 << 4 | 0x5 = 0x1235.
        {"b_r > b", 4, 12, {0xFFFA, 0x1235}, {0x1235FFFA}},
        // A row of a single 13-bit code: 19 bits of padding (more than the code itself).
        {"one 13-bit code", 13, 0, {0x1ABC}, {0x00001ABC}},
        // A row of a single 16-bit code: 16 bits of padding, still one code.
        {"one 16-bit code", 8, 8, {0xBEEF}, {0x0000BEEF}},
        // T = 31 (b = 16, b_r = 15), all ones: 62 bits, bits 30..31 of word 1 are padding.
        {"T=31 all ones", 16, 15, {0x7FFFFFFF, 0x7FFFFFFF}, {0xFFFFFFFF, 0x3FFFFFFF}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const int bits = c.index_bits + c.residual_bits;
        const PackedLayout layout = layout_of(1, 1, static_cast<std::int64_t>(c.codes.size()),
                                              c.index_bits, c.residual_bits);
        REQUIRE(layout.words_per_row() == static_cast<std::int64_t>(c.words.size()));
        // The independent bit-by-bit packer agrees with the hand-worked words.
        CHECK(reference_pack_row(std::vector<std::uint64_t>(c.codes.begin(), c.codes.end()),
                                 bits) == c.words);

        std::vector<std::uint32_t> indices, residuals;
        split(c.codes, c.index_bits, indices, residuals);
        if (c.residual_bits == 0) residuals.clear();
        const auto packed = vqlib::io::pack_codes(layout, indices, residuals);
        CHECK(packed.words == c.words);
        CHECK(vqlib::io::pack_merged_codes(layout, c.codes).words == c.words);

        const auto unpacked =
            vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(c.words));
        CHECK(unpacked.indices == indices);
        CHECK(unpacked.residuals == residuals);
        for (std::size_t j = 0; j < c.codes.size(); ++j)
            CHECK(vqlib::io::read_code(c.words, static_cast<std::int64_t>(j), bits) == c.codes[j]);
    }
}

TEST_CASE("io/packed_indices: rows and groups are packed independently", "[io][packed_indices]") {
    // G = 2, R = 2, 3 codes of T = 12 per row: 36 bits, so 2 words per row; every row starts a
    // fresh word. Row (0, 0): 0xABC | 0xDEF << 12 | 0x123 << 24 -> word 0 = 0x23DEFABC (the low
    // 8 bits of 0x123), word 1 = 0x1 (its top 4 bits).
    const PackedLayout layout = layout_of(2, 2, 3, 12, 0);
    const std::vector<std::uint32_t> codes = {0xABC, 0xDEF, 0x123,   // (0, 0)
                                              0xFFF, 0x000, 0x001,   // (0, 1)
                                              0x800, 0x400, 0x200,   // (1, 0)
                                              0x111, 0x222, 0x333};  // (1, 1)
    const std::vector<std::uint32_t> words = {0x23DEFABC, 0x1,   //
                                              0x01000FFF, 0x0,   //
                                              0x00400800, 0x2,   //
                                              0x33222111, 0x3};
    const auto packed = vqlib::io::pack_codes(layout, codes);
    CHECK(packed.words == words);
    CHECK(packed.shape() == std::array<std::int64_t, 3>{2, 2, 2});
    CHECK(std::vector<std::uint32_t>(packed.row(1, 0).begin(), packed.row(1, 0).end()) ==
          std::vector<std::uint32_t>{0x00400800, 0x2});
    CHECK_THROWS_AS(packed.row(2, 0), vqlib::invalid_argument);
    CHECK_THROWS_AS(packed.row(0, -1), vqlib::invalid_argument);

    const auto unpacked = vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(words));
    CHECK(unpacked.indices == codes);
    CHECK(unpacked.residuals.empty());
}

TEST_CASE("io/packed_indices: round trips at every width against the bit-by-bit packer",
          "[io][packed_indices]") {
    std::mt19937_64 rng(20240917);
    for (int bits = 1; bits <= 32; ++bits) {
        for (int b = 1; b <= bits; ++b) {
            const int b_r = bits - b;
            CAPTURE(bits, b, b_r);
            const std::int64_t groups = 2, rows = 3;
            const std::int64_t per_row = 1 + static_cast<std::int64_t>(rng() % 70);
            const PackedLayout layout = layout_of(groups, rows, per_row, b, b_r);
            const std::size_t n = static_cast<std::size_t>(groups * rows * per_row);
            std::vector<std::uint32_t> indices(n), residuals(b_r > 0 ? n : 0);
            for (std::size_t k = 0; k < n; ++k) {
                // Mostly random, with all-ones and zero codes mixed in to hit every bit.
                const std::uint64_t pick = rng() % 8;
                const std::uint64_t index_mask = (std::uint64_t{1} << b) - 1;
                const std::uint64_t residual_mask = (std::uint64_t{1} << b_r) - 1;
                indices[k] = static_cast<std::uint32_t>(
                    pick == 0 ? index_mask : pick == 1 ? 0 : rng() & index_mask);
                if (b_r > 0)
                    residuals[k] = static_cast<std::uint32_t>(
                        pick == 0 ? residual_mask : pick == 1 ? 0 : rng() & residual_mask);
            }
            const auto packed = vqlib::io::pack_codes(layout, indices, residuals);
            REQUIRE(packed.words.size() == static_cast<std::size_t>(layout.total_words()));

            std::vector<std::uint32_t> expected;
            for (std::int64_t row = 0; row < groups * rows; ++row) {
                std::vector<std::uint64_t> codes;
                for (std::int64_t c = 0; c < per_row; ++c) {
                    const auto k = static_cast<std::size_t>(row * per_row + c);
                    codes.push_back(std::uint64_t{b_r > 0 ? residuals[k] : 0u} << b | indices[k]);
                }
                const auto words = reference_pack_row(codes, bits);
                expected.insert(expected.end(), words.begin(), words.end());
            }
            REQUIRE(packed.words == expected);

            const auto unpacked =
                vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(packed.words));
            CHECK(unpacked.indices == indices);
            CHECK(unpacked.residuals == residuals);

            // read_code on each row agrees.
            const auto row = packed.row(1, 2);
            for (std::int64_t c = 0; c < per_row; ++c) {
                const auto k = static_cast<std::size_t>((1 * rows + 2) * per_row + c);
                const std::uint32_t code = vqlib::io::merge_code(
                    indices[k], b_r > 0 ? residuals[k] : 0u, b);
                CHECK(vqlib::io::read_code(row, c, bits) == code);
            }
        }
    }
}

TEST_CASE("io/packed_indices: empty layouts", "[io][packed_indices]") {
    for (const auto& layout : {layout_of(0, 5, 7, 8, 0), layout_of(3, 0, 7, 8, 0),
                               layout_of(3, 4, 0, 8, 8)}) {
        CAPTURE(layout.groups, layout.rows, layout.codes_per_row);
        const std::vector<std::uint32_t> none;
        const auto packed = vqlib::io::pack_codes(layout, none, layout.residual_bits > 0
                                                                    ? none
                                                                    : std::vector<std::uint32_t>{});
        CHECK(packed.words.empty());
        const auto unpacked = vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(none));
        CHECK(unpacked.indices.empty());
        CHECK(unpacked.residuals.empty());
    }
}

TEST_CASE("io/packed_indices: int32 words are reinterpreted, not sign-extended",
          "[io][packed_indices]") {
    // Codes of T = 24 whose words have the top bit set, as int32 they are negative.
    const PackedLayout layout = layout_of(1, 1, 4, 16, 8);
    const std::vector<std::uint32_t> codes = {0xAB1234, 0x01FFFF, 0xFF0000, 0x7F8001};
    const auto packed = vqlib::io::pack_merged_codes(layout, codes);
    const std::vector<std::int32_t> signed_words = vqlib::io::as_int32_words(packed.words);
    REQUIRE(signed_words[0] < 0);
    CHECK(signed_words[0] == static_cast<std::int32_t>(0xFFAB1234u - 0x100000000ull));
    const auto unpacked =
        vqlib::io::unpack_codes(layout, std::span<const std::int32_t>(signed_words));
    CHECK(unpacked.indices == std::vector<std::uint32_t>{0x1234, 0xFFFF, 0x0000, 0x8001});
    CHECK(unpacked.residuals == std::vector<std::uint32_t>{0xAB, 0x01, 0xFF, 0x7F});
}

TEST_CASE("io/packed_indices: write_code replaces one code in place", "[io][packed_indices]") {
    // Start from the T = 13 golden row and rewrite the straddling code 2 and the last code.
    std::vector<std::uint32_t> row = {0x00003FFF, 0x55555540, 0x00000001};
    vqlib::io::write_code(row, 2, 13, 0x1FFF);
    vqlib::io::write_code(row, 4, 13, 0x0000);
    CHECK(vqlib::io::read_code(row, 0, 13) == 0x1FFFu);
    CHECK(vqlib::io::read_code(row, 1, 13) == 0x0001u);
    CHECK(vqlib::io::read_code(row, 2, 13) == 0x1FFFu);
    CHECK(vqlib::io::read_code(row, 3, 13) == 0x0AAAu);
    CHECK(vqlib::io::read_code(row, 4, 13) == 0x0000u);
    CHECK(row == reference_pack_row({0x1FFF, 0x0001, 0x1FFF, 0x0AAA, 0x0000}, 13));

    std::vector<std::uint32_t> word = {0};
    vqlib::io::write_code(word, 0, 32, 0xFFFFFFFFu);
    CHECK(word[0] == 0xFFFFFFFFu);
    vqlib::io::write_code(word, 0, 32, 0x12345678u);
    CHECK(word[0] == 0x12345678u);

    CHECK_THROWS_AS(vqlib::io::write_code(row, 0, 13, 0x2000), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::io::write_code(row, 7, 13, 0), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::io::read_code(row, 7, 13), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::io::read_code(row, -1, 13), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::io::read_code(row, 0, 0), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::io::read_code(row, 0, 33), vqlib::invalid_argument);
    // Code 6 of 13 bits would end at bit 91 of 96: inside the row, so readable (padding).
    CHECK(vqlib::io::read_code(row, 6, 13) == 0u);
}

TEST_CASE("io/packed_indices: pack_codes rejects codes that do not fit",
          "[io][packed_indices][errors]") {
    const PackedLayout layout = layout_of(1, 2, 3, 4, 2);
    std::vector<std::uint32_t> indices = {1, 2, 3, 4, 5, 6};
    std::vector<std::uint32_t> residuals = {0, 1, 2, 3, 0, 1};
    CHECK_NOTHROW(vqlib::io::pack_codes(layout, indices, residuals));

    indices[4] = 16;  // needs 5 bits: would spill into the residual
    CHECK_THROWS_AS(vqlib::io::pack_codes(layout, indices, residuals), vqlib::invalid_argument);
    CHECK_THAT(message_of([&] { vqlib::io::pack_codes(layout, indices, residuals); }),
               Contains("index 16 at (group 0, row 1, column 1) is out of range"));
    indices[4] = 5;

    residuals[2] = 4;
    CHECK_THAT(message_of([&] { vqlib::io::pack_codes(layout, indices, residuals); }),
               Contains("residual index 4 at (group 0, row 0, column 2) is out of range"));
    residuals[2] = 2;

    PackedLayout limited = layout;
    limited.num_centroids = 6;
    CHECK_THAT(message_of([&] { vqlib::io::pack_codes(limited, indices, residuals); }),
               Contains("index 6 at (group 0, row 1, column 2)") && Contains("expected < 6"));

    // Wrong counts.
    CHECK_THROWS_AS(vqlib::io::pack_codes(layout, std::vector<std::uint32_t>(5), residuals),
                    vqlib::shape_error);
    CHECK_THROWS_AS(vqlib::io::pack_codes(layout, indices, std::vector<std::uint32_t>{}),
                    vqlib::shape_error);
    CHECK_THAT(message_of([&] {
                   vqlib::io::pack_codes(layout_of(1, 2, 3, 4, 0), indices, residuals);
               }),
               Contains("without a residual"));
    CHECK_THAT(message_of([&] {
                   vqlib::io::pack_merged_codes(layout_of(1, 1, 1, 4, 2),
                                                std::vector<std::uint32_t>{64});
               }),
               Contains("code 64 at position 0 does not fit in 6 bits"));
}

TEST_CASE("io/packed_indices: unpack_codes validates the words", "[io][packed_indices][errors]") {
    const PackedLayout layout = layout_of(1, 2, 5, 8, 5);  // 3 words per row
    const std::vector<std::uint32_t> golden_row = {0x00003FFF, 0x55555540, 0x00000001};
    std::vector<std::uint32_t> words = golden_row;
    words.insert(words.end(), golden_row.begin(), golden_row.end());
    CHECK_NOTHROW(vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(words)));

    SECTION("word count") {
        std::vector<std::uint32_t> short_words(words.begin(), words.end() - 1);
        CHECK_THROWS_AS(
            vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(short_words)),
            vqlib::shape_error);
        CHECK_THAT(message_of([&] {
                       vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(short_words));
                   }),
                   Contains("5 words: expected G * R * W = 1 * 2 * 3 = 6"));
    }
    SECTION("non-zero padding") {
        words[5] |= 0x80000000u;  // row 1's last word, bit 31: padding
        CHECK_THROWS_AS(vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(words)),
                        vqlib::io_error);
        CHECK_THAT(message_of([&] {
                       vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(words));
                   }),
                   Contains("row (group 0, row 1) has non-zero padding bits") &&
                       Contains("0x80000001") && Contains("bits 1..31"));
    }
    SECTION("a layout with too few codes per row shows up as padding") {
        // Rows of 4 byte-wide codes (32 bits, one word) read as rows of 3 (24 bits, still one
        // word): the word count matches, but the 4th code lands in the padding.
        const auto four = vqlib::io::pack_codes(layout_of(1, 2, 4, 8, 0),
                                                std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6, 7, 8});
        const PackedLayout three = layout_of(1, 2, 3, 8, 0);
        CHECK_THROWS_AS(
            vqlib::io::unpack_codes(three, std::span<const std::uint32_t>(four.words)),
            vqlib::io_error);
        CHECK_THAT(message_of([&] {
                       vqlib::io::unpack_codes(three, std::span<const std::uint32_t>(four.words));
                   }),
                   Contains("row (group 0, row 0) has non-zero padding bits") &&
                       Contains("0x4030201") && Contains("does not match the data"));
    }
    SECTION("index past the codebook size") {
        PackedLayout limited = layout;
        limited.num_centroids = 200;  // code 0 = 0x1FFF has index 0xFF = 255
        CHECK_THAT(message_of([&] {
                       vqlib::io::unpack_codes(limited, std::span<const std::uint32_t>(words));
                   }),
                   Contains("code 8191 at (group 0, row 0, column 0) has index 255, past the "
                            "codebook size 200"));
        limited = layout;
        limited.num_res_centroids = 16;  // code 0 has residual 0x1F = 31
        CHECK_THAT(message_of([&] {
                       vqlib::io::unpack_codes(limited, std::span<const std::uint32_t>(words));
                   }),
                   Contains("has residual index 31, past the codebook size 16"));
    }
}

TEST_CASE("io/packed_indices: check_packed_shape", "[io][packed_indices]") {
    const PackedLayout layout = layout_of(2, 512, 4096, 16, 8);
    const std::vector<std::int64_t> good = {2, 512, 3072};
    CHECK_NOTHROW(vqlib::io::check_packed_shape(layout, good));
    // VPTQ issue #101: the row length taken from in_features instead of group_size.
    const std::vector<std::int64_t> bad = {2, 512, 6144};
    CHECK_THROWS_AS(vqlib::io::check_packed_shape(layout, bad), vqlib::shape_error);
    CHECK_THAT(message_of([&] { vqlib::io::check_packed_shape(layout, bad); }),
               Contains("[2, 512, 6144]") && Contains("[2, 512, 3072]"));
    const std::vector<std::int64_t> flat = {2 * 512 * 3072};
    CHECK_THROWS_AS(vqlib::io::check_packed_shape(layout, flat), vqlib::shape_error);
}
