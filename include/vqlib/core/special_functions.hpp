#pragma once
// Special functions used to design quantizers offline: the log of the beta function, the
// regularized incomplete beta function I_x(a, b) and its inverse. Everything is double precision
// and deterministic; none of it runs in a hot loop.
#include <vqlib/core/error.hpp>

#include <cmath>
#include <limits>

namespace vqlib {

/// log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b), for a, b > 0.
inline double log_beta(double a, double b) {
    VQLIB_CHECK(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b), invalid_argument,
                "log_beta: a = ", a, ", b = ", b, ": expected finite positive values");
    return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
}

namespace detail {

/// The continued fraction of I_x(a, b) (modified Lentz), accurate for x < (a + 1) / (a + b + 2).
inline double incomplete_beta_fraction(double a, double b, double x) {
    constexpr double tiny = 1e-300;
    constexpr double eps = 1e-16;
    const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0;
    double d = 1.0 - qab * x / qap;
    if (std::abs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    // Converges in O(sqrt(max(a, b))) terms; the cap is far above what a, b < 1e7 need.
    for (int m = 1; m <= 100000; ++m) {
        const double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (std::abs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (std::abs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1.0 / d;
        const double step = d * c;
        h *= step;
        if (std::abs(step - 1.0) < eps) return h;
    }
    throw numerical_error(concat("incomplete beta: the continued fraction did not converge for a = ",
                                 a, ", b = ", b, ", x = ", x));
}

}  // namespace detail

/// The regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b): the CDF of
/// Beta(a, b) at x. Accurate to about 1e-14 relative for a, b up to ~1e7.
inline double incomplete_beta(double a, double b, double x) {
    VQLIB_CHECK(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b), invalid_argument,
                "incomplete_beta: a = ", a, ", b = ", b, ": expected finite positive values");
    VQLIB_CHECK(x >= 0.0 && x <= 1.0, invalid_argument, "incomplete_beta: x = ", x,
                ": expected a value in [0, 1]");
    if (x == 0.0) return 0.0;
    if (x == 1.0) return 1.0;
    const double log_front = a * std::log(x) + b * std::log1p(-x) - log_beta(a, b);
    if (x < (a + 1.0) / (a + b + 2.0)) {
        return std::exp(log_front) * detail::incomplete_beta_fraction(a, b, x) / a;
    }
    return 1.0 - std::exp(log_front) * detail::incomplete_beta_fraction(b, a, 1.0 - x) / b;
}

/// The inverse of x -> I_x(a, b): the p-quantile of Beta(a, b), for p in [0, 1]. Bisection to
/// full double precision (monotone and robust; about 60 evaluations).
inline double inverse_incomplete_beta(double a, double b, double p) {
    VQLIB_CHECK(p >= 0.0 && p <= 1.0, invalid_argument, "inverse_incomplete_beta: p = ", p,
                ": expected a value in [0, 1]");
    if (p == 0.0) return 0.0;
    if (p == 1.0) return 1.0;
    double lo = 0.0, hi = 1.0;
    for (int it = 0; it < 200 && hi - lo > 0.0; ++it) {
        const double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (incomplete_beta(a, b, mid) < p) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return 0.5 * (lo + hi);
}

}  // namespace vqlib
