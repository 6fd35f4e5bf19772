#pragma once
// GPTVQ-layout layers (formats/vq_layer.hpp) in a decode-friendly format, with their
// dequantization and fused GEMV y = W_hat x.
//
// Format. Rows are cut into tiles of 16 (tile_rows); within a tile the codes of one vector v
// (D consecutive columns) for the 16 rows are contiguous: 16 bytes for K <= 256, 32 bytes
// (uint16) for K <= 65536, and for K <= 16 two vectors share 16 bytes (vector 2p in the low
// nibbles, 2p + 1 in the high ones). The last tile is padded with code 0. Codebooks are kept as
// fp32 row-major (centroid after centroid), normalization scales as fp32 per (tile, block, lane).
//
// Strategies (GemvOptions::strategy, `automatic` = choose_strategy()):
//   lut     per call, for every codebook (column group cg, band of rows) and every vector
//           position vl of the group and batch column b, T[cb][vl][b][k] = c_k . x_seg; then
//           each row adds T[...][code] per vector: one table read per vector and batch column.
//   gather  each row reads the D coordinates of its centroid and multiplies them with x:
//           D reads (shared by the batch) and D * B products per vector.
// Cost model, per call with batch B, in units of one gathered float (g = 1; a 16-lane gather
// costs 16 of them), against one lane's product-add (m) and one lane's register lookup (r: a
// permute of table rows held in registers, possible when every 16-row tile lies in one band,
// i.e. rows_per_codebook % 16 == 0, and K is small):
//   lut    = T * (D * m + 0.1 [+ 2 when the tables pass 16 MiB])   (building T table entries,
//                                                                   T = codebooks * V_g * B * K)
//          + rows * V * B * (g or r)                               (one lookup per vector, column)
//   gather = rows * V * D * (g or r_c + B * m)                     (D coordinates, D*B products)
// The gather strategy's coordinates are register permutes (r_c = 0.06) with AVX-512 when K <= 16,
// D <= 8 and every 16-row tile lies in at most two bands (rows_per_codebook >= 16 or = 8): the
// codebooks' rows are held in registers whatever the band size, which suits GPTVQ's own small
// groups (8 rows x 256 columns for 2D at 2.125 bpw, where lut would build a table entry per
// weight). The constants were measured on an AVX-512 machine (AMD EPYC, 2 threads, 4096 x 4096,
// benchmarks/decode.cpp), where gathers are slow: m = 1/32 (1/8 for the other variants, which
// gather with cheaper loads), r = 0.1 for K <= 32, 0.2 for K <= 64 (two 32-entry slices) and
// 0.75 for K <= 128 (four slices, the tables no longer fit the L1 cache); AVX2 permutes K <= 16
// at r = 0.2; larger K are gathered (g). On CPUs with AVX-512 VBMI (Ice Lake, Zen 4 and later)
// the AVX-512 lut looks 64 < K <= 256 up in byte planes of the tables, 64 rows per permute
// (GemvOptions::byte_planes; every 64 rows in one band): r = 0.35 for K <= 128, 0.5 for
// K <= 256 (4D K256 on 4096 x 4096: 363 us instead of 856 at B = 1, 2810 instead of 6543 at
// B = 8, where it now beats the gather strategy's 3750). So with 16 or more rows per codebook
// lut wins at small batches and the register gather near B = 8 (2D K16, 256 x 256 codebooks: lut 193 us vs 347 at
// B = 1, 1382 vs 1179 at B = 8); with 8 rows per codebook the register gather wins throughout
// (285 us vs 38.7 ms for lut at B = 1); with gathered lookups (K > 128) lut wins at B = 1 and the
// gather strategy near B >= D. lut also needs K <= 256 and tables of at most 64 MiB.
#include <vqlib/core/bits.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/tile_kernels.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace vqlib::kernels {

class VqGemvMatrix {
public:
    VqGemvMatrix() = default;

