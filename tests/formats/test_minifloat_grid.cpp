#include <vqlib/core/rng.hpp>
#include <vqlib/formats/minifloat_grid.hpp>

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using Catch::Matchers::Contains;
using Catch::Matchers::WithinRel;
using vqlib::GridParams;
using vqlib::MinifloatFormat;
using vqlib::MinifloatGrid;
using vqlib::MinifloatSpecials;

namespace {

constexpr float pos_inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

// Compile-time use of the format: constants are usable in static_asserts.
static_assert(MinifloatFormat::fp8_e4m3().max_value() == 448.0f);
static_assert(MinifloatFormat::fp8_e5m2().max_value() == 57344.0f);
static_assert(MinifloatFormat::fp4_e2m1().decode(7) == 6.0f);
static_assert(MinifloatFormat::fp4_e2m1().encode(2.5f) == 4);  // tie 2 | 3 -> 2 (code 4)
static_assert(MinifloatFormat::fp8_e4m3().encode(1.0f) == 0x38);

// A format's finite values by code, for the brute-force oracle.
struct FiniteCode {
    double value;
    std::uint32_t code;
};

std::vector<FiniteCode> finite_codes(const MinifloatFormat& f) {
    std::vector<FiniteCode> out;
    for (std::uint32_t c = 0; c < (1u << f.bits()); ++c) {
        const float v = f.decode(c);
        if (std::isfinite(v)) out.push_back({v, c});
    }
    return out;
}

std::string describe(const MinifloatFormat& f, float x, std::uint32_t code, const char* what) {
    std::ostringstream s;
    s.precision(10);
    s << f.name() << " bias " << f.bias() << ": encode(" << x << ") = " << code << " (value "
      << f.decode(code) << "): " << what;
    return s.str();
}

// Brute-force check of encode(x) against every finite value of the format: the result is a
// nearest value (or +-max for |x| >= max), ties go to the even code, zero has the single code 0.
std::optional<std::string> oracle_check(const MinifloatFormat& f,
                                        const std::vector<FiniteCode>& table, float x) {
    const std::uint32_t code = f.encode(x);
    if (code >> f.bits() != 0) return describe(f, x, code, "code wider than the format");
    const float got = f.decode(code);
    if (!std::isfinite(got)) return describe(f, x, code, "not finite");
    if (got == 0.0f && code != 0) return describe(f, x, code, "zero not encoded as code 0");
    if (std::abs(x) >= f.max_value()) {
        if (got != std::copysign(f.max_value(), x))
            return describe(f, x, code, "expected saturation to +-max");
        return std::nullopt;
    }
    double best = std::numeric_limits<double>::infinity();
    for (const auto& e : table) best = std::min(best, std::abs(e.value - double{x}));
    std::vector<double> nearest;
    for (const auto& e : table)
        if (std::abs(e.value - double{x}) == best &&
            std::find(nearest.begin(), nearest.end(), e.value) == nearest.end())
            nearest.push_back(e.value);
    if (std::abs(double{got} - double{x}) != best)
        return describe(f, x, code, "not a nearest value");
    if (nearest.size() > 1 && (code & 1u) != 0)
        return describe(f, x, code, "tie not resolved to the even code");
    return std::nullopt;
}

// Points that stress a format: all values, midpoints and their float neighbours, thirds, a
// uniform grid over the range and beyond, random floats over (and past) the format's exponent
// range, and the float specials. Points are subsampled to keep the brute force affordable.
std::vector<float> probe_points(const MinifloatFormat& f, const std::vector<FiniteCode>& table,
                                std::uint64_t seed) {
    std::vector<double> values;
    for (const auto& e : table)
        if (e.value >= 0 && (values.empty() || values.back() != e.value)) values.push_back(e.value);
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());

