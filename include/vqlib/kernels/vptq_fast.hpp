#pragma once
// VPTQ decode (v = 8), fast mode: int8 codebooks, int8 activations (kernels/int8_activations.hpp)
// and integer dot products.
//
// Format. The main and residual codebooks of each group are stored as int8 with one fp32 scale
// per codebook (s = max|c| / 127, q = round(c / s): 8 bytes per centroid, against VPTQ's 16 as
// fp16), so each centroid value moves by at most s / 2; codes as uint16 in pairs of row blocks
// (kernels/fast_kernels.hpp, VptqFastTask). The outlier columns keep their fp32 codebook and are
// added in fp32 (as the exact kernel does), and so are the normalization's bias term; the
// permutation and normalization scale are applied to x before it is quantized (x'_p =
// x[perm[p]] * scale[perm[p]], VPTQ's stored column order).
//
// GEMV (AVX-512 with VNNI, BW and VBMI): per 16 rows x 4 columns, 8 centroid loads of 8 bytes
// and one byte permute give each row's 4 int8 weights, one vpdpbusd multiplies them with 4
// activations; per 32-column block the exact integer sums (main, residual) are scaled once. The
// error against the fp32 product of dequantize(m), in stored order, is at most sum_blk (d_blk / 2)
// sum_{c in blk} |W'(r, c)| (W' the stored weights before normalization, d of x') plus fp32
// rounding. The same bits from the portable variant and any thread count.
//
// Needs v = 8 and groups of a multiple of 32 columns (or one group); supported() says whether a
// layer qualifies.
#include <vqlib/core/checks.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/fast_gemv.hpp>
#include <vqlib/kernels/fast_kernels.hpp>
#include <vqlib/kernels/int8_activations.hpp>
#include <vqlib/kernels/vptq_gemv.hpp>
#include <vqlib/formats/vptq_layer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace vqlib::kernels {

class VptqFastMatrix {
public:
    VptqFastMatrix() = default;

    /// Empty when the layer fits this format, else why not (the field and its value).
    static std::string unsupported_reason(const VptqLayout& L) {
        using ::vqlib::detail::concat;
        if (L.vector_len != 8) return concat("vector_len = ", L.vector_len, ": the fast VPTQ format needs 8");
        if (L.num_centroids > 65536 || L.num_res_centroids > 65536)
            return concat("num_centroids = ", L.num_centroids, ", num_res_centroids = ", L.num_res_centroids,
                          ": the fast VPTQ format needs at most 65536");
        if (L.group_num > 1 && L.group_size % Int8Activations::block != 0)
            return concat("group_size = ", L.group_size,
                          ": the fast VPTQ format needs a multiple of 32 (or one group)");
        return {};
    }

    static bool supported(const VptqLayer& layer) { return unsupported_reason(layer.layout).empty(); }

    /// Re-lays out a VptqLayer. Throws as VptqLayer::check_consistent() for an inconsistent
    /// layer, invalid_argument naming the field for one outside this format.
    static VptqFastMatrix from_layer(const VptqLayer& layer) {
        detail::check_vptq_values(layer, "VptqFastMatrix");
        const VptqLayout& L = layer.layout;
        const std::string why = unsupported_reason(L);
        VQLIB_CHECK(why.empty(), invalid_argument, "VptqFastMatrix: ", why);
        VptqFastMatrix m;
        m.layout_ = L;
        m.bits_ = layer.bits();
        const Index main = L.group_num * L.group_size;
        m.blocks_ = (main + Int8Activations::block - 1) / Int8Activations::block;
        m.blocks_per_group_ = L.group_num == 1 ? m.blocks_ : L.group_size / Int8Activations::block;
        m.pairs_ = (L.row_blocks() + 1) / 2;
        m.pair_stride_ = 2 * m.blocks_ * Int8Activations::block;
        m.codes_.assign(static_cast<std::size_t>(m.pairs_ * m.pair_stride_), 0);
        if (L.has_residual()) m.res_codes_.assign(m.codes_.size(), 0);
        for (Index rb = 0; rb < L.row_blocks(); ++rb)
            for (Index g = 0; g < L.group_num; ++g)
                for (Index c = 0; c < L.group_size; ++c) {
                    const std::size_t src = static_cast<std::size_t>((g * L.row_blocks() + rb) * L.group_size + c);
                    const std::size_t at = m.code_at(rb, g * L.group_size + c);
                    m.codes_[at] = static_cast<std::uint16_t>(layer.indices[src]);
                    if (L.has_residual()) m.res_codes_[at] = static_cast<std::uint16_t>(layer.res_indices[src]);
                }
        quantize_codebooks(layer.centroids, L.num_centroids, L.group_num, m.tables_, m.scales_);
        if (L.has_residual())
            quantize_codebooks(layer.res_centroids, L.num_res_centroids, L.group_num, m.res_tables_, m.res_scales_);
        if (L.has_outliers()) {
            m.outlier_centroids_ = layer.outlier_centroids;
            m.outlier_indices_ = layer.outlier_indices;
        }
        m.perm_ = detail::vptq_perm(layer);
        if (L.enable_norm) {
            m.scale_ = layer.weight_scale;
            m.bias_ = layer.weight_bias;
        }
        return m;
    }

