#pragma once
// A vector-quantized layer in GPTVQ's layout: vectors are D consecutive columns of one row; each
// column group of `columns_per_group` columns has its own codebooks, one per band of
// `rows_per_codebook` consecutive rows; a weight is codebook[index] (times an optional
// normalization scale).
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/core/bits.hpp>

#include <bit>
#include <cmath>
#include <cstdint>

namespace vqlib {

struct VqLayout {
    Index rows = 0;
    Index cols = 0;
    /// Vector dimension D (consecutive columns of one row).
    Index dim = 2;
    /// Centroids per codebook K.
    Index k = 16;
    /// Rows sharing one codebook (a codebook covers rows_per_codebook x columns_per_group).
    Index rows_per_codebook = 1;
    Index columns_per_group = 256;

    Index column_groups() const { return cols / columns_per_group; }
    Index bands() const { return rows / rows_per_codebook; }
    Index codebook_count() const { return column_groups() * bands(); }
    Index vectors_per_row() const { return cols / dim; }
    /// Index of the codebook used by row r in column group cg.
    Index codebook_of(Index r, Index cg) const { return cg * bands() + r / rows_per_codebook; }
    /// Index bits per vector (ceil(log2 K)).
    int index_bits() const {
        return static_cast<int>(std::bit_width(static_cast<std::uint64_t>(k - 1)));
    }
};

struct VqLayer {
    VqLayout layout;
    /// All codebooks stacked: codebook c occupies rows [c*K, (c+1)*K), one centroid per row.
    MatrixXf codebooks;
    /// indices(r, v): centroid of the v-th vector (columns [v*D, (v+1)*D)) of row r.
    CodeMatrix indices;
    /// Optional blockwise normalization: weight = centroid * scales(r, col / scale_block).
    MatrixXf scales;
    Index scale_block = 0;
    /// Stored widths: codebook entries, the scales of integer codebooks (how many, how wide),
    /// and the normalization scales' codes.
    int codebook_bits = 16;
    int codebook_scale_bits = 0;
    Index codebook_scale_count = 0;
    int normalization_bits = 4;
    /// SVD-factored codebooks (GPTVQ App. G, 1-D): with a basis V' (r x K, r >= 1), codebook g
    /// is stored as row g of U'' (r entries at codebook_bits, with the integer scales above) and
    /// is U''_g V'; `codebooks` holds those products. Empty: every entry is stored.
    MatrixXf basis;
    int basis_bits = 16;

    Index codebook_rank() const { return basis.rows(); }

    Index rows() const { return layout.rows; }
    Index cols() const { return layout.cols; }

    auto codebook(Index c) const { return codebooks.middleRows(c * layout.k, layout.k); }
    auto codebook(Index c) { return codebooks.middleRows(c * layout.k, layout.k); }

    MatrixXf dequantize() const {
        MatrixXf W(rows(), cols());
        const Index D = layout.dim;
        parallel_for_ranges(layout.vectors_per_row(), 64, [&](Index v0, Index v1) {
            for (Index v = v0; v < v1; ++v) {
                const Index cg = v * D / layout.columns_per_group;
                for (Index r = 0; r < rows(); ++r) {
                    const Index row = layout.codebook_of(r, cg) * layout.k + indices(r, v);
                    for (Index j = 0; j < D; ++j) {
                        const Index col = v * D + j;
                        float w = codebooks(row, j);
                        if (scale_block > 0) w *= scales(r, col / scale_block);
                        W(r, col) = w;
                    }
                }
            }
        });
        return W;
    }

    /// Indices at ceil(log2 K) bits per vector; codebooks at codebook_bits per entry (16 when
    /// stored as fp16; SVD-factored: U'' and V' as above) plus codebook_scale_count scales of codebook_scale_bits (integer
    /// codebooks); normalization codes at normalization_bits per (row, block) plus a 16-bit
    /// offset and step per block column. The paper's bpv counts only indices and codebook
    /// entries.
    BitsBreakdown bits() const {
        BitsBreakdown b;
        b.weights = rows() * cols();
        b.codes = static_cast<double>(rows() * layout.vectors_per_row()) * layout.index_bits();
        if (codebook_rank() > 0) {
            b.codebooks = static_cast<double>(layout.codebook_count() * codebook_rank()) * codebook_bits +
                          static_cast<double>(basis.size()) * basis_bits;
        } else {
            b.codebooks = static_cast<double>(codebooks.size()) * codebook_bits;
        }
        b.parameters += static_cast<double>(codebook_scale_count) * codebook_scale_bits;
        if (scale_block > 0) {
            b.parameters += static_cast<double>(scales.size()) * normalization_bits;
            b.parameters += 2.0 * 16.0 * static_cast<double>(scales.cols());
        }
        return b;
    }
    double bits_per_weight() const { return bits().per_weight(); }
};

}  // namespace vqlib
