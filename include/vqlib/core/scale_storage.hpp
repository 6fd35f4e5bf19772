#pragma once
// How scales and other side values are stored, and rounding to that width (fp16 rounding is
// core/half.hpp's, round to nearest even).
#include <vqlib/core/half.hpp>

#include <cmath>

namespace vqlib {

/// How a per-group scale is stored; the grid rounds its scale to this width when fitting, so the
/// dequantized weights equal what a deployment with that storage reproduces.
enum class ScaleStorage { fp32, fp16 };

inline int scale_bits(ScaleStorage s) { return s == ScaleStorage::fp32 ? 32 : 16; }

/// Rounds a scale to the storage width (fp16 rounding is round-to-nearest-even, saturating at the
/// largest finite half and never returning zero for a positive input).
inline float round_scale(float scale, ScaleStorage storage) {
    if (storage == ScaleStorage::fp32) return scale;
    float r = round_to_half(scale);
    if (!std::isfinite(r)) r = 65504.0f;
    if (r == 0.0f && scale > 0.0f) r = 5.9604645e-8f;  // smallest positive subnormal half
    return r;
}

namespace detail {

/// Rounds a value of either sign to the storage width: fp32 keeps it; fp16 rounds to nearest even,
/// saturating at +-65504 (zero and tiny values may round to zero: use round_scale() for scales,
/// which must stay positive).
inline float round_value(float value, ScaleStorage storage) {
    if (storage == ScaleStorage::fp32) return value;
    const float r = round_to_half(value);
    if (std::isinf(r)) return r > 0 ? 65504.0f : -65504.0f;
    return r;
}

}  // namespace detail
}  // namespace vqlib