    /// Re-lays out a VqLayer. Throws shape_error / invalid_argument, naming the field, when the
    /// layer is inconsistent or outside what the kernels support: cols a multiple of D and of
    /// columns_per_group (itself a multiple of D), rows a multiple of rows_per_codebook,
    /// K <= 65536, indices < K, normalization blocks (scale_block) a multiple of D.
    static VqGemvMatrix from_layer(const VqLayer& layer) {
        const VqLayout& L = layer.layout;
        VQLIB_CHECK(L.rows > 0 && L.cols > 0, shape_error, "VqGemvMatrix: layer is ", L.rows,
                    "x", L.cols, ": expected a non-empty layer");
        VQLIB_CHECK(L.dim >= 1 && L.cols % L.dim == 0, shape_error, "VqGemvMatrix: dim = ", L.dim,
                    " does not divide cols = ", L.cols);
        VQLIB_CHECK(L.columns_per_group >= 1 && L.columns_per_group % L.dim == 0 &&
                        L.cols % L.columns_per_group == 0,
                    shape_error, "VqGemvMatrix: columns_per_group = ", L.columns_per_group,
                    ": expected a multiple of dim = ", L.dim, " dividing cols = ", L.cols);
        VQLIB_CHECK(L.rows_per_codebook >= 1 && L.rows % L.rows_per_codebook == 0, shape_error,
                    "VqGemvMatrix: rows_per_codebook = ", L.rows_per_codebook,
                    ": expected a divisor of rows = ", L.rows);
        VQLIB_CHECK_RANGE("VqGemvMatrix: k", L.k, Index{1}, Index{65536});
        VQLIB_CHECK(layer.codebooks.rows() == L.codebook_count() * L.k &&
                        layer.codebooks.cols() == L.dim,
                    shape_error, "VqGemvMatrix: codebooks are ", layer.codebooks.rows(), "x",
                    layer.codebooks.cols(), ": expected ", L.codebook_count() * L.k, "x", L.dim);
        VQLIB_CHECK(layer.codebooks.size() < (Index{1} << 31), invalid_argument,
                    "VqGemvMatrix: ", layer.codebooks.size(),
                    " codebook entries: at most 2^31 are supported");
        check_finite("VqGemvMatrix: codebooks", layer.codebooks);
        VQLIB_CHECK(layer.indices.rows() == L.rows && layer.indices.cols() == L.vectors_per_row(),
                    shape_error, "VqGemvMatrix: indices are ", layer.indices.rows(), "x",
                    layer.indices.cols(), ": expected ", L.rows, "x", L.vectors_per_row());
        if (layer.scale_block > 0) {
            VQLIB_CHECK(layer.scale_block % L.dim == 0, invalid_argument,
                        "VqGemvMatrix: scale_block = ", layer.scale_block,
                        ": expected a multiple of dim = ", L.dim);
            VQLIB_CHECK(layer.scales.rows() == L.rows &&
                            layer.scales.cols() == (L.cols + layer.scale_block - 1) / layer.scale_block,
                        shape_error, "VqGemvMatrix: scales are ", layer.scales.rows(), "x",
                        layer.scales.cols(), ": expected ", L.rows, "x",
                        (L.cols + layer.scale_block - 1) / layer.scale_block);
            check_finite("VqGemvMatrix: scales", layer.scales);
        }

        VqGemvMatrix m;
        m.layout_ = L;
        m.code_bits_ = L.k <= 16 ? 4 : L.k <= 256 ? 8 : 16;
        m.codebook_bits_ = layer.codebook_bits;
        m.codebook_scale_bits_ = layer.codebook_scale_bits;
        m.codebook_scale_count_ = layer.codebook_scale_count;
        m.normalization_bits_ = layer.normalization_bits;
        const Index V = L.vectors_per_row();
        const Index tiles = m.tiles();
        m.tile_bytes_ = m.code_bits_ == 4 ? (V + 1) / 2 * 16 : V * 16 * (m.code_bits_ / 8);
        m.codes_.assign(static_cast<std::size_t>(tiles * m.tile_bytes_), 0);
        for (Index r = 0; r < L.rows; ++r) {
            const Index tile = r / tile_rows, lane = r % tile_rows;
            std::uint8_t* t = m.codes_.data() + tile * m.tile_bytes_;
            for (Index v = 0; v < V; ++v) {
                const std::uint16_t code = layer.indices(r, v);
                VQLIB_CHECK(code < L.k, invalid_argument, "VqGemvMatrix: index ", code,
                            " at (row ", r, ", vector ", v, ") is out of range for k = ", L.k);
                if (m.code_bits_ == 4) {
                    t[(v >> 1) * 16 + lane] |= static_cast<std::uint8_t>(code << ((v & 1) * 4));
                } else if (m.code_bits_ == 8) {
                    t[v * 16 + lane] = static_cast<std::uint8_t>(code);
                } else {
                    std::memcpy(t + v * 32 + lane * 2, &code, 2);
                }
            }
        }
        m.codebooks_.resize(static_cast<std::size_t>(layer.codebooks.size()));
        // 16 floats of padding: register lookups load 16 entries of a codebook row when K < 16.
        m.codebooks_t_.assign(m.codebooks_.size() + 16, 0.0f);
        for (Index i = 0; i < layer.codebooks.rows(); ++i)
            for (Index j = 0; j < L.dim; ++j) {
                const Index cb = i / L.k, k = i % L.k;
                m.codebooks_[static_cast<std::size_t>(i * L.dim + j)] = layer.codebooks(i, j);
                m.codebooks_t_[static_cast<std::size_t>((cb * L.dim + j) * L.k + k)] = layer.codebooks(i, j);
            }
        if (layer.scale_block > 0) {
            m.scale_block_ = layer.scale_block;
            m.scale_blocks_ = layer.scales.cols();
            m.scales_.assign(static_cast<std::size_t>(tiles * m.scale_blocks_ * tile_rows), 0.0f);
            for (Index r = 0; r < L.rows; ++r)
                for (Index blk = 0; blk < m.scale_blocks_; ++blk)
                    m.scales_[static_cast<std::size_t>(
                        ((r / tile_rows) * m.scale_blocks_ + blk) * tile_rows + r % tile_rows)] =
                        layer.scales(r, blk);
        }
        return m;
    }