    vqlib::Rng rng(seed);
    const std::size_t budget = std::clamp<std::size_t>(40'000'000 / table.size(), 2000, 200'000);
    std::vector<float> fine;
    auto add_exact = [&](double v) {
        if (v > std::numeric_limits<float>::max()) return;
        const float fv = static_cast<float>(v);
        if (double{fv} == v) fine.push_back(fv);
    };
    values.push_back(2.0 * values.back() - values[values.size() - 2]);  // a virtual next value
    for (std::size_t k = 0; k + 1 < values.size(); ++k) {
        const double lo = values[k], hi = values[k + 1], mid = 0.5 * (lo + hi);
        add_exact(lo);
        add_exact(mid);
        add_exact(lo + (hi - lo) / 3.0);
        add_exact(lo + 2.0 * (hi - lo) / 3.0);
        if (mid <= std::numeric_limits<float>::max()) {
            const float fmid = static_cast<float>(mid);
            fine.push_back(std::nextafter(fmid, 0.0f));
            fine.push_back(std::nextafter(fmid, pos_inf));
        }
    }
    std::vector<float> points;
    const std::size_t fine_keep = budget / 2;
    for (const float v : fine) {
        if (fine.size() <= fine_keep || rng.below(fine.size()) < fine_keep) {
            points.push_back(v);
            points.push_back(-v);
        }
    }
    const int grid = static_cast<int>(budget / 4);
    for (int i = -grid; i <= grid; ++i) {
        const double v = 1.25 * f.max_value() * i / grid;
        if (std::abs(v) <= std::numeric_limits<float>::max())
            points.push_back(static_cast<float>(v));
        else
            points.push_back(v > 0 ? pos_inf : -pos_inf);
    }
    const int lo_exp = std::max(-149, 1 - f.bias() - f.mantissa_bits() - 4);
    const int hi_exp = std::min(127, static_cast<int>(std::log2(f.max_value())) + 2);
    for (std::size_t i = 0; i < budget / 4; ++i) {
        const int e =
            lo_exp + static_cast<int>(rng.below(static_cast<std::uint64_t>(hi_exp - lo_exp + 1)));
        const float m = static_cast<float>(1.0 + rng.uniform());
        const float x = std::ldexp(m, e);
        points.push_back(rng.below(2) != 0 ? -x : x);
    }
    for (const float x :
         {0.0f, -0.0f, pos_inf, -pos_inf, std::numeric_limits<float>::max(),
          -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
          -std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()})
        points.push_back(x);
    return points;
}

void run_oracle(const MinifloatFormat& f, std::uint64_t seed) {
    INFO(f.name() << " bias " << f.bias());
    const auto table = finite_codes(f);
    const auto points = probe_points(f, table, seed);
    std::size_t failures = 0;
    std::string first;
    for (const float x : points) {
        if (auto msg = oracle_check(f, table, x)) {
            if (failures++ == 0) first = *msg;
        }
    }
    INFO("first failure: " << first);
    CHECK(failures == 0);
    CHECK(points.size() > 1000);

    // Round trips: every finite code decodes to a value that encodes back to itself (-0 to +0);
    // infinities saturate to +-max.
    for (std::uint32_t c = 0; c < (1u << f.bits()); ++c) {
        const float v = f.decode(c);
        if (std::isnan(v)) continue;
        INFO("code " << c << " value " << v);
        if (std::isinf(v)) {
            CHECK(f.encode(v) == (f.max_code() | (c & ~f.max_code() & (1u << (f.bits() - 1)))));
            continue;
        }
        const std::uint32_t back = f.encode(v);
        CHECK(f.decode(back) == v);
        CHECK(back == (v == 0.0f ? 0u : c));
    }
}

double row_error(const MinifloatGrid& g, const vqlib::MatrixXf& x, vqlib::Index r,
                 const GridParams& p, double norm) {
    double err = 0.0;
    for (vqlib::Index k = 0; k < x.cols(); ++k)
        err += std::pow(std::abs(g.decode(g.encode(x(r, k), p), p) - x(r, k)), norm);
    return err;
}

}  // namespace

