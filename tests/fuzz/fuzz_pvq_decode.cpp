// libFuzzer target for vqlib/lattice/pvq_codec.hpp: N, K, the index type, the enumeration order,
// an index and a candidate codeword all come from the input. decode must throw exactly when the
// index is >= V(N, K), must produce a codeword (||y||_1 = K) that encodes back to the index, and
// encode of an arbitrary vector must either throw or round-trip. Sanitizers catch any
// out-of-bounds access.
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/index_types.hpp>
#include <vqlib/lattice/pvq_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

namespace {

using namespace vqlib::lattice;

void require(bool condition) {
    if (!condition) std::abort();
}

template <PvqIndex Idx>
Idx index_from_bytes(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint32_t> words(static_cast<std::size_t>(index_bits<Idx> / 32), 0u);
    for (std::size_t i = 0; i < size && i < words.size() * 4; ++i)
        words[i / 4] |= static_cast<std::uint32_t>(data[i]) << (8 * (i % 4));
    Idx out{};
    require(detail::from_words<Idx>(words, out));
    return out;
}

template <PvqIndex Idx>
void run(int N, int K, EnumerationOrder order, const std::uint8_t* data, std::size_t size) {
    std::optional<PvqCodec<Idx>> codec;
    try {
        codec.emplace(N, K);
    } catch (const vqlib::invalid_argument&) {
        return;  // V(N, K) does not fit in Idx
    }
    const std::size_t index_bytes = static_cast<std::size_t>(index_bits<Idx> / 8);
    Idx i = index_from_bytes<Idx>(data, size < index_bytes ? size : index_bytes);
    std::vector<std::int32_t> y(static_cast<std::size_t>(N));
    bool threw = false;
    try {
        codec->decode(i, y, order);
    } catch (const vqlib::invalid_argument&) {
        threw = true;
    }
    require(threw == !(i < codec->size()));
    if (threw) {
        while (!(i < codec->size())) i = static_cast<Idx>(i >> 1);
        codec->decode(i, y, order);
    }
    std::int64_t norm = 0;
    for (auto v : y) norm += v < 0 ? -static_cast<std::int64_t>(v) : v;
    require(norm == K);
    require(codec->encode(y, order) == i);

    // Encode an arbitrary vector built from the rest of the input.
    if (size > index_bytes) {
        const std::uint8_t* rest = data + index_bytes;
        const std::size_t rest_size = size - index_bytes;
        std::vector<std::int32_t> x(static_cast<std::size_t>(N));
        for (std::size_t j = 0; j < x.size() && j < rest_size; ++j) {
            x[j] = static_cast<std::int8_t>(rest[j]);
            if (rest[j] == 0x80) x[j] = INT32_MIN;
            if (rest[j] == 0x7f) x[j] = INT32_MAX;
        }
        try {
            const Idx e = codec->encode(x, order);
            require(e < codec->size());
            std::vector<std::int32_t> back(x.size());
            codec->decode(e, back, order);
            require(back == x);
        } catch (const vqlib::invalid_argument&) {
            norm = 0;
            for (auto v : x) norm += v < 0 ? -static_cast<std::int64_t>(v) : v;
            require(norm != K);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const int type = data[0] & 3;
    const auto order = (data[0] & 4) != 0 ? EnumerationOrder::fischer : EnumerationOrder::opus;
    const int N = 1 + data[1] % 64;
    const int K = (data[0] & 8) != 0 ? data[2] % 128 : data[2] % 24;
    data += 3;
    size -= 3;
    switch (type) {
        case 0: run<std::uint32_t>(N, K, order, data, size); break;
        case 1: run<std::uint64_t>(N, K, order, data, size); break;
        case 2: run<uint128>(N, K, order, data, size); break;
        default: run<BigUint<4>>(N, K, order, data, size); break;
    }
    return 0;
}