    Index rows() const { return layout_.rows; }
    Index cols() const { return layout_.cols; }
    const VqLayout& layout() const { return layout_; }
    Index tiles() const { return (layout_.rows + tile_rows - 1) / tile_rows; }
    /// Stored bits per code: 4 (K <= 16), 8 (K <= 256) or 16.
    int code_bits() const { return code_bits_; }
    Index tile_bytes() const { return tile_bytes_; }
    const std::vector<std::uint8_t>& codes() const { return codes_; }
    const std::vector<float>& codebooks() const { return codebooks_; }
    /// The codebooks transposed, coordinate-major: entry (cb, k, j) at [(cb * D + j) * K + k]
    /// (followed by 16 floats of padding).
    const std::vector<float>& codebooks_transposed() const { return codebooks_t_; }
    Index scale_block() const { return scale_block_; }
    /// Normalization scales, [tile][block][16] (null without normalization).
    const float* scales_data() const { return scales_.empty() ? nullptr : scales_.data(); }

    /// The code of vector v of row r.
    std::uint16_t code(Index r, Index v) const {
        const std::uint8_t* t = codes_.data() + (r / tile_rows) * tile_bytes_;
        const Index lane = r % tile_rows;
        if (code_bits_ == 4) return static_cast<std::uint16_t>((t[(v >> 1) * 16 + lane] >> ((v & 1) * 4)) & 15);
        if (code_bits_ == 8) return t[v * 16 + lane];
        std::uint16_t c;
        std::memcpy(&c, t + v * 32 + lane * 2, 2);
        return c;
    }

