#pragma once
// Integer codebooks: signed b-bit symmetric round-to-nearest quantization of codebook entries, as
// GPTVQ's reference `quantize_centroids` (docs/gptvq.md):
//
//   imin = -2^(b-1), imax = 2^(b-1) - 1
//   scale = max(|min c|, max c) / imax            over the entries sharing the scale
//   code  = clip(round(c / scale), imin, imax)    round half to even (torch.round)
//   c    <- code * scale
//
// Scope `per_codebook` gives each codebook its own scale (over its K*D entries; the scripts'
// --quantize-per-codebook); `shared` gives one scale to all the codebooks passed together (the
// reference quantizes the G codebooks of one column group at a time, so pass one column group).
//
// Deliberate differences from the reference:
//   - an all-zero set of entries has scale 0: its codes and values stay 0 (the reference divides
//     0 by 0 and writes NaN);
//   - with ScaleStorage::fp16 the scale is rounded to half precision before the entries are
//     divided by it, so code * stored scale is exactly the quantized value (the reference keeps
//     the scale in fp32, the default here).
//
//   auto q = vqlib::quantize_codebooks(codebooks, k, {.bits = 8});
//   MatrixXf values = q.dequantize();   // == codes * scale, entry by entry
//   double bits = q.total_bits();       // entries at b bits + scales at their storage width
#include <vqlib/codebook/codebook_set.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/core/scale_storage.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace vqlib {

/// Which entries share one scale.
enum class CodebookScaleScope {
    per_codebook,  // each codebook: its K*D entries
    shared,        // all codebooks passed together
};

struct IntegerCodebookOptions {
    /// Bits b per entry, 2..16 (b = 1 leaves no positive level: imax = 0).
    int bits = 8;
    CodebookScaleScope scope = CodebookScaleScope::per_codebook;
    /// Width of a stored scale; the scale is rounded to it before quantizing.
    ScaleStorage scale_storage = ScaleStorage::fp32;
};

/// Signed integer codes of a codebook stack, same layout as the floats they encode.
using CodebookCodes = Eigen::Matrix<std::int16_t, Eigen::Dynamic, Eigen::Dynamic>;

/// Integer-quantized codebooks: what a deployment stores.
struct IntegerCodebooks {
    Index count = 0;  // codebooks G
    Index k = 0;      // centroids per codebook K
    Index dim = 0;    // centroid dimension D
    int bits = 8;
    ScaleStorage scale_storage = ScaleStorage::fp32;
    /// Consecutive codebooks sharing one scale: 1 (per_codebook) or count (shared).
    Index codebooks_per_scale = 1;
    /// (count*k) x dim, stacked like the float codebooks (codebook_set.hpp); in [imin, imax].
    CodebookCodes codes;
    /// count / codebooks_per_scale scales, already rounded to scale_storage; 0 for all-zero entries.
    std::vector<float> scales;

    /// The scale of codebook g.
    float scale_of(Index g) const {
        return scales[static_cast<std::size_t>(g / codebooks_per_scale)];
    }

    /// The quantized codebooks, (count*k) x dim: code * scale (one float multiplication, the same
    /// value the quantizer wrote).
    MatrixXf dequantize() const {
        MatrixXf values(codes.rows(), codes.cols());
        for (Index g = 0; g < count; ++g) {
            const float s = scale_of(g);
            for (Index j = 0; j < dim; ++j)
                for (Index i = g * k; i < (g + 1) * k; ++i)
                    values(i, j) = static_cast<float>(codes(i, j)) * s;
        }
        return values;
    }

    /// Bits of the entries: count * K * D * b.
    double entries_bits() const { return static_cast<double>(codes.size()) * bits; }
    /// Bits of the scales: one per scale at the scale_storage width (16 or 32).
    double scales_bits() const {
        return static_cast<double>(scales.size()) * vqlib::scale_bits(scale_storage);
    }
    double total_bits() const { return entries_bits() + scales_bits(); }
};

