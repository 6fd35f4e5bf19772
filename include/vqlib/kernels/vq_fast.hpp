#pragma once
// GPTVQ decode, fast mode: int8 codebooks, int8 activations (kernels/int8_activations.hpp) and
// integer dot products, for 2-D codewords with K <= 16 (GPTVQ 2D at 2-2.125 bpw) and 4-D ones with
// K <= 256 (GPTVQ 4D).
//
// Format. Each codebook is stored as int8 with one fp32 scale, s = max|c| / 127, q = round(c / s)
// (D bytes per codeword: 32 bytes for 2D K16 and 1 KiB for 4D K256, against 128 bytes and 4 KiB
// as fp32), so a codeword differs from the layer's by at most s / 2 per coordinate; dequantize()
// returns these weights. 2-D codes are 4 bits in 16-row tiles, two vectors' codes per byte
// (kernels/fast_kernels.hpp, Vq2FastTask); 4-D codes are bytes in 64-row quads (Vq4FastTask). For
// GPTVQ's 2.125 bpw groups (a codebook per 8 rows x 256 columns) the GEMV reads 2.14 bits per
// weight instead of the exact format's 2.5.
//
// GEMV (AVX-512 with VNNI and BW; 4-D also VBMI; 2-D also AVX2). 2-D: one vpermw looks up the
// int8 codewords of 16 rows x 2 vectors in the tile's two codebooks (AVX2: vpshufb in the
// codebook's x and y byte planes, 8 rows at a time); 4-D: per coordinate two vpermt2b and a blend
// look up 64 rows' bytes in the codebook's byte plane, and byte interleaves assemble each row's 4
// coordinates; then one vpdpbusd multiplies 16 rows x 4 weights with 4 activations (AVX2:
// vpmaddubsw and vpmaddwd). Per 32-column block the exact integer sum is scaled once (fp32
// product and FMA). Against the fp32 product of dequantize(m) the error of output r is at most
// sum_blk (d_blk / 2) sum_{c in blk} |W(r, c)| plus fp32 rounding. The same bits from the portable
// variant and any thread count. CPUs without these instructions run the portable variant
// (correct, slow): CpuFastDecodeBackend then keeps the exact kernels instead
// (backend/cpu_fast_decode.hpp).
//
// Needs D = 2 with K <= 16 and every 8-row half tile in one band (rows_per_codebook a multiple of 8,
// or one band), or D = 4 with K <= 256 and every 64-row quad in one band (a multiple of 64, or one
// band); column groups and normalization blocks of a multiple of 32 columns (or one group per
// row). supported() says whether a layer qualifies.
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/fast_gemv.hpp>
#include <vqlib/kernels/fast_kernels.hpp>
#include <vqlib/kernels/int8_activations.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace vqlib::kernels {

class VqFastMatrix {
public:
    VqFastMatrix() = default;

    /// Empty when the layer fits this format, else why not (the field and its value).
    static std::string unsupported_reason(const VqLayout& L, Index scale_block = 0) {
        using ::vqlib::detail::concat;
        if (L.rows <= 0 || L.cols <= 0) return concat("layer is ", L.rows, "x", L.cols, ": expected a non-empty layer");
        if (L.dim != 2 && L.dim != 4) return concat("dim = ", L.dim, ": the fast GPTVQ format needs 2 or 4");
        const Index kmax = L.dim == 2 ? 16 : 256;
        if (L.k < 1 || L.k > kmax)
            return concat("k = ", L.k, ": the fast GPTVQ format needs 1..", kmax, " for dim = ", L.dim);
        if (L.cols % L.dim != 0) return concat("cols = ", L.cols, ": expected a multiple of dim = ", L.dim);
        if (L.rows_per_codebook < 1 || L.rows % L.rows_per_codebook != 0)
            return concat("rows_per_codebook = ", L.rows_per_codebook, ": expected a divisor of rows = ", L.rows);
        const Index unit = L.dim == 2 ? 8 : 64;
        if (L.rows_per_codebook % unit != 0 && L.rows_per_codebook < L.rows)
            return concat("rows_per_codebook = ", L.rows_per_codebook, ": the fast GPTVQ format needs a multiple of ",
                          unit, " for dim = ", L.dim, " (or one band)");
        if (L.columns_per_group < 2 || L.cols % L.columns_per_group != 0)
            return concat("columns_per_group = ", L.columns_per_group, ": expected a divisor of cols = ", L.cols);
        if (L.columns_per_group % Int8Activations::block != 0 && L.columns_per_group < L.cols)
            return concat("columns_per_group = ", L.columns_per_group,
                          ": the fast GPTVQ format needs a multiple of 32 (or one group per row)");
        if (scale_block > 0 && scale_block % Int8Activations::block != 0)
            return concat("scale_block = ", scale_block, ": the fast GPTVQ format needs a multiple of 32");
        return {};
    }

