// libFuzzer target: arbitrary words unpacked with a layout taken from the input's first bytes.
//
// Input: byte 0 -> groups (0..3), byte 1 -> rows (0..7), bytes 2-3 -> codes per row (0..511),
// byte 4 -> index bits (0..33), byte 5 -> residual bits (0..33), byte 6 -> flags (bit 0: limit
// the main codebook to bytes 7-8 + 1 entries; bit 1: limit the residual codebook to byte 9 + 1;
// bit 2: zero-fill or cut the words to the layout's count, so most inputs reach the decoder),
// then the words (4 little-endian bytes each) from byte 10 on. Layouts outside the valid range
// are part of the test: they must be rejected with a vqlib::error.
//
// An unpack either fails with a vqlib::error or yields codes that pack back to exactly the same
// words (the padding is zero and every code is in range), that read_code agrees with, and that
// the int32 overload reproduces.
//
// Build and run (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I include
//           tests/fuzz/fuzz_packed_indices.cpp -o /tmp/fzp
//   /tmp/fzp -max_total_time=30
//
// Built with -DVQLIB_FUZZ_STANDALONE instead of -fsanitize=fuzzer, it gets a main that runs
// each file named on the command line through the target once.
#include <vqlib/formats/packed_indices.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_packed_indices: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t header = 10;
    if (size < header) return 0;
    vqlib::io::PackedLayout layout;
    layout.groups = data[0] % 4;
    layout.rows = data[1] % 8;
    layout.codes_per_row = (data[2] | (data[3] << 8)) % 512;
    layout.index_bits = data[4] % 34;
    layout.residual_bits = data[5] % 34;
    const std::uint8_t flags = data[6];
    if ((flags & 1) != 0) layout.num_centroids = (std::uint64_t{data[7]} << 8 | data[8]) + 1;
    if ((flags & 2) != 0) layout.num_res_centroids = std::uint64_t{data[9]} + 1;

    std::vector<std::uint32_t> words((size - header) / 4);
    if (!words.empty()) std::memcpy(words.data(), data + header, words.size() * 4);
    if ((flags & 4) != 0) {
        try {
            layout.validate();
        } catch (const vqlib::error&) {
            return 0;
        }
        words.resize(static_cast<std::size_t>(layout.total_words()), 0u);
    }

    vqlib::io::UnpackedCodes codes;
    try {
        codes = vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(words));
    } catch (const vqlib::error&) {
        return 0;
    }

    require(codes.indices.size() == static_cast<std::size_t>(layout.total_codes()), "count");
    require(codes.residuals.size() == (layout.residual_bits > 0 ? codes.indices.size() : 0),
            "residual count");
    const auto packed = vqlib::io::pack_codes(layout, codes.indices, codes.residuals);
    require(packed.words == words, "repacking changed the words");

    const int bits = layout.total_bits();
    for (std::int64_t g = 0; g < layout.groups; ++g)
        for (std::int64_t r = 0; r < layout.rows; ++r) {
            const auto row = packed.row(g, r);
            for (std::int64_t c = 0; c < layout.codes_per_row; ++c) {
                const auto k =
                    static_cast<std::size_t>((g * layout.rows + r) * layout.codes_per_row + c);
                const std::uint32_t code = vqlib::io::merge_code(
                    codes.indices[k], layout.residual_bits > 0 ? codes.residuals[k] : 0u,
                    layout.index_bits);
                require(vqlib::io::read_code(row, c, bits) == code, "read_code disagrees");
            }
        }

    const std::vector<std::int32_t> signed_words = vqlib::io::as_int32_words(words);
    const auto again =
        vqlib::io::unpack_codes(layout, std::span<const std::int32_t>(signed_words));
    require(again.indices == codes.indices && again.residuals == codes.residuals,
            "int32 words unpack differently");
    return 0;
}

#include "standalone_main.hpp"
