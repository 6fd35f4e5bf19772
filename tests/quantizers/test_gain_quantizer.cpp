// Tests of vqlib/quantizers/gain_quantizer.hpp: the amplitude law against sampled rotations, the
// defining property of each design (equiprobable quantiles, Lloyd-Max fixed point, log spacing),
// their ranking by expected error, the nearest-level lookup and argument errors.
#include <vqlib/core/rng.hpp>
#include <vqlib/quantizers/gain_quantizer.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

namespace {

/// Relative amplitudes ||w_g|| / ||w|| of the first group of D coordinates of `samples` uniformly
/// random directions in R^n.
std::vector<double> sampled_amplitudes(vqlib::Index dim, vqlib::Index n, int samples,
                                       std::uint64_t seed) {
    vqlib::Rng rng(seed);
    std::vector<double> out;
    std::vector<double> w(static_cast<std::size_t>(n));
    for (int s = 0; s < samples; ++s) {
        double total = 0, group = 0;
        for (vqlib::Index i = 0; i < n; ++i) {
            const double v = rng.normal();
            total += v * v;
            if (i < dim) group += v * v;
        }
        out.push_back(std::sqrt(group / total));
    }
    return out;
}

}  // namespace

TEST_CASE("GroupAmplitudeLaw describes a group's share of a random direction",
          "[quantizers][gain]") {
    const vqlib::Index D = 8, n = 128;
    const vqlib::GroupAmplitudeLaw law(D, n);
    const auto a = sampled_amplitudes(D, n, 20000, 7);
    for (double p : {0.1, 0.5, 0.9}) {
        const double q = law.quantile(p);
        double below = 0;
        for (double x : a) below += x <= q;
        CHECK(below / double(a.size()) == Approx(p).margin(0.01));
    }
    // E[a^2] = D / n exactly.
    CHECK(law.partial_second_moment(0, 1) == Approx(double(D) / double(n)).epsilon(1e-12));
    double mean = 0;
    for (double x : a) mean += x;
    CHECK(law.partial_mean(0, 1) == Approx(mean / double(a.size())).epsilon(0.005));
}

TEST_CASE("each gain design has its defining property", "[quantizers][gain]") {
    const vqlib::Index D = 32, n = 512;
    const vqlib::GroupAmplitudeLaw law(D, n);

    SECTION("Beta quantiles are equiprobable") {
        const auto cb = vqlib::BetaQuantileGain{4}.codebook(D, n);
        REQUIRE(cb.size() == 16);
        CHECK(cb.parameter_bits == 0);
        for (vqlib::Index i = 0; i < cb.size(); ++i)
            CHECK(law.cdf(cb.levels[std::size_t(i)]) == Approx((i + 0.5) / 16.0).epsilon(1e-5));
    }
    SECTION("Lloyd-Max levels are the centroids of their cells") {
        const auto cb = vqlib::BetaLloydMaxGain{3, 2000, 1e-12}.codebook(D, n);
        REQUIRE(cb.size() == 8);
        for (std::size_t i = 0; i < 8; ++i) {
            const double lo = i == 0 ? 0.0 : 0.5 * (cb.levels[i - 1] + cb.levels[i]);
            const double hi = i == 7 ? 1.0 : 0.5 * (cb.levels[i] + cb.levels[i + 1]);
            CHECK(law.partial_mean(lo, hi) / (law.cdf(hi) - law.cdf(lo)) ==
                  Approx(cb.levels[i]).epsilon(1e-6));
        }
    }
    SECTION("log-uniform levels have a constant ratio") {
        const auto cb = vqlib::LogUniformGain{5}.codebook(D, n);
        REQUIRE(cb.size() == 32);
        const double ratio = cb.levels[1] / cb.levels[0];
        CHECK(ratio > 1.0);
        for (std::size_t i = 1; i < 32; ++i)
            CHECK(cb.levels[i] / cb.levels[i - 1] == Approx(ratio).epsilon(1e-5));
        CHECK(law.cdf(cb.levels.front()) == Approx(1.0 / 64).epsilon(1e-4));
        const auto explicit_range = vqlib::LogUniformGain{2, 0.01, 0.64}.codebook(D, n);
        CHECK(explicit_range.parameter_bits == 64);
        CHECK(explicit_range.levels[0] == Approx(0.01f));
        CHECK(explicit_range.levels[1] == Approx(0.04f));
        CHECK(explicit_range.levels[3] == Approx(0.64f));
    }
}

TEST_CASE("Lloyd-Max has the least expected error, and the law predicts the sampled error",
          "[quantizers][gain]") {
    const vqlib::Index D = 16, n = 256;
    const vqlib::GroupAmplitudeLaw law(D, n);
    const auto a = sampled_amplitudes(D, n, 20000, 11);
    for (int bits : {2, 3, 5}) {
        INFO("bits = " << bits);
        const auto lloyd = vqlib::BetaLloydMaxGain{bits}.codebook(D, n);
        const auto quant = vqlib::BetaQuantileGain{bits}.codebook(D, n);
        const auto logu = vqlib::LogUniformGain{bits}.codebook(D, n);
        const double e_lloyd = law.expected_squared_error(lloyd.levels);
        CHECK(e_lloyd < law.expected_squared_error(quant.levels));
        CHECK(e_lloyd < law.expected_squared_error(logu.levels));
        double sampled = 0;
        for (double x : a) {
            const double q = lloyd.levels[lloyd.nearest(static_cast<float>(x))];
            sampled += (x - q) * (x - q);
        }
        CHECK(sampled / double(a.size()) == Approx(e_lloyd).epsilon(0.05));
    }
}

TEST_CASE("GainCodebook::nearest picks the nearest level", "[quantizers][gain]") {
    vqlib::GainCodebook cb{{0.1f, 0.2f, 0.4f}, 2, 0};
    CHECK(cb.nearest(-1.0f) == 0);
    CHECK(cb.nearest(0.0f) == 0);
    CHECK(cb.nearest(0.14f) == 0);
    CHECK(cb.nearest(0.16f) == 1);
    CHECK(cb.nearest(0.29f) == 1);
    CHECK(cb.nearest(0.31f) == 2);
    CHECK(cb.nearest(5.0f) == 2);
}

TEST_CASE("gain quantizers reject invalid arguments", "[quantizers][gain]") {
    using Catch::Matchers::Contains;
    CHECK_THROWS_WITH(vqlib::BetaQuantileGain{0}.codebook(8, 64), Contains("gain bits = 0"));
    CHECK_THROWS_WITH(vqlib::BetaLloydMaxGain{17}.codebook(8, 64), Contains("gain bits = 17"));
    CHECK_THROWS_WITH(vqlib::BetaQuantileGain{4}.codebook(64, 64), Contains("row length n = 64"));
    CHECK_THROWS_WITH((vqlib::LogUniformGain{4, 0.5, 0.1}.codebook(8, 64)),
                      Contains("[lo, hi] = [0.5, 0.1]"));
}