TEST_CASE("quantizers/minifloat: FP4 E2M1 value table", "[quantizers][minifloat]") {
    const auto f = MinifloatFormat::fp4_e2m1();
    CHECK(f.bits() == 4);
    CHECK(f.max_value() == 6.0f);
    CHECK(f.max_code() == 7u);
    CHECK(f.name() == "FP4-E2M1");
    const float magnitudes[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    for (std::uint32_t c = 0; c < 8; ++c) {
        INFO("code " << c);
        CHECK(f.decode(c) == magnitudes[c]);
        CHECK(f.decode(c | 8u) == -magnitudes[c]);
        CHECK(f.encode(magnitudes[c]) == c);
        CHECK(f.encode(-magnitudes[c]) == (c == 0 ? 0u : (c | 8u)));
    }
    CHECK(std::signbit(f.decode(8)));  // the sign-bit-only code decodes to -0
}

TEST_CASE("quantizers/minifloat: FP8 E4M3 spot values", "[quantizers][minifloat]") {
    const auto f = MinifloatFormat::fp8_e4m3();
    CHECK(f.bits() == 8);
    CHECK(f.name() == "FP8-E4M3");
    CHECK(f.specials() == MinifloatSpecials::finite_with_nan);
    CHECK(f.max_code() == 0x7Eu);
    CHECK(f.decode(0x7E) == 448.0f);
    CHECK(f.decode(0xFE) == -448.0f);
    CHECK(f.decode(0x01) == std::ldexp(1.0f, -9));  // smallest subnormal
    CHECK(f.decode(0x07) == 7.0f * std::ldexp(1.0f, -9));
    CHECK(f.decode(0x08) == std::ldexp(1.0f, -6));  // smallest normal
    CHECK(f.decode(0x38) == 1.0f);
    CHECK(f.decode(0x78) == 256.0f);  // exponent 15 is finite in E4M3FN
    CHECK(std::isnan(f.decode(0x7F)));
    CHECK(std::isnan(f.decode(0xFF)));
    for (std::uint32_t c = 0; c < 256; ++c)
        if ((c & 0x7Fu) != 0x7Fu) CHECK(std::isfinite(f.decode(c)));

    CHECK(f.encode(448.0f) == 0x7Eu);
    CHECK(f.encode(464.0f) == 0x7Eu);  // beyond max: saturates rather than rounding to NaN
    CHECK(f.encode(1e30f) == 0x7Eu);
    CHECK(f.encode(pos_inf) == 0x7Eu);
    CHECK(f.encode(-pos_inf) == 0xFEu);
    CHECK(f.encode(std::ldexp(1.0f, -10)) == 0u);     // half the smallest subnormal: tie to 0
    CHECK(f.encode(std::ldexp(3.0f, -11)) == 0x01u);  // 0.75 subnormal ulp: up
    CHECK(f.encode(std::ldexp(3.0f, -10)) == 0x02u);  // tie 1 | 2 ulp -> 2 (even)
    CHECK(f.encode(qnan) == 0x7Fu);
    CHECK(std::isnan(f.decode(f.encode(-qnan))));
}

TEST_CASE("quantizers/minifloat: FP8 E5M2 spot values and infinities", "[quantizers][minifloat]") {
    const auto f = MinifloatFormat::fp8_e5m2();
    CHECK(f.name() == "FP8-E5M2");
    CHECK(f == MinifloatFormat(5, 2, MinifloatSpecials::ieee));  // IEEE bias by default
    CHECK(f.max_code() == 0x7Bu);
    CHECK(f.decode(0x7B) == 57344.0f);
    CHECK(f.decode(0x01) == std::ldexp(1.0f, -16));  // smallest subnormal
    CHECK(f.decode(0x04) == std::ldexp(1.0f, -14));  // smallest normal
    CHECK(f.decode(0x3C) == 1.0f);
    CHECK(f.decode(0x7C) == pos_inf);
    CHECK(f.decode(0xFC) == -pos_inf);
    for (std::uint32_t c : {0x7Du, 0x7Eu, 0x7Fu, 0xFDu, 0xFEu, 0xFFu})
        CHECK(std::isnan(f.decode(c)));

    CHECK(f.encode(57344.0f) == 0x7Bu);
    // Halfway from max to the next binade: IEEE rounds this tie to inf; satfinite keeps max.
    CHECK(f.encode(61440.0f) == 0x7Bu);
    CHECK(f.encode(1e9f) == 0x7Bu);
    CHECK(f.encode(-1e9f) == 0xFBu);
    CHECK(f.encode(pos_inf) == 0x7Bu);
    CHECK(f.encode(-pos_inf) == 0xFBu);
    const std::uint32_t nan_code = f.encode(qnan);
    CHECK(nan_code == 0x7Eu);  // quiet NaN: top mantissa bit set
    CHECK(std::isnan(f.decode(nan_code)));
}

TEST_CASE("quantizers/minifloat: FP6 and FP3 formats", "[quantizers][minifloat]") {
    const auto e3m2 = MinifloatFormat::fp6_e3m2();
    CHECK(e3m2.bits() == 6);
    CHECK(e3m2.max_value() == 28.0f);
    CHECK(e3m2.decode(1) == 0.0625f);
    CHECK(e3m2.name() == "FP6-E3M2");
    const auto e2m3 = MinifloatFormat::fp6_e2m3();
    CHECK(e2m3.max_value() == 7.5f);
    CHECK(e2m3.decode(1) == 0.125f);
    CHECK(e2m3.name() == "FP6-E2M3");

    const MinifloatFormat e1m1(1, 1, MinifloatSpecials::finite);  // bias 0: 0, 1, 2, 3
    CHECK(e1m1.bits() == 3);
    const MinifloatFormat e2m0(2, 0, MinifloatSpecials::finite);  // bias 1: 0, 1, 2, 4
    CHECK(e2m0.bits() == 3);
    const float e1m1_values[4] = {0.0f, 1.0f, 2.0f, 3.0f};
    const float e2m0_values[4] = {0.0f, 1.0f, 2.0f, 4.0f};
    for (std::uint32_t c = 0; c < 4; ++c) {
        CHECK(e1m1.decode(c) == e1m1_values[c]);
        CHECK(e1m1.decode(c | 4u) == -e1m1_values[c]);
        CHECK(e2m0.decode(c) == e2m0_values[c]);
    }

    const MinifloatFormat shifted(4, 3, MinifloatSpecials::finite_with_nan, 11);
    CHECK(shifted.max_value() == 28.0f);  // 448 / 2^4
    CHECK(shifted.name() == "FP8-E4M3-B11");
}

TEST_CASE("quantizers/minifloat: ties round to the even code", "[quantizers][minifloat]") {
    const auto f = MinifloatFormat::fp4_e2m1();
    CHECK(f.decode(f.encode(2.5f)) == 2.0f);
    CHECK(f.decode(f.encode(3.5f)) == 4.0f);
    CHECK(f.decode(f.encode(5.0f)) == 4.0f);
    CHECK(f.decode(f.encode(0.25f)) == 0.0f);
    CHECK(f.decode(f.encode(0.75f)) == 1.0f);
    CHECK(f.decode(f.encode(1.25f)) == 1.0f);
    CHECK(f.decode(f.encode(1.75f)) == 2.0f);
    CHECK(f.decode(f.encode(-2.5f)) == -2.0f);
    CHECK(f.decode(f.encode(-5.0f)) == -4.0f);
    CHECK(f.decode(f.encode(std::nextafter(2.5f, 3.0f))) == 3.0f);
    CHECK(f.decode(f.encode(std::nextafter(5.0f, 0.0f))) == 4.0f);
    CHECK(f.decode(f.encode(std::nextafter(5.0f, 6.0f))) == 6.0f);
    CHECK(f.encode(-0.25f) == 0u);  // rounds to zero: the single zero code

    // Without mantissa bits the even code is the even exponent field: 0, 1, 2, 4 have codes
    // 0, 1, 2, 3, so 1.5 -> 2 (code 2) but 3 -> 2 (code 2, not 4 with code 3).
    const MinifloatFormat e2m0(2, 0, MinifloatSpecials::finite);
    CHECK(e2m0.decode(e2m0.encode(0.5f)) == 0.0f);
    CHECK(e2m0.decode(e2m0.encode(1.5f)) == 2.0f);
    CHECK(e2m0.decode(e2m0.encode(3.0f)) == 2.0f);
    CHECK(e2m0.decode(e2m0.encode(3.5f)) == 4.0f);
}

TEST_CASE("quantizers/minifloat: -0 and NaN conventions", "[quantizers][minifloat]") {
    const auto e4m3 = MinifloatFormat::fp8_e4m3();
    CHECK(e4m3.encode(-0.0f) == 0u);
    CHECK(e4m3.encode(-1e-30f) == 0u);
    CHECK(e4m3.encode(-std::numeric_limits<float>::denorm_min()) == 0u);
    CHECK(std::signbit(e4m3.decode(0x80)));
    CHECK(e4m3.decode(0x80) == 0.0f);

    const auto fp4 = MinifloatFormat::fp4_e2m1();
    CHECK_THROWS_AS(fp4.encode(qnan), vqlib::numerical_error);
    CHECK_THROWS_WITH(fp4.encode(qnan), Contains("has no NaN code"));
    CHECK_THROWS_AS(MinifloatFormat(5, 0, MinifloatSpecials::ieee).encode(qnan),
                    vqlib::numerical_error);  // IEEE without mantissa: infinities but no NaN

    CHECK_THROWS_AS(e4m3.decode(256), vqlib::invalid_argument);
    CHECK_THROWS_AS(fp4.decode(16), vqlib::invalid_argument);
}

TEST_CASE("quantizers/minifloat: encode matches a brute-force oracle", "[quantizers][minifloat]") {
    using S = MinifloatSpecials;
    const std::vector<MinifloatFormat> formats = {
        MinifloatFormat::fp8_e4m3(),
        MinifloatFormat::fp8_e5m2(),
        MinifloatFormat::fp6_e3m2(),
        MinifloatFormat::fp6_e2m3(),
        MinifloatFormat::fp4_e2m1(),
        MinifloatFormat(1, 1, S::finite),  // FP3 E1M1
        MinifloatFormat(2, 0, S::finite),  // FP3 E2M0
        MinifloatFormat(1, 0, S::finite),  // FP2: 0, +-1
        MinifloatFormat(1, 2, S::finite),
        MinifloatFormat(3, 0, S::finite_with_nan),
        MinifloatFormat(5, 0, S::ieee),
        MinifloatFormat(4, 3, S::ieee),
        MinifloatFormat(2, 2, S::ieee),
        MinifloatFormat(1, 3, S::ieee),  // every finite value subnormal
        MinifloatFormat(4, 3, S::finite_with_nan, 11),
        MinifloatFormat(3, 2, S::finite, -2),   // negative bias: values up to 448
        MinifloatFormat(8, 0, S::finite, 128),  // powers of two 2^-127 .. 2^127
        MinifloatFormat(5, 3, S::ieee),         // 9 bits
        MinifloatFormat(3, 7, S::finite),       // 11 bits, dense mantissa
        MinifloatFormat(8, 7, S::ieee, 143),    // smallest subnormal 2^-149
        MinifloatFormat(8, 7, S::finite, 128),  // largest value (2 - 2^-7) * 2^127
    };
    std::uint64_t seed = 1;
    for (const auto& f : formats) {
        DYNAMIC_SECTION(f.name() << " bias " << f.bias()) { run_oracle(f, seed); }
        ++seed;
    }
}

TEST_CASE("quantizers/minifloat: FP16 and BF16 agree with Eigen's conversions",
          "[quantizers][minifloat]") {
    // Two 16-bit formats with independent reference conversions (round to nearest even); Eigen
    // overflows to inf where we saturate, so inputs stay below max_value().
    const MinifloatFormat fp16(5, 10, MinifloatSpecials::ieee);
    const MinifloatFormat bf16(8, 7, MinifloatSpecials::ieee);
    CHECK(fp16.max_value() == 65504.0f);
    CHECK(bf16.max_value() == static_cast<float>(Eigen::NumTraits<Eigen::bfloat16>::highest()));
    for (std::uint32_t c = 0; c < (1u << 16); ++c) {
        const float h =
            static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(static_cast<std::uint16_t>(c)));
        const float b = static_cast<float>(
            Eigen::numext::bit_cast<Eigen::bfloat16>(static_cast<std::uint16_t>(c)));
        const float hd = fp16.decode(c), bd = bf16.decode(c);
        if (std::isnan(h) || std::isnan(hd))
            CHECK((std::isnan(h) && std::isnan(hd)));
        else if (hd != h)
            FAIL("fp16 code " << c << ": " << hd << " vs " << h);
        if (std::isnan(b) || std::isnan(bd))
            CHECK((std::isnan(b) && std::isnan(bd)));
        else if (bd != b)
            FAIL("bf16 code " << c << ": " << bd << " vs " << b);
    }
    vqlib::Rng rng(7);
    std::size_t mismatches = 0;
    std::string first;
    for (int i = 0; i < 400000; ++i) {
        // Random bit patterns cover every float exponent, subnormals included.
        const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng.next()));
        if (std::isnan(x)) continue;
        for (const auto* f : {&fp16, &bf16}) {
            if (std::abs(x) >= f->max_value()) continue;
            const float want = f == &fp16 ? static_cast<float>(Eigen::half(x))
                                          : static_cast<float>(Eigen::bfloat16(x));
            const float got = f->decode(f->encode(x));
            if (got != want && mismatches++ == 0)
                first = describe(*f, x, f->encode(x), "differs from Eigen");
        }
    }
    INFO(first);
    CHECK(mismatches == 0);
}

