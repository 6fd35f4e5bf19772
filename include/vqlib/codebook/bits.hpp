#pragma once
// Bits per value of a GPTVQ configuration: the paper's formula and the exact count.
//
// The paper (docs/gptvq.md) counts  log2(K)/D + K*D*b_c/l  (+ b_s/bs with blockwise normalization):
// the index of a D-dimensional vector spread over its D weights, and one codebook of K*D entries
// at b_c bits per l weights. It leaves out the scale of each integer codebook, the per-sub-block-
// column offset and step of the normalization, and rounds nothing up. exact_bits_per_value()
// counts those too, with whole-bit indices (ceil(log2 K) per vector), as a packed deployment
// stores them.
//
//   vqlib::VqBitsConfig c{.dim = 2, .k = 16, .codebook_bits = 8, .weights_per_codebook = 2048};
//   vqlib::paper_bits_per_value(c);            // 2.125
//   vqlib::exact_bits_per_value(c).total();    // 2.125 + 16 / 2048 (a 16-bit scale per codebook)
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <bit>
#include <cmath>
#include <cstdint>

namespace vqlib {

struct VqBitsConfig {
    /// Vector dimension D and centroids per codebook K.
    Index dim = 2;
    Index k = 16;
    /// Bits b_c per codebook entry (16 for fp16 codebooks).
    int codebook_bits = 8;
    /// Weights l sharing one codebook.
    Index weights_per_codebook = 2048;
    /// Blockwise normalization: sub-block columns bs (0: none) and code bits b_s.
    Index normalization_block = 0;
    int normalization_bits = 4;

    // Side information the paper leaves out (exact count only).
    /// Width of an integer codebook's scale (0 for float codebooks, which have none).
    int codebook_scale_bits = 16;
    /// Codebooks sharing one scale: 1 for per_codebook, the codebooks of a column group for shared.
    Index codebooks_per_scale = 1;
    /// Width of each of the two per-sub-block-column values (offset m and step) of normalization.
    int normalization_offset_bits = 16;
    /// Rows sharing those two values: the rows R of the normalized block (the layer's rows).
    /// Required (>= 1) with normalization for the exact count.
    Index normalization_rows = 0;
};

/// Exact bits per weight, by component.
struct BitsPerValue {
    double indices = 0.0;                // ceil(log2 K) / D
    double codebook_entries = 0.0;       // K * D * b_c / l
    double codebook_scales = 0.0;        // codebook_scale_bits / (codebooks_per_scale * l)
    double normalization_codes = 0.0;    // b_s / bs
    double normalization_offsets = 0.0;  // 2 * offset_bits / (rows * bs)

    double total() const {
        return indices + codebook_entries + codebook_scales + normalization_codes +
               normalization_offsets;
    }
};

namespace detail {

inline void check_bits_config(const VqBitsConfig& c) {
    VQLIB_CHECK(c.dim >= 1 && c.k >= 1 && c.weights_per_codebook >= 1 && c.codebook_bits >= 1,
                invalid_argument, "dim = ", c.dim, ", k = ", c.k, ", codebook_bits = ",
                c.codebook_bits, ", weights_per_codebook = ", c.weights_per_codebook,
                ": expected positive values");
    VQLIB_CHECK(c.normalization_block >= 0 &&
                    (c.normalization_block == 0 || c.normalization_bits >= 1),
                invalid_argument, "normalization_block = ", c.normalization_block,
                ", normalization_bits = ", c.normalization_bits,
                ": expected block 0 (off) or positive with bits >= 1");
}

}  // namespace detail

/// The paper's bpv: log2(K)/D + K*D*b_c/l (+ b_s/bs).
inline double paper_bits_per_value(const VqBitsConfig& c) {
    detail::check_bits_config(c);
    const double d = static_cast<double>(c.dim);
    const double k = static_cast<double>(c.k);
    double bpv = std::log2(k) / d +
                 k * d * c.codebook_bits / static_cast<double>(c.weights_per_codebook);
    if (c.normalization_block > 0)
        bpv += c.normalization_bits / static_cast<double>(c.normalization_block);
    return bpv;
}

/// Everything stored, per weight: whole-bit indices, codebook entries, codebook scales, and the
/// normalization's codes, offsets and steps.
inline BitsPerValue exact_bits_per_value(const VqBitsConfig& c) {
    detail::check_bits_config(c);
    VQLIB_CHECK(c.codebook_scale_bits >= 0 && c.codebooks_per_scale >= 1, invalid_argument,
                "codebook_scale_bits = ", c.codebook_scale_bits, ", codebooks_per_scale = ",
                c.codebooks_per_scale, ": expected bits >= 0 and at least one codebook per scale");
    const double l = static_cast<double>(c.weights_per_codebook);
    const double d = static_cast<double>(c.dim);
    BitsPerValue b;
    b.indices = static_cast<double>(std::bit_width(static_cast<std::uint64_t>(c.k - 1))) / d;
    b.codebook_entries = static_cast<double>(c.k) * d * c.codebook_bits / l;
    b.codebook_scales =
        c.codebook_scale_bits / (static_cast<double>(c.codebooks_per_scale) * l);
    if (c.normalization_block > 0) {
        VQLIB_CHECK(c.normalization_rows >= 1 && c.normalization_offset_bits >= 0,
                    invalid_argument, "normalization_rows = ", c.normalization_rows,
                    ", normalization_offset_bits = ", c.normalization_offset_bits,
                    ": the exact count with normalization needs the rows (>= 1) sharing each "
                    "offset and step, and their width (>= 0)");
        const double bs = static_cast<double>(c.normalization_block);
        b.normalization_codes = c.normalization_bits / bs;
        b.normalization_offsets = 2.0 * c.normalization_offset_bits /
                                  (static_cast<double>(c.normalization_rows) * bs);
    }
    return b;
}

}  // namespace vqlib
