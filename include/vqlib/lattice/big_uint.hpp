#pragma once
// BigUint<Limbs>: a fixed-width unsigned integer made of 64-bit limbs, for PVQ indices wider than
// the built-in types (V(128, 64) needs 218 bits, V(64, 96) needs 192).
//
// It behaves like the built-in unsigned types: + and - wrap modulo 2^(64·Limbs), shifts by the
// width or more give 0, comparisons are the usual total order. Overflow is detected with the
// carry-reporting members add_carry / sub_borrow (and detail::checked_add / checked_sub in
// index_types.hpp, which work for every index type).
#include <vqlib/core/error.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace vqlib::lattice {

/// Fixed-width unsigned integer of `Limbs` 64-bit limbs (little-endian limb order).
/// Arithmetic wraps modulo 2^(64·Limbs); see add_carry / sub_borrow for overflow detection.
template <int Limbs>
class BigUint {
    static_assert(Limbs >= 1, "BigUint needs at least one limb");

public:
    /// Number of 64-bit limbs.
    static constexpr int limb_count = Limbs;
    /// Width in bits (64·Limbs).
    static constexpr int bits = 64 * Limbs;

    /// Zero.
    constexpr BigUint() noexcept = default;
    /// The value `value` (implicit, like a built-in integer promotion).
    constexpr BigUint(std::uint64_t value) noexcept { limbs_[0] = value; }  // NOLINT

    /// The largest value, 2^bits - 1.
    static constexpr BigUint max() noexcept {
        BigUint r;
        for (auto& l : r.limbs_) l = ~std::uint64_t{0};
        return r;
    }

    /// Limb `i` (0 = least significant).
    constexpr std::uint64_t limb(int i) const noexcept {
        return limbs_[static_cast<std::size_t>(i)];
    }
    /// Sets limb `i` (0 = least significant).
    constexpr void set_limb(int i, std::uint64_t v) noexcept {
        limbs_[static_cast<std::size_t>(i)] = v;
    }
    /// The low 64 bits.
    constexpr std::uint64_t low64() const noexcept { return limbs_[0]; }

    constexpr bool is_zero() const noexcept {
        for (auto l : limbs_)
            if (l != 0) return false;
        return true;
    }

    /// Number of significant bits (0 for zero): the smallest b with value < 2^b.
    constexpr int bit_length() const noexcept {
        for (int i = Limbs - 1; i >= 0; --i) {
            const std::uint64_t l = limbs_[static_cast<std::size_t>(i)];
            if (l != 0) return 64 * i + (64 - std::countl_zero(l));
        }
        return 0;
    }