TEST_CASE("quantizers/minifloat: invalid formats are rejected", "[quantizers][minifloat]") {
    using S = MinifloatSpecials;
    using vqlib::invalid_argument;
    CHECK_THROWS_AS(MinifloatFormat(0, 0, S::finite), invalid_argument);
    CHECK_THROWS_WITH(MinifloatFormat(0, 0, S::finite), Contains("exponent_bits = 0"));
    CHECK_THROWS_AS(MinifloatFormat(0, 3, S::finite, 0), invalid_argument);
    CHECK_THROWS_AS(MinifloatFormat(9, 2, S::ieee), invalid_argument);
    CHECK_THROWS_AS(MinifloatFormat(2, -1, S::finite), invalid_argument);
    CHECK_THROWS_AS(MinifloatFormat(8, 8, S::finite, 127), invalid_argument);  // 17 bits
    CHECK_THROWS_WITH(MinifloatFormat(5, 11, S::ieee), Contains("mantissa_bits = 11"));
    CHECK_NOTHROW(MinifloatFormat(5, 10, S::ieee));  // 16 bits
    // Nothing finite but zero: the only non-zero field is special.
    CHECK_THROWS_AS(MinifloatFormat(1, 0, S::ieee), invalid_argument);
    CHECK_THROWS_WITH(MinifloatFormat(1, 0, S::finite_with_nan),
                      Contains("no positive finite value"));
    // Values outside float's range.
    CHECK_THROWS_AS(MinifloatFormat(8, 7, S::ieee, 144), invalid_argument);  // subnormal 2^-150
    CHECK_THROWS_WITH(MinifloatFormat(8, 0, S::finite), Contains("bias = 127"));  // 2^128
    CHECK_THROWS_AS(MinifloatFormat(8, 7, S::ieee, -10), invalid_argument);
    CHECK_NOTHROW(MinifloatFormat(8, 7, S::ieee, 143));
}

