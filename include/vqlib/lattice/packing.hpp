#pragma once
// Packing of PVQ index streams at the exact fractional rate (docs/pvq.md).
//
// A sequence of indices i_0, i_1, ..., each in [0, V), is cut into chunks of c consecutive
// indices. A chunk is the single number Σ_j i_j·V^j (mixed radix V, first index least
// significant), stored in bits(c) = ceil(log2 V^c) bits (the bit length of V^c - 1). Chunks are
// concatenated as a little-endian bit stream: bit b of the stream is bit (b mod 8) of byte b/8,
// and each chunk's value is written least significant bit first. A last, partial chunk of
// c' < c indices takes bits(c') bits. Unused bits of the last byte are zero.
//
// The rate is bits(c)/c bits per index, between log2 V and log2 V + 1/c; c = 1 is plain
// fixed-width packing (ceil(log2 V) bits each, random access by bit offset).
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/index_types.hpp>
#include <vqlib/lattice/natural.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace vqlib::lattice {

/// How a stream of indices in [0, V) is packed: radix V, indices per chunk c and bits per chunk.
class PackedIndexLayout {
public:
    /// Most indices in one chunk.
    static constexpr int max_vectors_per_chunk = 4096;
    /// Most bits in one chunk.
    static constexpr std::uint64_t max_bits_per_chunk = std::uint64_t{1} << 16;

    /// Radix 1, one index per chunk (every index is 0 and takes no bits).
    PackedIndexLayout() : PackedIndexLayout(detail::Natural(1), 1) {}

    /// Chunks of `vectors_per_chunk` indices in [0, radix). Throws vqlib::invalid_argument when
    /// radix is 0, vectors_per_chunk is outside [1, 4096] or a chunk would exceed 2^16 bits.
    template <PvqIndex Idx>
    static PackedIndexLayout chunked(const Idx& radix, int vectors_per_chunk) {
        return PackedIndexLayout(detail::Natural::from_index(radix), vectors_per_chunk);
    }

    /// One index per chunk: ceil(log2 radix) bits each.
    template <PvqIndex Idx>
    static PackedIndexLayout fixed_width(const Idx& radix) {
        return chunked(radix, 1);
    }

    /// The chunk size with the lowest rate among those whose chunk fits in max_chunk_bits bits
    /// (at most 2^16; c = 1 is always allowed); the smallest such c on ties. Chunks of at most 64
    /// bits take a faster path; larger chunks cost O(bits²) per chunk to pack and unpack.
    template <PvqIndex Idx>
    static PackedIndexLayout automatic(const Idx& radix, int max_chunk_bits = 256) {
        const detail::Natural v = detail::Natural::from_index(radix);
        VQLIB_CHECK(!v.is_zero(), invalid_argument, "PackedIndexLayout: radix V = 0");
        VQLIB_CHECK(max_chunk_bits >= 1, invalid_argument,
                    "PackedIndexLayout::automatic: max_chunk_bits = ", max_chunk_bits,
                    ": expected >= 1");
        // A power of two packs exactly at c = 1.
        if (v.bit_length() == 0 || is_power_of_two(v)) return PackedIndexLayout(v, 1);
        int best_c = 1;
        std::uint64_t best_bits = chunk_bits(v);
        detail::Natural power = v, next;
        for (int c = 2; c <= max_vectors_per_chunk; ++c) {
            detail::Natural::mul(power, v, next);
            std::swap(power, next);
            const std::uint64_t b = chunk_bits(power);
            if (b > static_cast<std::uint64_t>(max_chunk_bits) || b > max_bits_per_chunk) break;
            const auto c64 = static_cast<std::uint64_t>(c);
            if (b * static_cast<std::uint64_t>(best_c) < best_bits * c64) {
                best_c = c;
                best_bits = b;
            }
        }
        return PackedIndexLayout(v, best_c);
    }