    static bool supported(const VqLayer& layer) {
        return unsupported_reason(layer.layout, layer.scale_block).empty();
    }

    /// Re-lays out a VqLayer. Throws shape_error / invalid_argument, naming the field, when the
    /// layer is inconsistent or outside this format (unsupported_reason).
    static VqFastMatrix from_layer(const VqLayer& layer) {
        const VqLayout& L = layer.layout;
        const std::string why = unsupported_reason(L, layer.scale_block);
        VQLIB_CHECK(why.empty(), invalid_argument, "VqFastMatrix: ", why);
        VQLIB_CHECK(layer.codebooks.rows() == L.codebook_count() * L.k && layer.codebooks.cols() == L.dim,
                    shape_error, "VqFastMatrix: codebooks are ", layer.codebooks.rows(), "x",
                    layer.codebooks.cols(), ": expected ", L.codebook_count() * L.k, "x", L.dim);
        check_finite("VqFastMatrix: codebooks", layer.codebooks);
        VQLIB_CHECK(layer.indices.rows() == L.rows && layer.indices.cols() == L.vectors_per_row(),
                    shape_error, "VqFastMatrix: indices are ", layer.indices.rows(), "x",
                    layer.indices.cols(), ": expected ", L.rows, "x", L.vectors_per_row());
        if (layer.scale_block > 0) {
            const Index blocks = (L.cols + layer.scale_block - 1) / layer.scale_block;
            VQLIB_CHECK(layer.scales.rows() == L.rows && layer.scales.cols() == blocks, shape_error,
                        "VqFastMatrix: scales are ", layer.scales.rows(), "x", layer.scales.cols(),
                        ": expected ", L.rows, "x", blocks);
            check_finite("VqFastMatrix: scales", layer.scales);
        }
        VqFastMatrix m;
        m.layout_ = L;
        m.blocks_ = (L.cols + Int8Activations::block - 1) / Int8Activations::block;
        m.groups_ = L.column_groups();
        m.blocks_per_group_ = m.groups_ == 1 ? m.blocks_ : L.columns_per_group / Int8Activations::block;
        m.unit_bytes_ = m.blocks_ * (L.dim == 2 ? 128 : 512);
        const Index units = m.units();
        m.codes_.assign(static_cast<std::size_t>(units * m.unit_bytes_), 0);
        const Index V = L.vectors_per_row();
        for (Index r = 0; r < L.rows; ++r)
            for (Index v = 0; v < V; ++v) {
                const std::uint16_t code = layer.indices(r, v);
                VQLIB_CHECK(code < L.k, invalid_argument, "VqFastMatrix: index ", code, " at (row ",
                            r, ", vector ", v, ") is out of range for k = ", L.k);
                std::uint8_t& byte = m.codes_[m.code_byte(r, v)];
                byte = static_cast<std::uint8_t>(byte | (code << m.code_shift(v)));
            }
        const Index C = L.codebook_count();
        m.tables_.assign(static_cast<std::size_t>(m.table_bytes() * C), 128);
        detail::quantize_int8_codebooks(layer.codebooks, L.k, C, m.tables_, m.cb_scales_,
                                        [&m](Index cb, Index k, Index j) { return m.table_entry(cb, k, j); });
        if (layer.scale_block > 0) {
            m.scale_block_ = layer.scale_block;
            m.scale_blocks_ = layer.scales.cols();
            m.norm_.assign(static_cast<std::size_t>(units * m.scale_blocks_ * m.unit_rows()), 0.0f);
            for (Index r = 0; r < L.rows; ++r)
                for (Index blk = 0; blk < m.scale_blocks_; ++blk) m.norm_[m.norm_entry(r, blk)] = layer.scales(r, blk);
        }
        m.bits_ = layer.bits();
        return m;
    }

