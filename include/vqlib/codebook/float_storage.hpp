#pragma once
// How the float side values of codebook/ (codebook scales, SVD factors, normalization offsets and
// steps) are stored. Each is rounded to its storage width *before* it is used, so what the
// components compute is exactly what a deployment storing them reproduces, and the bit accounting
// counts each at that width. The reference keeps everything in fp32, the default everywhere here.
#include <vqlib/quantizers/scalar_grid.hpp>

#include <Eigen/Core>

#include <cmath>

namespace vqlib::detail {

/// Rounds a value of either sign to the storage width: fp32 keeps it; fp16 rounds to nearest even,
/// saturating at +-65504 (zero and tiny values may round to zero: use round_scale() for scales,
/// which must stay positive).
inline float round_value(float value, ScaleStorage storage) {
    if (storage == ScaleStorage::fp32) return value;
    const float r = static_cast<float>(Eigen::half(value));
    if (std::isinf(r)) return r > 0 ? 65504.0f : -65504.0f;
    return r;
}

}  // namespace vqlib::detail
