#pragma once
// Minifloat grids: small floating-point formats (FP8, FP6, FP4, ...) with one scale per row of a
// group, the "FP" side of the INT-versus-FP comparison (Qualcomm, "FP8 versus INT8 for efficient
// deep learning inference": scale per channel or group, then round to the FP format).
//
// MinifloatFormat describes one format and converts single floats to and from its codes, exactly
// (round to nearest, ties to even, saturating). MinifloatGrid is the ScalarGrid built on it.
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/scalar_grid.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

namespace vqlib {

/// How the top of a minifloat's range is used.
enum class MinifloatSpecials {
    /// IEEE 754: the all-ones exponent field holds +-inf (mantissa 0) and NaNs (mantissa != 0).
    /// OCP FP8 E5M2.
    ieee,
    /// No infinities; only the all-ones magnitude S.1..1.1..1 is NaN, every other code is finite.
    /// OCP FP8 E4M3 (the "E4M3FN" of ml_dtypes and PyTorch).
    finite_with_nan,
    /// Every code is a finite value. OCP MX FP6 (E3M2, E2M3) and FP4 (E2M1).
    finite,
};

/// A signed minifloat: 1 sign bit, `exponent_bits` exponent bits with bias `bias`, and
/// `mantissa_bits` stored mantissa bits. Codes are sign-magnitude bit patterns
/// (sign | exponent | mantissa, sign in bit exponent_bits + mantissa_bits). Exponent field 0 holds
/// zero and the subnormals: value = 2^(1 - bias) * mantissa / 2^mantissa_bits; field f > 0 holds
/// 2^(f - bias) * (1 + mantissa / 2^mantissa_bits), except the codes `specials` reserves.
///
/// Conversion conventions (encode):
///   - round to the nearest representable value; an exact tie goes to the even code, i.e. the
///     value with even mantissa as IEEE conversion does (for mantissa_bits = 0, the even exponent);
///   - saturating ("satfinite"): |x| >= max_value() and +-inf encode to +-max_value(), so a
///     non-NaN input never gives an infinity or a NaN;
///   - zero has one code: -0 and negative values that round to zero encode as +0 (code 0); the
///     code of -0 (sign bit alone) still decodes to -0.0f;
///   - NaN encodes to the format's NaN code (quiet NaN for `ieee`), and throws numerical_error
///     for a format without NaN.
/// Every value of a valid format is exactly representable as a float, so decode is exact.
class MinifloatFormat {
public:
    /// The IEEE bias of an exponent field of `exponent_bits` bits: 2^(exponent_bits - 1) - 1.
    static constexpr int ieee_bias(int exponent_bits) { return (1 << (exponent_bits - 1)) - 1; }

    /// A format with the IEEE bias.
    constexpr MinifloatFormat(int exponent_bits, int mantissa_bits, MinifloatSpecials specials)
        : MinifloatFormat(exponent_bits, mantissa_bits, specials,
                          exponent_bits >= 1 && exponent_bits <= max_exponent_bits
                              ? ieee_bias(exponent_bits)
                              : 0) {}