    /// *this += o; returns the carry out (true when the exact sum is >= 2^bits).
    constexpr bool add_carry(const BigUint& o) noexcept {
        std::uint64_t carry = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(Limbs); ++i) {
            const std::uint64_t a = limbs_[i];
            const std::uint64_t s = a + o.limbs_[i];
            const std::uint64_t c1 = s < a ? 1 : 0;
            const std::uint64_t t = s + carry;
            const std::uint64_t c2 = t < s ? 1 : 0;
            limbs_[i] = t;
            carry = c1 | c2;
        }
        return carry != 0;
    }

    /// *this -= o; returns the borrow out (true when o > *this, the result then wraps).
    constexpr bool sub_borrow(const BigUint& o) noexcept {
        std::uint64_t borrow = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(Limbs); ++i) {
            const std::uint64_t a = limbs_[i];
            const std::uint64_t d = a - o.limbs_[i];
            const std::uint64_t b1 = a < o.limbs_[i] ? 1 : 0;
            const std::uint64_t t = d - borrow;
            const std::uint64_t b2 = d < borrow ? 1 : 0;
            limbs_[i] = t;
            borrow = b1 | b2;
        }
        return borrow != 0;
    }

    /// *this *= m; returns the part of the product above 2^bits (0 when it did not overflow).
    constexpr std::uint64_t mul_small(std::uint64_t m) noexcept {
        std::uint64_t carry = 0;
        for (auto& l : limbs_) {
            // 64 x 64 -> 128 bits, done in 32-bit halves so it stays portable and constexpr.
            const std::uint64_t a_lo = l & 0xffffffffu, a_hi = l >> 32;
            const std::uint64_t m_lo = m & 0xffffffffu, m_hi = m >> 32;
            const std::uint64_t ll = a_lo * m_lo, lh = a_lo * m_hi;
            const std::uint64_t hl = a_hi * m_lo, hh = a_hi * m_hi;
            const std::uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
            std::uint64_t lo = (ll & 0xffffffffu) | (mid << 32);
            std::uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
            lo += carry;
            if (lo < carry) ++hi;
            l = lo;
            carry = hi;
        }
        return carry;
    }

    /// *this /= d (d > 0, d < 2^32); returns the remainder.
    constexpr std::uint32_t divmod_small(std::uint32_t d) noexcept {
        std::uint64_t rem = 0;
        for (int i = Limbs - 1; i >= 0; --i) {
            const std::uint64_t l = limbs_[static_cast<std::size_t>(i)];
            const std::uint64_t hi = (rem << 32) | (l >> 32);
            const std::uint64_t qh = hi / d;
            rem = hi % d;
            const std::uint64_t lo = (rem << 32) | (l & 0xffffffffu);
            const std::uint64_t ql = lo / d;
            rem = lo % d;
            limbs_[static_cast<std::size_t>(i)] = (qh << 32) | ql;
        }
        return static_cast<std::uint32_t>(rem);
    }

    constexpr BigUint& operator+=(const BigUint& o) noexcept {
        add_carry(o);
        return *this;
    }
    constexpr BigUint& operator-=(const BigUint& o) noexcept {
        sub_borrow(o);
        return *this;
    }
    constexpr BigUint& operator<<=(int s) noexcept {
        if (s <= 0) return *this;
        if (s >= bits) return *this = BigUint{};
        const int whole = s / 64, part = s % 64;
        for (int i = Limbs - 1; i >= 0; --i) {
            std::uint64_t v = 0;
            const int src = i - whole;
            if (src >= 0) {
                v = limbs_[static_cast<std::size_t>(src)] << part;
                if (part != 0 && src >= 1)
                    v |= limbs_[static_cast<std::size_t>(src - 1)] >> (64 - part);
            }
            limbs_[static_cast<std::size_t>(i)] = v;
        }
        return *this;
    }
    constexpr BigUint& operator>>=(int s) noexcept {
        if (s <= 0) return *this;
        if (s >= bits) return *this = BigUint{};
        const int whole = s / 64, part = s % 64;
        for (int i = 0; i < Limbs; ++i) {
            std::uint64_t v = 0;
            const int src = i + whole;
            if (src < Limbs) {
                v = limbs_[static_cast<std::size_t>(src)] >> part;
                if (part != 0 && src + 1 < Limbs)
                    v |= limbs_[static_cast<std::size_t>(src + 1)] << (64 - part);
            }
            limbs_[static_cast<std::size_t>(i)] = v;
        }
        return *this;
    }
    constexpr BigUint& operator&=(const BigUint& o) noexcept {
        for (std::size_t i = 0; i < static_cast<std::size_t>(Limbs); ++i) limbs_[i] &= o.limbs_[i];
        return *this;
    }
    constexpr BigUint& operator|=(const BigUint& o) noexcept {
        for (std::size_t i = 0; i < static_cast<std::size_t>(Limbs); ++i) limbs_[i] |= o.limbs_[i];
        return *this;
    }
    constexpr BigUint& operator^=(const BigUint& o) noexcept {
        for (std::size_t i = 0; i < static_cast<std::size_t>(Limbs); ++i) limbs_[i] ^= o.limbs_[i];
        return *this;
    }

    friend constexpr BigUint operator+(BigUint a, const BigUint& b) noexcept { return a += b; }
    friend constexpr BigUint operator-(BigUint a, const BigUint& b) noexcept { return a -= b; }
    friend constexpr BigUint operator<<(BigUint a, int s) noexcept { return a <<= s; }
    friend constexpr BigUint operator>>(BigUint a, int s) noexcept { return a >>= s; }
    friend constexpr BigUint operator&(BigUint a, const BigUint& b) noexcept { return a &= b; }
    friend constexpr BigUint operator|(BigUint a, const BigUint& b) noexcept { return a |= b; }
    friend constexpr BigUint operator^(BigUint a, const BigUint& b) noexcept { return a ^= b; }

    friend constexpr bool operator==(const BigUint& a, const BigUint& b) noexcept {
        for (std::size_t i = 0; i < static_cast<std::size_t>(Limbs); ++i)
            if (a.limbs_[i] != b.limbs_[i]) return false;
        return true;
    }
    friend constexpr std::strong_ordering operator<=>(const BigUint& a, const BigUint& b) noexcept {
        for (int i = Limbs - 1; i >= 0; --i) {
            const auto x = a.limbs_[static_cast<std::size_t>(i)];
            const auto y = b.limbs_[static_cast<std::size_t>(i)];
            if (x != y) return x < y ? std::strong_ordering::less : std::strong_ordering::greater;
        }
        return std::strong_ordering::equal;
    }

    /// Decimal representation ("0" for zero).
    std::string to_string() const {
        if (is_zero()) return "0";
        BigUint v = *this;
        std::string digits;
        while (!v.is_zero()) {
            std::uint32_t chunk = v.divmod_small(1000000000u);
            const bool last = v.is_zero();
            for (int d = 0; d < 9 && (!last || chunk != 0); ++d) {
                digits.push_back(static_cast<char>('0' + chunk % 10));
                chunk /= 10;
            }
        }
        std::reverse(digits.begin(), digits.end());
        return digits;
    }

    /// Parses a non-empty string of decimal digits. Throws vqlib::invalid_argument on any other
    /// character or when the value does not fit in `bits` bits.
    static BigUint from_string(std::string_view text) {
        VQLIB_CHECK(!text.empty(), ::vqlib::invalid_argument, "BigUint<", Limbs,
                    ">::from_string: empty string");
        BigUint r;
        for (char c : text) {
            VQLIB_CHECK(c >= '0' && c <= '9', ::vqlib::invalid_argument, "BigUint<", Limbs,
                        ">::from_string: '", std::string(text), "' is not a decimal number");
            bool overflow = r.mul_small(10) != 0;
            overflow |= r.add_carry(BigUint(static_cast<std::uint64_t>(c - '0')));
            VQLIB_CHECK(!overflow, ::vqlib::invalid_argument, "BigUint<", Limbs, ">::from_string: ",
                        std::string(text), " does not fit in ", bits, " bits");
        }
        return r;
    }

private:
    std::array<std::uint64_t, static_cast<std::size_t>(Limbs)> limbs_{};
};

}  // namespace vqlib::lattice
