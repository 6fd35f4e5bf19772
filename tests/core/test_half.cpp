// core/half.hpp, the one fp16/bf16 conversion: exact widening, round-to-nearest-even narrowing
// equal to Eigen::half / Eigen::bfloat16 for every non-NaN value tried (all fp16 values, every
// rounding boundary, a sweep over the float bit patterns, random floats), and the users of it
// (scale_storage.hpp's saturation, the io names, the decode kernels' F16C widening).
#include <vqlib/core/half.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/simd.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/kernels/common.hpp>

#include <Eigen/Core>
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#ifdef VQLIB_DETAIL_X86_DISPATCH
#include <immintrin.h>
#endif

namespace {

using vqlib::bfloat16_to_float;
using vqlib::float_to_bfloat16;
using vqlib::float_to_half;
using vqlib::half_to_float;

std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }

std::uint16_t eigen_half(float f) { return Eigen::numext::bit_cast<std::uint16_t>(Eigen::half(f)); }

float eigen_widen(std::uint16_t h) {
    return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(h));
}

std::uint16_t eigen_bfloat16(float f) {
    return Eigen::numext::bit_cast<std::uint16_t>(Eigen::bfloat16(f));
}

bool is_half_nan(std::uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

/// float_to_half(f) against Eigen::half(f): the same bits, or NaN for both. Returns whether equal.
bool matches_eigen(float f) {
    const std::uint16_t ours = float_to_half(f);
    const std::uint16_t eigen = eigen_half(f);
    if (std::isnan(f)) return is_half_nan(ours) && is_half_nan(eigen);
    return ours == eigen;
}

/// The rounding of scale_storage.hpp before core/half.hpp (Eigen::half), kept as the reference.
float reference_round_scale(float scale) {
    float r = static_cast<float>(Eigen::half(scale));
    if (!std::isfinite(r)) r = 65504.0f;
    if (r == 0.0f && scale > 0.0f) r = 5.9604645e-8f;
    return r;
}

float reference_round_value(float value) {
    const float r = static_cast<float>(Eigen::half(value));
    if (std::isinf(r)) return r > 0 ? 65504.0f : -65504.0f;
    return r;
}

bool same_float(float a, float b) {
    return (std::isnan(a) && std::isnan(b)) || bits_of(a) == bits_of(b);
}

#ifdef VQLIB_DETAIL_X86_DISPATCH
/// The F16C widening of 8 fp16 values, as the AVX2 decode kernels do it.
__attribute__((target("avx2,f16c"))) void f16c_widen(const std::uint16_t* in, float* out) {
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
}
#endif

// The conversions are constexpr.
static_assert(half_to_float(0x3c00) == 1.0f);
static_assert(half_to_float(0x0001) == 0x1p-24f);
static_assert(float_to_half(65504.0f) == 0x7bff);
static_assert(float_to_half(65520.0f) == 0x7c00);
static_assert(bfloat16_to_float(0x3f80) == 1.0f);
static_assert(float_to_bfloat16(1.0f) == 0x3f80);
static_assert(vqlib::round_to_half(1.0f + 0x1p-11f) == 1.0f);

}  // namespace

TEST_CASE("core/half: every fp16 value widens exactly (as Eigen) and narrows back to itself") {
    int mismatches = 0;
    for (std::uint32_t h = 0; h < 0x10000u; ++h) {
        const auto bits = static_cast<std::uint16_t>(h);
        const float f = half_to_float(bits);
        if (is_half_nan(bits)) {
            // NaN: the payload kept, shifted into the float's mantissa.
            const std::uint32_t want = (std::uint32_t{bits} & 0x8000u) << 16 | 0x7f800000u |
                                       (std::uint32_t{bits} & 0x3ffu) << 13;
            if (bits_of(f) != want) ++mismatches;
        } else if (bits_of(f) != bits_of(eigen_widen(bits))) {
            ++mismatches;
        }
        if (float_to_half(f) != bits) ++mismatches;  // NaN payloads included
    }
    CHECK(mismatches == 0);
}

