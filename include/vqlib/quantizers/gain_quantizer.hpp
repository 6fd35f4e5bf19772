#pragma once
// Gain (amplitude) quantizers for shape-gain vector quantization (PVQ).
//
// A weight group w_g of D coordinates is coded as s * y / ||y|| with y a unit-free shape (a PVQ
// pulse vector) and s >= 0 its gain. The gain is stored relative to the row's norm, a = s / ||w||,
// with one norm per row kept at higher precision. Under the incoherence model (a row after a
// random rotation is ||w|| times a uniform point on the sphere S^(n-1)), the group's energy share
// t = ||w_g||^2 / ||w||^2 follows Beta(D/2, (n-D)/2), so a = sqrt(t) has a known law and its
// quantizer can be designed offline from (D, n, L) alone (docs/pvq.md):
//
//   LogUniformGain    L levels spaced uniformly in log a over [lo, hi] (by default the
//                     1/(2L) and 1 - 1/(2L) quantiles of the law);
//   BetaQuantileGain  equiprobable levels sqrt(F^-1((i + 1/2) / L)): every code used equally;
//   BetaLloydMaxGain  Lloyd-Max levels for the law of a: minimum expected squared gain error.
//
// Each is a policy (concept GainQuantizer) producing a GainCodebook: ascending positive levels and
// a nearest-level lookup.
#include <vqlib/core/error.hpp>
#include <vqlib/core/special_functions.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/gain_codebook.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

namespace vqlib {

/// The law of a group's relative amplitude a = ||w_g|| / ||w|| when a row of length n is a
/// uniformly random direction: a^2 ~ Beta(D/2, (n - D)/2).
struct GroupAmplitudeLaw {
    double alpha;  ///< D / 2
    double beta;   ///< (n - D) / 2

    GroupAmplitudeLaw(Index dim, Index row_length) {
        VQLIB_CHECK(dim >= 1, invalid_argument, "group dimension D = ", dim, ": expected >= 1");
        VQLIB_CHECK(row_length > dim, invalid_argument, "row length n = ", row_length,
                    ": expected more than the group dimension D = ", dim,
                    " (the amplitude law is Beta(D/2, (n-D)/2))");
        alpha = 0.5 * static_cast<double>(dim);
        beta = 0.5 * static_cast<double>(row_length - dim);
    }

    /// P(a <= x).
    double cdf(double x) const {
        if (x <= 0) return 0.0;
        if (x >= 1) return 1.0;
        return incomplete_beta(alpha, beta, x * x);
    }
    /// The p-quantile of a.
    double quantile(double p) const { return std::sqrt(inverse_incomplete_beta(alpha, beta, p)); }
    /// E[a; lo < a <= hi] = integral of a over the interval (not divided by its probability):
    /// B(alpha + 1/2, beta) / B(alpha, beta) * (I_hi^2(alpha + 1/2, beta) - I_lo^2(...)).
    double partial_mean(double lo, double hi) const {
        const double front = std::exp(log_beta(alpha + 0.5, beta) - log_beta(alpha, beta));
        const auto I = [&](double x) {
            if (x <= 0) return 0.0;
            if (x >= 1) return 1.0;
            return incomplete_beta(alpha + 0.5, beta, x * x);
        };
        return front * (I(hi) - I(lo));
    }
    /// E[a^2; lo < a <= hi] = alpha / (alpha + beta) * (I_hi^2(alpha + 1, beta) - I_lo^2(...)).
    double partial_second_moment(double lo, double hi) const {
        const double front = alpha / (alpha + beta);
        const auto I = [&](double x) {
            if (x <= 0) return 0.0;
            if (x >= 1) return 1.0;
            return incomplete_beta(alpha + 1.0, beta, x * x);
        };
        return front * (I(hi) - I(lo));
    }
    /// Expected squared error E[(a - level(a))^2] of a quantizer with ascending levels and
    /// nearest-level decisions.
    double expected_squared_error(const std::vector<float>& levels) const {
        double total = 0.0;
        for (std::size_t i = 0; i < levels.size(); ++i) {
            const double lo = i == 0 ? 0.0 : 0.5 * (double(levels[i - 1]) + levels[i]);
            const double hi = i + 1 == levels.size() ? 1.0 : 0.5 * (double(levels[i]) + levels[i + 1]);
            const double c = levels[i];
            const double p = cdf(hi) - cdf(lo);
            total += partial_second_moment(lo, hi) - 2.0 * c * partial_mean(lo, hi) + c * c * p;
        }
        return total;
    }
};

/// A gain quantizer policy: `bits()` and `codebook(D, n)`, the levels for groups of D coordinates
/// in rows of length n.
template <class G>
concept GainQuantizer = requires(const G& g, Index dim, Index row_length) {
    { g.bits() } -> std::convertible_to<int>;
    { g.codebook(dim, row_length) } -> std::same_as<GainCodebook>;
    { G::name() } -> std::convertible_to<const char*>;
};

namespace detail {
inline void check_gain_bits(int bits) { VQLIB_CHECK_RANGE("gain bits", bits, 1, 16); }
}  // namespace detail

/// Levels spaced uniformly in log a over [lo, hi]. With lo = hi = 0 (the default) the range is
/// taken from the amplitude law (its 1/(2L) and 1 - 1/(2L) quantiles) and costs no storage;
/// an explicit range is stored with the layer (two fp32 values).
struct LogUniformGain {
    int gain_bits = 8;
    double lo = 0.0;
    double hi = 0.0;

