#pragma once
// PVQ pulse search: the codeword y ∈ P(N, K) = { y ∈ Z^N : ||y||_1 = K } closest in angle to x,
// i.e. maximizing cos(x, y) = <x, y> / (||x|| ||y||) (docs/pvq.md).
//
// pvq_search follows the Opus/CELT op_pvq_search algorithm:
//   1. work on |x| and restore the signs at the end (a pulse on x_j = 0 is positive);
//   2. when K > N/2, pre-place pulses by projection, y_j = floor((K + 0.8)/Σ|x| · |x_j|), which
//      never places more than K;
//   3. safety net: when more than N + 3 pulses are left, they all go to coordinate 0;
//   4. greedy: each remaining pulse goes to the j maximizing
//      (<|x|,y> + |x_j|)² / (||y||² + 2y_j + 1), compared by cross-multiplication; ties go to the
//      lowest index.
// Differences from Opus: accumulations are in double (Opus uses float), an all-zero x gives
// (K, 0, ..., 0), non-finite input is an error, and an optional local refinement can follow.
//
// pvq_search_exact is an exhaustive oracle for small V(N, K), for tests.
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/counting.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <span>

namespace vqlib::lattice {

/// Local refinement applied after the greedy search.
enum class PulseRefinement {
    none,  ///< Opus's result as is.
    swap,  ///< Repeatedly move the one pulse (from coordinate a to b) that most increases
           ///< cos(x, y), until no move improves it or max_refinement_passes moves were made.
};

/// Options of pvq_search.
struct PulseSearchOptions {
    PulseRefinement refinement = PulseRefinement::none;
    /// Most moves the swap refinement makes (each costs O(N²)).
    int max_refinement_passes = 32;
};

namespace detail {

inline void check_search_arguments(const char* function, std::span<const float> x, int K,
                                   std::span<std::int32_t> y, double& sum_abs) {
    VQLIB_CHECK(!x.empty(), ::vqlib::shape_error, function, ": x is empty (N = 0)");
    VQLIB_CHECK(y.size() == x.size(), ::vqlib::shape_error, function, ": y has ", y.size(),
                " coordinates, x has ", x.size());
    VQLIB_CHECK(K >= 0, ::vqlib::invalid_argument, function, ": K = ", K, ": expected K >= 0");
    double sum = 0.0;
    for (std::size_t j = 0; j < x.size(); ++j) {
        const float v = x[j];
        VQLIB_CHECK(std::isfinite(v), ::vqlib::invalid_argument, function, ": x[", j, "] = ", v,
                    " is not finite");
        sum += std::fabs(static_cast<double>(v));
    }
    sum_abs = sum;
}

/// ||y||² computed exactly (as an integer) and returned as double; restores signs from x.
inline double finish_search(std::span<const float> x, std::span<std::int32_t> y) {
    std::int64_t yy = 0;
    for (std::size_t j = 0; j < y.size(); ++j) {
        yy += static_cast<std::int64_t>(y[j]) * y[j];
        if (x[j] < 0.0f) y[j] = -y[j];
    }
    return static_cast<double>(yy);
}

/// Best-improvement single-pulse moves on the magnitudes y >= 0 against a = |x|.
inline void refine_swap(std::span<const float> x, std::span<std::int32_t> y, int max_moves) {
    const std::size_t n = x.size();
    if (n < 2) return;
    for (int move = 0; move < max_moves; ++move) {
        double xy = 0.0, yy = 0.0;
        for (std::size_t j = 0; j < n; ++j) {
            xy += std::fabs(static_cast<double>(x[j])) * y[j];
            yy += static_cast<double>(y[j]) * y[j];
        }
        // Current objective xy² / yy; a move must beat it by a relative margin, so rounding can
        // never make it cycle.
        double best_num = xy * xy * (1.0 + 1e-12), best_den = yy;
        std::size_t best_from = n, best_to = n;
        for (std::size_t s = 0; s < n; ++s) {
            if (y[s] == 0) continue;
            const double xs = xy - std::fabs(static_cast<double>(x[s]));
            const double ys = yy - 2.0 * y[s] + 2.0;  // yy - (2y_s - 1) + 1 before adding 2y_d
            for (std::size_t d = 0; d < n; ++d) {
                if (d == s) continue;
                const double rxy = xs + std::fabs(static_cast<double>(x[d]));
                const double num = rxy * rxy;
                const double den = ys + 2.0 * y[d];
                if (num * best_den > best_num * den) {
                    best_num = num;
                    best_den = den;
                    best_from = s;
                    best_to = d;
                }
            }
        }
        if (best_from == n) return;
        --y[best_from];
        ++y[best_to];
    }
}

/// argmax_j (xy + |x_j|)² / (yy + 2y_j + 1), the lowest j among equals. Compared by
/// cross-multiplication in four independent lanes (j mod 4) merged at the end, which shortens
/// the dependency chain of a single running maximum.
inline std::size_t best_pulse_position(std::span<const float> x, std::span<const std::int32_t> y,
                                       double xy, double yy) {
    constexpr std::size_t lanes = 4;
    const std::size_t n = x.size();
    // A lane starts at num = -1, den = 1: its first candidate (num >= 0) always replaces it.
    double best_num[lanes] = {-1.0, -1.0, -1.0, -1.0};
    double best_den[lanes] = {1.0, 1.0, 1.0, 1.0};
    std::size_t best_idx[lanes] = {0, 0, 0, 0};
    const double den0 = yy + 1.0;
    std::size_t j = 0;
    for (; j + lanes <= n; j += lanes) {
        for (std::size_t l = 0; l < lanes; ++l) {
            const double rxy = xy + std::fabs(static_cast<double>(x[j + l]));
            const double num = rxy * rxy;
            const double den = den0 + 2.0 * y[j + l];
            // Branch-free select: the outcome is unpredictable.
            const bool better = best_den[l] * num > best_num[l] * den;
            const std::uint64_t mask = std::uint64_t{0} - static_cast<std::uint64_t>(better);
            const auto select = [mask](double a, double b) {
                return std::bit_cast<double>((std::bit_cast<std::uint64_t>(a) & mask) |
                                             (std::bit_cast<std::uint64_t>(b) & ~mask));
            };
            best_num[l] = select(num, best_num[l]);
            best_den[l] = select(den, best_den[l]);
            best_idx[l] = static_cast<std::size_t>(((j + l) & mask) | (best_idx[l] & ~mask));
        }
    }
    for (std::size_t l = 0; j + l < n; ++l) {
        const double rxy = xy + std::fabs(static_cast<double>(x[j + l]));
        const double num = rxy * rxy;
        const double den = den0 + 2.0 * y[j + l];
        if (best_den[l] * num > best_num[l] * den) {
            best_num[l] = num;
            best_den[l] = den;
            best_idx[l] = j + l;
        }
    }
    std::size_t best = 0;
    for (std::size_t l = 1; l < lanes && l < n; ++l) {
        const double lhs = best_den[best] * best_num[l], rhs = best_num[best] * best_den[l];
        if (lhs > rhs || (lhs == rhs && best_idx[l] < best_idx[best])) best = l;
    }
    return best_idx[best];
}

}  // namespace detail

/// Finds the PVQ codeword y (N = x.size() coordinates, ||y||_1 = K) closest in angle to x, with
/// Opus's projection + greedy algorithm and the optional refinement of `options`. Returns ||y||²
/// (an exact integer, as double). Deterministic; allocates nothing.
///
/// Throws vqlib::shape_error when x is empty or y.size() != x.size(), vqlib::invalid_argument when
/// K < 0 or x has a non-finite value. An all-zero x gives y = (K, 0, ..., 0).
inline double pvq_search(std::span<const float> x, int K, std::span<std::int32_t> y,
                         const PulseSearchOptions& options = {}) {
    double sum = 0.0;
    detail::check_search_arguments("pvq_search", x, K, y, sum);
    const std::size_t n = x.size();
    for (auto& v : y) v = 0;
    if (K == 0) return 0.0;
    if (!(sum > 0.0)) {
        y[0] = K;
        return static_cast<double>(K) * K;
    }
    double xy = 0.0;  // <|x|, y>
    double yy = 0.0;  // ||y||²
    std::int64_t left = K;
    if (static_cast<std::size_t>(K) > n / 2) {
        const double rcp = (static_cast<double>(K) + 0.8) / sum;
        for (std::size_t j = 0; j < n; ++j) {
            const double a = std::fabs(static_cast<double>(x[j]));
            // rcp·a is in [0, K + 0.8]: truncation is floor (and avoids a libm call).
            const auto c = static_cast<std::int32_t>(rcp * a);
            y[j] = c;
            yy += static_cast<double>(c) * c;
            xy += a * c;
            left -= c;
        }
        if (left < 0) {  // cannot happen in exact arithmetic; start over without projection
            for (auto& v : y) v = 0;
            xy = yy = 0.0;
            left = K;
        }
    }
    if (left > static_cast<std::int64_t>(n) + 3) {  // safety net
        const double t = static_cast<double>(left);
        yy += t * t + 2.0 * t * y[0];
        xy += t * std::fabs(static_cast<double>(x[0]));
        y[0] += static_cast<std::int32_t>(left);
        left = 0;
    }
    for (; left > 0; --left) {
        const std::size_t best = detail::best_pulse_position(x, y, xy, yy);
        xy += std::fabs(static_cast<double>(x[best]));
        yy += 2.0 * y[best] + 1.0;
        ++y[best];
    }
    if (options.refinement == PulseRefinement::swap)
        detail::refine_swap(x, y, options.max_refinement_passes);
    return detail::finish_search(x, y);
}

/// Largest V(N, K) pvq_search_exact accepts.
inline constexpr std::uint64_t pvq_search_exact_limit = std::uint64_t{1} << 22;

/// Exhaustive search: the y ∈ P(N, K) maximizing cos(x, y) (the first in descending lexicographic
/// order of |y| among equals, so an all-zero x gives (K, 0, ..., 0)). Returns ||y||². For tests
/// and small problems: throws vqlib::invalid_argument when V(N, K) > 2^22, plus the errors of
/// pvq_search.
inline double pvq_search_exact(std::span<const float> x, int K, std::span<std::int32_t> y) {
    double sum = 0.0;
    detail::check_search_arguments("pvq_search_exact", x, K, y, sum);
    const std::size_t n = x.size();
    detail::Natural count;
    const bool small = detail::exact_pvq_v(static_cast<int>(n), K, count, 23) &&
                       count.low64() <= pvq_search_exact_limit;
    VQLIB_CHECK(small, invalid_argument, "pvq_search_exact: V(N, K) for N = ", n, ", K = ", K,
                " exceeds the limit 2^22");
    for (auto& v : y) v = 0;
    if (K == 0) return 0.0;
    // Enumerate the compositions c of K into n parts in descending lexicographic order, keeping
    // <|x|, c> and ||c||² up to date (each step changes at most three coordinates).
    const auto a = [&](std::size_t j) { return std::fabs(static_cast<double>(x[j])); };
    // y holds the current composition; the best one is remembered by its rank and replayed.
    y[0] = K;
    std::size_t last = 0;  // index of the rightmost nonzero entry
    long double xy = static_cast<long double>(a(0)) * K;
    long double yy = static_cast<long double>(K) * K;
    long double best_num = xy * xy, best_den = yy;
    std::uint64_t rank = 0, best_rank = 0;
    const auto set = [&](std::size_t j, std::int32_t v) {
        const std::int32_t old = y[j];
        xy += static_cast<long double>(a(j)) * (v - old);
        yy += static_cast<long double>(v) * v - static_cast<long double>(old) * old;
        y[j] = v;
    };
    const auto next = [&]() -> bool {
        std::int32_t tail = 0;
        std::size_t p = last;
        if (last == n - 1) {
            tail = y[n - 1];
            set(n - 1, 0);
            if (n < 2) return false;
            p = n - 2;
            while (y[p] == 0) {
                if (p == 0) return false;
                --p;
            }
        }
        set(p, y[p] - 1);
        set(p + 1, tail + 1);
        last = p + 1;
        return true;
    };
    while (next()) {
        ++rank;
        const long double num = xy * xy;
        if (num * best_den > best_num * yy) {
            best_num = num;
            best_den = yy;
            best_rank = rank;
        }
    }
    // Replay the enumeration up to the best rank.
    for (auto& v : y) v = 0;
    y[0] = K;
    last = 0;
    for (std::uint64_t r = 0; r < best_rank; ++r) next();
    return detail::finish_search(x, y);
}

}  // namespace vqlib::lattice