    Index rows() const { return layout_.rows; }
    Index cols() const { return layout_.cols; }
    const VqLayout& layout() const { return layout_; }
    /// Rows per unit of the code layout: 16-row tiles (2-D) or 64-row quads (4-D).
    Index unit_rows() const { return layout_.dim == 2 ? tile_rows : 64; }
    Index units() const { return (layout_.rows + unit_rows() - 1) / unit_rows(); }
    /// Bits as the layer counts them (its codebook width), not as this format stores them.
    BitsBreakdown layer_bits() const { return bits_; }
    /// Bytes the GEMV reads: codes (padded to 32 columns and 16 rows), int8 codebooks, their
    /// fp32 scales, fp32 normalization scales.
    std::size_t stream_bytes() const {
        return codes_.size() + tables_.size() + 4 * cb_scales_.size() + 4 * norm_.size();
    }

    std::uint16_t code(Index r, Index v) const {
        return static_cast<std::uint16_t>((codes_[code_byte(r, v)] >> code_shift(v)) & (layout_.dim == 2 ? 15 : 255));
    }
    /// Coordinate j of codeword k of codebook cb as the fast GEMV uses it: scale * int8.
    float codeword(Index cb, Index k, Index j) const {
        const int q = static_cast<int>(tables_[table_entry(cb, k, j)]) - 128;
        return cb_scales_[static_cast<std::size_t>(cb)] * static_cast<float>(q);
    }
    Index scale_block() const { return scale_block_; }
    float norm_scale(Index r, Index blk) const { return norm_[norm_entry(r, blk)]; }

    /// y = W x with activations already quantized (the same for every layer reading x).
    void gemv(const Int8Activations& x, Eigen::Ref<MatrixXf> y, const GemvOptions& options = {}) const {
        VQLIB_CHECK(x.cols() == cols(), shape_error, "gemv (GPTVQ fast): x has ", x.cols(),
                    " rows: expected ", cols(), " (the matrix's columns)");
        VQLIB_CHECK(x.batch() >= 1 && x.batch() <= max_gemv_batch, shape_error,
                    "gemv (GPTVQ fast): x has ", x.batch(), " columns: expected a batch of 1..",
                    max_gemv_batch);
        VQLIB_CHECK(y.rows() == rows() && y.cols() == x.batch(), shape_error, "gemv (GPTVQ fast): y is ",
                    y.rows(), "x", y.cols(), ": expected ", rows(), "x", x.batch());
        const detail::FastIsa isa = detail::resolve_fast_isa(options.isa, layout_.dim == 2);
        detail::FastActivations xa = detail::fast_activations(x);
        if (layout_.dim == 2) {
            detail::Vq2FastTask task;
            fill(task, xa, y);
            task.tile_bytes = unit_bytes_;
            detail::run_chunks(units(), 8, options.parallel, [&](Index t0, Index t1) {
                detail::Vq2FastTask t = task;
                t.tile_begin = t0;
                t.tile_end = t1;
                detail::with_batch(x.batch(), [&](auto b) { detail::vq2_fast_tiles<decltype(b)::value>(isa, t); });
            });
        } else {
            detail::Vq4FastTask task;
            fill(task, xa, y);
            task.quad_bytes = unit_bytes_;
            detail::run_chunks(units(), 2, options.parallel, [&](Index q0, Index q1) {
                detail::Vq4FastTask t = task;
                t.quad_begin = q0;
                t.quad_end = q1;
                detail::with_batch(x.batch(), [&](auto b) { detail::vq4_fast_tiles<decltype(b)::value>(isa, t); });
            });
        }
    }

private:
    template <class Task>
    void fill(Task& task, const detail::FastActivations& xa, Eigen::Ref<MatrixXf>& y) const {
        task.codes = codes_.data();
        task.tables = tables_.data();
        task.cb_scales = cb_scales_.data();
        task.bands = layout_.bands();
        task.rows_per_codebook = layout_.rows_per_codebook;
        task.blocks_per_group = blocks_per_group_;
        task.groups = groups_;
        if (scale_block_ > 0) {
            task.norm = norm_.data();
            task.blocks_per_scale = scale_block_ / Int8Activations::block;
            task.scale_blocks = scale_blocks_;
        }
        task.x = xa;
        task.rows = rows();
        task.y = y.data();
        task.ldy = y.outerStride();
    }