TEST_CASE("quantizers/minifloat: grid fits one scale per row", "[quantizers][minifloat]") {
    const MinifloatGrid grid(MinifloatFormat::fp8_e4m3());
    CHECK(grid.code_bits() == 8);
    CHECK(grid.param_bits() == 32);
    CHECK(grid.name() == "FP8-E4M3");
    CHECK(MinifloatGrid(MinifloatFormat::fp4_e2m1(), {}, vqlib::ScaleStorage::fp16).param_bits() ==
          16);

    vqlib::MatrixXf x(4, 5);
    x << 1.0f, -2.0f, 0.5f, 3.0f, 0.01f,  //
        0.0f, 0.0f, 0.0f, 0.0f, 0.0f,     //
        -5.0f, 0.1f, 0.2f, 5.0f, -0.3f,   //
        0.7f, -1.3f, 2.9f, -0.04f, 1e-3f;
    std::vector<GridParams> params(4);
    grid.fit(x, params);

    CHECK(params[0].scale == 3.0f / 448.0f);
    CHECK(params[1].scale == 1.0f);  // all-zero row
    CHECK(params[2].scale == 5.0f / 448.0f);
    CHECK(params[3].scale == 2.9f / 448.0f);
    for (const auto& p : params) CHECK(p.zero == 0.0f);

    // The row's absolute maximum maps to the format's +-max.
    CHECK(grid.encode(3.0f, params[0]) == 0x7Eu);
    CHECK(grid.encode(-5.0f, params[2]) == 0xFEu);
    CHECK(grid.encode(5.0f, params[2]) == 0x7Eu);
    CHECK(grid.encode(2.9f, params[3]) == 0x7Eu);
    CHECK_THAT(grid.decode(0x7E, params[0]), WithinRel(3.0f, 1e-6f));
    CHECK_THAT(grid.decode(0xFE, params[2]), WithinRel(-5.0f, 1e-6f));

    // Every value is reproduced to within half a spacing: 2^-4 relative for E4M3 normals, and
    // half the scaled smallest subnormal near zero.
    for (vqlib::Index r = 0; r < x.rows(); ++r) {
        const GridParams& p = params[static_cast<std::size_t>(r)];
        for (vqlib::Index k = 0; k < x.cols(); ++k) {
            const float v = x(r, k);
            const float q = grid.decode(grid.encode(v, p), p);
            INFO("row " << r << " col " << k << ": " << v << " -> " << q);
            CHECK(std::abs(q - v) <=
                  std::abs(v) / 16.0f + p.scale * std::ldexp(1.0f, -10) * 1.0001f);
        }
    }
    for (vqlib::Index k = 0; k < x.cols(); ++k) CHECK(grid.encode(x(1, k), params[1]) == 0u);

    // Exact when the values lie on the scaled grid: FP4 with absmax 6 has scale 1.
    const MinifloatGrid fp4(MinifloatFormat::fp4_e2m1());
    vqlib::MatrixXf y(1, 6);
    y << 6.0f, -3.0f, 1.5f, 0.0f, -0.5f, 4.0f;
    std::vector<GridParams> py(1);
    fp4.fit(y, py);
    CHECK(py[0].scale == 1.0f);
    for (vqlib::Index k = 0; k < y.cols(); ++k)
        CHECK(fp4.decode(fp4.encode(y(0, k), py[0]), py[0]) == y(0, k));

    // Foreign memory: a block of a row-major matrix.
    vqlib::RowMajorMatrixXf z = x;
    std::vector<GridParams> pz(2);
    grid.fit(z.bottomRows(2), pz);
    CHECK(pz[0].scale == params[2].scale);
    CHECK(pz[1].scale == params[3].scale);
}

