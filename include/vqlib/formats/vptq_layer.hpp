#pragma once
// A VPTQ-quantized layer, in the layout of VPTQ's checkpoints (docs/vptq.md).
//
// Columns are in "stored" order: stored column p holds original input column perm[p]. The first
// `outlier_size` stored columns are the outlier columns (their own codebook of v0-dimensional
// vectors); the rest form `group_num` contiguous groups of `group_size` columns, each with its own
// codebook of v-dimensional vectors and, optionally, a residual codebook. A vector is v
// consecutive output rows of one column (rows are padded to a multiple of v):
//     W_stored[r*v : r*v+v, outlier_size + g*group_size + c] =
//         centroids[g][indices(g, r, c)] + res_centroids[g][res_indices(g, r, c)]
// then W[:, perm[p]] = W_stored[:, p] and, with normalization, W[:, n] = W[:, n]*scale[n] + bias[n].
#include <vqlib/core/bits.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <bit>
#include <cstdint>
#include <vector>

namespace vqlib {

struct VptqLayout {
    Index out_features = 0;  ///< M (rows)
    Index in_features = 0;   ///< N (columns)
    Index vector_len = 8;    ///< v
    Index num_centroids = 256;      ///< k
    Index num_res_centroids = 0;    ///< k_res; 0 without a residual codebook
    Index outlier_vector_len = 0;   ///< v0
    Index outlier_centroids = 0;    ///< k0
    Index outlier_size = 0;         ///< outlier columns (0: none)
    Index group_num = 1;
    Index group_size = 0;           ///< (N - outlier_size) / group_num
    bool enable_norm = false;
    bool enable_perm = false;

    bool has_residual() const { return num_res_centroids > 0; }
    bool has_outliers() const { return outlier_size > 0; }
    /// Row blocks of v rows: ceil(M / v).
    Index row_blocks() const { return (out_features + vector_len - 1) / vector_len; }
    Index outlier_row_blocks() const {
        return has_outliers() ? (out_features + outlier_vector_len - 1) / outlier_vector_len : 0;
    }
    /// Index bits b = ceil(log2 k) and residual bits b_r (0 without a residual).
    int index_bits() const { return bits_for(num_centroids); }
    int res_index_bits() const { return has_residual() ? bits_for(num_res_centroids) : 0; }
    int outlier_index_bits() const { return has_outliers() ? bits_for(outlier_centroids) : 0; }
    /// 32-bit words per packed row of group_size merged codes of b + b_r bits.
    Index packed_words_per_row() const {
        const Index bits = group_size * (index_bits() + res_index_bits());
        return (bits + 31) / 32;
    }

    static int bits_for(Index k) {
        return k <= 1 ? 0 : static_cast<int>(std::bit_width(static_cast<std::uint64_t>(k - 1)));
    }