    /// The radix V (indices are in [0, V)), in decimal.
    std::string radix_string() const { return radix_.to_string(); }
    /// The radix V converted to Idx; false when it does not fit.
    template <PvqIndex Idx>
    bool radix(Idx& out) const {
        return radix_.to_index(out);
    }
    /// log2 V, the ideal rate in bits per index.
    double log2_radix() const { return radix_.log2(); }
    /// c, the number of indices per chunk.
    int vectors_per_chunk() const { return chunk_; }
    /// ceil(log2 V^c), the bits of a full chunk.
    std::uint64_t bits_per_chunk() const { return bits_.back(); }
    /// Bits of a chunk of c' <= c indices (c' = 0 gives 0).
    std::uint64_t bits_for_chunk(int indices) const {
        VQLIB_CHECK(indices >= 0 && indices <= chunk_, invalid_argument,
                    "PackedIndexLayout::bits_for_chunk: ", indices, " indices, expected 0..",
                    chunk_);
        return bits_[static_cast<std::size_t>(indices)];
    }
    /// Achieved rate of full chunks: bits_per_chunk / c.
    double bits_per_vector() const {
        return static_cast<double>(bits_per_chunk()) / static_cast<double>(chunk_);
    }
    /// Bits of a stream of `count` indices.
    std::uint64_t total_bits(std::size_t count) const {
        const std::uint64_t full = count / static_cast<std::size_t>(chunk_);
        const std::uint64_t per = bits_per_chunk();
        VQLIB_CHECK(per == 0 || full <= (std::numeric_limits<std::uint64_t>::max() - per) / per,
                    invalid_argument, "PackedIndexLayout: ", count,
                    " indices overflow a bit count");
        return full * per + bits_[count % static_cast<std::size_t>(chunk_)];
    }
    /// Bytes of a stream of `count` indices: ceil(total_bits / 8).
    std::size_t total_bytes(std::size_t count) const {
        const std::uint64_t bits = total_bits(count);
        return static_cast<std::size_t>(bits / 8 + (bits % 8 != 0 ? 1 : 0));
    }

private:
    template <PvqIndex Idx>
    friend std::vector<std::uint8_t> pack_indices(std::span<const Idx>, const PackedIndexLayout&);
    template <PvqIndex Idx>
    friend void unpack_indices(std::span<const std::uint8_t>, const PackedIndexLayout&,
                               std::span<Idx>);

    PackedIndexLayout(const detail::Natural& radix, int vectors_per_chunk)
        : radix_(radix), chunk_(vectors_per_chunk) {
        VQLIB_CHECK(!radix.is_zero(), invalid_argument, "PackedIndexLayout: radix V = 0");
        VQLIB_CHECK(vectors_per_chunk >= 1 && vectors_per_chunk <= max_vectors_per_chunk,
                    invalid_argument, "PackedIndexLayout: vectors_per_chunk = ", vectors_per_chunk,
                    ": expected a value in [1, ", max_vectors_per_chunk, "]");
        // V >= 2^(b-1) gives V^c >= 2^(c(b-1)): reject hopeless sizes before any arithmetic.
        const std::uint64_t b = radix_.bit_length();
        VQLIB_CHECK(static_cast<std::uint64_t>(chunk_) * (b - 1) < max_bits_per_chunk,
                    invalid_argument, "PackedIndexLayout: a chunk of ", vectors_per_chunk,
                    " indices of radix ", radix_.to_string(), " needs more than ",
                    max_bits_per_chunk, " bits");
        bits_.reserve(static_cast<std::size_t>(chunk_) + 1);
        bits_.push_back(0);
        detail::Natural power(1), next;
        for (int c = 1; c <= chunk_; ++c) {
            detail::Natural::mul(power, radix_, next);
            std::swap(power, next);
            const std::uint64_t bits = chunk_bits(power);
            VQLIB_CHECK(bits <= max_bits_per_chunk, invalid_argument,
                        "PackedIndexLayout: a chunk of ", vectors_per_chunk, " indices of radix ",
                        radix_.to_string(), " needs more than ", max_bits_per_chunk, " bits");
            bits_.push_back(bits);
            if (bits <= 64) power_u64_.push_back(power.bit_length() <= 64 ? power.low64() : 0);
        }
        full_power_ = std::move(power);
        radix_u64_ = radix_.low64();
        fast_ = bits_.back() <= 64 && radix_.bit_length() <= 64;
        if (fast_) power_u64_.insert(power_u64_.begin(), 1);
        else power_u64_.clear();
    }

    /// V^c' for c' <= c.
    detail::Natural power_of_radix(int c) const {
        if (c == chunk_) return full_power_;
        detail::Natural power(1), next;
        for (int i = 0; i < c; ++i) {
            detail::Natural::mul(power, radix_, next);
            std::swap(power, next);
        }
        return power;
    }

    static bool is_power_of_two(const detail::Natural& v) {
        int ones = 0;
        for (auto w : v.words()) ones += std::popcount(w);
        return ones == 1;
    }
    // Bits needed for values in [0, p): bit_length(p - 1).
    static std::uint64_t chunk_bits(const detail::Natural& p) {
        detail::Natural m = p;
        m.sub(detail::Natural(1));
        return m.bit_length();
    }

