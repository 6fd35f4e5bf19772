#include <vqlib/core/error.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/transform/fwht.hpp>
#include <vqlib/transform/hadamard_matrix.hpp>
#include <vqlib/transform/kernels.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

namespace {

using vqlib::SimdLevel;

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    std::vector<T> x(n);
    for (auto& v : x) v = static_cast<T>(rng.normal());
    return x;
}

template <class T>
double norm(const std::vector<T>& x) {
    double s = 0.0;
    for (T v : x) s += static_cast<double>(v) * static_cast<double>(v);
    return std::sqrt(s);
}

template <class T>
double relative_difference(const std::vector<T>& a, const std::vector<T>& b) {
    double d = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        d += e * e;
    }
    return std::sqrt(d) / norm(b);
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

std::vector<SimdLevel> supported_levels() {
    std::vector<SimdLevel> levels;
    for (auto level : {SimdLevel::portable, SimdLevel::avx2, SimdLevel::avx512})
        if (vqlib::simd_level_supported(level)) levels.push_back(level);
    return levels;
}

}  // namespace

TEST_CASE("transform/fwht: equals the dense Sylvester matrix divided by sqrt(n)") {
    for (std::size_t n = 1; n <= 1024; n *= 2) {
        const auto h = vqlib::transform::detail::sylvester_matrix(static_cast<vqlib::Index>(n));
        const auto x = random_vector<double>(n, n);
        std::vector<double> expected(n, 0.0);
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t j = 0; j < n; ++j)
                expected[i] += h(static_cast<vqlib::Index>(i), static_cast<vqlib::Index>(j)) * x[j];
            expected[i] /= std::sqrt(static_cast<double>(n));
        }
        auto y = x;
        vqlib::transform::fwht(y.data(), n);
        INFO("n = " << n);
        CHECK(relative_difference(y, expected) < 1e-14);

        std::vector<float> xf(x.begin(), x.end());
        std::vector<float> expected_f(expected.begin(), expected.end());
        vqlib::transform::fwht(xf.data(), n);
        CHECK(relative_difference(xf, expected_f) < 1e-6);

        // Unnormalized: sqrt(n) times larger.
        auto u = x;
        vqlib::transform::fwht_unnormalized(u.data(), n);
        for (auto& v : u) v /= std::sqrt(static_cast<double>(n));
        CHECK(relative_difference(u, expected) < 1e-14);
    }
}

TEST_CASE("transform/fwht: self-inverse and norm-preserving up to 2^16") {
    for (std::size_t n : {2048u, 4096u, 16384u, 65536u}) {
        const auto x = random_vector<float>(n, 7 + n);
        auto y = x;
        vqlib::transform::fwht(y.data(), n);
        INFO("n = " << n);
        CHECK(std::abs(norm(y) / norm(x) - 1.0) < 1e-6);
        vqlib::transform::fwht(y.data(), n);
        CHECK(relative_difference(y, x) < 1e-6);

        const auto xd = random_vector<double>(n, 9 + n);
        auto yd = xd;
        vqlib::transform::fwht(yd.data(), n);
        vqlib::transform::fwht(yd.data(), n);
        CHECK(relative_difference(yd, xd) < 1e-14);
    }
}

TEST_CASE("transform/fwht: a spike spreads evenly (the incoherence property)") {
    const std::size_t n = 4096;
    std::vector<float> x(n, 0.0f);
    x[1234] = 1.0f;
    vqlib::transform::fwht(x.data(), n);
    for (float v : x) CHECK(std::abs(std::abs(v) - 1.0f / 64.0f) < 1e-9f);
}

TEST_CASE("transform/fwht: sizes other than powers of two are rejected") {
    std::vector<float> x(12);
    CHECK_THROWS_AS(vqlib::transform::fwht(x.data(), 0), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::transform::fwht(x.data(), 12), vqlib::invalid_argument);
    CHECK_THROWS_WITH(vqlib::transform::fwht(x.data(), 12), Catch::Contains("n = 12"));
    std::vector<double> y(6);
    CHECK_THROWS_AS(vqlib::transform::fwht(y.data(), 6), vqlib::invalid_argument);
    CHECK(vqlib::transform::is_power_of_two(1));
    CHECK(vqlib::transform::is_power_of_two(4096));
    CHECK_FALSE(vqlib::transform::is_power_of_two(0));
    CHECK_FALSE(vqlib::transform::is_power_of_two(11008));
}