    // 2-D: tile t, 32 bytes per 4 vectors, byte 2 l + v % 2, low nibble for v % 4 < 2;
    // 4-D: quad q, 64 bytes per vector, byte l.
    std::size_t code_byte(Index r, Index v) const {
        const Index u = r / unit_rows(), l = r % unit_rows();
        if (layout_.dim == 2) return static_cast<std::size_t>(u * unit_bytes_ + (v / 4) * 32 + 2 * l + v % 2);
        return static_cast<std::size_t>(u * unit_bytes_ + v * 64 + l);
    }
    int code_shift(Index v) const { return layout_.dim == 2 && v % 4 >= 2 ? 4 : 0; }
    Index table_bytes() const { return layout_.dim == 2 ? 32 : 1024; }
    // 2-D: entry k's two bytes; 4-D: byte plane j.
    std::size_t table_entry(Index cb, Index k, Index j) const {
        return static_cast<std::size_t>(cb * table_bytes() + (layout_.dim == 2 ? 2 * k + j : 256 * j + k));
    }
    std::size_t norm_entry(Index r, Index blk) const {
        const Index u = r / unit_rows(), l = r % unit_rows();
        const Index pos = layout_.dim == 2 ? l : detail::vq4_position(l);
        return static_cast<std::size_t>((u * scale_blocks_ + blk) * unit_rows() + pos);
    }

    VqLayout layout_;
    Index blocks_ = 0;
    Index groups_ = 0;
    Index blocks_per_group_ = 0;
    Index unit_bytes_ = 0;
    std::vector<std::uint8_t> codes_;
    std::vector<std::uint8_t> tables_;
    std::vector<float> cb_scales_;
    std::vector<float> norm_;
    Index scale_block_ = 0;
    Index scale_blocks_ = 0;
    BitsBreakdown bits_;
};

/// The weights the fast GEMV multiplies with: int8 codewords times their codebook's scale (and
/// the normalization scale), within s / 2 (times the normalization) of the layer's.
inline MatrixXf dequantize(const VqFastMatrix& m) {
    const VqLayout& L = m.layout();
    const Index D = L.dim;
    MatrixXf W(m.rows(), m.cols());
    parallel_for_ranges(L.vectors_per_row(), 64, [&](Index v0, Index v1) {
        for (Index v = v0; v < v1; ++v) {
            const Index cg = D * v / L.columns_per_group;
            for (Index r = 0; r < m.rows(); ++r)
                for (Index j = 0; j < D; ++j) {
                    const Index col = D * v + j;
                    float w = m.codeword(L.codebook_of(r, cg), m.code(r, v), j);
                    if (m.scale_block() > 0) w *= m.norm_scale(r, col / m.scale_block());
                    W(r, col) = w;
                }
        }
    });
    return W;
}

}  // namespace vqlib::kernels
