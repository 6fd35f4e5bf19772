// Tests of vqlib/core/special_functions.hpp: closed forms of the incomplete beta function,
// agreement with numerical integration at the parameters PVQ's gain design uses, the inverse, and
// argument errors.
#include <vqlib/core/special_functions.hpp>

#include <catch2/catch.hpp>

#include <cmath>

namespace {

/// Beta(a, b) CDF at x by composite Simpson integration of the density in log space.
double integrated_cdf(double a, double b, double x, int intervals = 200000) {
    const double lb = vqlib::log_beta(a, b);
    const auto f = [&](double t) {
        if (t <= 0 || t >= 1) return 0.0;
        return std::exp((a - 1) * std::log(t) + (b - 1) * std::log1p(-t) - lb);
    };
    const double h = x / intervals;
    double sum = f(0) + f(x);
    for (int i = 1; i < intervals; ++i) sum += f(i * h) * (i % 2 ? 4.0 : 2.0);
    return sum * h / 3.0;
}

}  // namespace

TEST_CASE("incomplete_beta matches its closed forms", "[core][special]") {
    using vqlib::incomplete_beta;
    for (double x : {0.0, 1e-9, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0}) {
        CHECK(incomplete_beta(1, 1, x) == Approx(x).margin(1e-15));
        CHECK(incomplete_beta(3.5, 1, x) == Approx(std::pow(x, 3.5)).margin(1e-15));
        CHECK(incomplete_beta(1, 7, x) == Approx(1 - std::pow(1 - x, 7)).margin(1e-14));
        // I_x(2, 3) = 6x^2/2 - 8x^3/3 + 3x^4/4 times 12/... : 6x^2 - 8x^3 + 3x^4.
        CHECK(incomplete_beta(2, 3, x) == Approx(6 * x * x - 8 * x * x * x + 3 * x * x * x * x)
                                              .margin(1e-14));
    }
    for (double a : {0.5, 2.0, 16.0, 300.0}) CHECK(incomplete_beta(a, a, 0.5) == Approx(0.5).epsilon(1e-11));
    // Symmetry I_x(a, b) = 1 - I_(1-x)(b, a).
    CHECK(incomplete_beta(16, 240, 0.07) == Approx(1 - incomplete_beta(240, 16, 0.93)).epsilon(1e-12));
}

TEST_CASE("incomplete_beta agrees with numerical integration at PVQ's parameters",
          "[core][special]") {
    // Groups of D = 8, 16, 32 in rows of n = 512 and 4096: Beta(D/2, (n - D)/2).
    for (const auto& [a, b] : {std::pair{4.0, 252.0}, std::pair{16.0, 240.0},
                              std::pair{16.0, 2032.0}, std::pair{8.0, 2040.0}}) {
        const double mean = a / (a + b);
        for (double x : {0.25 * mean, mean, 2.0 * mean, 4.0 * mean}) {
            INFO("a = " << a << ", b = " << b << ", x = " << x);
            CHECK(vqlib::incomplete_beta(a, b, x) == Approx(integrated_cdf(a, b, x)).epsilon(1e-9));
        }
    }
}

TEST_CASE("inverse_incomplete_beta inverts incomplete_beta", "[core][special]") {
    for (const auto& [a, b] : {std::pair{0.5, 0.5}, std::pair{16.0, 240.0}, std::pair{4.0, 2044.0}}) {
        for (double p : {1e-6, 0.001, 0.2, 0.5, 0.9, 0.999999}) {
            const double x = vqlib::inverse_incomplete_beta(a, b, p);
            CHECK(vqlib::incomplete_beta(a, b, x) == Approx(p).epsilon(1e-10));
        }
    }
    CHECK(vqlib::inverse_incomplete_beta(2, 2, 0.0) == 0.0);
    CHECK(vqlib::inverse_incomplete_beta(2, 2, 1.0) == 1.0);
}

TEST_CASE("special functions reject invalid arguments", "[core][special]") {
    using Catch::Matchers::Contains;
    CHECK_THROWS_AS(vqlib::incomplete_beta(0, 1, 0.5), vqlib::invalid_argument);
    CHECK_THROWS_WITH(vqlib::incomplete_beta(1, 1, 1.5), Contains("x = 1.5"));
    CHECK_THROWS_WITH(vqlib::incomplete_beta(1, std::nan(""), 0.5), Contains("b = nan"));
    CHECK_THROWS_WITH(vqlib::inverse_incomplete_beta(1, 1, -0.1), Contains("p = -0.1"));
    CHECK_THROWS_AS(vqlib::log_beta(-1, 2), vqlib::invalid_argument);
}
