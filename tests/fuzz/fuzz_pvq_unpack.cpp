// libFuzzer target for vqlib/lattice/packing.hpp: the radix V, the chunk layout, the index count
// and the packed stream all come from the input. unpack_indices must either throw a vqlib::error
// or return indices below V that pack back to the same stream (up to the padding bits of the last
// byte). Sanitizers catch any out-of-bounds access.
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/index_types.hpp>
#include <vqlib/lattice/packing.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

namespace {

using namespace vqlib::lattice;

void require(bool condition) {
    if (!condition) std::abort();
}

template <PvqIndex Idx>
void run(int layout_kind, int chunk, std::size_t count, const std::uint8_t* data,
         std::size_t size) {
    // Radix: 1 .. index_bits/8 little-endian bytes, 0 read as 1.
    if (size < 1) return;
    const std::size_t max_bytes = static_cast<std::size_t>(index_bits<Idx> / 8);
    const std::size_t radix_bytes = 1 + data[0] % max_bytes;
    if (size < 1 + radix_bytes) return;
    std::vector<std::uint32_t> words(max_bytes / 4, 0u);
    for (std::size_t i = 0; i < radix_bytes; ++i)
        words[i / 4] |= static_cast<std::uint32_t>(data[1 + i]) << (8 * (i % 4));
    Idx radix{};
    require(detail::from_words<Idx>(words, radix));
    if (radix == Idx(0)) radix = Idx(1);
    const std::span<const std::uint8_t> stream(data + 1 + radix_bytes, size - 1 - radix_bytes);

    std::optional<PackedIndexLayout> layout;
    try {
        if (layout_kind == 0) layout = PackedIndexLayout::fixed_width(radix);
        else if (layout_kind == 1) layout = PackedIndexLayout::chunked(radix, chunk);
        else layout = PackedIndexLayout::automatic(radix, 64 * chunk);
    } catch (const vqlib::invalid_argument&) {
        return;
    }
    std::vector<Idx> indices;
    try {
        indices = unpack_indices<Idx>(stream, count, *layout);
    } catch (const vqlib::error&) {
        return;
    }
    require(indices.size() == count);
    for (const auto& i : indices) require(i < radix);
    const auto repacked = pack_indices<Idx>(indices, *layout);
    const std::size_t bytes = layout->total_bytes(count);
    require(repacked.size() == bytes && stream.size() >= bytes);
    const std::uint64_t bits = layout->total_bits(count);
    for (std::size_t b = 0; b < bytes; ++b) {
        std::uint8_t mask = 0xff;
        if (b == bytes - 1 && bits % 8 != 0)
            mask = static_cast<std::uint8_t>((1u << (bits % 8)) - 1u);
        require((repacked[b] & mask) == (stream[b] & mask));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const int type = data[0] & 3;
    const int layout_kind = (data[0] >> 2) % 3;
    const int chunk = 1 + data[1] % 24;
    const std::size_t count = data[2];
    data += 3;
    size -= 3;
    switch (type) {
        case 0: run<std::uint32_t>(layout_kind, chunk, count, data, size); break;
        case 1: run<std::uint64_t>(layout_kind, chunk, count, data, size); break;
        case 2: run<uint128>(layout_kind, chunk, count, data, size); break;
        default: run<BigUint<4>>(layout_kind, chunk, count, data, size); break;
    }
    return 0;
}