TEST_CASE("core/half: narrowing equals Eigen::half at every rounding boundary") {
    // For each pair of neighbouring finite halves: both values, the float midpoint (a tie) and
    // the floats on either side of it, for both signs; then the overflow threshold.
    int mismatches = 0;
    for (std::uint32_t h = 0; h < 0x7c00u; ++h) {
        const float lo = half_to_float(static_cast<std::uint16_t>(h));
        const float hi = half_to_float(static_cast<std::uint16_t>(h + 1));  // 0x7c00: Inf
        const float mid = h + 1 == 0x7c00u ? 65520.0f : lo + (hi - lo) / 2;  // exact in float
        for (float f : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f),
                        std::nextafter(lo, 0.0f), std::nextafter(lo, 1e30f)}) {
            if (!matches_eigen(f)) ++mismatches;
            if (!matches_eigen(-f)) ++mismatches;
        }
    }
    for (float f : {0.0f, std::numeric_limits<float>::denorm_min(),
                    std::numeric_limits<float>::min(), std::numeric_limits<float>::max(),
                    std::numeric_limits<float>::infinity(), 0x1p-25f, 0x1.8p-25f, 0x1p-26f,
                    65519.996f, 65520.0f, 65536.0f, 1e10f})
        for (float s : {f, -f})
            if (!matches_eigen(s)) ++mismatches;
    CHECK(mismatches == 0);
}

TEST_CASE("core/half: narrowing equals Eigen::half over a sweep of float bit patterns") {
    // Every 61st bit pattern (all exponents, signs and mantissa residues mod 61), then 4 million
    // random patterns. NaN inputs: NaN out of both.
    int mismatches = 0;
    for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += 61)
        if (!matches_eigen(std::bit_cast<float>(static_cast<std::uint32_t>(b)))) ++mismatches;
    vqlib::Rng rng(20240611);
    for (int i = 0; i < 4'000'000; ++i) {
        const auto b = static_cast<std::uint32_t>(rng.next());
        if (!matches_eigen(std::bit_cast<float>(b))) ++mismatches;
        // Values in fp16's range, where the rounding work is.
        const auto r = static_cast<std::uint32_t>(0x33000000u + (b % (0x47800000u - 0x33000000u)));
        if (!matches_eigen(std::bit_cast<float>(r))) ++mismatches;
    }
    CHECK(mismatches == 0);
}

