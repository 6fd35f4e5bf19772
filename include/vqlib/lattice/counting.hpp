#pragma once
// PVQ counting functions (docs/pvq.md).
//
//   V(N, K) = #{ y ∈ Z^N : ||y||_1 = K }, the number of PVQ codewords:
//             V(N, 0) = 1, V(0, K > 0) = 0, V(N, K) = V(N-1, K) + V(N, K-1) + V(N-1, K-1);
//             closed form V(N, K) = Σ_{j=1..min(N,K)} 2^j·C(N, j)·C(K-1, j-1) for K > 0.
//   U(N, K) = Σ_{k<K} V(N-1, k) = (V(N-1, K-1) + V(N, K-1)) / 2 for N, K > 0,
//             U(0, 0) = 1, U(0, K > 0) = 0, U(N > 0, 0) = 0. Symmetric: U(N, K) = U(K, N),
//             and V(N, K) = U(N, K) + U(N, K+1).
//
// pvq_v / pvq_u return the value in any index type and throw vqlib::invalid_argument naming N, K
// and the type's width when it does not fit (never a silent wraparound). They use the closed form
// on exact big integers with an early exit, so the cost is O(min(N, K)·bits) whatever K is.
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/index_types.hpp>
#include <vqlib/lattice/natural.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace vqlib::lattice {

namespace detail {

inline void check_counting_arguments(const char* function, int N, int K) {
    VQLIB_CHECK(N >= 0 && K >= 0, ::vqlib::invalid_argument, function, ": N = ", N, ", K = ", K,
                ": expected N >= 0 and K >= 0");
}

/// Exact V(N, K) into `out`. When max_bits > 0 the computation stops as soon as the value is
/// known to need more than max_bits bits; it then returns false (out holds a lower bound).
inline bool exact_pvq_v(int N, int K, Natural& out, std::size_t max_bits = 0) {
    if (K == 0) {
        out.assign(1);  // V = 1 fits in any width
        return true;
    }
    if (N == 0) {
        out.set_zero();
        return true;
    }
    const int m = std::min(N, K);
    // V >= 2^m (the j = m term alone), so m >= max_bits already decides.
    if (max_bits > 0 && static_cast<std::size_t>(m) >= max_bits) {
        out.assign(1);
        return false;
    }
    // t_1 = 2N; t_{j+1} = t_j · 2(N-j)(K-j) / (j(j+1)); each division is exact because
    // t_j·2(N-j)(K-j) = t_{j+1}·j·(j+1).
    Natural term(2 * static_cast<std::uint64_t>(N));
    out = term;
    for (int j = 1; j < m; ++j) {
        if (max_bits > 0 && out.bit_length() > max_bits) return false;
        term.mul_small(static_cast<std::uint32_t>(N - j));
        term.mul_small(static_cast<std::uint32_t>(K - j));
        term.mul_small(2);
        term.divmod_small(static_cast<std::uint32_t>(j));
        term.divmod_small(static_cast<std::uint32_t>(j + 1));
        out.add(term);
    }
    return max_bits == 0 || out.bit_length() <= max_bits;
}

/// Exact U(N, K) into `out`; same early-exit convention as exact_pvq_v.
inline bool exact_pvq_u(int N, int K, Natural& out, std::size_t max_bits = 0) {
    if (N == 0 || K == 0) {
        out.assign(N == 0 && K == 0 ? 1 : 0);
        return true;
    }
    Natural other;
    const std::size_t limit = max_bits == 0 ? 0 : max_bits + 2;
    if (!exact_pvq_v(N - 1, K - 1, out, limit) || !exact_pvq_v(N, K - 1, other, limit))
        return false;
    out.add(other);
    out.shift_right(1);
    return max_bits == 0 || out.bit_length() <= max_bits;
}

/// log2 V(N, K) from the closed form in the log domain (long double), for sizes too large for
/// the exact path. Relative accuracy about 1e-13 even for min(N, K) ~ 10^6.
inline double log2_pvq_size_estimate(int N, int K) {
    if (K == 0) return 0.0;
    const int m = std::min(N, K);
    long double log_term = std::log(2.0L * static_cast<long double>(N));  // ln t_1
    long double max_log = log_term;
    // First pass: largest term (terms are unimodal, but a plain max is simpler and exact).
    long double lt = log_term;
    for (int j = 1; j < m; ++j) {
        lt += std::log(2.0L * static_cast<long double>(N - j) * static_cast<long double>(K - j) /
                       (static_cast<long double>(j) * static_cast<long double>(j + 1)));
        max_log = std::max(max_log, lt);
    }
    long double sum = 0.0L;
    lt = log_term;
    sum += std::exp(lt - max_log);
    for (int j = 1; j < m; ++j) {
        lt += std::log(2.0L * static_cast<long double>(N - j) * static_cast<long double>(K - j) /
                       (static_cast<long double>(j) * static_cast<long double>(j + 1)));
        sum += std::exp(lt - max_log);
    }
    return static_cast<double>((max_log + std::log(sum)) / std::log(2.0L));
}

}  // namespace detail

