#pragma once
// VPTQ layers (formats/vptq_layer.hpp) for decoding: the packed 32-bit code words of VPTQ's
// checkpoint kept as stored (formats/packed_indices.hpp: per group and row block a little-endian
// stream of T = b + b_r bit codes, code = res << b | idx), the codebooks (fp32, row-major: the
// v values of a centroid contiguous), the outlier codebook and indices, perm, scale and bias.
//
// GEMV, a gather-axpy over columns. With x' = x[perm[p]] * scale[perm[p]] computed once (in the
// stored column order) and beta = sum_n bias[n] * x[n]:
//     y[rows of block r] = outliers + sum_p x'_p * (C[idx(r, p)] + R[res(r, p)]) + beta
// Row blocks (v rows) are split into fixed chunks; each row block streams its codes once, the v
// rows in SIMD lanes (8-float vectors for v % 8 == 0 on AVX2/AVX-512, 4-float for v % 4 == 0).
#include <vqlib/core/bits.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/formats/packed_indices.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/tile_kernels.hpp>
#include <vqlib/formats/vptq_layer.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vqlib::kernels {

namespace detail {

/// What every VPTQ decode format checks first: the layer consistent
/// (VptqLayer::check_consistent()), its codebooks and normalization finite (invalid_argument
/// naming `who` and the field).
inline void check_vptq_values(const VptqLayer& layer, const std::string& who) {
    layer.check_consistent();
    const VptqLayout& L = layer.layout;
    check_finite(who + ": centroids", layer.centroids);
    if (L.has_residual()) check_finite(who + ": res_centroids", layer.res_centroids);
    if (L.has_outliers()) check_finite(who + ": outlier_centroids", layer.outlier_centroids);
    if (L.enable_norm) {
        check_finite(who + ": weight_scale", layer.weight_scale);
        check_finite(who + ": weight_bias", layer.weight_bias);
    }
}

/// The column permutation as the decode formats keep it (int32, stored order to original).
inline std::vector<std::int32_t> vptq_perm(const VptqLayer& layer) {
    return std::vector<std::int32_t>(layer.perm.begin(), layer.perm.end());
}

}  // namespace detail

class VptqGemvMatrix {
public:
    VptqGemvMatrix() = default;