    Index rows() const { return layout_.out_features; }
    Index cols() const { return layout_.in_features; }
    const VptqLayout& layout() const { return layout_; }
    /// Bits as the layer counts them (fp16 codebooks), not as this format stores them.
    BitsBreakdown layer_bits() const { return bits_; }
    /// Bytes the GEMV reads: uint16 codes (padded), int8 codebooks and their scales, the outlier
    /// part, the permutation and fp32 scale and bias.
    std::size_t stream_bytes() const {
        return 2 * (codes_.size() + res_codes_.size()) + tables_.size() + res_tables_.size() +
               4 * (scales_.size() + res_scales_.size()) + 4 * static_cast<std::size_t>(outlier_centroids_.size()) +
               2 * outlier_indices_.size() + 4 * perm_.size() + 4 * static_cast<std::size_t>(scale_.size() + bias_.size());
    }

    /// Value row t of (main) centroid i of group g as the fast GEMV uses it.
    float centroid(Index g, Index i, Index t) const {
        return scales_[static_cast<std::size_t>(g)] *
               static_cast<float>(static_cast<int>(tables_[static_cast<std::size_t>(8 * (L().num_centroids * g + i) + t)]) - 128);
    }
    float res_centroid(Index g, Index i, Index t) const {
        return res_scales_[static_cast<std::size_t>(g)] *
               static_cast<float>(static_cast<int>(res_tables_[static_cast<std::size_t>(8 * (L().num_res_centroids * g + i) + t)]) - 128);
    }

    /// The stored (permuted, unnormalized) weights the fast GEMV multiplies with.
    MatrixXf dequantize_stored() const {
        const VptqLayout& L = layout_;
        const Index M = L.out_features;
        MatrixXf Ws = MatrixXf::Zero(M, L.in_features);
        for (Index p = 0; p < L.outlier_size; ++p) {
            const Index v0 = L.outlier_vector_len;
            for (Index r = 0; r < L.outlier_row_blocks(); ++r) {
                const Index i = outlier_indices_[static_cast<std::size_t>(r * L.outlier_size + p)];
                for (Index t = 0; t < v0 && r * v0 + t < M; ++t) Ws(r * v0 + t, p) = outlier_centroids_(i, t);
            }
        }
        for (Index c = 0; c < L.group_num * L.group_size; ++c) {
            const Index g = c / L.group_size;
            for (Index rb = 0; rb < L.row_blocks(); ++rb) {
                const std::size_t at = code_at(rb, c);
                for (Index t = 0; t < 8 && rb * 8 + t < M; ++t) {
                    float w = centroid(g, codes_[at], t);
                    if (L.has_residual()) w += res_centroid(g, res_codes_[at], t);
                    Ws(rb * 8 + t, L.outlier_size + c) = w;
                }
            }
        }
        return Ws;
    }