    /// The general case. Requires 1 <= exponent_bits <= 8, mantissa_bits >= 0, at most 16 bits in
    /// all, a positive finite value, and every value within float's range (so that floats
    /// represent them exactly); throws invalid_argument otherwise.
    constexpr MinifloatFormat(int exponent_bits, int mantissa_bits, MinifloatSpecials specials,
                              int bias)
        : exponent_bits_(exponent_bits),
          mantissa_bits_(mantissa_bits),
          bias_(bias),
          specials_(specials) {
        VQLIB_CHECK_RANGE("exponent_bits", exponent_bits, 1, max_exponent_bits);
        VQLIB_CHECK_RANGE("mantissa_bits", mantissa_bits, 0, max_total_bits - 1 - exponent_bits);
        const std::uint32_t all_ones = (1u << (exponent_bits + mantissa_bits)) - 1u;
        switch (specials) {
        case MinifloatSpecials::ieee: max_code_ = all_ones - (1u << mantissa_bits); break;
        case MinifloatSpecials::finite_with_nan: max_code_ = all_ones - 1u; break;
        case MinifloatSpecials::finite: max_code_ = all_ones; break;
        }
        VQLIB_CHECK(max_code_ > 0, invalid_argument, "E", exponent_bits, "M", mantissa_bits,
                    " with ", specials_name(specials),
                    " specials has no positive finite value: expected more exponent or mantissa "
                    "bits");
        // Smallest subnormal 2^(1 - bias - m) and largest field exponent, against float's range.
        const int min_exponent = 1 - bias - mantissa_bits;
        const int max_exponent = static_cast<int>(max_code_ >> mantissa_bits) - bias;
        VQLIB_CHECK(min_exponent >= -149 && max_exponent <= 127, invalid_argument, "bias = ", bias,
                    ": E", exponent_bits, "M", mantissa_bits, " spans 2^", min_exponent, " .. 2^",
                    max_exponent, ", expected values within float's range (2^-149 .. 2^127)");
        max_value_ = magnitude(max_code_);
        max_value_bits_ = std::bit_cast<std::uint32_t>(max_value_);
    }

    /// OCP FP8 E4M3 ("E4M3FN"): bias 7, no infinities, NaN = S.1111.111, max 448.
    static constexpr MinifloatFormat fp8_e4m3() {
        return {4, 3, MinifloatSpecials::finite_with_nan, 7};
    }
    /// OCP FP8 E5M2: bias 15, IEEE infinities and NaNs, max finite 57344.
    static constexpr MinifloatFormat fp8_e5m2() { return {5, 2, MinifloatSpecials::ieee, 15}; }
    /// OCP MX FP6 E3M2: bias 3, all codes finite, max 28.
    static constexpr MinifloatFormat fp6_e3m2() { return {3, 2, MinifloatSpecials::finite, 3}; }
    /// OCP MX FP6 E2M3: bias 1, all codes finite, max 7.5.
    static constexpr MinifloatFormat fp6_e2m3() { return {2, 3, MinifloatSpecials::finite, 1}; }
    /// OCP MX FP4 E2M1: bias 1, all codes finite: 0, 0.5, 1, 1.5, 2, 3, 4, 6.
    static constexpr MinifloatFormat fp4_e2m1() { return {2, 1, MinifloatSpecials::finite, 1}; }

    constexpr int exponent_bits() const { return exponent_bits_; }
    constexpr int mantissa_bits() const { return mantissa_bits_; }
    constexpr int bias() const { return bias_; }
    constexpr MinifloatSpecials specials() const { return specials_; }
    /// Bits per code, sign included.
    constexpr int bits() const { return 1 + exponent_bits_ + mantissa_bits_; }
    /// The largest finite value.
    constexpr float max_value() const { return max_value_; }
    /// The code of +max_value() (the code of -max_value() adds the sign bit).
    constexpr std::uint32_t max_code() const { return max_code_; }

    /// "FP8-E4M3", "FP4-E2M1", ...; a bias other than the IEEE one is appended ("FP8-E4M3-B11").
    /// The specials convention is not part of the name.
    std::string name() const {
        std::string s = "FP" + std::to_string(bits()) + "-E" + std::to_string(exponent_bits_) +
                        "M" + std::to_string(mantissa_bits_);
        if (bias_ != ieee_bias(exponent_bits_)) s += "-B" + std::to_string(bias_);
        return s;
    }

