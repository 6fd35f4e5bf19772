#pragma once
// detail::Natural: an arbitrary-precision natural number on 32-bit words, used internally for
// exact PVQ counts (closed form of V(N, K)) and for mixed-radix index packing (multiply by V,
// divide by V). Schoolbook algorithms; division by a multi-word divisor is Knuth's algorithm D.
// Not part of the public API.
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/index_types.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace vqlib::lattice::detail {

/// Arbitrary-precision natural number: little-endian 32-bit words without leading zero words
/// (zero has no words).
class Natural {
public:
    Natural() = default;
    explicit Natural(std::uint64_t v) { assign(v); }

    /// The value of an index.
    template <PvqIndex Idx>
    static Natural from_index(const Idx& v) {
        Natural r;
        r.w_.assign(static_cast<std::size_t>(index_bits<Idx> / 32), 0u);
        ::vqlib::lattice::detail::to_words(v, std::span<std::uint32_t>(r.w_));
        r.trim();
        return r;
    }
    /// Little-endian 32-bit words.
    static Natural from_words(std::span<const std::uint32_t> words) {
        Natural r;
        r.w_.assign(words.begin(), words.end());
        r.trim();
        return r;
    }
    /// Converts to an index type; false when the value does not fit.
    template <PvqIndex Idx>
    bool to_index(Idx& out) const {
        return ::vqlib::lattice::detail::from_words<Idx>(w_, out);
    }

    void assign(std::uint64_t v) {
        w_.clear();
        while (v != 0) {
            w_.push_back(static_cast<std::uint32_t>(v));
            v >>= 32;
        }
    }
    void set_zero() { w_.clear(); }

    const std::vector<std::uint32_t>& words() const { return w_; }
    bool is_zero() const { return w_.empty(); }
    std::size_t size() const { return w_.size(); }

    /// Number of significant bits (0 for zero).
    std::size_t bit_length() const {
        if (w_.empty()) return 0;
        return 32 * (w_.size() - 1) + static_cast<std::size_t>(32 - std::countl_zero(w_.back()));
    }
    bool fits_u64() const { return w_.size() <= 2; }
    /// The low 64 bits.
    std::uint64_t low64() const {
        std::uint64_t r = 0;
        const std::size_t n = w_.size() < 2 ? w_.size() : 2;
        for (std::size_t i = 0; i < n; ++i) r |= static_cast<std::uint64_t>(w_[i]) << (32 * i);
        return r;
    }

    /// -1, 0 or 1 as *this is less than, equal to or greater than o.
    int compare(const Natural& o) const {
        if (w_.size() != o.w_.size()) return w_.size() < o.w_.size() ? -1 : 1;
        for (std::size_t i = w_.size(); i-- > 0;)
            if (w_[i] != o.w_[i]) return w_[i] < o.w_[i] ? -1 : 1;
        return 0;
    }
    friend bool operator==(const Natural& a, const Natural& b) { return a.w_ == b.w_; }
    friend bool operator<(const Natural& a, const Natural& b) { return a.compare(b) < 0; }

    Natural& add(const Natural& o) {
        if (o.w_.size() > w_.size()) w_.resize(o.w_.size(), 0u);
        std::uint64_t carry = 0;
        for (std::size_t i = 0; i < w_.size(); ++i) {
            carry += w_[i];
            if (i < o.w_.size()) carry += o.w_[i];
            w_[i] = static_cast<std::uint32_t>(carry);
            carry >>= 32;
            if (carry == 0 && i >= o.w_.size()) break;
        }
        if (carry != 0) w_.push_back(static_cast<std::uint32_t>(carry));
        return *this;
    }
    Natural& add_small(std::uint32_t v) {
        std::uint64_t carry = v;
        for (std::size_t i = 0; i < w_.size() && carry != 0; ++i) {
            carry += w_[i];
            w_[i] = static_cast<std::uint32_t>(carry);
            carry >>= 32;
        }
        if (carry != 0) w_.push_back(static_cast<std::uint32_t>(carry));
        return *this;
    }
    /// *this -= o; requires o <= *this.
    Natural& sub(const Natural& o) {
        std::int64_t borrow = 0;
        for (std::size_t i = 0; i < w_.size(); ++i) {
            std::int64_t t = static_cast<std::int64_t>(w_[i]) - borrow;
            if (i < o.w_.size()) t -= static_cast<std::int64_t>(o.w_[i]);
            else if (borrow == 0) break;
            w_[i] = static_cast<std::uint32_t>(t);
            borrow = t < 0 ? 1 : 0;
        }
        trim();
        return *this;
    }
    Natural& mul_small(std::uint32_t m) {
        if (m == 0) {
            w_.clear();
            return *this;
        }
        std::uint64_t carry = 0;
        for (auto& w : w_) {
            carry += static_cast<std::uint64_t>(w) * m;
            w = static_cast<std::uint32_t>(carry);
            carry >>= 32;
        }
        if (carry != 0) w_.push_back(static_cast<std::uint32_t>(carry));
        return *this;
    }
    /// *this /= d (d > 0); returns the remainder.
    std::uint32_t divmod_small(std::uint32_t d) {
        std::uint64_t rem = 0;
        for (std::size_t i = w_.size(); i-- > 0;) {
            const std::uint64_t cur = (rem << 32) | w_[i];
            w_[i] = static_cast<std::uint32_t>(cur / d);
            rem = cur % d;
        }
        trim();
        return static_cast<std::uint32_t>(rem);
    }
    /// *this >>= s.
    Natural& shift_right(std::size_t s) {
        const std::size_t whole = s / 32;
        const unsigned part = static_cast<unsigned>(s % 32);
        if (whole >= w_.size()) {
            w_.clear();
            return *this;
        }
        for (std::size_t i = 0; i + whole < w_.size(); ++i) {
            std::uint32_t v = w_[i + whole] >> part;
            if (part != 0 && i + whole + 1 < w_.size()) v |= w_[i + whole + 1] << (32 - part);
            w_[i] = v;
        }
        w_.resize(w_.size() - whole);
        trim();
        return *this;
    }

    /// out = a · b (out must not alias a or b).
    static void mul(const Natural& a, const Natural& b, Natural& out) {
        out.w_.assign(a.w_.size() + b.w_.size(), 0u);
        if (a.is_zero() || b.is_zero()) {
            out.w_.clear();
            return;
        }
        for (std::size_t i = 0; i < a.w_.size(); ++i) {
            std::uint64_t carry = 0;
            const std::uint64_t ai = a.w_[i];
            for (std::size_t j = 0; j < b.w_.size(); ++j) {
                carry += ai * b.w_[j] + out.w_[i + j];
                out.w_[i + j] = static_cast<std::uint32_t>(carry);
                carry >>= 32;
            }
            out.w_[i + b.w_.size()] = static_cast<std::uint32_t>(carry);
        }
        out.trim();
    }

    /// log2 of the value (-infinity for zero), accurate to about 1e-15 relative.
    double log2() const {
        if (w_.empty()) return -std::numeric_limits<double>::infinity();
        const std::size_t b = bit_length();
        if (b <= 64) return std::log2(static_cast<double>(low64()));
        Natural top = *this;
        top.shift_right(b - 64);
        return std::log2(static_cast<double>(top.low64())) + static_cast<double>(b - 64);
    }

    /// Decimal representation.
    std::string to_string() const {
        if (w_.empty()) return "0";
        Natural v = *this;
        std::string digits;
        while (!v.is_zero()) {
            std::uint32_t chunk = v.divmod_small(1000000000u);
            const bool last = v.is_zero();
            for (int d = 0; d < 9 && (!last || chunk != 0); ++d) {
                digits.push_back(static_cast<char>('0' + chunk % 10));
                chunk /= 10;
            }
        }
        return {digits.rbegin(), digits.rend()};
    }

    void trim() {
        while (!w_.empty() && w_.back() == 0) w_.pop_back();
    }

    std::vector<std::uint32_t>& mutable_words() { return w_; }

private:
    std::vector<std::uint32_t> w_;
};

/// Repeated division by one fixed divisor d > 0 (Knuth's algorithm D for multi-word d), with
/// buffers reused between calls.
class NaturalDivider {
public:
    explicit NaturalDivider(const Natural& d) : d_(d) {
        VQLIB_CHECK(!d.is_zero(), ::vqlib::invalid_argument, "division by zero");
        if (d_.size() >= 2) {
            shift_ = std::countl_zero(d_.words().back());
            const auto& v = d_.words();
            vn_.resize(v.size());
            for (std::size_t i = v.size(); i-- > 0;) {
                std::uint32_t x = v[i] << shift_;
                if (shift_ != 0 && i > 0) x |= v[i - 1] >> (32 - shift_);
                vn_[i] = x;
            }
        }
    }

    const Natural& divisor() const { return d_; }

    /// q = u / d, r = u mod d (q and r must not alias u).
    void divmod(const Natural& u, Natural& q, Natural& r) {
        if (u.compare(d_) < 0) {
            q.set_zero();
            r = u;
            return;
        }
        if (d_.size() == 1) {
            q = u;
            r.assign(q.divmod_small(d_.words()[0]));
            return;
        }
        const auto& uw = u.words();
        const std::size_t n = vn_.size();
        const std::size_t m = uw.size() - n;
        un_.assign(uw.size() + 1, 0u);
        for (std::size_t i = 0; i < uw.size(); ++i) {
            std::uint32_t x = uw[i] << shift_;
            if (shift_ != 0 && i > 0) x |= uw[i - 1] >> (32 - shift_);
            un_[i] = x;
        }
        if (shift_ != 0) un_[uw.size()] = uw.back() >> (32 - shift_);
        auto& qw = q.mutable_words();
        qw.assign(m + 1, 0u);
        constexpr std::uint64_t base = std::uint64_t{1} << 32;
        const std::uint64_t top = vn_[n - 1], second = vn_[n - 2];
        for (std::size_t j = m + 1; j-- > 0;) {
            const std::uint64_t num =
                (static_cast<std::uint64_t>(un_[j + n]) << 32) | un_[j + n - 1];
            std::uint64_t qhat = num / top;
            std::uint64_t rhat = num % top;
            while (qhat >= base || qhat * second > ((rhat << 32) | un_[j + n - 2])) {
                --qhat;
                rhat += top;
                if (rhat >= base) break;
            }
            // un[j .. j+n] -= qhat · vn
            std::int64_t borrow = 0;
            std::uint64_t carry = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint64_t p = qhat * vn_[i] + carry;
                carry = p >> 32;
                const std::int64_t t = static_cast<std::int64_t>(un_[i + j]) - borrow -
                                       static_cast<std::int64_t>(p & 0xffffffffu);
                un_[i + j] = static_cast<std::uint32_t>(t);
                borrow = t < 0 ? 1 : 0;
            }
            const std::int64_t t = static_cast<std::int64_t>(un_[j + n]) - borrow -
                                   static_cast<std::int64_t>(carry);
            un_[j + n] = static_cast<std::uint32_t>(t);
            if (t < 0) {  // qhat was one too large: add vn back
                --qhat;
                std::uint64_t c = 0;
                for (std::size_t i = 0; i < n; ++i) {
                    const std::uint64_t s = static_cast<std::uint64_t>(un_[i + j]) + vn_[i] + c;
                    un_[i + j] = static_cast<std::uint32_t>(s);
                    c = s >> 32;
                }
                un_[j + n] = static_cast<std::uint32_t>(un_[j + n] + c);
            }
            qw[j] = static_cast<std::uint32_t>(qhat);
        }
        q.trim();
        auto& rw = r.mutable_words();
        rw.assign(n, 0u);
        for (std::size_t i = 0; i < n; ++i) {
            std::uint32_t x = un_[i] >> shift_;
            if (shift_ != 0) x |= un_[i + 1] << (32 - shift_);
            rw[i] = x;
        }
        r.trim();
    }

private:
    Natural d_;
    int shift_ = 0;
    std::vector<std::uint32_t> vn_;
    std::vector<std::uint32_t> un_;
};

}  // namespace vqlib::lattice::detail
