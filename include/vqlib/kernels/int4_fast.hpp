#pragma once
// INT4 decode, fast mode: the weights of an Int4GemvMatrix re-laid out for integer dot products
// with int8 activations (kernels/int8_activations.hpp), as ggml's Q4_0 x Q8_0 does.
//
// Per 32-column activation block and row, the kernel sums code * q exactly in 32 bits, corrects
// for the zero point with the block's sum of q, and adds the result times (weight scale * d) to
// the row (one product and one FMA; kernels/fast_kernels.hpp). Against the fp32 product of the
// dequantized weights W (kernels::dequantize of the exact format), the error of output r is at
// most sum_blk (d_blk / 2) sum_{c in blk} |W(r, c)| plus fp32 rounding: the activations' rounding
// only. The same bits from every variant (portable, AVX2, AVX-512 VNNI) and thread count.
//
// Needs groups of a multiple of 32 columns (or one group per row); the exact format has no such
// limit.
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/fast_gemv.hpp>
#include <vqlib/kernels/fast_kernels.hpp>
#include <vqlib/kernels/int4_gemv.hpp>
#include <vqlib/kernels/int8_activations.hpp>

#include <cstdint>
#include <vector>

namespace vqlib::kernels {

class Int4FastMatrix {
public:
    Int4FastMatrix() = default;

    /// From the exact format. Throws invalid_argument unless the group size is a multiple of 32
    /// or one group covers the row.
    static Int4FastMatrix from_matrix(const Int4GemvMatrix& e) {
        const Index gs = e.group_size();
        VQLIB_CHECK(gs % Int8Activations::block == 0 || e.groups() == 1, invalid_argument,
                    "Int4FastMatrix: group_size = ", gs,
                    ": the fast mode needs a multiple of 32 (or one group per row)");
        Int4FastMatrix m;
        m.rows_ = e.rows();
        m.cols_ = e.cols();
        m.group_size_ = gs;
        m.groups_ = e.groups();
        m.symmetric_ = e.symmetric();
        m.bits_ = e.bits();
        m.scales_ = e.scale_bits();
        m.zeros_ = e.zero_points();
        m.blocks_ = (e.cols() + Int8Activations::block - 1) / Int8Activations::block;
        m.blocks_per_group_ = e.groups() == 1 ? m.blocks_ : gs / Int8Activations::block;
        m.tile_bytes_ = m.blocks_ * 256;
        m.codes_.assign(static_cast<std::size_t>(e.tiles() * m.tile_bytes_), 0);
        for (Index r = 0; r < e.rows(); ++r) {
            const Index tile = r / tile_rows, l = r % tile_rows;
            for (Index c = 0; c < e.cols(); ++c) {
                const Index chunk = c / 8, i = c % 8;
                std::uint8_t& byte = m.codes_[static_cast<std::size_t>(tile * m.tile_bytes_ + chunk * 64 + 4 * l + i % 4)];
                byte = static_cast<std::uint8_t>(byte | (e.code(r, c) << (i < 4 ? 0 : 4)));
            }
        }
        return m;
    }

    /// From a 4-bit ScalarLayer<IntGrid> (Int4GemvMatrix::from_layer's checks, then from_matrix's).
    static Int4FastMatrix from_layer(const ScalarLayer<IntGrid>& layer) {
        return from_matrix(Int4GemvMatrix::from_layer(layer));
    }

    Index rows() const { return rows_; }
    Index cols() const { return cols_; }
    Index group_size() const { return group_size_; }
    Index groups() const { return groups_; }
    Index tiles() const { return (rows_ + tile_rows - 1) / tile_rows; }
    bool symmetric() const { return symmetric_; }
    BitsBreakdown bits() const { return bits_; }
    /// Bytes the GEMV reads: codes (padded to 32 columns and 16 rows), scales, zero points.
    std::size_t stream_bytes() const { return codes_.size() + 2 * scales_.size() + zeros_.size(); }

    std::uint8_t code(Index r, Index c) const {
        const Index i = c % 8;
        const std::uint8_t byte = codes_[static_cast<std::size_t>(
            (r / tile_rows) * tile_bytes_ + (c / 8) * 64 + 4 * (r % tile_rows) + i % 4)];
        return static_cast<std::uint8_t>(i < 4 ? byte & 15 : byte >> 4);
    }
    float scale(Index r, Index g) const { return half_to_float(scales_[at_param(r, g)]); }
    float zero(Index r, Index g) const {
        return symmetric_ ? 8.0f : static_cast<float>(zeros_[at_param(r, g)]);
    }

    /// y = W x with activations already quantized (the same for every layer reading x).
    void gemv(const Int8Activations& x, Eigen::Ref<MatrixXf> y, const GemvOptions& options = {}) const {
        VQLIB_CHECK(x.cols() == cols(), shape_error, "gemv (INT4 fast): x has ", x.cols(),
                    " rows: expected ", cols(), " (the matrix's columns)");
        VQLIB_CHECK(x.batch() >= 1 && x.batch() <= max_gemv_batch, shape_error,
                    "gemv (INT4 fast): x has ", x.batch(), " columns: expected a batch of 1..",
                    max_gemv_batch);
        VQLIB_CHECK(y.rows() == rows() && y.cols() == x.batch() && y.innerStride() == 1, shape_error,
                    "gemv (INT4 fast): y is ", y.rows(), "x", y.cols(), ": expected ", rows(), "x",
                    x.batch());
        const detail::FastIsa isa = detail::resolve_fast_isa(options.isa);
        detail::Int4FastTask task;
        task.codes = codes_.data();
        task.tile_bytes = tile_bytes_;
        task.blocks_per_group = blocks_per_group_;
        task.groups = groups_;
        task.scales = scales_.data();
        task.zeros = symmetric_ ? nullptr : zeros_.data();
        task.x = detail::fast_activations(x);
        task.rows = rows();
        task.y = y.data();
        task.ldy = y.outerStride();
        detail::run_chunks(tiles(), 4, options.parallel, [&](Index t0, Index t1) {
            detail::Int4FastTask t = task;
            t.tile_begin = t0;
            t.tile_end = t1;
            detail::with_batch(x.batch(), [&](auto b) { detail::int4_fast_tiles<decltype(b)::value>(isa, t); });
        });
    }

private:
    std::size_t at_param(Index r, Index g) const {
        return static_cast<std::size_t>(((r / tile_rows) * groups_ + g) * tile_rows + r % tile_rows);
    }

    Index rows_ = 0;
    Index cols_ = 0;
    Index group_size_ = 128;
    Index groups_ = 0;
    bool symmetric_ = true;
    BitsBreakdown bits_;
    std::vector<std::uint16_t> scales_;
    std::vector<std::uint8_t> zeros_;
    Index blocks_ = 0;
    Index blocks_per_group_ = 0;
    Index tile_bytes_ = 0;
    std::vector<std::uint8_t> codes_;
};

/// The weights the fast GEMV multiplies with, scale * (code - zero): the same values as the
/// exact format's (and ScalarLayer::dequantize()).
inline MatrixXf dequantize(const Int4FastMatrix& m) { return detail::dequantize_int4(m); }

}  // namespace vqlib::kernels