    /// Checks the invariants; throws invalid_argument / shape_error naming the field.
    void validate() const {
        VQLIB_CHECK(out_features > 0 && in_features > 0, shape_error, "VPTQ layout: ",
                    out_features, "x", in_features, ": expected a non-empty layer");
        VQLIB_CHECK_RANGE("vector_len", vector_len, Index{1}, Index{64});
        VQLIB_CHECK_RANGE("num_centroids", num_centroids, Index{2}, Index{1} << 24);
        VQLIB_CHECK(num_res_centroids == 0 || (num_res_centroids >= 2 &&
                                               num_res_centroids <= (Index{1} << 24)),
                    invalid_argument, "num_res_centroids = ", num_res_centroids,
                    ": expected 0 (no residual) or 2..2^24");
        VQLIB_CHECK(index_bits() + res_index_bits() <= 32, invalid_argument,
                    "num_centroids = ", num_centroids, " and num_res_centroids = ",
                    num_res_centroids, " need ", index_bits() + res_index_bits(),
                    " bits per merged code: at most 32 fit VPTQ's packing");
        VQLIB_CHECK(group_num >= 1, invalid_argument, "group_num = ", group_num, ": expected >= 1");
        VQLIB_CHECK(outlier_size >= 0 && outlier_size < in_features, invalid_argument,
                    "outlier_size = ", outlier_size, ": expected 0..", in_features - 1);
        if (has_outliers()) {
            VQLIB_CHECK_RANGE("outlier_vector_len", outlier_vector_len, Index{1}, Index{64});
            VQLIB_CHECK_RANGE("outlier_centroids", outlier_centroids, Index{2}, Index{65536});
        }
        VQLIB_CHECK(group_size * group_num + outlier_size == in_features, shape_error,
                    "VPTQ layout: group_num = ", group_num, " x group_size = ", group_size,
                    " + outlier_size = ", outlier_size, " != in_features = ", in_features);
    }
};

struct VptqLayer {
    VptqLayout layout;
    /// Main codebooks stacked: group g's centroid i is row g*k + i (v columns), fp16 values.
    MatrixXf centroids;
    /// Residual codebooks stacked the same way (g*k_res + j); empty without a residual.
    MatrixXf res_centroids;
    /// The outlier codebook, k0 x v0; empty without outliers.
    MatrixXf outlier_centroids;
    /// indices[(g*R + r)*group_size + c]: main index of row block r, column c of group g.
    std::vector<std::uint32_t> indices;
    std::vector<std::uint32_t> res_indices;
    /// outlier_indices[r0*outlier_size + c]: outlier row block r0 (v0 rows), column c.
    std::vector<std::uint32_t> outlier_indices;
    /// Stored column p holds original column perm[p]; empty when not permuted.
    Permutation perm;
    /// Per original input column (enable_norm): W = W_normalized * scale + bias, fp16 values.
    VectorXf weight_scale;
    VectorXf weight_bias;

    Index rows() const { return layout.out_features; }
    Index cols() const { return layout.in_features; }

    /// The layer in stored (permuted, normalized) column order, M x N.
    MatrixXf dequantize_stored() const {
        check_consistent();
        const VptqLayout& L = layout;
        const Index M = L.out_features, v = L.vector_len, R = L.row_blocks();
        const Index k = L.num_centroids, kr = L.num_res_centroids;
        MatrixXf Ws(M, L.in_features);
        parallel_for_ranges(L.in_features, 64, [&](Index p0, Index p1) {
            for (Index p = p0; p < p1; ++p) {
                if (p < L.outlier_size) {
                    const Index v0 = L.outlier_vector_len;
                    for (Index r = 0; r < L.outlier_row_blocks(); ++r) {
                        const auto i = outlier_indices[static_cast<std::size_t>(r * L.outlier_size + p)];
                        for (Index t = 0; t < v0 && r * v0 + t < M; ++t)
                            Ws(r * v0 + t, p) = outlier_centroids(i, t);
                    }
                    continue;
                }
                const Index g = (p - L.outlier_size) / L.group_size;
                const Index c = (p - L.outlier_size) % L.group_size;
                for (Index r = 0; r < R; ++r) {
                    const auto at = static_cast<std::size_t>((g * R + r) * L.group_size + c);
                    const Index i = g * k + indices[at];
                    for (Index t = 0; t < v && r * v + t < M; ++t) {
                        float value = centroids(i, t);
                        if (kr > 0) value += res_centroids(g * kr + res_indices[at], t);
                        Ws(r * v + t, p) = value;
                    }
                }
            }
        });
        return Ws;
    }

    /// The dequantized layer in the original column order, M x N.
    MatrixXf dequantize() const {
        MatrixXf Ws = dequantize_stored();
        MatrixXf W(Ws.rows(), Ws.cols());
        if (perm.empty()) {
            W = std::move(Ws);
        } else {
            for (Index p = 0; p < W.cols(); ++p) W.col(perm[static_cast<std::size_t>(p)]) = Ws.col(p);
        }
        if (layout.enable_norm) {
            for (Index n = 0; n < W.cols(); ++n)
                W.col(n) = (W.col(n).array() * weight_scale[n] + weight_bias[n]).matrix();
        }
        return W;
    }

