#pragma once
// The INT4 baseline: 4-bit integer codes in groups of columns (128 by default), an fp16 scale
// per (row, group) and either an integer zero point per (row, group) (asymmetric) or the implied
// zero 8 (symmetric, IntGrid's convention); value = scale * (code - zero).
//
// Format. Rows are cut into tiles of 16; within a tile, columns are taken in pairs and the 16
// bytes of a pair hold, for each row (lane) l, the code of column 2p in the low nibble and of
// column 2p + 1 in the high one (an odd last column is padded with 0). Scales are fp16 and zero
// points uint8 per (tile, group, lane).
//
// GEMV: the standard dequant-in-register dot product, per group q = sum_c code_c * x_c and then
// y += scale * (q - zero * sum_c x_c); lanes run over the 16 rows of a tile.
#include <vqlib/core/bits.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/tile_kernels.hpp>
#include <vqlib/formats/scalar_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace vqlib::kernels {

class Int4GemvMatrix {
public:
    Int4GemvMatrix() = default;

    /// From a 4-bit ScalarLayer<IntGrid>. Throws invalid_argument unless the grid has 4 bits,
    /// the groups are contiguous (g_idx[j] = j / group_size; no act-order with dynamic groups),
    /// group_size is even (or covers the row), the scales are fp16 values and the zero points
    /// integers in 0..15 (8 for symmetric grids).
    static Int4GemvMatrix from_layer(const ScalarLayer<IntGrid>& layer) {
        VQLIB_CHECK(layer.grid.bits() == 4, invalid_argument, "Int4GemvMatrix: grid has ",
                    layer.grid.bits(), " bits: expected 4");
        const Index rows = layer.rows(), cols = layer.cols();
        VQLIB_CHECK(rows > 0 && cols > 0, shape_error, "Int4GemvMatrix: layer is ", rows, "x",
                    cols, ": expected a non-empty layer");
        const Index gs = layer.group_size > 0 ? layer.group_size : cols;
        const Index groups = (cols + gs - 1) / gs;
        VQLIB_CHECK(gs % 2 == 0 || gs >= cols, invalid_argument, "Int4GemvMatrix: group_size = ",
                    gs, ": expected an even group size (or one group per row)");
        VQLIB_CHECK(static_cast<Index>(layer.g_idx.size()) == cols, shape_error,
                    "Int4GemvMatrix: g_idx has ", layer.g_idx.size(), " entries: expected ", cols);
        for (Index j = 0; j < cols; ++j)
            VQLIB_CHECK(layer.g_idx[static_cast<std::size_t>(j)] == j / gs, invalid_argument,
                        "Int4GemvMatrix: g_idx[", j, "] = ", layer.g_idx[static_cast<std::size_t>(j)],
                        ": expected contiguous groups (", j / gs, ")");
        VQLIB_CHECK(static_cast<Index>(layer.params.size()) == groups * rows, shape_error,
                    "Int4GemvMatrix: ", layer.params.size(), " grid parameters: expected ",
                    groups * rows);
        Int4GemvMatrix m(rows, cols, gs, layer.grid.symmetric());
        for (Index g = 0; g < groups; ++g)
            for (Index r = 0; r < rows; ++r) {
                const GridParams& p = layer.param(r, g);
                VQLIB_CHECK(std::isfinite(p.scale) && std::isfinite(p.zero), numerical_error,
                            "Int4GemvMatrix: scale ", p.scale, " / zero ", p.zero, " of (row ", r,
                            ", group ", g, "): expected finite values");
                VQLIB_CHECK(detail::fp16_exact(p.scale), invalid_argument,
                            "Int4GemvMatrix: scale ", p.scale, " of (row ", r, ", group ", g,
                            ") is not an fp16 value (use ScaleStorage::fp16)");
                if (m.symmetric_) {
                    VQLIB_CHECK(p.zero == 8.0f, invalid_argument, "Int4GemvMatrix: zero ", p.zero,
                                " of (row ", r, ", group ", g, "): expected 8 (symmetric)");
                } else {
                    VQLIB_CHECK(p.zero >= 0.0f && p.zero <= 15.0f && p.zero == std::floor(p.zero),
                                invalid_argument, "Int4GemvMatrix: zero ", p.zero, " of (row ", r,
                                ", group ", g, "): expected an integer in 0..15");
                }
                m.set_params(r, g, p.scale, p.zero);
            }
        for (Index c = 0; c < cols; ++c)
            for (Index r = 0; r < rows; ++r) {
                const auto code = layer.codes(r, c);
                VQLIB_CHECK(code < 16, invalid_argument, "Int4GemvMatrix: code ", code, " at (row ",
                            r, ", column ", c, "): expected 0..15");
                m.set_code(r, c, static_cast<std::uint8_t>(code));
            }
        return m;
    }