/// V(N, K), the number of PVQ codewords (integer vectors of dimension N with ||y||_1 = K), in
/// index type Idx. Throws vqlib::invalid_argument when N < 0, K < 0, or the value needs more than
/// index_bits<Idx> bits (the message names N, K and the width).
template <PvqIndex Idx>
Idx pvq_v(int N, int K) {
    detail::check_counting_arguments("pvq_v", N, K);
    detail::Natural v;
    Idx out{};
    const bool fits = detail::exact_pvq_v(N, K, v, static_cast<std::size_t>(index_bits<Idx>)) &&
                      v.to_index(out);
    VQLIB_CHECK(fits, invalid_argument, "V(N, K) for N = ", N, ", K = ", K, " does not fit in a ",
                index_bits<Idx>, "-bit index type (", index_type_name<Idx>(), ")");
    return out;
}

/// U(N, K) = Σ_{k<K} V(N-1, k) in index type Idx (see pvq_v for the errors).
template <PvqIndex Idx>
Idx pvq_u(int N, int K) {
    detail::check_counting_arguments("pvq_u", N, K);
    detail::Natural u;
    Idx out{};
    const bool fits = detail::exact_pvq_u(N, K, u, static_cast<std::size_t>(index_bits<Idx>)) &&
                      u.to_index(out);
    VQLIB_CHECK(fits, invalid_argument, "U(N, K) for N = ", N, ", K = ", K, " does not fit in a ",
                index_bits<Idx>, "-bit index type (", index_type_name<Idx>(), ")");
    return out;
}

/// V(N, K) exactly, in decimal (no width limit).
inline std::string pvq_v_decimal(int N, int K) {
    detail::check_counting_arguments("pvq_v_decimal", N, K);
    detail::Natural v;
    detail::exact_pvq_v(N, K, v);
    return v.to_string();
}

/// log2 V(N, K) for N >= 1, K >= 0: exact big-integer evaluation while V has at most 16384 bits,
/// a long-double log-domain sum beyond (relative error ~1e-13). Throws vqlib::invalid_argument
/// for N < 1 or K < 0.
inline double log2_pvq_size(int N, int K) {
    VQLIB_CHECK(N >= 1 && K >= 0, invalid_argument, "log2_pvq_size: N = ", N, ", K = ", K,
                ": expected N >= 1 and K >= 0");
    if (K == 0) return 0.0;
    const double estimate = detail::log2_pvq_size_estimate(N, K);
    if (estimate > 16384.0) return estimate;
    detail::Natural v;
    detail::exact_pvq_v(N, K, v);
    return v.log2();
}

/// Bits of a fixed-width index, ceil(log2 V(N, K)) (0 when V = 1). Exact. Throws
/// vqlib::invalid_argument for N < 1, K < 0.
inline int pvq_index_bits(int N, int K) {
    VQLIB_CHECK(N >= 1 && K >= 0, invalid_argument, "pvq_index_bits: N = ", N, ", K = ", K,
                ": expected N >= 1 and K >= 0");
    detail::Natural v;
    detail::exact_pvq_v(N, K, v);
    // ceil(log2 V) = bit_length(V - 1) for V >= 1.
    v.sub(detail::Natural(1));
    return static_cast<int>(v.bit_length());
}

/// Largest K with V(N, K) < 2^bits, i.e. the most pulses whose index fits in `bits` bits.
/// Saturates at INT_MAX when every K up to INT_MAX fits (N = 1 with bits >= 2, N = 2 with
/// bits >= 33, ...). Throws vqlib::invalid_argument for N < 1 or bits < 1.
inline int max_pulses_fitting(int N, int bits) {
    VQLIB_CHECK(N >= 1, invalid_argument, "max_pulses_fitting: N = ", N, ": expected N >= 1");
    VQLIB_CHECK(bits >= 1, invalid_argument, "max_pulses_fitting: bits = ", bits,
                ": expected bits >= 1");
    detail::Natural scratch;
    const auto fits = [&](int K) {
        return detail::exact_pvq_v(N, K, scratch, static_cast<std::size_t>(bits));
    };
    // V(N, K) is nondecreasing in K; V(N, 0) = 1 < 2^bits.
    if (!fits(1)) return 0;
    long long lo = 1;  // fits
    long long hi = 2;  // candidate that may not fit
    while (hi <= INT_MAX && fits(static_cast<int>(hi))) {
        lo = hi;
        hi *= 2;
    }
    if (hi > INT_MAX) {
        if (fits(INT_MAX)) return INT_MAX;
        hi = INT_MAX;
    }
    while (hi - lo > 1) {  // invariant: lo fits, hi does not
        const long long mid = lo + (hi - lo) / 2;
        if (fits(static_cast<int>(mid))) lo = mid;
        else hi = mid;
    }
    return static_cast<int>(lo);
}

}  // namespace vqlib::lattice