    /// The value of a code; NaN codes decode to NaN, infinity codes (`ieee`) to +-inf. Throws
    /// invalid_argument for a code wider than bits().
    constexpr float decode(std::uint32_t code) const {
        VQLIB_CHECK(code >> bits() == 0, invalid_argument, "code = ", code, ": expected a ", bits(),
                    "-bit code of ", name());
        const std::uint32_t mag = code & magnitude_mask();
        const bool negative = (code >> (bits() - 1)) != 0;
        float v = 0.0f;
        if (mag <= max_code_) {
            v = magnitude(mag);
        } else if (specials_ == MinifloatSpecials::ieee && (mag & mantissa_mask()) == 0) {
            v = std::numeric_limits<float>::infinity();
        } else {
            return std::numeric_limits<float>::quiet_NaN();
        }
        return negative ? -v : v;
    }

    /// The code of the value nearest to x (see the class comment for ties, saturation, -0 and
    /// NaN). Exact for every float: works on x's bit pattern with integer arithmetic.
    constexpr std::uint32_t encode(float x) const {
        const std::uint32_t xbits = std::bit_cast<std::uint32_t>(x);
        const std::uint32_t abs_bits = xbits & 0x7fffffffu;
        const std::uint32_t sign = (xbits >> 31) << (bits() - 1);
        if (abs_bits > 0x7f800000u) return nan_code();
        if (abs_bits >= max_value_bits_) return sign | max_code_;  // includes +-inf
        if (abs_bits == 0) return 0;

        // |x| = significand * 2^exponent with an integer significand of at most 24 bits.
        const std::uint32_t float_field = abs_bits >> 23;
        const std::uint32_t significand =
            float_field != 0 ? (abs_bits & 0x7fffffu) | 0x800000u : abs_bits;
        const int exponent = static_cast<int>(float_field != 0 ? float_field : 1u) - 150;
        const int log2_floor = static_cast<int>(std::bit_width(significand)) - 1 + exponent;

        // The binade of the result (the subnormal range shares the lowest normal binade's
        // spacing): its spacing is 2^(binade - m); the code of k spacings above the binade's start
        // is ((binade - min_normal_exponent) << m) + k, uniformly for subnormals and normals.
        const int min_normal_exponent = 1 - bias_;
        const int binade = std::max(log2_floor, min_normal_exponent);
        const int shift = binade - mantissa_bits_ - exponent;  // spacing / 2^exponent = 2^shift
        const std::uint32_t binade_start = static_cast<std::uint32_t>(binade - min_normal_exponent)
                                           << mantissa_bits_;
        std::uint32_t mag = 0;
        if (shift <= 0) {
            mag = binade_start + (significand << -shift);  // x is exactly representable
        } else if (shift > 32) {
            mag = binade_start;  // x below half the smallest subnormal: rounds to zero
        } else {
            const std::uint64_t s = significand;
            const std::uint64_t remainder = s & ((std::uint64_t{1} << shift) - 1);
            const std::uint64_t half = std::uint64_t{1} << (shift - 1);
            mag = binade_start + static_cast<std::uint32_t>(s >> shift);
            if (remainder > half || (remainder == half && (mag & 1u) != 0)) ++mag;
        }
        return mag == 0 ? 0 : (sign | mag);
    }

    constexpr bool operator==(const MinifloatFormat&) const = default;

private:
    static constexpr int max_exponent_bits = 8;
    static constexpr int max_total_bits = 16;

    static constexpr const char* specials_name(MinifloatSpecials s) {
        switch (s) {
        case MinifloatSpecials::ieee: return "ieee";
        case MinifloatSpecials::finite_with_nan: return "finite_with_nan";
        case MinifloatSpecials::finite: return "finite";
        }
        return "?";
    }

    /// 2^k as a float, for k in [-149, 127].
    static constexpr float pow2(int k) {
        return k >= -126 ? std::bit_cast<float>(static_cast<std::uint32_t>(k + 127) << 23)
                         : std::bit_cast<float>(std::uint32_t{1} << (k + 149));
    }