TEST_CASE("core/half: NaN stays NaN, payload kept where it survives") {
    CHECK(float_to_half(std::numeric_limits<float>::quiet_NaN()) == 0x7e00);
    CHECK(float_to_half(std::bit_cast<float>(0xffc00000u)) == 0xfe00);
    CHECK(float_to_half(std::bit_cast<float>(0x7f800001u)) == 0x7e00);  // payload lost: quiet
    CHECK(float_to_half(std::bit_cast<float>(0x7fa02000u)) == 0x7d01);
    CHECK(std::isnan(vqlib::round_to_half(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("core/half: bfloat16 widens exactly, narrows as Eigen::bfloat16") {
    int mismatches = 0;
    for (std::uint32_t b = 0; b < 0x10000u; ++b) {
        const auto bits = static_cast<std::uint16_t>(b);
        const float f = bfloat16_to_float(bits);
        if (bits_of(f) != std::uint32_t{bits} << 16) ++mismatches;
        if (float_to_bfloat16(f) != bits) ++mismatches;  // NaN payloads included
    }
    vqlib::Rng rng(7);
    for (int i = 0; i < 2'000'000; ++i) {
        const float f = std::bit_cast<float>(static_cast<std::uint32_t>(rng.next()));
        const std::uint16_t ours = float_to_bfloat16(f);
        if (std::isnan(f)) {
            if (!std::isnan(bfloat16_to_float(ours))) ++mismatches;
        } else if (ours != eigen_bfloat16(f)) {
            ++mismatches;
        }
    }
    CHECK(mismatches == 0);
}

TEST_CASE("core/half: scale_storage keeps its rounding and saturation") {
    using vqlib::ScaleStorage;
    int mismatches = 0;
    const auto check = [&](float f) {
        if (!same_float(vqlib::round_scale(f, ScaleStorage::fp16), reference_round_scale(f)))
            ++mismatches;
        if (!same_float(vqlib::detail::round_value(f, ScaleStorage::fp16),
                        reference_round_value(f)))
            ++mismatches;
        if (bits_of(vqlib::round_scale(f, ScaleStorage::fp32)) != bits_of(f) && !std::isnan(f))
            ++mismatches;
    };
    for (std::uint32_t h = 0; h < 0x7c00u; ++h) {
        const float lo = half_to_float(static_cast<std::uint16_t>(h));
        const float hi = half_to_float(static_cast<std::uint16_t>(h + 1));
        const float mid = h + 1 == 0x7c00u ? 65520.0f : lo + (hi - lo) / 2;
        for (float f : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
            check(f);
            check(-f);
        }
    }
    vqlib::Rng rng(11);
    for (int i = 0; i < 1'000'000; ++i)
        check(std::bit_cast<float>(static_cast<std::uint32_t>(rng.next())));
    CHECK(mismatches == 0);
    // The saturation itself.
    CHECK(vqlib::round_scale(1e6f, ScaleStorage::fp16) == 65504.0f);
    CHECK(vqlib::round_scale(std::numeric_limits<float>::infinity(), ScaleStorage::fp16) ==
          65504.0f);
    CHECK(vqlib::round_scale(1e-12f, ScaleStorage::fp16) == 0x1p-24f);
    CHECK(vqlib::round_scale(0.0f, ScaleStorage::fp16) == 0.0f);
    CHECK(vqlib::detail::round_value(-1e6f, ScaleStorage::fp16) == -65504.0f);
    CHECK(vqlib::detail::round_value(1e-12f, ScaleStorage::fp16) == 0.0f);
}

TEST_CASE("core/half: the io names and the kernels' helpers are the same conversion") {
    STATIC_REQUIRE(&vqlib::io::half_to_float == &vqlib::half_to_float);
    STATIC_REQUIRE(&vqlib::io::float_to_half == &vqlib::float_to_half);
    STATIC_REQUIRE(&vqlib::io::bfloat16_to_float == &vqlib::bfloat16_to_float);
    STATIC_REQUIRE(&vqlib::io::float_to_bfloat16 == &vqlib::float_to_bfloat16);
    using vqlib::kernels::detail::fp16_exact;
    CHECK(fp16_exact(1.0f));
    CHECK(fp16_exact(65504.0f));
    CHECK(fp16_exact(0x1p-24f));
    CHECK_FALSE(fp16_exact(1.0f + 0x1p-11f));
    CHECK_FALSE(fp16_exact(65520.0f));
    CHECK_FALSE(fp16_exact(std::numeric_limits<float>::quiet_NaN()));
}

TEST_CASE("core/half: the kernels' F16C widening agrees with half_to_float") {
#ifdef VQLIB_DETAIL_X86_DISPATCH
    if (!vqlib::simd_level_supported(vqlib::SimdLevel::avx2)) {
        WARN("no AVX2/F16C on this CPU: skipped");
        return;
    }
    int mismatches = 0;
    for (std::uint32_t h0 = 0; h0 < 0x10000u; h0 += 8) {
        std::uint16_t in[8];
        float out[8];
        for (int l = 0; l < 8; ++l)
            in[l] = static_cast<std::uint16_t>(h0 + static_cast<std::uint32_t>(l));
        f16c_widen(in, out);
        for (int l = 0; l < 8; ++l) {
            // Signaling NaNs come back quiet from the hardware: compare NaN-ness only there.
            if (is_half_nan(in[l]) ? !std::isnan(out[l])
                                   : bits_of(out[l]) != bits_of(half_to_float(in[l])))
                ++mismatches;
        }
    }
    CHECK(mismatches == 0);
#else
    WARN("no x86-64 dispatch in this build: skipped");
#endif
}