    /// Normalization scale of row r for column block blk (1 without normalization).
    float scale(Index r, Index blk) const {
        return scales_[static_cast<std::size_t>(((r / tile_rows) * scale_blocks_ + blk) * tile_rows +
                                                r % tile_rows)];
    }

    /// Bits as stored in this format: codes at code_bits() per vector (not ceil(log2 K)),
    /// codebooks, codebook scales and normalization as the layer counts them.
    BitsBreakdown bits() const {
        BitsBreakdown b;
        b.weights = rows() * cols();
        b.codes = static_cast<double>(rows() * layout_.vectors_per_row()) * code_bits_;
        b.codebooks = static_cast<double>(codebooks_.size()) * codebook_bits_;
        b.parameters = static_cast<double>(codebook_scale_count_) * codebook_scale_bits_;
        if (scale_block_ > 0) {
            b.parameters += static_cast<double>(rows() * scale_blocks_) * normalization_bits_;
            b.parameters += 2.0 * 16.0 * static_cast<double>(scale_blocks_);
        }
        return b;
    }

    /// Bytes the GEMV reads from memory: padded codes, the fp32 codebooks (once) and fp32
    /// normalization scales.
    std::size_t stream_bytes() const {
        return codes_.size() + 4 * codebooks_.size() + 4 * scales_.size();
    }

    /// Floats of the lookup tables for a batch of B (codebooks x vectors per group x B x K).
    double lut_floats(Index batch) const {
        return static_cast<double>(layout_.codebook_count()) *
               static_cast<double>(layout_.columns_per_group / layout_.dim) *
               static_cast<double>(batch) * static_cast<double>(layout_.k);
    }

    /// True when the lut strategy looks codes up in registers with `isa` (see the header).
    bool register_lookups(Isa isa) const {
        isa = isa == Isa::automatic ? best_isa() : isa;
        const Index limit = isa == Isa::avx512 ? 128 : isa == Isa::avx2 ? 16 : 0;
        return layout_.k <= limit && layout_.rows_per_codebook % tile_rows == 0;
    }

    /// True when the lut strategy looks codes up in byte planes with `isa` (Isa::avx512 on a CPU
    /// with AVX-512 VBMI, 64 < K <= 256, every 64 rows in one band; see
    /// GemvOptions::byte_planes).
    bool byte_plane_lookups(Isa isa) const {
        isa = isa == Isa::automatic ? best_isa() : isa;
        const Index rpc = layout_.rows_per_codebook;
        return isa == Isa::avx512 && cpu_has_vbmi() && layout_.k > 64 && layout_.k <= 256 &&
               (rpc % 64 == 0 || rpc >= rows());
    }

    /// Bytes per plane of the byte-plane tables: K rounded up to 128 or 256.
    Index plane_k() const { return layout_.k <= 128 ? 128 : 256; }

    /// True when the gather strategy permutes codebook rows held in registers instead of
    /// gathering (AVX-512, K <= 16, D <= 8, every 16-row tile in at most two bands).
    bool register_codebooks(Isa isa) const {
        isa = isa == Isa::automatic ? best_isa() : isa;
        const Index rpc = layout_.rows_per_codebook;
        return isa == Isa::avx512 && layout_.k <= 16 && layout_.dim <= 8 &&
               (rpc >= tile_rows || rpc == tile_rows / 2 || rows() <= rpc);
    }

    /// Cost of one lane's table lookup in the lut strategy, in gathered floats (the header).
    double lookup_cost(Isa isa, bool byte_planes = true) const {
        isa = isa == Isa::automatic ? best_isa() : isa;
        if (byte_planes && byte_plane_lookups(isa)) return layout_.k <= 128 ? 0.35 : 0.5;
        if (!register_lookups(isa)) return 1.0;
        if (isa == Isa::avx2) return 0.2;
        return layout_.k <= 32 ? 0.1 : layout_.k <= 64 ? 0.2 : 0.75;
    }