    /// Round-to-nearest quantization of a float matrix (for benchmarks and tests): per (row,
    /// group) the IntGrid range rule (symmetric: scale = 2 max|w| / 15, zero 8; asymmetric:
    /// the range [min(w, 0), max(w, 0)], zero = round(-min / scale)), scales rounded to fp16.
    static Int4GemvMatrix quantize_rtn(const ConstMatrixRef& w, Index group_size = 128,
                                       bool symmetric = true) {
        const Index rows = w.rows(), cols = w.cols();
        check_finite("Int4GemvMatrix::quantize_rtn: w", w);
        VQLIB_CHECK(rows > 0 && cols > 0, shape_error, "Int4GemvMatrix::quantize_rtn: matrix is ",
                    rows, "x", cols, ": expected a non-empty matrix");
        VQLIB_CHECK(group_size >= 2 && group_size % 2 == 0, invalid_argument,
                    "Int4GemvMatrix::quantize_rtn: group_size = ", group_size,
                    ": expected an even value >= 2");
        Int4GemvMatrix m(rows, cols, group_size, symmetric);
        for (Index g = 0; g < m.groups_; ++g) {
            const Index c0 = g * group_size, c1 = std::min(cols, c0 + group_size);
            for (Index r = 0; r < rows; ++r) {
                float lo = 0.0f, hi = 0.0f;
                for (Index c = c0; c < c1; ++c) {
                    lo = std::min(lo, w(r, c));
                    hi = std::max(hi, w(r, c));
                }
                if (symmetric) {
                    hi = std::max(-lo, hi);
                    if (lo < 0) lo = -hi;
                }
                if (lo == 0.0f && hi == 0.0f) {
                    lo = -1.0f;
                    hi = 1.0f;
                }
                float scale = round_to_half((hi - lo) / 15.0f);
                if (!(scale > 0.0f)) scale = 5.9604645e-8f;
                const float zero = symmetric ? 8.0f : std::clamp(std::nearbyint(-lo / scale), 0.0f, 15.0f);
                m.set_params(r, g, scale, zero);
                for (Index c = c0; c < c1; ++c) {
                    const float q = std::clamp(std::nearbyint(w(r, c) / scale) + zero, 0.0f, 15.0f);
                    m.set_code(r, c, static_cast<std::uint8_t>(q));
                }
            }
        }
        return m;
    }

    Index rows() const { return rows_; }
    Index cols() const { return cols_; }
    Index group_size() const { return group_size_; }
    Index groups() const { return groups_; }
    bool symmetric() const { return symmetric_; }
    Index tiles() const { return (rows_ + tile_rows - 1) / tile_rows; }
    Index pairs() const { return (cols_ + 1) / 2; }
    Index tile_bytes() const { return pairs() * 16; }
    const std::vector<std::uint8_t>& codes() const { return codes_; }
    const std::vector<std::uint16_t>& scale_bits() const { return scales_; }
    const std::vector<std::uint8_t>& zero_points() const { return zeros_; }

    std::uint8_t code(Index r, Index c) const {
        const std::uint8_t byte = codes_[at_code(r, c)];
        return static_cast<std::uint8_t>(c % 2 == 0 ? byte & 15 : byte >> 4);
    }
    float scale(Index r, Index g) const {
        return half_to_float(scales_[at_param(r, g)]);
    }
    float zero(Index r, Index g) const {
        return symmetric_ ? 8.0f : static_cast<float>(zeros_[at_param(r, g)]);
    }

    /// 4 bits per weight, 16 per scale, 4 per zero point (asymmetric): 4.125 bpw symmetric at
    /// group 128, 4.15625 asymmetric.
    BitsBreakdown bits() const {
        BitsBreakdown b;
        b.weights = rows_ * cols_;
        b.codes = 4.0 * static_cast<double>(b.weights);
        b.parameters = static_cast<double>(rows_ * groups_) * (symmetric_ ? 16.0 : 20.0);
        return b;
    }

    /// Bytes the GEMV reads: padded codes, fp16 scales and (asymmetric) uint8 zero points.
    std::size_t stream_bytes() const { return codes_.size() + 2 * scales_.size() + zeros_.size(); }

private:
    Int4GemvMatrix(Index rows, Index cols, Index group_size, bool symmetric)
        : rows_(rows), cols_(cols), group_size_(group_size), groups_((cols + group_size - 1) / group_size),
          symmetric_(symmetric) {
        codes_.assign(static_cast<std::size_t>(tiles() * tile_bytes()), 0);
        scales_.assign(static_cast<std::size_t>(tiles() * groups_ * tile_rows), 0);
        if (!symmetric) zeros_.assign(scales_.size(), 0);
    }