    /// Packs a VptqLayer's indices (io::pack_codes) and re-lays out its codebooks. Throws as
    /// VptqLayer::check_consistent() does for an inconsistent layer.
    static VptqGemvMatrix from_layer(const VptqLayer& layer) {
        detail::check_vptq_values(layer, "VptqGemvMatrix");
        const VptqLayout& L = layer.layout;
        VptqGemvMatrix m;
        m.layout_ = L;
        io::PackedLayout packed;
        packed.groups = L.group_num;
        packed.rows = L.row_blocks();
        packed.codes_per_row = L.group_size;
        packed.index_bits = L.index_bits();
        packed.residual_bits = L.res_index_bits();
        packed.num_centroids = static_cast<std::uint64_t>(L.num_centroids);
        packed.num_res_centroids = static_cast<std::uint64_t>(L.num_res_centroids);
        m.words_ = io::pack_codes(packed, layer.indices, layer.res_indices).words;
        m.index_bits_ = packed.index_bits;
        m.total_bits_ = packed.total_bits();
        m.words_per_row_ = packed.words_per_row();
        m.centroids_ = row_major(layer.centroids);
        if (L.has_residual()) m.res_centroids_ = row_major(layer.res_centroids);
        // VPTQ stores fp16 codebooks: when every value is one, keep fp16 copies for the kernels
        // (half the bytes to gather; the widening is exact).
        const auto all_fp16 = [](const std::vector<float>& v) {
            for (float f : v)
                if (!detail::fp16_exact(f)) return false;
            return true;
        };
        if (all_fp16(m.centroids_) && all_fp16(m.res_centroids_)) {
            for (float f : m.centroids_) m.centroids_h_.push_back(float_to_half(f));
            for (float f : m.res_centroids_) m.res_centroids_h_.push_back(float_to_half(f));
        }
        if (L.has_outliers()) {
            m.outlier_centroids_ = row_major(layer.outlier_centroids);
            m.outlier_indices_.reserve(layer.outlier_indices.size());
            for (auto i : layer.outlier_indices) m.outlier_indices_.push_back(static_cast<std::uint16_t>(i));
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
    int index_bits() const { return index_bits_; }
    int total_bits() const { return total_bits_; }
    Index words_per_row() const { return words_per_row_; }
    /// The packed code words, [group][row block][words_per_row()].
    const std::vector<std::uint32_t>& words() const { return words_; }
    const std::vector<float>& centroids() const { return centroids_; }
    const std::vector<float>& res_centroids() const { return res_centroids_; }
    /// True when the codebooks are fp16 values and fp16 copies are kept for the kernels.
    bool fp16_codebooks() const { return !centroids_h_.empty(); }
    const std::vector<std::uint16_t>& centroids_fp16() const { return centroids_h_; }
    const std::vector<std::uint16_t>& res_centroids_fp16() const { return res_centroids_h_; }
    const std::vector<float>& outlier_centroids() const { return outlier_centroids_; }
    const std::vector<std::uint16_t>& outlier_indices() const { return outlier_indices_; }
    const std::vector<std::int32_t>& perm() const { return perm_; }
    const VectorXf& weight_scale() const { return scale_; }
    const VectorXf& weight_bias() const { return bias_; }

    /// The merged code of row block r, column c of group g.
    std::uint32_t code(Index g, Index r, Index c) const {
        const auto row = std::span<const std::uint32_t>(words_).subspan(
            static_cast<std::size_t>((g * layout_.row_blocks() + r) * words_per_row_),
            static_cast<std::size_t>(words_per_row_));
        return io::read_code(row, c, total_bits_);
    }

    /// As VptqLayer::bits(): the packed words and int16 outlier indices, fp16 codebooks, fp16
    /// scale and bias, uint16 permutation.
    BitsBreakdown bits() const {
        const VptqLayout& L = layout_;
        BitsBreakdown b;
        b.weights = L.out_features * L.in_features;
        b.codes = 32.0 * static_cast<double>(words_.size()) +
                  16.0 * static_cast<double>(outlier_indices_.size());
        b.codebooks = 16.0 * static_cast<double>(centroids_.size() + res_centroids_.size() +
                                                 outlier_centroids_.size());
        b.parameters = L.enable_norm ? 32.0 * static_cast<double>(L.in_features) : 0.0;
        b.indices = L.enable_perm ? 16.0 * static_cast<double>(L.in_features) : 0.0;
        return b;
    }

    /// Bytes the GEMV reads (with the widest variant this CPU runs): code words, outlier
    /// indices, codebooks once (fp16 when fp16_codebooks() and v % 8 == 0 on AVX2/AVX-512,
    /// else fp32), the permutation and fp32 scale and bias.
    std::size_t stream_bytes(Isa isa = Isa::automatic) const {
        isa = isa == Isa::automatic ? best_isa() : isa;
        const bool half = fp16_codebooks() && layout_.vector_len % 8 == 0 && isa != Isa::portable;
        return 4 * words_.size() + 2 * outlier_indices_.size() +
               (half ? 2 : 4) * (centroids_.size() + res_centroids_.size()) +
               4 * outlier_centroids_.size() +
               4 * perm_.size() + 4 * static_cast<std::size_t>(scale_.size() + bias_.size());
    }

private:
    static std::vector<float> row_major(const MatrixXf& m) {
        std::vector<float> out(static_cast<std::size_t>(m.size()));
        for (Index i = 0; i < m.rows(); ++i)
            for (Index j = 0; j < m.cols(); ++j)
                out[static_cast<std::size_t>(i * m.cols() + j)] = m(i, j);
        return out;
    }

    VptqLayout layout_;
    int index_bits_ = 0;
    int total_bits_ = 0;
    Index words_per_row_ = 0;
    std::vector<std::uint32_t> words_;
    std::vector<float> centroids_;
    std::vector<float> res_centroids_;
    std::vector<std::uint16_t> centroids_h_;
    std::vector<std::uint16_t> res_centroids_h_;
    std::vector<float> outlier_centroids_;
    std::vector<std::uint16_t> outlier_indices_;
    std::vector<std::int32_t> perm_;
    VectorXf scale_;
    VectorXf bias_;
};

/// The layer in stored (permuted, normalized) column order: VptqLayer::dequantize_stored().
inline MatrixXf dequantize_stored(const VptqGemvMatrix& m) {
    const VptqLayout& L = m.layout();
    const Index M = L.out_features, v = L.vector_len, R = L.row_blocks();
    const Index k = L.num_centroids, kr = L.num_res_centroids;
    const std::uint32_t mask = static_cast<std::uint32_t>((std::uint64_t{1} << m.index_bits()) - 1);
    MatrixXf Ws(M, L.in_features);
    parallel_for_ranges(L.in_features, 64, [&](Index p0, Index p1) {
        for (Index p = p0; p < p1; ++p) {
            if (p < L.outlier_size) {
                const Index v0 = L.outlier_vector_len;
                for (Index r = 0; r < L.outlier_row_blocks(); ++r) {
                    const Index i = m.outlier_indices()[static_cast<std::size_t>(r * L.outlier_size + p)];
                    for (Index t = 0; t < v0 && r * v0 + t < M; ++t)
                        Ws(r * v0 + t, p) = m.outlier_centroids()[static_cast<std::size_t>(i * v0 + t)];
                }
                continue;
            }
            const Index g = (p - L.outlier_size) / L.group_size;
            const Index c = (p - L.outlier_size) % L.group_size;
            for (Index r = 0; r < R; ++r) {
                const std::uint32_t code = m.code(g, r, c);
                const Index i = g * k + (code & mask);
                const Index j = g * kr + (code >> m.index_bits());
                for (Index t = 0; t < v && r * v + t < M; ++t) {
                    float value = m.centroids()[static_cast<std::size_t>(i * v + t)];
                    if (kr > 0) value += m.res_centroids()[static_cast<std::size_t>(j * v + t)];
                    Ws(r * v + t, p) = value;
                }
            }
        }
    });
    return Ws;
}

namespace detail {

/// Stored weights Ws to the original column order, normalized (W = Ws[:, perm^-1] * scale + bias),
/// for a VPTQ format M (perm(), layout().enable_norm, weight_scale(), weight_bias()).
template <class M>
MatrixXf vptq_original_order(const M& m, MatrixXf Ws) {
    MatrixXf W(Ws.rows(), Ws.cols());
    if (m.perm().empty()) {
        W = std::move(Ws);
    } else {
        for (Index p = 0; p < W.cols(); ++p) W.col(m.perm()[static_cast<std::size_t>(p)]) = Ws.col(p);
    }
    if (m.layout().enable_norm) {
        for (Index n = 0; n < W.cols(); ++n)
            W.col(n) = (W.col(n).array() * m.weight_scale()[n] + m.weight_bias()[n]).matrix();
    }
    return W;
}

/// x' = x in stored column order, times the normalization scale (VPTQ's GEMV input).
template <class M>
MatrixXf vptq_stored_input(const M& m, const ConstMatrixRef& x) {
    const Index B = x.cols(), N = x.rows();
    MatrixXf xs(N, B);
    for (Index b = 0; b < B; ++b)
        for (Index p = 0; p < N; ++p) {
            const Index n = m.perm().empty() ? p : m.perm()[static_cast<std::size_t>(p)];
            xs(p, b) = m.layout().enable_norm ? x(n, b) * m.weight_scale()[n] : x(n, b);
        }
    return xs;
}

/// beta_b = sum_n bias[n] x(n, b) in fp32, column order (0 without normalization).
template <class M>
float vptq_bias_term(const M& m, const ConstMatrixRef& x, Index b) {
    float s = 0.0f;
    if (m.layout().enable_norm)
        for (Index n = 0; n < x.rows(); ++n) s += m.weight_bias()[n] * x(n, b);
    return s;
}

}  // namespace detail

/// The dequantized layer in the original column order: bit for bit VptqLayer::dequantize().
inline MatrixXf dequantize(const VptqGemvMatrix& m) { return detail::vptq_original_order(m, dequantize_stored(m)); }

inline MatrixXh dequantize_half(const VptqGemvMatrix& m) { return dequantize(m).cast<Eigen::half>(); }

/// y = W_hat x for a batch of 1..8 (x: cols x B, y: rows x B), reading the packed words.
inline void gemv(const VptqGemvMatrix& m, const ConstMatrixRef& x, Eigen::Ref<MatrixXf> y,
                 const GemvOptions& options = {}) {
    detail::check_gemv_shapes("gemv (VPTQ)", m.rows(), m.cols(), x, y);
    const Isa isa = resolve_isa(options.isa);
    const VptqLayout& L = m.layout();
    const Index B = x.cols(), M = m.rows();
    // x' in stored order, with the normalization scale; beta = sum_n bias[n] x[n].
    const MatrixXf xs = detail::vptq_stored_input(m, x);
    std::vector<float> beta(static_cast<std::size_t>(B), 0.0f);
    for (Index b = 0; b < B; ++b) beta[static_cast<std::size_t>(b)] = detail::vptq_bias_term(m, x, b);
    MatrixXf yc(M, B);
    detail::VptqTask task;
    task.words = m.words().data();
    task.words_per_row = m.words_per_row();
    task.row_blocks = L.row_blocks();
    task.groups = L.group_num;
    task.group_size = L.group_size;
    task.index_bits = m.index_bits();
    task.total_bits = m.total_bits();
    task.centroids = m.centroids().data();
    task.k = L.num_centroids;
    task.res = L.has_residual() ? m.res_centroids().data() : nullptr;
    task.kr = L.num_res_centroids;
    if (m.fp16_codebooks()) {
        task.centroids_h = m.centroids_fp16().data();
        task.res_h = L.has_residual() ? m.res_centroids_fp16().data() : nullptr;
    }
    task.v = L.vector_len;
    task.rows = M;
    task.x = xs.data();
    task.ldx = xs.rows();
    task.outlier_size = L.outlier_size;
    task.y = yc.data();
    task.ldy = yc.rows();
    const Index v = L.vector_len;
    // Chunks of about 64 rows (whole row blocks); the boundaries depend on the layout only.
    const Index blocks_per_chunk = std::max<Index>(1, 64 / v);
    detail::run_chunks(L.row_blocks(), blocks_per_chunk, options.parallel, [&](Index r0, Index r1) {
        const Index row0 = r0 * v, row1 = std::min(M, r1 * v);
        // Outlier columns first (scalar; few columns), in column order per row.
        for (Index b = 0; b < B; ++b)
            for (Index row = row0; row < row1; ++row) yc(row, b) = 0.0f;
        if (L.has_outliers()) {
            const Index v0 = L.outlier_vector_len;
            for (Index ob = row0 / v0; ob * v0 < row1; ++ob)
                for (Index p = 0; p < L.outlier_size; ++p) {
                    const Index i = m.outlier_indices()[static_cast<std::size_t>(ob * L.outlier_size + p)];
                    const float* c = m.outlier_centroids().data() + i * v0;
                    for (Index t = 0; t < v0; ++t) {
                        const Index row = ob * v0 + t;
                        if (row < row0 || row >= row1) continue;
                        for (Index b = 0; b < B; ++b) yc(row, b) += c[t] * xs(p, b);
                    }
                }
        }
        detail::VptqTask t = task;
        t.block_begin = r0;
        t.block_end = r1;
        detail::with_batch(B, [&](auto b) { detail::vptq_blocks<decltype(b)::value>(isa, t); });
        if (L.enable_norm)
            for (Index b = 0; b < B; ++b)
                for (Index row = row0; row < row1; ++row) yc(row, b) += beta[static_cast<std::size_t>(b)];
    });
    y = yc;
}

inline MatrixXf gemv(const VptqGemvMatrix& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    MatrixXf y(m.rows(), x.cols());
    gemv(m, x, y, options);
    return y;
}

/// Any batch: the fused GEMV up to max_gemv_batch columns, dequantize-then-GEMM above.
inline MatrixXf matmul(const VptqGemvMatrix& m, const ConstMatrixRef& x, const GemvOptions& options = {}) {
    detail::check_matmul_shapes("matmul (VPTQ)", m.cols(), x);
    if (x.cols() >= 1 && x.cols() <= max_gemv_batch) return gemv(m, x, options);
    return detail::dense_matmul(dequantize(m), x, options.parallel);
}

}  // namespace vqlib::kernels