    /// The cost model of the header comment.
    VqStrategy choose_strategy(Index batch, Isa isa = Isa::automatic, bool byte_planes = true) const {
        if (layout_.k > 256 || lut_floats(batch) * 4.0 > 64.0 * 1024 * 1024)
            return VqStrategy::gather;
        const double B = static_cast<double>(batch);
        const Isa resolved = isa == Isa::automatic ? best_isa() : isa;
        const double m = resolved == Isa::avx512 ? 1.0 / 32.0 : 1.0 / 8.0;
        const double lookup = lookup_cost(resolved, byte_planes);
        const double vectors = static_cast<double>(rows() * layout_.vectors_per_row());
        // Building a table entry: D products and a store; tables past 16 MiB (a last-level
        // cache's share) are written to and read back from DRAM.
        const double entries = lut_floats(batch);
        const double build = static_cast<double>(layout_.dim) * m + 0.1 +
                             (entries * 4.0 > 16.0 * 1024 * 1024 ? 2.0 : 0.0);
        const double lut = entries * build + vectors * B * lookup;
        const double fetch = register_codebooks(resolved) ? 0.06 : 1.0;
        const double gather = vectors * static_cast<double>(layout_.dim) * (fetch + B * m);
        return lut < gather ? VqStrategy::lut : VqStrategy::gather;
    }

private:
    VqLayout layout_;
    int code_bits_ = 8;
    Index tile_bytes_ = 0;
    std::vector<std::uint8_t> codes_;
    std::vector<float> codebooks_;
    std::vector<float> codebooks_t_;
    std::vector<float> scales_;
    Index scale_block_ = 0;
    Index scale_blocks_ = 0;
    int codebook_bits_ = 16;
    int codebook_scale_bits_ = 0;
    Index codebook_scale_count_ = 0;
    int normalization_bits_ = 4;
};

/// The dequantized layer, equal bit for bit to VqLayer::dequantize().
inline MatrixXf dequantize(const VqGemvMatrix& m) {
    const VqLayout& L = m.layout();
    const Index D = L.dim;
    MatrixXf W(m.rows(), m.cols());
    const float* cb = m.codebooks().data();
    parallel_for_ranges(L.vectors_per_row(), 64, [&](Index v0, Index v1) {
        for (Index v = v0; v < v1; ++v) {
            const Index cg = v * D / L.columns_per_group;
            for (Index r = 0; r < m.rows(); ++r) {
                const Index row = L.codebook_of(r, cg) * L.k + m.code(r, v);
                for (Index j = 0; j < D; ++j) {
                    const Index col = v * D + j;
                    float w = cb[row * D + j];
                    if (m.scale_block() > 0) w *= m.scale(r, col / m.scale_block());
                    W(r, col) = w;
                }
            }
        }
    });
    return W;
}

inline MatrixXh dequantize_half(const VqGemvMatrix& m) { return dequantize(m).cast<Eigen::half>(); }