    constexpr std::uint32_t magnitude_mask() const {
        return (1u << (exponent_bits_ + mantissa_bits_)) - 1u;
    }
    constexpr std::uint32_t mantissa_mask() const { return (1u << mantissa_bits_) - 1u; }

    /// The value of a finite non-negative code. The significand has at most 16 bits and the
    /// exponent is within float's range (checked at construction), so the product is exact.
    constexpr float magnitude(std::uint32_t mag) const {
        const std::uint32_t field = mag >> mantissa_bits_;
        const std::uint32_t mantissa = mag & mantissa_mask();
        const std::uint32_t significand = field == 0 ? mantissa : mantissa | (1u << mantissa_bits_);
        const int exponent = static_cast<int>(std::max(field, 1u)) - bias_ - mantissa_bits_;
        return static_cast<float>(significand) * pow2(exponent);
    }

    constexpr std::uint32_t nan_code() const {
        const std::uint32_t all_ones = magnitude_mask();
        if (specials_ == MinifloatSpecials::finite_with_nan) return all_ones;
        if (specials_ == MinifloatSpecials::ieee && mantissa_bits_ > 0)
            return (all_ones & ~mantissa_mask()) | (1u << (mantissa_bits_ - 1));
        throw numerical_error(detail::concat("encode(NaN): ", name(), " with ",
                                             specials_name(specials_),
                                             " specials has no NaN code"));
    }

    int exponent_bits_;
    int mantissa_bits_;
    int bias_;
    MinifloatSpecials specials_;
    std::uint32_t max_code_ = 0;
    float max_value_ = 0.0f;
    std::uint32_t max_value_bits_ = 0;
};

/// A minifloat with one scale per row of a group: value = scale * format.decode(code). The scale
/// maps the row's absolute maximum to the format's max_value() (rounded to the storage width);
/// with `mse.enabled`, GPTQ's shrink search picks among scales p * scale instead.
class MinifloatGrid {
public:
    explicit MinifloatGrid(MinifloatFormat format, MseSearch mse = {},
                           ScaleStorage storage = ScaleStorage::fp32)
        : format_(format), mse_(mse), storage_(storage) {
        detail::check_mse_search(mse);
    }

    const MinifloatFormat& format() const { return format_; }
    int code_bits() const { return format_.bits(); }
    /// The stored scale only: the zero point is always 0.
    int param_bits() const { return scale_bits(storage_); }
    std::string name() const { return format_.name(); }

    /// One scale per row of x; an all-zero row gets scale 1. Throws numerical_error for NaN/Inf
    /// in x and shape_error unless params has one entry per row.
    void fit(ConstMatrixRef x, std::span<GridParams> params) const {
        VQLIB_CHECK(static_cast<Index>(params.size()) == x.rows(), shape_error, "params has ",
                    params.size(), " entries: expected one per row (", x.rows(), ")");
        check_finite("x", x);
        for (Index r = 0; r < x.rows(); ++r) {
            const float absmax = x.row(r).cwiseAbs().maxCoeff();
            GridParams& out = params[static_cast<std::size_t>(r)];
            if (absmax == 0.0f) {
                out = GridParams{1.0f, 0.0f};
                continue;
            }
            const GridParams initial = from_absmax(absmax);
            out = mse_.enabled
                      ? detail::mse_search_row(*this, mse_, x.row(r), initial,
                                               [&](float p) { return from_absmax(p * absmax); })
                      : initial;
        }
    }

    std::uint32_t encode(float v, const GridParams& p) const { return format_.encode(v / p.scale); }

    float decode(std::uint32_t code, const GridParams& p) const {
        return p.scale * format_.decode(code);
    }

private:
    GridParams from_absmax(float absmax) const {
        return GridParams{round_scale(absmax / format_.max_value(), storage_), 0.0f};
    }

    MinifloatFormat format_;
    MseSearch mse_;
    ScaleStorage storage_;
};

static_assert(ScalarGrid<MinifloatGrid>);

}  // namespace vqlib
