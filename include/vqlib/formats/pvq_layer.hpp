#pragma once
// A PVQ-quantized layer: shape-gain coding of D-dimensional groups along each row.
//
// In the quantized domain (after the optional incoherence rotation and act-order permutation),
// group g of row r is
//     q = row_norm[r] * gains.levels[gain_code] * y / ||y||_2,
// with y in P(D, K) = {y in Z^D : ||y||_1 = K} stored as its index in the Opus/CELT enumeration.
// dequantize() undoes the permutation and the rotation.
#include <vqlib/core/bits.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/lattice.hpp>
#include <vqlib/formats/gain_codebook.hpp>
#include <vqlib/transform.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vqlib {

/// How the shape indices are stored (and counted).
enum class PvqIndexPacking {
    /// ceil(log2 V(D, K)) bits per group: random access to every group.
    fixed_width,
    /// Mixed radix over chunks of groups (lattice/packing.hpp): close to log2 V(D, K) per group.
    mixed_radix,
};

/// The maps between a PVQ layer's quantized domain and the original one: the act-order
/// permutation and the incoherence rotation. Both are orthogonal, so each direction is the
/// other's adjoint (a gradient in the original domain reaches the quantized one by to_quantized).
struct PvqDomain {
    Index rows = 0;
    Index cols = 0;
    /// Quantized-domain column k holds original (rotated) column perm[k]; empty: the identity.
    Permutation perm;
    std::optional<transform::IncoherenceOptions> incoherence;

    /// Quantized domain -> original: the permutation undone, then the rotation.
    void restore(MatrixXf& Q) const {
        if (!perm.empty()) {
            MatrixXf out(rows, cols);
            for (Index k = 0; k < cols; ++k) out.col(perm[static_cast<std::size_t>(k)]) = Q.col(k);
            Q = std::move(out);
        }
        if (incoherence) transform::IncoherenceTransform(rows, cols, *incoherence).restore_weights(Q);
    }
    /// Original domain -> quantized (the inverse and adjoint of restore).
    void to_quantized(MatrixXf& G) const {
        if (incoherence) transform::IncoherenceTransform(rows, cols, *incoherence).transform_weights(G);
        if (!perm.empty()) {
            MatrixXf out(rows, cols);
            for (Index k = 0; k < cols; ++k) out.col(k) = G.col(perm[static_cast<std::size_t>(k)]);
            G = std::move(out);
        }
    }
};

template <lattice::PvqIndex Idx>
struct PvqLayer {
    Index rows = 0;
    Index cols = 0;
    Index dim = 0;
    int pulses = 0;
    /// Shape index of group g of row r at [r * groups() + g], groups in quantized-domain order.
    std::vector<Idx> indices;
    /// Gain code of group g of row r at [r * groups() + g].
    std::vector<std::uint16_t> gain_codes;
    GainCodebook gains;
    /// One norm per row (rounded to norm_storage), the unit of the relative gains.
    std::vector<float> row_norms;
    ScaleStorage norm_storage = ScaleStorage::fp16;
    /// Act-order: quantized-domain column k holds original (rotated) column perm[k]; empty when
    /// the identity.
    Permutation perm;
    /// The incoherence rotation applied before quantization, if any (undone by dequantize).
    std::optional<transform::IncoherenceOptions> incoherence;
    PvqIndexPacking packing = PvqIndexPacking::fixed_width;
    /// Groups per chunk for mixed-radix packing.
    Index groups_per_chunk = 8;

    Index groups() const { return dim > 0 ? cols / dim : 0; }

    /// The shape codec of this layer.
    lattice::PvqCodec<Idx> codec() const { return lattice::PvqCodec<Idx>(static_cast<int>(dim), pulses); }

    /// The quantized weights in the quantized domain (rotated, permuted), rows x cols.
    MatrixXf dequantize_rotated() const {
        check_consistent();
        const auto pvq = codec();
        const Index G = groups();
        MatrixXf Q(rows, cols);
        parallel_for_ranges(rows, 16, [&](Index r0, Index r1) {
            std::vector<std::int32_t> y(static_cast<std::size_t>(dim));
            for (Index r = r0; r < r1; ++r) {
                for (Index g = 0; g < G; ++g) {
                    const auto at = static_cast<std::size_t>(r * G + g);
                    pvq.decode(indices[at], y);
                    double yy = 0;
                    for (auto v : y) yy += double(v) * double(v);
                    const double s = double(row_norms[static_cast<std::size_t>(r)]) *
                                     double(gains.levels[gain_codes[at]]) / std::sqrt(yy);
                    for (Index j = 0; j < dim; ++j)
                        Q(r, g * dim + j) = static_cast<float>(s * y[static_cast<std::size_t>(j)]);
                }
            }
        });
        return Q;
    }

    /// The quantized weights in the original domain, rows x cols.
    MatrixXf dequantize() const {
        MatrixXf Q = dequantize_rotated();
        domain().restore(Q);
        return Q;
    }

    /// The maps between the quantized domain and the original one.
    PvqDomain domain() const { return {rows, cols, perm, incoherence}; }

    /// The shape indices of every group, row after row, as stored: fixed-width or mixed-radix.
    std::vector<std::uint8_t> packed_indices() const {
        return lattice::pack_indices<Idx>(std::span<const Idx>(indices), index_layout());
    }

    lattice::PackedIndexLayout index_layout() const {
        const auto pvq = codec();
        return packing == PvqIndexPacking::fixed_width
                   ? lattice::PackedIndexLayout::fixed_width(pvq.size())
                   : lattice::PackedIndexLayout::chunked(pvq.size(), static_cast<int>(groups_per_chunk));
    }

    /// Exact storage: shape indices (as packed) and gain codes under `codes`; row norms, the
    /// gain codebook's parameters and the rotation seed under `parameters`; the act-order
    /// permutation (int32 per column) under `indices`.
    BitsBreakdown bits() const {
        BitsBreakdown b;
        b.weights = rows * cols;
        const auto layout = index_layout();
        const double groups_total = static_cast<double>(rows * groups());
        b.codes = static_cast<double>(layout.total_bits(static_cast<std::size_t>(rows * groups()))) +
                  groups_total * gains.bits;
        b.parameters = static_cast<double>(rows) * scale_bits(norm_storage) +
                       static_cast<double>(gains.parameter_bits) + (incoherence ? 64.0 : 0.0);
        b.indices = perm.empty() ? 0.0 : 32.0 * static_cast<double>(cols);
        return b;
    }

    void check_consistent() const {
        const auto n = static_cast<std::size_t>(rows * groups());
        VQLIB_CHECK(dim > 0 && cols % dim == 0, shape_error, "PVQ layer: dim = ", dim,
                    " does not divide cols = ", cols);
        VQLIB_CHECK(indices.size() == n && gain_codes.size() == n, shape_error,
                    "PVQ layer: ", indices.size(), " indices and ", gain_codes.size(),
                    " gain codes for ", n, " groups");
        VQLIB_CHECK(row_norms.size() == static_cast<std::size_t>(rows), shape_error,
                    "PVQ layer: ", row_norms.size(), " row norms for ", rows, " rows");
        VQLIB_CHECK(perm.empty() || perm.size() == static_cast<std::size_t>(cols), shape_error,
                    "PVQ layer: permutation of length ", perm.size(), " for ", cols, " columns");
        for (auto c : gain_codes)
            VQLIB_CHECK(c < gains.levels.size(), invalid_argument, "PVQ layer: gain code ", c,
                        " out of range for ", gains.levels.size(), " levels");
    }
};

}  // namespace vqlib