    /// y = W x (1 <= batch <= 8): x' = permuted, scaled x; its main columns quantized to int8.
    void gemv(const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y, const GemvOptions& options = {}) const {
        detail::check_gemv_shapes("gemv (VPTQ fast)", rows(), cols(), x, y);
        const VptqLayout& L = layout_;
        const Index B = x.cols(), N = cols(), M = rows();
        const MatrixXf xs = detail::vptq_stored_input(*this, x);
        thread_local Int8Activations a;
        a.assign(xs.bottomRows(N - L.outlier_size));
        const detail::FastIsa isa = detail::resolve_fast_isa(options.isa, false);
        detail::VptqFastTask task;
        task.codes = codes_.data();
        task.res_codes = res_codes_.empty() ? nullptr : res_codes_.data();
        task.pair_stride = pair_stride_;
        task.tables = tables_.data();
        task.res_tables = res_tables_.empty() ? nullptr : res_tables_.data();
        task.k = L.num_centroids;
        task.kr = L.num_res_centroids;
        task.scales = scales_.data();
        task.res_scales = res_scales_.empty() ? nullptr : res_scales_.data();
        task.blocks_per_group = blocks_per_group_;
        task.x = detail::fast_activations(a);
        task.rows = M;
        task.y = y.data();
        task.ldy = y.outerStride();
        detail::run_chunks(pairs_, 4, options.parallel, [&](Index p0, Index p1) {
            detail::VptqFastTask t = task;
            t.pair_begin = p0;
            t.pair_end = p1;
            detail::with_batch(B, [&](auto b) { detail::vptq_fast_tiles<decltype(b)::value>(isa, t); });
        });
        // Outlier columns and the bias term in fp32, in column order (as the exact kernel).
        if (L.has_outliers()) {
            const Index v0 = L.outlier_vector_len;
            for (Index b = 0; b < B; ++b)
                for (Index ob = 0; ob < L.outlier_row_blocks(); ++ob)
                    for (Index t = 0; t < v0 && ob * v0 + t < M; ++t) {
                        float s = 0.0f;
                        for (Index p = 0; p < L.outlier_size; ++p)
                            s += outlier_centroids_(outlier_indices_[static_cast<std::size_t>(ob * L.outlier_size + p)], t) * xs(p, b);
                        y(ob * v0 + t, b) += s;
                    }
        }
        if (L.enable_norm)
            for (Index b = 0; b < B; ++b) y.col(b).array() += detail::vptq_bias_term(*this, x, b);
    }

    /// Stored column p holds original column perm()[p] (empty: not permuted).
    const std::vector<std::int32_t>& perm() const { return perm_; }
    const VectorXf& weight_scale() const { return scale_; }
    const VectorXf& weight_bias() const { return bias_; }

private:
    const VptqLayout& L() const { return layout_; }

    std::size_t code_at(Index rb, Index c) const {
        return static_cast<std::size_t>((rb / 2) * pair_stride_ + (c / 4) * 8 + (rb % 2) * 4 + c % 4);
    }

    static void quantize_codebooks(const MatrixXf& books, Index k, Index groups, std::vector<std::uint8_t>& tables,
                                   std::vector<float>& scales) {
        tables.assign(static_cast<std::size_t>(8 * k * groups), 128);
        detail::quantize_int8_codebooks(books, k, groups, tables, scales, [k](Index g, Index i, Index t) {
            return static_cast<std::size_t>(8 * (g * k + i) + t);
        });
    }

    VptqLayout layout_;
    BitsBreakdown bits_;
    Index blocks_ = 0;
    Index blocks_per_group_ = 0;
    Index pairs_ = 0;
    Index pair_stride_ = 0;
    std::vector<std::uint16_t> codes_;
    std::vector<std::uint16_t> res_codes_;
    std::vector<std::uint8_t> tables_;
    std::vector<std::uint8_t> res_tables_;
    std::vector<float> scales_;
    std::vector<float> res_scales_;
    MatrixXf outlier_centroids_;
    std::vector<std::uint32_t> outlier_indices_;
    std::vector<std::int32_t> perm_;
    VectorXf scale_;
    VectorXf bias_;
};

/// The stored weights in the original column order, normalized: the weights the fast GEMV
/// multiplies with, within s / 2 of VptqLayer::dequantize() per codebook value (times the scale).
inline MatrixXf dequantize(const VptqFastMatrix& m) { return detail::vptq_original_order(m, m.dequantize_stored()); }

}  // namespace vqlib::kernels