    static const char* name() { return "log-uniform"; }
    int bits() const { return gain_bits; }

    GainCodebook codebook(Index dim, Index row_length) const {
        detail::check_gain_bits(gain_bits);
        const GroupAmplitudeLaw law(dim, row_length);
        const Index L = Index{1} << gain_bits;
        double a = lo, b = hi;
        GainCodebook cb;
        cb.bits = gain_bits;
        if (lo == 0.0 && hi == 0.0) {
            a = law.quantile(0.5 / double(L));
            b = law.quantile(1.0 - 0.5 / double(L));
        } else {
            VQLIB_CHECK(lo > 0 && hi > lo && std::isfinite(hi), invalid_argument,
                        "log-uniform gain range [lo, hi] = [", lo, ", ", hi,
                        "]: expected 0 < lo < hi (or lo = hi = 0 for the law's range)");
            cb.parameter_bits = 64;
        }
        cb.levels.resize(static_cast<std::size_t>(L));
        const double la = std::log(a), lb = std::log(b);
        for (Index i = 0; i < L; ++i) {
            const double f = L == 1 ? 0.5 : double(i) / double(L - 1);
            cb.levels[static_cast<std::size_t>(i)] = static_cast<float>(std::exp(la + f * (lb - la)));
        }
        return cb;
    }
};

/// Equiprobable levels: the (i + 1/2)/L quantiles of the amplitude law (maximum entropy codes).
struct BetaQuantileGain {
    int gain_bits = 8;

    static const char* name() { return "Beta quantiles"; }
    int bits() const { return gain_bits; }

    GainCodebook codebook(Index dim, Index row_length) const {
        detail::check_gain_bits(gain_bits);
        const GroupAmplitudeLaw law(dim, row_length);
        const Index L = Index{1} << gain_bits;
        GainCodebook cb;
        cb.bits = gain_bits;
        cb.levels.resize(static_cast<std::size_t>(L));
        for (Index i = 0; i < L; ++i) {
            cb.levels[static_cast<std::size_t>(i)] =
                static_cast<float>(law.quantile((double(i) + 0.5) / double(L)));
        }
        return cb;
    }
};

/// Lloyd-Max levels for the amplitude law: alternately set the decision thresholds to the
/// midpoints of the levels and each level to the conditional mean of its cell (closed forms with
/// the incomplete beta function), starting from the equiprobable levels.
struct BetaLloydMaxGain {
    int gain_bits = 8;
    int max_iterations = 300;
    /// Stop when no level moves by more than this, relative to the level.
    double tolerance = 1e-9;

    static const char* name() { return "Beta Lloyd-Max"; }
    int bits() const { return gain_bits; }

    GainCodebook codebook(Index dim, Index row_length) const {
        detail::check_gain_bits(gain_bits);
        VQLIB_CHECK(max_iterations >= 0, invalid_argument, "max_iterations = ", max_iterations,
                    ": expected >= 0");
        const GroupAmplitudeLaw law(dim, row_length);
        GainCodebook cb = BetaQuantileGain{gain_bits}.codebook(dim, row_length);
        std::vector<double> level(cb.levels.begin(), cb.levels.end());
        const std::size_t L = level.size();
        std::vector<double> next(L);
        for (int it = 0; it < max_iterations; ++it) {
            double moved = 0.0;
            for (std::size_t i = 0; i < L; ++i) {
                const double lo = i == 0 ? 0.0 : 0.5 * (level[i - 1] + level[i]);
                const double hi = i + 1 == L ? 1.0 : 0.5 * (level[i] + level[i + 1]);
                const double p = law.cdf(hi) - law.cdf(lo);
                next[i] = p > 0 ? law.partial_mean(lo, hi) / p : level[i];
                // A cell too far in the tail for double precision keeps its level.
                if (!(next[i] > 0) || !std::isfinite(next[i])) next[i] = level[i];
                moved = std::max(moved, std::abs(next[i] - level[i]) / level[i]);
            }
            level.swap(next);
            if (moved <= tolerance) break;
        }
        for (std::size_t i = 0; i < L; ++i) cb.levels[i] = static_cast<float>(level[i]);
        std::sort(cb.levels.begin(), cb.levels.end());
        return cb;
    }
};

static_assert(GainQuantizer<LogUniformGain>);
static_assert(GainQuantizer<BetaQuantileGain>);
static_assert(GainQuantizer<BetaLloydMaxGain>);

}  // namespace vqlib