TEST_CASE("transform/kernels: every instruction-set variant gives bit-identical results") {
    using vqlib::transform::detail::kernel_table;
    const auto levels = supported_levels();
    INFO("variants: " << levels.size() << ", best " << kernel_table<float>().name);
    // FWHT: contiguous vectors and interleaved batches with lane counts below, at and above the
    // vector widths (tails included).
    for (std::size_t p : {1u, 2u, 4u, 8u, 16u, 64u, 512u, 8192u}) {
        for (std::size_t lanes : {1u, 3u, 8u, 16u, 21u, 32u}) {
            if (p * lanes > 65536) continue;
            const auto x = random_vector<float>(p * lanes, p + 100 * lanes);
            const auto xd = random_vector<double>(p * lanes, p + 100 * lanes + 1);
            auto ref = x;
            auto refd = xd;
            kernel_table<float>(SimdLevel::portable).fwht(ref.data(), p, lanes);
            kernel_table<double>(SimdLevel::portable).fwht(refd.data(), p, lanes);
            // The batch is `lanes` independent transforms: lane v equals the contiguous result.
            for (std::size_t v = 0; v < lanes; v += 5) {
                std::vector<float> single(p);
                for (std::size_t t = 0; t < p; ++t) single[t] = x[t * lanes + v];
                kernel_table<float>(SimdLevel::portable).fwht(single.data(), p, 1);
                bool same = true;
                for (std::size_t t = 0; t < p; ++t) same = same && single[t] == ref[t * lanes + v];
                CHECK(same);
            }
            for (auto level : levels) {
                auto y = x;
                auto yd = xd;
                kernel_table<float>(level).fwht(y.data(), p, lanes);
                kernel_table<double>(level).fwht(yd.data(), p, lanes);
                INFO("p = " << p << ", lanes = " << lanes << ", "
                            << kernel_table<float>(level).name);
                CHECK(bitwise_equal(y, ref));
                CHECK(bitwise_equal(yd, refd));
            }
        }
    }
    // Mixing by a +-1 matrix and by a general one (the Hartley fallback path).
    for (std::size_t m : {1u, 3u, 4u, 12u, 43u, 172u}) {
        for (std::size_t len : {1u, 7u, 32u, 100u}) {
            const auto x = random_vector<float>(m * len, m * 1000 + len);
            const auto general = random_vector<float>(m * m, m);
            std::vector<float> signs(m * m);
            for (std::size_t i = 0; i < m * m; ++i) signs[i] = general[i] < 0 ? -1.0f : 1.0f;
            std::vector<float> ref_exact(m * len), ref_rounded(m * len);
            const auto& portable = kernel_table<float>(SimdLevel::portable);
            portable.mix_exact(x.data(), len, ref_exact.data(), len, signs.data(), m, len, 0.125f);
            portable.mix_rounded(x.data(), len, ref_rounded.data(), len, general.data(), m, len,
                                 0.3f);
            // Against a plain double-precision product.
            double err = 0.0, scale = 0.0;
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t l = 0; l < len; ++l) {
                    double s = 0.0;
                    for (std::size_t k = 0; k < m; ++k)
                        s += static_cast<double>(general[i * m + k]) * x[k * len + l];
                    err = std::max(err, std::abs(0.3 * s - ref_rounded[i * len + l]));
                    scale = std::max(scale, std::abs(0.3 * s));
                }
            CHECK(err <= 1e-5 * scale);
            for (auto level : levels) {
                std::vector<float> e(m * len), r(m * len);
                kernel_table<float>(level).mix_exact(x.data(), len, e.data(), len, signs.data(), m,
                                                     len, 0.125f);
                kernel_table<float>(level).mix_rounded(x.data(), len, r.data(), len, general.data(),
                                                       m, len, 0.3f);
                INFO("m = " << m << ", len = " << len << ", " << kernel_table<float>(level).name);
                CHECK(bitwise_equal(e, ref_exact));
                CHECK(bitwise_equal(r, ref_rounded));
            }
        }
    }
}