namespace detail {

/// T[cb][vl][b][k] = sum_j c_{cb,k,j} * x(cg*cpg + vl*D + j, b), j ascending; the same bits
/// from every instruction-set variant.
inline VqTableTask vq_table_task(const VqGemvMatrix& m, const MatrixXf& x) {
    const VqLayout& L = m.layout();
    VqTableTask task;
    task.ct = m.codebooks_transposed().data();
    task.k = L.k;
    task.dim = L.dim;
    task.vectors_per_group = L.columns_per_group / L.dim;
    task.columns_per_group = L.columns_per_group;
    task.bands = L.bands();
    task.batch = x.cols();
    task.x = x.data();
    task.ldx = x.rows();
    return task;
}

inline void run_vq_tables(const VqGemvMatrix& m, const VqTableTask& task, Isa isa, bool parallel) {
    run_chunks(m.layout().codebook_count(), 4, parallel, [&](Index c0, Index c1) {
        VqTableTask t = task;
        t.cb_begin = c0;
        t.cb_end = c1;
        vq_tables(isa, t);
    });
}

/// A per-thread buffer for the lookup tables of one call, kept from call to call: allocating a
/// few MiB afresh costs page faults and zeroing on every call (2D K16 at B = 8 on 4096 x 4096,
/// 16 MiB of tables: 1.3-1.4 ms with the buffer kept, 1.4-2.0 ms without). A buffer past 64 MiB (lut forced on huge tables) is given back at the end of the
/// call; kernels::release_table_buffer() gives back the calling thread's buffer.
class TableScratch {
public:
    explicit TableScratch(std::size_t bytes) : buffer_(storage()) {
        // Whole 64-byte blocks and one more: vector loads past the end of a table row stay
        // inside. (Plain operator new: a 64-byte-aligned buffer measured up to 2x slower for
        // 2D K16 at B = 8 in the decode benchmark, placed elsewhere by the allocator.)
        const std::size_t blocks = (bytes + 63) / 64 + 1;
        if (buffer_.size() < blocks) {
            buffer_.clear();  // nothing to copy
            buffer_.resize(blocks);
        }
    }
    TableScratch(const TableScratch&) = delete;
    TableScratch& operator=(const TableScratch&) = delete;
    ~TableScratch() {
        if (buffer_.size() * 64 > kept_bytes) release();
    }
    template <class T>
    T* data() {
        return reinterpret_cast<T*>(buffer_.data());
    }
    /// Frees the calling thread's buffer.
    static void release() {
        std::vector<Block>& b = storage();
        b.clear();
        b.shrink_to_fit();
    }
    /// Bytes of the calling thread's buffer.
    static std::size_t held_bytes() { return storage().size() * 64; }

    static constexpr std::size_t kept_bytes = std::size_t{64} << 20;

private:
    struct Block {
        float values[16];
    };
    static std::vector<Block>& storage() {
        thread_local std::vector<Block> buffer;
        return buffer;
    }
    std::vector<Block>& buffer_;
};

/// Floats of the lut's tables for a batch of B, padded with 32: register lookups read whole
/// 16- or 32-entry rows (whole slices of 32 entries) when K is smaller.
inline std::size_t vq_table_bytes(const VqGemvMatrix& m, Index batch) {
    return (static_cast<std::size_t>(m.lut_floats(batch)) + 32) * sizeof(float);
}

/// Bytes of the lut's tables as byte planes (VqTileTask::planes) for a batch of B.
inline std::size_t vq_plane_table_bytes(const VqGemvMatrix& m, Index batch) {
    const VqLayout& L = m.layout();
    return static_cast<std::size_t>(L.codebook_count() * (L.columns_per_group / L.dim) * batch *
                                    4 * m.plane_k());
}

/// Builds the tables into `table` (vq_table_bytes()).
inline void build_vq_tables(const VqGemvMatrix& m, const MatrixXf& x, Isa isa, bool parallel,
                            float* table) {
    VqTableTask task = vq_table_task(m, x);
    task.table = table;
    run_vq_tables(m, task, isa, parallel);
}

/// Builds the tables as byte planes into `planes` (vq_plane_table_bytes()), for
/// byte_plane_lookups().
inline void build_vq_plane_tables(const VqGemvMatrix& m, const MatrixXf& x, bool parallel,
                                  std::uint8_t* planes) {
    VqTableTask task = vq_table_task(m, x);
    task.planes = planes;
    task.plane_k = m.plane_k();
    run_vq_tables(m, task, Isa::avx512, parallel);
}

}  // namespace detail

/// Frees the lookup-table buffer that the GPTVQ lut keeps in the calling thread between calls
/// (up to 64 MiB; see detail::TableScratch). The next lut call allocates it again.
inline void release_table_buffer() { detail::TableScratch::release(); }

