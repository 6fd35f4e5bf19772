#pragma once
// Index types for PVQ codewords: the PvqIndex concept, its width index_bits<Idx>, and the
// helpers every index type gets (overflow-checked add/sub, bit_length, decimal to_string and
// parse_index, conversion to and from 32-bit words).
//
// Supported out of the box: std::uint32_t (the Opus range), std::uint64_t, unsigned __int128
// (GCC/Clang; spelled vqlib::lattice::uint128) and BigUint<Limbs>. Another type can be made an
// index type by specializing index_traits with a `static constexpr int bits`, as long as it has
// wrapping unsigned + and -, a total order and a constructor from std::uint64_t (and >>, << and
// & by int for the helpers below).
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/big_uint.hpp>

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace vqlib::lattice {

/// 128-bit unsigned integer of GCC and Clang.
__extension__ typedef unsigned __int128 uint128;

/// Width of an index type; specialized for the supported types.
template <class T>
struct index_traits;

template <>
struct index_traits<std::uint32_t> {
    static constexpr int bits = 32;
};
template <>
struct index_traits<std::uint64_t> {
    static constexpr int bits = 64;
};
template <>
struct index_traits<uint128> {
    static constexpr int bits = 128;
};
template <int Limbs>
struct index_traits<BigUint<Limbs>> {
    static constexpr int bits = 64 * Limbs;
};

/// An unsigned integer-like type usable as a PVQ index: wrapping + and -, a total order,
/// construction from std::uint64_t and a known width (index_traits<T>::bits).
template <class T>
concept PvqIndex = std::regular<T> && std::totally_ordered<T> &&
                   requires(const T a, const T b, std::uint64_t u) {
                       { a + b } -> std::convertible_to<T>;
                       { a - b } -> std::convertible_to<T>;
                       T(u);
                       { index_traits<T>::bits } -> std::convertible_to<int>;
                   };

/// Width in bits of index type `Idx`: 32, 64, 128 or 64·Limbs.
template <PvqIndex Idx>
inline constexpr int index_bits = index_traits<Idx>::bits;

/// Human-readable name of an index type, for messages ("uint32", "uint128", "BigUint<4>").
template <PvqIndex Idx>
std::string index_type_name() {
    if constexpr (std::is_same_v<Idx, std::uint32_t>) return "uint32";
    else if constexpr (std::is_same_v<Idx, std::uint64_t>) return "uint64";
    else if constexpr (std::is_same_v<Idx, uint128>) return "uint128";
    else return "BigUint<" + std::to_string(index_bits<Idx> / 64) + ">";
}

namespace detail {

template <class T>
struct is_big_uint : std::false_type {};
template <int L>
struct is_big_uint<BigUint<L>> : std::true_type {};

/// out = a + b; returns false (out then unspecified) when the sum does not fit in Idx.
template <PvqIndex Idx>
constexpr bool checked_add(const Idx& a, const Idx& b, Idx& out) noexcept {
    if constexpr (is_big_uint<Idx>::value) {
        out = a;
        return !out.add_carry(b);
    } else {
        out = static_cast<Idx>(a + b);
        return !(out < a);
    }
}

/// out = a - b; returns false (out untouched) when b > a.
template <PvqIndex Idx>
constexpr bool checked_sub(const Idx& a, const Idx& b, Idx& out) noexcept {
    if (a < b) return false;
    out = static_cast<Idx>(a - b);
    return true;
}

}  // namespace detail

/// Number of significant bits of `v` (0 for zero): the smallest b with v < 2^b.
template <PvqIndex Idx>
constexpr int bit_length(const Idx& v) noexcept {
    if constexpr (detail::is_big_uint<Idx>::value) {
        return v.bit_length();
    } else if constexpr (std::is_same_v<Idx, uint128>) {
        const auto hi = static_cast<std::uint64_t>(v >> 64);
        if (hi != 0) return 128 - std::countl_zero(hi);
        return 64 - std::countl_zero(static_cast<std::uint64_t>(v));
    } else {
        return static_cast<int>(std::bit_width(v));
    }
}

namespace detail {

/// Writes `v` as index_bits<Idx>/32 little-endian 32-bit words.
template <PvqIndex Idx>
void to_words(const Idx& v, std::span<std::uint32_t> words) noexcept {
    constexpr int n = index_bits<Idx> / 32;
    if constexpr (is_big_uint<Idx>::value) {
        for (int i = 0; i < n && static_cast<std::size_t>(i) < words.size(); ++i)
            words[static_cast<std::size_t>(i)] =
                static_cast<std::uint32_t>(v.limb(i / 2) >> (32 * (i % 2)));
    } else {
        Idx x = v;
        for (int i = 0; i < n && static_cast<std::size_t>(i) < words.size(); ++i) {
            words[static_cast<std::size_t>(i)] = static_cast<std::uint32_t>(x & Idx(0xffffffffu));
            if constexpr (index_bits<Idx> > 32) x = static_cast<Idx>(x >> 32);
        }
    }
}

/// Reads little-endian 32-bit words into `out`; returns false when the value does not fit.
template <PvqIndex Idx>
bool from_words(std::span<const std::uint32_t> words, Idx& out) noexcept {
    constexpr std::size_t n = static_cast<std::size_t>(index_bits<Idx> / 32);
    for (std::size_t i = n; i < words.size(); ++i)
        if (words[i] != 0) return false;
    const std::size_t used = std::min(n, words.size());
    if constexpr (is_big_uint<Idx>::value) {
        Idx r;
        for (std::size_t i = 0; i < used; ++i) {
            const int l = static_cast<int>(i / 2);
            r.set_limb(l, r.limb(l) | (static_cast<std::uint64_t>(words[i]) << (32 * (i % 2))));
        }
        out = r;
    } else {
        Idx r = Idx(0);
        for (std::size_t i = used; i-- > 0;) {
            if constexpr (index_bits<Idx> > 32) r = static_cast<Idx>(r << 32);
            r = static_cast<Idx>(r | Idx(words[i]));
        }
        out = r;
    }
    return true;
}

}  // namespace detail

/// Decimal representation of an index value.
template <PvqIndex Idx>
std::string to_string(const Idx& v) {
    if constexpr (detail::is_big_uint<Idx>::value) {
        return v.to_string();
    } else if constexpr (std::is_same_v<Idx, uint128>) {
        if (v == 0) return "0";
        std::string digits;
        uint128 x = v;
        while (x != 0) {
            digits.push_back(static_cast<char>('0' + static_cast<int>(x % 10)));
            x /= 10;
        }
        std::reverse(digits.begin(), digits.end());
        return digits;
    } else {
        return std::to_string(v);
    }
}

/// Parses a decimal string into index type `Idx`. Throws vqlib::invalid_argument when the text
/// is not a non-empty string of decimal digits or the value does not fit in Idx.
template <PvqIndex Idx>
Idx parse_index(std::string_view text) {
    if constexpr (detail::is_big_uint<Idx>::value) {
        return Idx::from_string(text);
    } else {
        VQLIB_CHECK(!text.empty(), invalid_argument, "parse_index<", index_type_name<Idx>(),
                    ">: empty string");
        Idx r = Idx(0);
        const Idx max_div10 = static_cast<Idx>(static_cast<Idx>(~Idx(0)) / Idx(10));
        for (char c : text) {
            VQLIB_CHECK(c >= '0' && c <= '9', invalid_argument, "parse_index<",
                        index_type_name<Idx>(), ">: '", std::string(text),
                        "' is not a decimal number");
            const Idx digit = Idx(static_cast<std::uint64_t>(c - '0'));
            VQLIB_CHECK(!(max_div10 < r), invalid_argument, "parse_index<", index_type_name<Idx>(),
                        ">: ", std::string(text), " does not fit in ", index_bits<Idx>, " bits");
            const Idx times10 = static_cast<Idx>(r * Idx(10));
            const bool ok = detail::checked_add(times10, digit, r);
            VQLIB_CHECK(ok, invalid_argument, "parse_index<", index_type_name<Idx>(), ">: ",
                        std::string(text), " does not fit in ", index_bits<Idx>, " bits");
        }
        return r;
    }
}

}  // namespace vqlib::lattice
