#pragma once
// SVD-factored 1-D codebooks for a GPTVQ layer (GPTVQ App. G, `--svd-rank`, docs/gptvq.md).
//
// factor_codebooks_svd(layer, options) replaces the layer's N_G codebooks of K scalars by a rank-r
// factorization (codebook/svd_codebook.hpp): each codebook sorted ascending (its indices remapped,
// so the layer decodes as before up to the truncation), C ~ U'' V' with r = int(K * rho), V' kept
// in the layer (`VqLayer::basis`, rounded to options.factor_storage) and `codebooks` set to
// U'' V'. The codebook update then works on U'' alone (vq_codebook_update.hpp), and
// SvdFactoredStorage is the requantization that keeps the layer factored: U''_g recovered from
// codebook g by least squares in the basis (exact when the codebook lies in its row space), its r
// entries stored as integers with a scale (options.u_quantization, as the reference) or as floats
// at factor_storage, and the codebooks rebuilt as U''_g V'.
//
// The layer's bit count then counts U'' (count x r entries and their scales) and V' (r x K at
// basis_bits) in place of the count x K entries.
#include <vqlib/codebook/integer_codebook.hpp>
#include <vqlib/codebook/svd_codebook.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <Eigen/Cholesky>

#include <cstdint>

namespace vqlib {

/// Requantizes a factored layer's codebooks (see the header comment); a CodebookStorage-like
/// policy for update_codebooks' `requantize`.
struct SvdFactoredStorage {
    SvdCodebookOptions options{};

    void operator()(VqLayer& layer) const {
        const Index k = layer.layout.k;
        const Index count = layer.layout.codebook_count();
        const Index r = layer.codebook_rank();
        VQLIB_CHECK(r >= 1 && layer.basis.cols() == k && layer.layout.dim == 1, invalid_argument,
                    "the layer's basis is ", layer.basis.rows(), "x", layer.basis.cols(),
                    ": expected the r x K basis of a factored 1-D layer (factor_codebooks_svd)");
        const MatrixXd B = layer.basis.cast<double>();
        const Eigen::LLT<MatrixXd> gram(B * B.transpose());
        MatrixXf u(count * r, 1);  // row g of U'' as codebook g of r entries
        for (Index g = 0; g < count; ++g) {
            const VectorXd c = layer.codebook(g).col(0).cast<double>();
            const VectorXd coefficients = gram.solve(B * c);
            for (Index t = 0; t < r; ++t) u(g * r + t, 0) = static_cast<float>(coefficients[t]);
        }
        if (options.u_quantization) {
            IntegerCodebookStorage{*options.u_quantization}.quantize(u, r);
        } else {
            u = u.unaryExpr([&](float x) { return detail::round_value(x, options.factor_storage); });
        }
        for (Index g = 0; g < count; ++g)
            layer.codebook(g).col(0) =
                (u.middleRows(g * r, r).col(0).transpose() * layer.basis).transpose();
    }

    int entry_bits() const {
        return options.u_quantization ? options.u_quantization->bits : scale_bits(options.factor_storage);
    }
    int scale_bits_per_codebook() const {
        return options.u_quantization ? IntegerCodebookStorage{*options.u_quantization}.scale_bits() : 0;
    }
    Index scales_for(Index count) const {
        return options.u_quantization ? IntegerCodebookStorage{*options.u_quantization}.scales_for(count) : 0;
    }
};

/// Factors the 1-D codebooks of `layer` (see the header comment) and stores them as
/// SvdFactoredStorage{options} does. Throws invalid_argument for a layer with D > 1 or an
/// options.rank_fraction that gives no rank.
inline void factor_codebooks_svd(VqLayer& layer, const SvdCodebookOptions& options) {
    const VqLayout& L = layer.layout;
    VQLIB_CHECK(L.dim == 1, invalid_argument, "dim = ", L.dim,
                ": SVD codebook compression is for 1-D codebooks (GPTVQ App. G)");
    SvdCodebookOptions exact = options;
    exact.u_quantization.reset();
    exact.factor_storage = ScaleStorage::fp32;
    const SvdCodebooks svd = compress_codebooks_svd(layer.codebooks, L.k, exact);
    // Remap every index to its entry's sorted position.
    for (Index v = 0; v < L.vectors_per_row(); ++v) {
        const Index cg = v * L.dim / L.columns_per_group;
        for (Index r = 0; r < L.rows; ++r)
            layer.indices(r, v) = static_cast<std::uint16_t>(
                svd.sorted_index(L.codebook_of(r, cg), layer.indices(r, v)));
    }
    layer.basis = svd.v.unaryExpr([&](float x) { return detail::round_value(x, options.factor_storage); });
    layer.basis_bits = scale_bits(options.factor_storage);
    layer.codebooks = svd.codebooks();
    const SvdFactoredStorage storage{options};
    storage(layer);
    layer.codebook_bits = storage.entry_bits();
    layer.codebook_scale_bits = storage.scale_bits_per_codebook();
    layer.codebook_scale_count = storage.scales_for(L.codebook_count());
}

}  // namespace vqlib