    detail::Natural radix_;
    int chunk_ = 1;
    std::vector<std::uint64_t> bits_;      // bits of a chunk of 0 .. c indices
    detail::Natural full_power_;           // V^c
    bool fast_ = false;                    // V^c <= 2^64: arithmetic in std::uint64_t
    std::uint64_t radix_u64_ = 0;
    std::vector<std::uint64_t> power_u64_;  // V^0 .. V^c when fast_ (V^c = 2^64 stored as 0)
};

namespace detail {

/// Writes bit fields into a zero-initialized byte buffer, least significant bit first.
class BitWriter {
public:
    explicit BitWriter(std::span<std::uint8_t> bytes) : bytes_(bytes) {}
    void write(std::uint64_t value, unsigned nbits) {
        while (nbits > 0) {
            const unsigned off = static_cast<unsigned>(pos_ % 8);
            const unsigned take = std::min(8u - off, nbits);
            const auto mask = static_cast<std::uint64_t>((1u << take) - 1u);
            bytes_[static_cast<std::size_t>(pos_ / 8)] |=
                static_cast<std::uint8_t>((value & mask) << off);
            value = take < 64 ? value >> take : 0;
            pos_ += take;
            nbits -= take;
        }
    }
    void write(const Natural& value, std::uint64_t nbits) {
        const auto& w = value.words();
        for (std::size_t i = 0; nbits > 0; ++i) {
            const unsigned take = nbits < 32 ? static_cast<unsigned>(nbits) : 32u;
            write(i < w.size() ? w[i] : 0u, take);
            nbits -= take;
        }
    }

private:
    std::span<std::uint8_t> bytes_;
    std::uint64_t pos_ = 0;
};

/// Reads bit fields written by BitWriter; the caller guarantees the stream is long enough.
class BitReader {
public:
    explicit BitReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
    std::uint64_t read(unsigned nbits) {
        std::uint64_t value = 0;
        unsigned done = 0;
        while (done < nbits) {
            const unsigned off = static_cast<unsigned>(pos_ % 8);
            const unsigned take = std::min(8u - off, nbits - done);
            const std::uint64_t bits =
                (bytes_[static_cast<std::size_t>(pos_ / 8)] >> off) & ((1u << take) - 1u);
            value |= bits << done;
            done += take;
            pos_ += take;
        }
        return value;
    }
    void read(Natural& out, std::uint64_t nbits) {
        auto& w = out.mutable_words();
        w.clear();
        while (nbits > 0) {
            const unsigned take = nbits < 32 ? static_cast<unsigned>(nbits) : 32u;
            w.push_back(static_cast<std::uint32_t>(read(take)));
            nbits -= take;
        }
        out.trim();
    }

private:
    std::span<const std::uint8_t> bytes_;
    std::uint64_t pos_ = 0;
};

template <PvqIndex Idx>
std::uint64_t low_u64(const Idx& v) {
    if constexpr (is_big_uint<Idx>::value) return v.low64();
    else return static_cast<std::uint64_t>(v);
}

}  // namespace detail

/// Packs `indices` (each < V) with `layout`. Throws vqlib::invalid_argument when an index is
/// >= V (naming its position).
template <PvqIndex Idx>
std::vector<std::uint8_t> pack_indices(std::span<const Idx> indices,
                                       const PackedIndexLayout& layout) {
    std::vector<std::uint8_t> bytes(layout.total_bytes(indices.size()), 0);
    Idx radix{};
    const bool radix_fits = layout.radix_.to_index(radix);  // otherwise every Idx value is < V
    for (std::size_t i = 0; i < indices.size(); ++i)
        VQLIB_CHECK(!radix_fits || indices[i] < radix, invalid_argument, "pack_indices: index ",
                    to_string(indices[i]), " at position ", i, " is not below V = ",
                    to_string(radix));
    detail::BitWriter writer(bytes);
    const std::size_t c = static_cast<std::size_t>(layout.chunk_);
    if (layout.fast_) {
        const std::uint64_t v = layout.radix_u64_;
        for (std::size_t s = 0; s < indices.size(); s += c) {
            const std::size_t len = std::min(c, indices.size() - s);
            std::uint64_t acc = 0;
            for (std::size_t j = len; j-- > 0;) acc = acc * v + detail::low_u64(indices[s + j]);
            writer.write(acc, static_cast<unsigned>(layout.bits_[len]));
        }
        return bytes;
    }
    detail::Natural acc, product, digit;
    const bool small_radix = layout.radix_.size() <= 1;
    const std::uint32_t radix32 = small_radix ? static_cast<std::uint32_t>(layout.radix_u64_) : 0u;
    for (std::size_t s = 0; s < indices.size(); s += c) {
        const std::size_t len = std::min(c, indices.size() - s);
        acc.set_zero();
        for (std::size_t j = len; j-- > 0;) {
            if (small_radix) {
                acc.mul_small(radix32);
            } else {
                detail::Natural::mul(acc, layout.radix_, product);
                std::swap(acc, product);
            }
            digit = detail::Natural::from_index(indices[s + j]);
            acc.add(digit);
        }
        writer.write(acc, layout.bits_[len]);
    }
    return bytes;
}

