#pragma once
// Blockwise data normalization (GPTVQ App. H, `--vq-scaling-blocksize`, docs/gptvq.md).
//
// A weight block W (rows x cols) is split, per row, into sub-blocks of bs consecutive columns.
// Each (row, sub-block) gets a scale s (max |w|, or the L2 or L1 norm of its bs weights), which is
// quantized per sub-block column j (the same bs columns in every row) to b_s bits:
//
//   log domain (default):
//     l = log10(s), l = 0 where s < 1e-8         (zero sub-blocks are left unscaled)
//     m_j = min over rows of l,   l' = l - m_j >= 0
//     step_j = max over rows of l' / (2^b_s - 1)
//     code = clamp(round(l' / step_j), 0, 2^b_s - 1)    (step_j = 0: code = 0)
//     s_q = 10^(code * step_j + m_j)    (the exponent summed in double, rounded to float once)
//   linear domain:
//     s = 1 where s < 1e-8, m_j = min over rows of s, then the same quantizer on s - m_j:
//     s_q = code * step_j + m_j
//
// and the normalized block is W / s_q (each weight divided by its sub-block's scale). Codebooks
// are then fitted and looked up in the normalized domain; a weight dequantizes as C[idx] * s_q.
// Stored per block: the codes (b_s bits per row and sub-block) and, per sub-block column, m_j and
// step_j (at offset_storage width: 32 bits each by default, 16 with fp16).
//
// Differences from the reference (`blockwise_normalize_data`), all below float resolution or
// deliberate:
//   - its quantizer floors the range at 1e-8 (step = max(range, 1e-8)/15); here a zero range gives
//     step 0 and code 0, the same scale;
//   - at b_s = 16 it skips quantization (keeps fp32 scales); here 16 bits quantizes to 16 bits;
//   - L1/L2 norms are accumulated in double, and the level code * step + m is rounded once (the
//     reference rounds the product and the sum separately).
//
// Reference bug, which belongs to the caller (the GPTVQ quantizer policy), not here: the
// reference normalizes each 128-column block once, before the block's GPTQ loop, and does not
// renormalize as the intra-block error feedback updates W1, so lookups after the first column of
// a block read stale normalized weights (docs/gptvq.md "Reference bug"). This component is a pure
// function of the W it is given; calling it once per block reproduces the bug, renormalizing the
// updated columns fixes it.
//
//   vqlib::BlockwiseNormalizer normalizer({.block_size = 64});
//   auto block = normalizer.normalize(W);                  // block.weights = W / s_q
//   MatrixXf W2 = normalizer.denormalize(block.weights, block.scales);   // == W (float rounding)
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/core/scale_storage.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace vqlib {

/// The per-(row, sub-block) magnitude that is normalized away.
enum class ScaleNorm { max_abs, l2, l1 };
/// Where the scales are quantized: log10 (default) or linear.
enum class ScaleDomain { log10, linear };

struct BlockwiseNormalizationOptions {
    /// Columns per sub-block bs, 8..128; must divide the columns of the block normalized.
    Index block_size = 64;
    /// Bits b_s per scale code, 1..16.
    int bits = 4;
    ScaleNorm norm = ScaleNorm::max_abs;
    ScaleDomain domain = ScaleDomain::log10;
    /// Storage of the per-sub-block-column offset m and step; rounded to it before use.
    ScaleStorage offset_storage = ScaleStorage::fp32;
};

/// Unsigned scale codes, rows x (cols / bs).
using NormalizationCodes = Eigen::Matrix<std::uint16_t, Eigen::Dynamic, Eigen::Dynamic>;

/// The quantized scales of one normalized block.
struct NormalizationScales {
    Index block_size = 0;
    int bits = 4;
    ScaleDomain domain = ScaleDomain::log10;
    ScaleStorage offset_storage = ScaleStorage::fp32;
    /// s_q(r, j): the scale of row r, columns [j*bs, (j+1)*bs); rows x (cols / bs).
    MatrixXf scales;
    /// code(r, j) in [0, 2^bits - 1]; rows x (cols / bs).
    NormalizationCodes codes;
    /// m_j and step_j per sub-block column (log10 or linear units, per `domain`).
    Eigen::RowVectorXf offsets;
    Eigen::RowVectorXf steps;

    Index rows() const { return scales.rows(); }
    Index sub_blocks() const { return scales.cols(); }
    Index cols() const { return scales.cols() * block_size; }

    /// Bits of the codes: rows * (cols / bs) * bits.
    double codes_bits() const { return static_cast<double>(codes.size()) * bits; }
    /// Bits of the offsets and steps: two per sub-block column at offset_storage width.
    double offsets_bits() const {
        return 2.0 * static_cast<double>(offsets.size()) * scale_bits(offset_storage);
    }
    double total_bits() const { return codes_bits() + offsets_bits(); }
};

/// A normalized block: the weights divided by their quantized scales, and those scales.
struct NormalizedBlock {
    MatrixXf weights;
    NormalizationScales scales;
};

class BlockwiseNormalizer {
public:
    explicit BlockwiseNormalizer(BlockwiseNormalizationOptions options = {}) : options_(options) {
        VQLIB_CHECK_RANGE("block_size", options.block_size, Index{8}, Index{128});
        VQLIB_CHECK_RANGE("bits", options.bits, 1, 16);
    }

    const BlockwiseNormalizationOptions& options() const { return options_; }

    /// Normalizes W (rows x cols, cols a multiple of block_size). Throws shape_error when
    /// block_size does not divide cols (or W is empty), numerical_error for NaN/Inf in W or a norm
    /// that overflows float.
    NormalizedBlock normalize(ConstMatrixRef W) const {
        const Index bs = options_.block_size;
        VQLIB_CHECK(W.rows() >= 1 && W.cols() >= 1 && W.cols() % bs == 0, shape_error, "W is ",
                    W.rows(), "x", W.cols(), ": expected a non-empty block whose columns are a "
                    "multiple of block_size = ", bs);
        check_finite("W", W);
        const Index rows = W.rows();
        const Index blocks = W.cols() / bs;

        NormalizedBlock out;
        NormalizationScales& s = out.scales;
        s.block_size = bs;
        s.bits = options_.bits;
        s.domain = options_.domain;
        s.offset_storage = options_.offset_storage;
        s.scales = magnitudes(W);
        s.codes.resize(rows, blocks);
        s.offsets.resize(blocks);
        s.steps.resize(blocks);

        const bool log_domain = options_.domain == ScaleDomain::log10;
        // The domain's value per (row, sub-block), quantized in place below.
        MatrixXf& value = s.scales;
        for (Index j = 0; j < blocks; ++j)
            for (Index r = 0; r < rows; ++r) {
                const float m = value(r, j);
                if (log_domain)
                    value(r, j) = m < 1e-8f ? 0.0f : std::log10(m);
                else
                    value(r, j) = m < 1e-8f ? 1.0f : m;
            }

        const float maxq = static_cast<float>((1u << options_.bits) - 1u);
        for (Index j = 0; j < blocks; ++j) {
            // A linear offset is a scale (>= 1e-8): keep it positive when rounding to fp16.
            const float lowest = value.col(j).minCoeff();
            const float offset = log_domain ? detail::round_value(lowest, options_.offset_storage)
                                            : round_scale(lowest, options_.offset_storage);
            float range = 0.0f;
            for (Index r = 0; r < rows; ++r) range = std::max(range, value(r, j) - offset);
            const float step =
                range > 0.0f ? round_scale(range / maxq, options_.offset_storage) : 0.0f;
            s.offsets[j] = offset;
            s.steps[j] = step;
            for (Index r = 0; r < rows; ++r) {
                const float shifted = value(r, j) - offset;
                const float code =
                    step > 0.0f ? std::clamp(std::nearbyint(shifted / step), 0.0f, maxq) : 0.0f;
                s.codes(r, j) = static_cast<std::uint16_t>(code);
                // code * step is exact in double (two 24-bit significands), so the level is
                // rounded once whether or not the compiler fuses the multiply-add: a deployment
                // recomputes s_q from (code, step, m) bit for bit.
                const auto level = static_cast<float>(static_cast<double>(code) * step + offset);
                value(r, j) = log_domain ? std::pow(10.0f, level) : level;
                VQLIB_CHECK(std::isfinite(value(r, j)) && value(r, j) > 0.0f, numerical_error,
                            "the quantized scale of W(", r, ", ", j * bs, "..", (j + 1) * bs - 1,
                            ") is ", value(r, j), ": expected a positive finite float");
            }
        }

        out.weights.resize(rows, W.cols());
        for (Index c = 0; c < W.cols(); ++c)
            for (Index r = 0; r < rows; ++r) out.weights(r, c) = W(r, c) / s.scales(r, c / bs);
        return out;
    }

    /// Multiplies each weight of Wn by its sub-block's scale: the inverse of normalize() up to
    /// float rounding. Throws shape_error unless Wn is scales.rows() x scales.cols().
    static MatrixXf denormalize(ConstMatrixRef Wn, const NormalizationScales& scales) {
        VQLIB_CHECK(scales.block_size >= 1, invalid_argument, "scales.block_size = ",
                    scales.block_size, ": expected the scales of a normalized block");
        check_shape("Wn", Wn, scales.rows(), scales.cols());
        MatrixXf W(Wn.rows(), Wn.cols());
        for (Index c = 0; c < Wn.cols(); ++c)
            for (Index r = 0; r < Wn.rows(); ++r)
                W(r, c) = Wn(r, c) * scales.scales(r, c / scales.block_size);
        return W;
    }

private:
    /// The norm of each (row, sub-block): rows x (cols / bs). L1 and L2 accumulate in double.
    MatrixXf magnitudes(ConstMatrixRef W) const {
        const Index bs = options_.block_size;
        const Index blocks = W.cols() / bs;
        MatrixXf out(W.rows(), blocks);
        for (Index j = 0; j < blocks; ++j) {
            const auto sub = W.middleCols(j * bs, bs);
            for (Index r = 0; r < W.rows(); ++r) {
                double m = 0.0;
                switch (options_.norm) {
                case ScaleNorm::max_abs: m = sub.row(r).cwiseAbs().maxCoeff(); break;
                case ScaleNorm::l2: m = std::sqrt(sub.row(r).cast<double>().squaredNorm()); break;
                case ScaleNorm::l1: m = sub.row(r).cast<double>().cwiseAbs().sum(); break;
                }
                VQLIB_CHECK(m <= std::numeric_limits<float>::max(), numerical_error,
                            "the norm of W(", r, ", ", j * bs, "..", (j + 1) * bs - 1, ") is ", m,
                            ": it overflows float");
                out(r, j) = static_cast<float>(m);
            }
        }
        return out;
    }

    BlockwiseNormalizationOptions options_;
};

}  // namespace vqlib