TEST_CASE("quantizers/minifloat: fp16 scale storage", "[quantizers][minifloat]") {
    const MinifloatGrid grid(MinifloatFormat::fp4_e2m1(), {}, vqlib::ScaleStorage::fp16);
    vqlib::MatrixXf x(2, 3);
    x << 0.123f, -0.7f, 0.3f,  //
        1e-9f, 0.0f, -1e-9f;
    std::vector<GridParams> params(2);
    grid.fit(x, params);
    for (const auto& p : params) {
        CHECK(p.scale > 0.0f);
        CHECK(static_cast<float>(Eigen::half(p.scale)) == p.scale);  // representable as a half
    }
    CHECK(params[0].scale == vqlib::round_scale(0.7f / 6.0f, vqlib::ScaleStorage::fp16));
    // A rounded-down scale makes the absmax saturate to max; it never goes past it.
    CHECK(grid.decode(grid.encode(-0.7f, params[0]), params[0]) == -6.0f * params[0].scale);
}

TEST_CASE("quantizers/minifloat: MSE search never increases the error", "[quantizers][minifloat]") {
    vqlib::Rng rng(11);
    vqlib::MatrixXf x(16, 128);
    for (vqlib::Index r = 0; r < x.rows(); ++r)
        for (vqlib::Index k = 0; k < x.cols(); ++k)
            x(r, k) = static_cast<float>(rng.student_t(3));  // heavy tails: shrinking pays off
    for (const auto format :
         {MinifloatFormat::fp4_e2m1(), MinifloatFormat::fp6_e3m2(), MinifloatFormat::fp8_e4m3()}) {
        for (const double norm : {2.0, 2.4}) {
            vqlib::MseSearch mse;
            mse.enabled = true;
            mse.norm = norm;
            const MinifloatGrid plain(format);
            const MinifloatGrid searched(format, mse);
            std::vector<GridParams> p_plain(16), p_mse(16);
            plain.fit(x, p_plain);
            searched.fit(x, p_mse);
            int improved = 0;
            for (vqlib::Index r = 0; r < x.rows(); ++r) {
                const auto i = static_cast<std::size_t>(r);
                const double e_plain = row_error(plain, x, r, p_plain[i], norm);
                const double e_mse = row_error(searched, x, r, p_mse[i], norm);
                INFO(format.name() << " norm " << norm << " row " << r);
                CHECK(e_mse <= e_plain * (1.0 + 1e-5));
                CHECK(p_mse[i].scale <= p_plain[i].scale);
                if (e_mse < e_plain * (1.0 - 1e-3)) ++improved;
            }
            INFO(format.name() << " norm " << norm);
            if (format.bits() == 4) CHECK(improved > 0);
        }
    }
}

TEST_CASE("quantizers/minifloat: grid argument checks", "[quantizers][minifloat]") {
    vqlib::MseSearch bad;
    bad.enabled = true;
    bad.grid = 0;
    CHECK_THROWS_AS(MinifloatGrid(MinifloatFormat::fp4_e2m1(), bad), vqlib::invalid_argument);
    bad.grid = 100;
    bad.maxshrink = 1.5;
    CHECK_THROWS_WITH(MinifloatGrid(MinifloatFormat::fp4_e2m1(), bad), Contains("maxshrink 1.5"));

    const MinifloatGrid grid(MinifloatFormat::fp8_e5m2());
    vqlib::MatrixXf x = vqlib::MatrixXf::Ones(3, 4);
    std::vector<GridParams> two(2);
    CHECK_THROWS_AS(grid.fit(x, two), vqlib::shape_error);
    std::vector<GridParams> three(3);
    x(1, 2) = qnan;
    CHECK_THROWS_WITH(grid.fit(x, three), Contains("x(1, 2)"));
    x(1, 2) = -pos_inf;
    CHECK_THROWS_AS(grid.fit(x, three), vqlib::numerical_error);
}