    std::size_t at_code(Index r, Index c) const {
        return static_cast<std::size_t>((r / tile_rows) * tile_bytes() + (c / 2) * 16 + r % tile_rows);
    }
    std::size_t at_param(Index r, Index g) const {
        return static_cast<std::size_t>(((r / tile_rows) * groups_ + g) * tile_rows + r % tile_rows);
    }
    void set_code(Index r, Index c, std::uint8_t q) {
        std::uint8_t& byte = codes_[at_code(r, c)];
        byte = static_cast<std::uint8_t>(c % 2 == 0 ? (byte & 0xf0) | q : (byte & 0x0f) | (q << 4));
    }
    void set_params(Index r, Index g, float scale, float zero) {
        scales_[at_param(r, g)] = float_to_half(scale);
        if (!symmetric_) zeros_[at_param(r, g)] = static_cast<std::uint8_t>(zero);
    }

    Index rows_ = 0;
    Index cols_ = 0;
    Index group_size_ = 128;
    Index groups_ = 0;
    bool symmetric_ = true;
    std::vector<std::uint8_t> codes_;
    std::vector<std::uint16_t> scales_;
    std::vector<std::uint8_t> zeros_;
};

namespace detail {

/// scale * (code - zero) of an INT4 format (rows, cols, group_size, code, scale, zero).
template <class M>
MatrixXf dequantize_int4(const M& m) {
    MatrixXf W(m.rows(), m.cols());
    parallel_for_ranges(m.cols(), 256, [&](Index c0, Index c1) {
        for (Index c = c0; c < c1; ++c) {
            const Index g = c / m.group_size();
            for (Index r = 0; r < m.rows(); ++r)
                W(r, c) = m.scale(r, g) * (static_cast<float>(m.code(r, c)) - m.zero(r, g));
        }
    });
    return W;
}

}  // namespace detail

/// The dequantized matrix, scale * (code - zero): bit for bit ScalarLayer::dequantize().
inline MatrixXf dequantize(const Int4GemvMatrix& m) { return detail::dequantize_int4(m); }

inline MatrixXh dequantize_half(const Int4GemvMatrix& m) { return dequantize(m).cast<Eigen::half>(); }

/// y = W_hat x for a batch of 1..8 (x: cols x B, y: rows x B).
inline void gemv(const Int4GemvMatrix& m, const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y,
                 const GemvOptions& options = {}) {
    detail::check_gemv_shapes("gemv (INT4)", m.rows(), m.cols(), x, y);
    const Isa isa = resolve_isa(options.isa);
    const Index B = x.cols();
    // x padded with a zero row to an even count; the sum of x over each group.
    MatrixXf xp = MatrixXf::Zero(2 * m.pairs(), B);
    xp.topRows(m.cols()) = x;
    std::vector<float> xsum(static_cast<std::size_t>(m.groups() * B));
    for (Index g = 0; g < m.groups(); ++g) {
        const Index c0 = g * m.group_size(), c1 = std::min(m.cols(), c0 + m.group_size());
        for (Index b = 0; b < B; ++b) {
            float s = 0.0f;
            for (Index c = c0; c < c1; ++c) s += xp(c, b);
            xsum[static_cast<std::size_t>(g * B + b)] = s;
        }
    }
    MatrixXf yc(m.rows(), B);
    detail::Int4TileTask task;
    task.codes = m.codes().data();
    task.tile_bytes = m.tile_bytes();
    task.pairs = m.pairs();
    task.pairs_per_group = (m.group_size() + 1) / 2;
    task.groups = m.groups();
    task.scales = m.scale_bits().data();
    task.zeros = m.symmetric() ? nullptr : m.zero_points().data();
    task.x = xp.data();
    task.ldx = xp.rows();
    task.xsum = xsum.data();
    task.rows = m.rows();
    task.y = yc.data();
    task.ldy = yc.rows();
    detail::run_chunks(m.tiles(), 4, options.parallel, [&](Index t0, Index t1) {
        detail::Int4TileTask t = task;
        t.tile_begin = t0;
        t.tile_end = t1;
        detail::with_batch(B, [&](auto b) { detail::int4_tiles<decltype(b)::value>(isa, t); });
    });
    y = yc;
}

inline MatrixXf gemv(const Int4GemvMatrix& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    MatrixXf y(m.rows(), x.cols());
    gemv(m, x, y, options);
    return y;
}

/// Any batch: the fused GEMV up to max_gemv_batch columns, dequantize-then-GEMM above.
inline MatrixXf matmul(const Int4GemvMatrix& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    detail::check_matmul_shapes("matmul (INT4)", m.cols(), x);
    if (x.cols() >= 1 && x.cols() <= max_gemv_batch) return gemv(m, x, options);
    return detail::dense_matmul(dequantize(m), x, options.parallel);
}

}  // namespace vqlib::kernels
