#pragma once
// GPTVQ 2D decode (D = 2, K <= 16), fast mode: int8 codebooks, int8 activations
// (kernels/int8_activations.hpp) and integer dot products.
//
// Format. Each codebook is stored as int8 with one fp32 scale, s = max|c| / 127, q = round(c / s)
// (2 bytes per codeword: 32 bytes for K = 16, against 128 as fp32), so a codeword differs from the
// layer's by at most s / 2 per coordinate; dequantize() returns these weights. Codes are 4 bits,
// in 16-row tiles, two vectors' codes per byte (kernels/fast_kernels.hpp, Vq2FastTask). For
// GPTVQ's 2.125 bpw groups (a codebook per 8 rows x 256 columns) the GEMV reads 2.14 bits per
// weight instead of the exact format's 2.5.
//
// GEMV (AVX-512 with VNNI and BW): one vpermw looks up the int8 codewords of 16 rows x 2 vectors
// in the tile's two codebooks, one vpdpbusd multiplies them with 4 activations; per 32-column
// block the exact integer sum is scaled once (fp32 product and FMA). Against the fp32 product of
// dequantize(m) the error of output r is at most sum_blk (d_blk / 2) sum_{c in blk} |W(r, c)| plus
// fp32 rounding. The same bits from the portable variant and any thread count. CPUs without
// AVX-512 VNNI run the portable variant (correct, slow): CpuFastDecodeBackend then keeps the exact
// kernels instead (backend/cpu_fast_decode.hpp).
//
// Needs D = 2, K <= 16, every 8-row half tile in one band (rows_per_codebook a multiple of 8, or
// one band), column groups and normalization blocks of a multiple of 32 columns (or one group per
// row); supported() says whether a layer qualifies.
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/fast_gemv.hpp>
#include <vqlib/kernels/fast_kernels.hpp>
#include <vqlib/kernels/int4_fast.hpp>
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
        if (L.dim != 2) return concat("dim = ", L.dim, ": the fast GPTVQ format needs 2");
        if (L.k < 1 || L.k > 16) return concat("k = ", L.k, ": the fast GPTVQ format needs 1..16");
        if (L.cols % 2 != 0) return concat("cols = ", L.cols, ": expected a multiple of dim = 2");
        if (L.rows_per_codebook < 1 || L.rows % L.rows_per_codebook != 0)
            return concat("rows_per_codebook = ", L.rows_per_codebook, ": expected a divisor of rows = ", L.rows);
        if (L.rows_per_codebook % 8 != 0 && L.rows_per_codebook < L.rows)
            return concat("rows_per_codebook = ", L.rows_per_codebook,
                          ": the fast GPTVQ format needs a multiple of 8 (or one band)");
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
        VQLIB_CHECK(layer.codebooks.rows() == L.codebook_count() * L.k && layer.codebooks.cols() == 2,
                    shape_error, "VqFastMatrix: codebooks are ", layer.codebooks.rows(), "x",
                    layer.codebooks.cols(), ": expected ", L.codebook_count() * L.k, "x2");
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
        m.tile_bytes_ = m.blocks_ * 128;
        const Index tiles = m.tiles();
        m.codes_.assign(static_cast<std::size_t>(tiles * m.tile_bytes_), 0);
        const Index V = L.vectors_per_row();
        for (Index r = 0; r < L.rows; ++r) {
            const Index tile = r / tile_rows, l = r % tile_rows;
            for (Index v = 0; v < V; ++v) {
                const std::uint16_t code = layer.indices(r, v);
                VQLIB_CHECK(code < L.k, invalid_argument, "VqFastMatrix: index ", code, " at (row ",
                            r, ", vector ", v, ") is out of range for k = ", L.k);
                const Index chunk = v / 4, i = v % 4;
                std::uint8_t& byte = m.codes_[static_cast<std::size_t>(tile * m.tile_bytes_ + chunk * 32 + 2 * l + i % 2)];
                byte = static_cast<std::uint8_t>(byte | (code << (i < 2 ? 0 : 4)));
            }
        }
        const Index C = L.codebook_count();
        m.tables_.assign(static_cast<std::size_t>(32 * C), 128);
        m.cb_scales_.assign(static_cast<std::size_t>(C), 0.0f);
        for (Index cb = 0; cb < C; ++cb) {
            float amax = 0.0f;
            for (Index k = 0; k < L.k; ++k)
                for (Index j = 0; j < 2; ++j) amax = std::max(amax, std::abs(layer.codebooks(cb * L.k + k, j)));
            if (amax == 0.0f) continue;
            const float s = amax / 127.0f;
            m.cb_scales_[static_cast<std::size_t>(cb)] = s;
            for (Index k = 0; k < L.k; ++k)
                for (Index j = 0; j < 2; ++j) {
                    const float q = std::clamp(std::nearbyint(layer.codebooks(cb * L.k + k, j) / s), -127.0f, 127.0f);
                    m.tables_[static_cast<std::size_t>(32 * cb + 2 * k + j)] = static_cast<std::uint8_t>(static_cast<int>(q) + 128);
                }
        }
        if (layer.scale_block > 0) {
            m.scale_block_ = layer.scale_block;
            m.scale_blocks_ = layer.scales.cols();
            m.norm_.assign(static_cast<std::size_t>(tiles * m.scale_blocks_ * tile_rows), 0.0f);
            for (Index r = 0; r < L.rows; ++r)
                for (Index blk = 0; blk < m.scale_blocks_; ++blk)
                    m.norm_[static_cast<std::size_t>(((r / tile_rows) * m.scale_blocks_ + blk) * tile_rows + r % tile_rows)] =
                        layer.scales(r, blk);
        }
        m.bits_ = layer.bits();
        return m;
    }

    Index rows() const { return layout_.rows; }
    Index cols() const { return layout_.cols; }
    const VqLayout& layout() const { return layout_; }
    Index tiles() const { return (layout_.rows + tile_rows - 1) / tile_rows; }
    /// Bits as the layer counts them (its codebook width), not as this format stores them.
    BitsBreakdown layer_bits() const { return bits_; }
    /// Bytes the GEMV reads: codes (padded to 32 columns and 16 rows), int8 codebooks, their
    /// fp32 scales, fp32 normalization scales.
    std::size_t stream_bytes() const {
        return codes_.size() + tables_.size() + 4 * cb_scales_.size() + 4 * norm_.size();
    }

    std::uint16_t code(Index r, Index v) const {
        const Index i = v % 4;
        const std::uint8_t byte = codes_[static_cast<std::size_t>((r / tile_rows) * tile_bytes_ + (v / 4) * 32 +
                                                                  2 * (r % tile_rows) + i % 2)];
        return static_cast<std::uint16_t>(i < 2 ? byte & 15 : byte >> 4);
    }
    /// Coordinate j of codeword k of codebook cb as the fast GEMV uses it: scale * int8.
    float codeword(Index cb, Index k, Index j) const {
        const int q = static_cast<int>(tables_[static_cast<std::size_t>(32 * cb + 2 * k + j)]) - 128;
        return cb_scales_[static_cast<std::size_t>(cb)] * static_cast<float>(q);
    }
    Index scale_block() const { return scale_block_; }
    float norm_scale(Index r, Index blk) const {
        return norm_[static_cast<std::size_t>(((r / tile_rows) * scale_blocks_ + blk) * tile_rows + r % tile_rows)];
    }

    /// y = W x with activations already quantized (the same for every layer reading x).
    void gemv(const Int8Activations& x, Eigen::Ref<MatrixXf> y, const GemvOptions& options = {}) const {
        VQLIB_CHECK(x.cols() == cols(), shape_error, "gemv (GPTVQ fast): x has ", x.cols(),
                    " rows: expected ", cols(), " (the matrix's columns)");
        VQLIB_CHECK(x.batch() >= 1 && x.batch() <= max_gemv_batch, shape_error,
                    "gemv (GPTVQ fast): x has ", x.batch(), " columns: expected a batch of 1..",
                    max_gemv_batch);
        VQLIB_CHECK(y.rows() == rows() && y.cols() == x.batch(), shape_error, "gemv (GPTVQ fast): y is ",
                    y.rows(), "x", y.cols(), ": expected ", rows(), "x", x.batch());
        const detail::FastIsa isa = detail::resolve_fast_isa(options.isa, false);
        detail::Vq2FastTask task;
        task.codes = codes_.data();
        task.tile_bytes = tile_bytes_;
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
        task.x = detail::fast_activations(x);
        task.rows = rows();
        task.y = y.data();
        task.ldy = y.outerStride();
        detail::run_chunks(tiles(), 8, options.parallel, [&](Index t0, Index t1) {
            detail::Vq2FastTask t = task;
            t.tile_begin = t0;
            t.tile_end = t1;
            detail::with_batch(x.batch(), [&](auto b) { detail::vq2_fast_tiles<decltype(b)::value>(isa, t); });
        });
    }

private:
    VqLayout layout_;
    Index blocks_ = 0;
    Index groups_ = 0;
    Index blocks_per_group_ = 0;
    Index tile_bytes_ = 0;
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
    MatrixXf W(m.rows(), m.cols());
    parallel_for_ranges(L.vectors_per_row(), 64, [&](Index v0, Index v1) {
        for (Index v = v0; v < v1; ++v) {
            const Index cg = 2 * v / L.columns_per_group;
            for (Index r = 0; r < m.rows(); ++r)
                for (Index j = 0; j < 2; ++j) {
                    const Index col = 2 * v + j;
                    float w = m.codeword(L.codebook_of(r, cg), m.code(r, v), j);
                    if (m.scale_block() > 0) w *= m.norm_scale(r, col / m.scale_block());
                    W(r, col) = w;
                }
        }
    });
    return W;
}

}  // namespace vqlib::kernels