    /// Exact storage as VPTQ's checkpoint holds it: packed merged codes (each row of a group
    /// padded to 32-bit words) and int16 outlier indices under `codes`; fp16 codebooks under
    /// `codebooks`; fp16 scale and bias per input column under `parameters`; the uint16
    /// permutation under `indices`.
    BitsBreakdown bits() const {
        const VptqLayout& L = layout;
        BitsBreakdown b;
        b.weights = L.out_features * L.in_features;
        b.codes = 32.0 * double(L.group_num * L.row_blocks() * L.packed_words_per_row()) +
                  16.0 * double(L.outlier_row_blocks() * L.outlier_size);
        b.codebooks = 16.0 * double(L.group_num * (L.num_centroids + L.num_res_centroids) *
                                        L.vector_len +
                                    (L.has_outliers() ? L.outlier_centroids * L.outlier_vector_len : 0));
        b.parameters = L.enable_norm ? 32.0 * double(L.in_features) : 0.0;
        b.indices = L.enable_perm ? 16.0 * double(L.in_features) : 0.0;
        return b;
    }
    double bits_per_weight() const { return bits().per_weight(); }

    void check_consistent() const {
        const VptqLayout& L = layout;
        L.validate();
        const Index R = L.row_blocks();
        const auto n = static_cast<std::size_t>(L.group_num * R * L.group_size);
        VQLIB_CHECK(centroids.rows() == L.group_num * L.num_centroids && centroids.cols() == L.vector_len,
                    shape_error, "VPTQ layer: centroids are ", centroids.rows(), "x",
                    centroids.cols(), ": expected ", L.group_num * L.num_centroids, "x", L.vector_len);
        VQLIB_CHECK(indices.size() == n, shape_error, "VPTQ layer: ", indices.size(),
                    " indices: expected ", n);
        for (auto i : indices)
            VQLIB_CHECK(Index(i) < L.num_centroids, invalid_argument, "VPTQ layer: index ", i,
                        " out of range for ", L.num_centroids, " centroids");
        if (L.has_residual()) {
            VQLIB_CHECK(res_centroids.rows() == L.group_num * L.num_res_centroids &&
                            res_centroids.cols() == L.vector_len,
                        shape_error, "VPTQ layer: residual centroids are ", res_centroids.rows(),
                        "x", res_centroids.cols());
            VQLIB_CHECK(res_indices.size() == n, shape_error, "VPTQ layer: ", res_indices.size(),
                        " residual indices: expected ", n);
            for (auto i : res_indices)
                VQLIB_CHECK(Index(i) < L.num_res_centroids, invalid_argument,
                            "VPTQ layer: residual index ", i, " out of range for ",
                            L.num_res_centroids, " centroids");
        }
        if (L.has_outliers()) {
            VQLIB_CHECK(outlier_centroids.rows() == L.outlier_centroids &&
                            outlier_centroids.cols() == L.outlier_vector_len,
                        shape_error, "VPTQ layer: outlier centroids are ", outlier_centroids.rows(),
                        "x", outlier_centroids.cols());
            VQLIB_CHECK(outlier_indices.size() ==
                            static_cast<std::size_t>(L.outlier_row_blocks() * L.outlier_size),
                        shape_error, "VPTQ layer: ", outlier_indices.size(), " outlier indices");
            for (auto i : outlier_indices)
                VQLIB_CHECK(Index(i) < L.outlier_centroids, invalid_argument,
                            "VPTQ layer: outlier index ", i, " out of range");
        }
        VQLIB_CHECK(perm.empty() || perm.size() == static_cast<std::size_t>(L.in_features),
                    shape_error, "VPTQ layer: permutation of length ", perm.size());
        if (L.enable_norm)
            VQLIB_CHECK(weight_scale.size() == L.in_features && weight_bias.size() == L.in_features,
                        shape_error, "VPTQ layer: ", weight_scale.size(), " scales and ",
                        weight_bias.size(), " biases for ", L.in_features, " columns");
    }
};

}  // namespace vqlib
