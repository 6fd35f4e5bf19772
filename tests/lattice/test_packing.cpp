// Tests of vqlib/lattice/packing.hpp: round trips at every chunk size and index width, the bit
// layout, the achieved rate against log2 V, and malformed streams.
#include <vqlib/core/rng.hpp>
#include <vqlib/lattice/counting.hpp>
#include <vqlib/lattice/packing.hpp>

#include <catch2/catch.hpp>

#include "../support/lattice.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

using namespace vqlib::lattice;
using Catch::Matchers::Contains;

namespace {

using vqlib::test::random_below;


template <PvqIndex Idx>
void check_round_trip(const Idx& V, const PackedIndexLayout& layout, std::size_t count,
                      std::uint64_t seed) {
    INFO("V = " << to_string(V) << ", c = " << layout.vectors_per_chunk() << ", count = " << count);
    vqlib::Rng rng(seed);
    std::vector<Idx> indices(count);
    for (auto& i : indices) i = random_below(rng, V);
    if (count > 2) {  // the extremes
        indices[0] = static_cast<Idx>(V - Idx(1));
        indices[1] = Idx(0);
    }
    const auto bytes = pack_indices<Idx>(indices, layout);
    REQUIRE(bytes.size() == layout.total_bytes(count));
    REQUIRE(layout.total_bits(count) <= 8 * bytes.size());
    REQUIRE(layout.total_bits(count) + 8 > 8 * bytes.size());
    const auto back = unpack_indices<Idx>(bytes, count, layout);
    REQUIRE(back == indices);
    // Trailing bytes are ignored.
    auto longer = bytes;
    longer.push_back(0xff);
    REQUIRE(unpack_indices<Idx>(longer, count, layout) == indices);
}

template <PvqIndex Idx>
void check_all_layouts(const Idx& V, std::uint64_t seed) {
    std::vector<PackedIndexLayout> layouts = {
        PackedIndexLayout::fixed_width(V), PackedIndexLayout::chunked(V, 3),
        PackedIndexLayout::automatic(V), PackedIndexLayout::automatic(V, 64),
        PackedIndexLayout::automatic(V, 1024)};
    for (const auto& layout : layouts) {
        const double ideal = layout.log2_radix();
        CHECK(layout.bits_per_vector() >= ideal - 1e-12);
        CHECK(layout.bits_per_vector() <= ideal + 1.0 / layout.vectors_per_chunk() + 1e-12);
        for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{7},
                                  std::size_t{64}, std::size_t{301}})
            check_round_trip(V, layout, count, seed++);
    }
}

}  // namespace

TEST_CASE("Packing round trips", "[lattice][packing]") {
    check_all_layouts<std::uint32_t>(2816u, 1);        // V(8, 4)
    check_all_layouts<std::uint32_t>(3u, 2);
    check_all_layouts<std::uint32_t>(1u, 3);           // every index is 0
    check_all_layouts<std::uint32_t>(128u, 4);         // V(8, 2), a power of two
    check_all_layouts<std::uint32_t>(pvq_v<std::uint32_t>(8, 36), 5);
    check_all_layouts<std::uint64_t>(pvq_v<std::uint64_t>(16, 8), 6);
    check_all_layouts<std::uint64_t>(pvq_v<std::uint64_t>(16, 58), 7);
    check_all_layouts<std::uint64_t>(~std::uint64_t{0}, 8);
    check_all_layouts<uint128>(pvq_v<uint128>(32, 32), 9);
    check_all_layouts<uint128>(pvq_v<uint128>(32, 50), 10);
    check_all_layouts<BigUint<2>>(pvq_v<BigUint<2>>(64, 32), 11);
    check_all_layouts<BigUint<4>>(pvq_v<BigUint<4>>(128, 64), 12);
    check_all_layouts<BigUint<4>>(BigUint<4>::max(), 13);
    // Chunks of exactly 64 bits, V^c = 2^64.
    check_round_trip<std::uint32_t>(1u << 16,
                                    PackedIndexLayout::chunked(std::uint32_t{1} << 16, 4), 33, 14);
    check_round_trip<std::uint64_t>(std::uint64_t{1} << 32,
                                    PackedIndexLayout::chunked(std::uint64_t{1} << 32, 2), 33, 15);
    // A stream packed from one index type unpacks into another.
    const auto layout = PackedIndexLayout::automatic(std::uint64_t{2816});
    const std::vector<std::uint64_t> wide = {5, 2815, 0, 1000};
    const auto bytes = pack_indices<std::uint64_t>(wide, layout);
    const auto narrow = unpack_indices<std::uint32_t>(bytes, 4, layout);
    CHECK(narrow == std::vector<std::uint32_t>{5, 2815, 0, 1000});
}

TEST_CASE("Packed bit layout", "[lattice][packing]") {
    // Fixed width: V = 3 takes 2 bits, least significant first.
    const auto fixed = PackedIndexLayout::fixed_width(3u);
    CHECK(fixed.bits_per_chunk() == 2u);
    CHECK(pack_indices<std::uint32_t>(std::vector<std::uint32_t>{1, 2, 0, 1}, fixed) ==
          std::vector<std::uint8_t>{1 | 2 << 2 | 0 << 4 | 1 << 6});
    // Five base-3 digits in one byte: 1 + 2·3 + 0·9 + 1·27 + 2·81 = 196 (3^5 = 243 <= 256).
    const auto chunked = PackedIndexLayout::chunked(3u, 5);
    CHECK(chunked.bits_per_chunk() == 8u);
    CHECK(chunked.bits_per_vector() == 1.6);
    CHECK(pack_indices<std::uint32_t>(std::vector<std::uint32_t>{1, 2, 0, 1, 2}, chunked) ==
          std::vector<std::uint8_t>{196});
    // A partial last chunk of 2 digits takes ceil(log2 9) = 4 bits: 2 + 1·3 = 5.
    CHECK(chunked.bits_for_chunk(2) == 4u);
    CHECK(pack_indices<std::uint32_t>(std::vector<std::uint32_t>{1, 2, 0, 1, 2, 2, 1}, chunked) ==
          std::vector<std::uint8_t>{196, 5});
    // Chunks straddle bytes: V = 5, c = 1, 3 bits each.
    const auto five = PackedIndexLayout::fixed_width(5u);
    CHECK(pack_indices<std::uint32_t>(std::vector<std::uint32_t>{4, 3, 1}, five) ==
          std::vector<std::uint8_t>{static_cast<std::uint8_t>(4 | 3 << 3 | (1 & 3) << 6), 0});
    CHECK(five.total_bits(3) == 9u);
}