namespace detail {

/// Quantizes a stack of codebooks with one scale per run of `codebooks_per_scale` consecutive
/// codebooks (which must divide the count). The public entry point is quantize_codebooks().
template <class Derived>
IntegerCodebooks quantize_codebooks_grouped(const Eigen::MatrixBase<Derived>& codebooks, Index k,
                                            int bits, Index codebooks_per_scale,
                                            ScaleStorage storage) {
    VQLIB_CHECK_RANGE("bits", bits, 2, 16);
    const Index count = codebook_count("codebooks", codebooks, k);
    check_finite("codebooks", codebooks);
    VQLIB_CHECK(codebooks_per_scale >= 1 && count % codebooks_per_scale == 0, invalid_argument,
                "codebooks_per_scale = ", codebooks_per_scale,
                ": expected a positive divisor of the number of codebooks (", count, ")");

    IntegerCodebooks out;
    out.count = count;
    out.k = k;
    out.dim = codebooks.cols();
    out.bits = bits;
    out.scale_storage = storage;
    out.codebooks_per_scale = codebooks_per_scale;
    out.codes.resize(codebooks.rows(), codebooks.cols());
    out.scales.resize(static_cast<std::size_t>(count / codebooks_per_scale));

    const float imin = -std::ldexp(1.0f, bits - 1);
    const float imax = std::ldexp(1.0f, bits - 1) - 1.0f;
    const Index rows_per_scale = codebooks_per_scale * k;
    for (std::size_t s = 0; s < out.scales.size(); ++s) {
        const auto entries = codebooks.middleRows(static_cast<Index>(s) * rows_per_scale,
                                                  rows_per_scale);
        auto codes = out.codes.middleRows(static_cast<Index>(s) * rows_per_scale, rows_per_scale);
        // As the reference: max(|min|, max), which is max |c| whatever the signs.
        const float range = std::max(std::abs(entries.minCoeff()), entries.maxCoeff());
        const float scale = round_scale(range / imax, storage);
        out.scales[s] = scale;
        if (scale == 0.0f) {  // all entries zero (or the range underflowed): nothing to encode
            codes.setZero();
            continue;
        }
        for (Index j = 0; j < entries.cols(); ++j)
            for (Index i = 0; i < entries.rows(); ++i) {
                const float q = std::clamp(std::nearbyint(entries(i, j) / scale), imin, imax);
                codes(i, j) = static_cast<std::int16_t>(q);
            }
    }
    return out;
}

}  // namespace detail

/// Quantizes a stack of `count` codebooks of `k` centroids ((count*k) x D, codebook_set.hpp) to
/// signed integers. Throws invalid_argument for bits outside 2..16, shape_error for a stack that is
/// not a whole number of codebooks, numerical_error for NaN/Inf entries.
template <class Derived>
IntegerCodebooks quantize_codebooks(const Eigen::MatrixBase<Derived>& codebooks, Index k,
                                    const IntegerCodebookOptions& options = {}) {
    const Index count = codebook_count("codebooks", codebooks, k);
    const Index per_scale = options.scope == CodebookScaleScope::per_codebook ? 1 : count;
    return detail::quantize_codebooks_grouped(codebooks, k, options.bits, per_scale,
                                              options.scale_storage);
}

/// Integer codebooks as a codebook storage policy (the CodebookStorage role of the GPTVQ
/// quantizer): quantize() rounds the stacked codebooks of one column group in place, so scope
/// `shared` means one scale per column group, as the reference.
struct IntegerCodebookStorage {
    IntegerCodebookOptions options{};

    void quantize(MatrixRef codebooks, Index k) const {
        codebooks = quantize_codebooks(codebooks, k, options).dequantize();
    }
    int entry_bits() const { return options.bits; }
    int scale_bits() const { return vqlib::scale_bits(options.scale_storage); }
    /// Scales stored for `count` codebooks passed together.
    Index scales_for(Index count) const {
        return options.scope == CodebookScaleScope::per_codebook ? count : 1;
    }
};

}  // namespace vqlib