/// Unpacks out.size() indices from `bytes` (trailing bytes and the padding bits of the last byte
/// are ignored). Throws vqlib::io_error when `bytes` is shorter than
/// layout.total_bytes(out.size()) or a chunk holds a value >= V^c (i.e. a digit >= V), and
/// vqlib::invalid_argument when V - 1 does not fit in Idx. Never reads outside `bytes`.
template <PvqIndex Idx>
void unpack_indices(std::span<const std::uint8_t> bytes, const PackedIndexLayout& layout,
                    std::span<Idx> out) {
    {
        detail::Natural largest = layout.radix_;
        largest.sub(detail::Natural(1));
        Idx probe{};
        VQLIB_CHECK(largest.to_index(probe), invalid_argument, "unpack_indices: indices below V = ",
                    layout.radix_.to_string(), " do not fit in a ", index_bits<Idx>,
                    "-bit index type");
    }
    const std::size_t count = out.size();
    const std::size_t needed = layout.total_bytes(count);
    VQLIB_CHECK(bytes.size() >= needed, io_error, "packed index stream: ", bytes.size(),
                " bytes, but ", count, " indices of radix ", layout.radix_.to_string(), " need ",
                needed, " bytes (", layout.total_bits(count), " bits)");
    detail::BitReader reader(bytes.first(needed));
    const std::size_t c = static_cast<std::size_t>(layout.chunk_);
    if (layout.fast_) {
        const std::uint64_t v = layout.radix_u64_;
        for (std::size_t s = 0; s < count; s += c) {
            const std::size_t len = std::min(c, count - s);
            std::uint64_t value = reader.read(static_cast<unsigned>(layout.bits_[len]));
            const std::uint64_t limit = layout.power_u64_[len];  // 0 stands for 2^64
            VQLIB_CHECK(limit == 0 || value < limit, io_error, "packed index stream: chunk ", s / c,
                        " (indices ", s, "..", s + len - 1, ") holds ", value,
                        ", not below V^", len, " = ", limit, " (an index >= V = ", v, ")");
            for (std::size_t j = 0; j < len; ++j) {
                out[s + j] = static_cast<Idx>(Idx(value % v));
                value /= v;
            }
        }
        return;
    }
    detail::NaturalDivider divider(layout.radix_);
    detail::Natural value, quotient, remainder;
    const std::size_t tail = count % c;
    const detail::Natural tail_power = layout.power_of_radix(static_cast<int>(tail));
    for (std::size_t s = 0; s < count; s += c) {
        const std::size_t len = std::min(c, count - s);
        const detail::Natural& limit = len == c ? layout.full_power_ : tail_power;
        reader.read(value, layout.bits_[len]);
        VQLIB_CHECK(value < limit, io_error, "packed index stream: chunk ", s / c,
                    " (indices ", s, "..", s + len - 1, ") holds ", value.to_string(),
                    ", not below V^", len, " = ", limit.to_string(), " (an index >= V = ",
                    layout.radix_.to_string(), ")");
        for (std::size_t j = 0; j < len; ++j) {
            divider.divmod(value, quotient, remainder);
            Idx digit{};
            remainder.to_index(digit);  // < V, checked above to fit
            out[s + j] = digit;
            std::swap(value, quotient);
        }
    }
}

/// Unpacks `count` indices from `bytes`; see the overload writing into a span for the errors.
template <PvqIndex Idx>
std::vector<Idx> unpack_indices(std::span<const std::uint8_t> bytes, std::size_t count,
                                const PackedIndexLayout& layout) {
    std::vector<Idx> out(count);
    unpack_indices<Idx>(bytes, layout, std::span<Idx>(out));
    return out;
}

}  // namespace vqlib::lattice