TEST_CASE("Packing rate", "[lattice][packing]") {
    // Fixed width is ceil(log2 V) bits; the automatic layout approaches log2 V.
    for (int K : {2, 4, 7, 16, 36}) {
        const auto V = pvq_v<std::uint32_t>(8, K);
        INFO("N = 8, K = " << K);
        const auto fixed = PackedIndexLayout::fixed_width(V);
        CHECK(fixed.bits_per_vector() == pvq_index_bits(8, K));
        const auto best = PackedIndexLayout::automatic(V);
        CHECK(best.log2_radix() == Approx(log2_pvq_size(8, K)));
        CHECK(best.bits_per_vector() - log2_pvq_size(8, K) < 0.1);  // chunks of <= 256 bits
        const auto fine = PackedIndexLayout::automatic(V, 4096);
        CHECK(fine.bits_per_vector() - log2_pvq_size(8, K) < 0.01);
        CHECK(fine.total_bytes(1000) <=
              static_cast<std::size_t>(std::ceil((1000 * log2_pvq_size(8, K) + 2 * 4096) / 8)));
    }
    const auto v = pvq_v<uint128>(32, 50);  // 95.x bits: 96 fixed width
    CHECK(PackedIndexLayout::fixed_width(v).bits_per_vector() == 96.0);
    CHECK(PackedIndexLayout::automatic(v, 4096).bits_per_vector() - log2_pvq_size(32, 50) < 0.05);
    const auto p2 = PackedIndexLayout::automatic(128u);
    CHECK(p2.vectors_per_chunk() == 1);
    CHECK(p2.bits_per_vector() == 7.0);
}

TEST_CASE("Malformed packed streams", "[lattice][packing]") {
    const auto layout = PackedIndexLayout::chunked(2816u, 4);  // 46 bits per chunk
    std::vector<std::uint32_t> indices(10, 2815u);
    auto bytes = pack_indices<std::uint32_t>(indices, layout);
    REQUIRE(bytes.size() == layout.total_bytes(10));
    auto truncated = bytes;
    truncated.pop_back();
    CHECK_THROWS_AS(unpack_indices<std::uint32_t>(truncated, 10, layout), vqlib::io_error);
    CHECK_THROWS_WITH(unpack_indices<std::uint32_t>(truncated, 10, layout),
                      Contains(std::to_string(truncated.size()) + " bytes") &&
                          Contains(std::to_string(bytes.size()) + " bytes") &&
                          Contains("10 indices"));
    const std::vector<std::uint8_t> empty;
    CHECK_THROWS_AS(unpack_indices<std::uint32_t>(empty, 1, layout), vqlib::io_error);
    CHECK(unpack_indices<std::uint32_t>(std::vector<std::uint8_t>{}, 0, layout).empty());
    // Chunk values >= V^c.
    const std::vector<std::uint8_t> ones(64, 0xff);
    CHECK_THROWS_WITH(unpack_indices<std::uint32_t>(ones, 10, layout), Contains("chunk 0"));
    CHECK_THROWS_AS(unpack_indices<std::uint32_t>(ones, 1, PackedIndexLayout::fixed_width(3u)),
                    vqlib::io_error);
    const auto v = pvq_v<uint128>(32, 32);
    CHECK_THROWS_AS(unpack_indices<uint128>(ones, 3, PackedIndexLayout::fixed_width(v)),
                    vqlib::io_error);
    CHECK_THROWS_AS(unpack_indices<uint128>(ones, 5, PackedIndexLayout::automatic(v)),
                    vqlib::io_error);
    // Only the second chunk is bad.
    bytes = pack_indices<std::uint32_t>(indices, layout);
    for (std::size_t b = 6; b < 12; ++b) bytes[b] = 0xff;  // bits 48..95: chunk 1 is bits 46..91
    CHECK_THROWS_WITH(unpack_indices<std::uint32_t>(bytes, 10, layout), Contains("chunk 1"));
    // Indices >= V cannot be packed; a too narrow index type cannot unpack.
    indices[3] = 2816u;
    CHECK_THROWS_WITH(pack_indices<std::uint32_t>(indices, layout), Contains("position 3"));
    const auto wide = PackedIndexLayout::fixed_width(std::uint64_t{1} << 40);
    CHECK_THROWS_AS(unpack_indices<std::uint32_t>(std::vector<std::uint8_t>(5), 1, wide),
                    vqlib::invalid_argument);
    // Layout arguments.
    CHECK_THROWS_AS(PackedIndexLayout::fixed_width(0u), vqlib::invalid_argument);
    CHECK_THROWS_AS(PackedIndexLayout::chunked(5u, 0), vqlib::invalid_argument);
    CHECK_THROWS_AS(PackedIndexLayout::chunked(5u, 5000), vqlib::invalid_argument);
    CHECK_THROWS_AS(PackedIndexLayout::chunked(BigUint<4>::max(), 4096), vqlib::invalid_argument);
}