/// y = W_hat x for a batch of 1..8 (x: cols x B, y: rows x B), reading the codes directly.
inline void gemv(const VqGemvMatrix& m, const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y,
                 const GemvOptions& options = {}) {
    detail::check_gemv_shapes("gemv (VQ)", m.rows(), m.cols(), x, y);
    const Isa isa = resolve_isa(options.isa);
    const Index B = x.cols();
    VqStrategy strategy = options.strategy == VqStrategy::automatic ? m.choose_strategy(B, isa)
                                                                    : options.strategy;
    VQLIB_CHECK(strategy != VqStrategy::lut || m.layout().k <= 256, invalid_argument,
                "gemv (VQ): the lut strategy needs k <= 256, the layer has k = ", m.layout().k);
    VQLIB_CHECK(strategy != VqStrategy::lut || m.lut_floats(B) < 2147483648.0, invalid_argument,
                "gemv (VQ): lookup tables of ", m.lut_floats(B),
                " floats: too large (at most 2^31), use the gather strategy");
    const bool lut = strategy == VqStrategy::lut;
    const bool planes = lut && options.byte_planes && m.byte_plane_lookups(isa);
    // A column-major copy with contiguous columns (x may be any Ref).
    const MatrixXf xc = x;
    detail::TableScratch scratch(!lut     ? 0
                                 : planes ? detail::vq_plane_table_bytes(m, B)
                                          : detail::vq_table_bytes(m, B));
    if (planes)
        detail::build_vq_plane_tables(m, xc, options.parallel, scratch.data<std::uint8_t>());
    else if (lut)
        detail::build_vq_tables(m, xc, isa, options.parallel, scratch.data<float>());
    MatrixXf yc(m.rows(), B);

    const VqLayout& L = m.layout();
    detail::VqTileTask task;
    task.codes = m.codes().data();
    task.tile_bytes = m.tile_bytes();
    task.code_bits = m.code_bits();
    task.vectors = L.vectors_per_row();
    task.vectors_per_group = L.columns_per_group / L.dim;
    task.dim = L.dim;
    task.k = L.k;
    task.bands = L.bands();
    task.rows_per_codebook = L.rows_per_codebook;
    task.rows = m.rows();
    task.table = lut ? scratch.data<float>() : m.codebooks().data();
    task.codebooks_t = m.codebooks_transposed().data();
    if (planes) {
        task.planes = scratch.data<std::uint8_t>();
        task.plane_k = m.plane_k();
    }
    task.x = xc.data();
    task.ldx = xc.rows();
    if (m.scale_block() > 0) {
        task.scales = m.scales_data();
        task.vectors_per_block = m.scale_block() / L.dim;
        task.scale_blocks = (m.cols() + m.scale_block() - 1) / m.scale_block();
    }
    task.y = yc.data();
    task.ldy = yc.rows();
    // 8 tiles (128 rows) per chunk; 32 with byte planes (whole 64-row quads, and each table row
    // loaded once for 8 quads). A row's result does not depend on the chunks.
    detail::run_chunks(m.tiles(), planes ? 32 : 8, options.parallel, [&](Index t0, Index t1) {
        detail::VqTileTask t = task;
        t.tile_begin = t0;
        t.tile_end = t1;
        detail::with_batch(B, [&](auto b) { detail::vq_tiles<decltype(b)::value>(isa, lut, t); });
    });
    y = yc;
}

inline MatrixXf gemv(const VqGemvMatrix& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    MatrixXf y(m.rows(), x.cols());
    gemv(m, x, y, options);
    return y;
}

/// y = W_hat x for any batch: the fused GEMV up to max_gemv_batch columns, above it (prefill)
/// dequantize-then-GEMM (Eigen), parallel over column blocks of x.
inline MatrixXf matmul(const VqGemvMatrix& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    detail::check_matmul_shapes("matmul (VQ)", m.cols(), x);
    if (x.cols() >= 1 && x.cols() <= max_gemv_batch) return gemv(m, x, options);
    return detail::dense_matmul(dequantize(m), x, options.parallel);
}

}  // namespace vqlib::kernels
