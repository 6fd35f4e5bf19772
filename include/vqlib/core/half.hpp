#pragma once
// fp16 (IEEE binary16) and bfloat16 <-> float32: the one scalar conversion of vqlib. Every other
// header (io/safetensors.hpp, core/scale_storage.hpp, the decode kernels) calls these; the only
// other conversions are the F16C / AVX-512 vector loads of the decode kernels, which widen fp16
// exactly and so agree with half_to_float bit for bit on every fp16 value the kernels store.
//
// Widening is exact (fp16 and bf16 values are all float values). Narrowing rounds to nearest, ties
// to even, in integer arithmetic: the result does not depend on the FP environment (rounding mode,
// flush-to-zero), the compiler flags (F16C or not) or the CPU. For every non-NaN float it equals
// Eigen::half's conversion (tests/core/test_half.cpp checks it); NaN stays NaN with its top payload
// bits kept (a quiet bit set if none survive), where Eigen returns one canonical quiet NaN.
#include <bit>
#include <cstdint>

namespace vqlib {

/// An IEEE binary16 value (given as its bits) as float; exact for every value (subnormals,
/// infinities and NaN payloads included).
constexpr float half_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t exponent = (h >> 10) & 0x1fu;
    std::uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f)  // Inf or NaN
        return std::bit_cast<float>(sign | 0x7f800000u | mantissa << 13);
    if (exponent != 0)  // normal: rebias 15 -> 127
        return std::bit_cast<float>(sign | (exponent + 112u) << 23 | mantissa << 13);
    if (mantissa == 0) return std::bit_cast<float>(sign);  // signed zero
    // Subnormal, mantissa * 2^-24: normalize (a normal float).
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
    }
    return std::bit_cast<float>(sign | exponent << 23 | (mantissa & 0x3ffu) << 13);
}

/// The IEEE binary16 nearest to `f` (bits), rounding ties to even. Values of magnitude >= 65520
/// become Inf, values of magnitude <= 2^-25 become (signed) zero; NaN stays NaN (its top payload
/// bits kept, a quiet bit set if none survive).
constexpr std::uint16_t float_to_half(float f) noexcept {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
    const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
    const std::uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) {  // NaN
        std::uint32_t payload = (magnitude >> 13) & 0x3ffu;
        if (payload == 0) payload = 0x200u;
        return static_cast<std::uint16_t>(sign | 0x7c00u | payload);
    }
    if (magnitude >= 0x477ff000u)  // >= 65520, halfway from 65504 to 2^16: Inf (and Inf itself)
        return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (magnitude >= 0x38800000u) {  // >= 2^-14: a normal half
        // Rebias the exponent (127 -> 15) and drop 13 mantissa bits, rounding to nearest even;
        // a carry out of the mantissa correctly bumps the exponent.
        std::uint32_t h = (magnitude - 0x38000000u) >> 13;
        const std::uint32_t rest = magnitude & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0)) ++h;
        return static_cast<std::uint16_t>(sign | h);
    }
    const std::uint32_t exponent = magnitude >> 23;
    if (exponent < 102)  // < 2^-25 (including float subnormals): rounds to zero
        return sign;
    // A half subnormal: round magnitude / 2^-24 to an integer, ties to even. With the float's
    // 24-bit significand m, magnitude / 2^-24 = m * 2^(exponent - 126), a right shift by
    // 126 - exponent (14..24). Rounding up from 0x3ff gives 0x400, the smallest normal: correct.
    const std::uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;
    std::uint32_t h = significand >> shift;
    const std::uint32_t rest = significand & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (h & 1u) != 0)) ++h;
    return static_cast<std::uint16_t>(sign | h);
}

/// A bfloat16 value (given as its bits) as float: exact (bf16 is the top half of a float).
constexpr float bfloat16_to_float(std::uint16_t b) noexcept {
    return std::bit_cast<float>(std::uint32_t{b} << 16);
}

/// The bfloat16 nearest to `f` (bits), rounding ties to even and overflowing to Inf; NaN stays
/// NaN (top payload bits kept, a quiet bit set if none survive).
constexpr std::uint16_t float_to_bfloat16(float f) noexcept {
    std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN
        auto top = static_cast<std::uint16_t>(bits >> 16);
        if ((top & 0x7fu) == 0) top = static_cast<std::uint16_t>(top | 0x40u);
        return top;
    }
    bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
    return static_cast<std::uint16_t>(bits >> 16);
}

/// `f` rounded to the nearest fp16 value (ties to even) and widened back: float_to_half then
/// half_to_float. Overflows to +-Inf; NaN stays NaN.
constexpr float round_to_half(float f) noexcept { return half_to_float(float_to_half(f)); }

}  // namespace vqlib
