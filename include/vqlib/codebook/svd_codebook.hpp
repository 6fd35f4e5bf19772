#pragma once
// SVD compression of 1-D codebooks (GPTVQ App. G, docs/gptvq.md).
//
// The N_G codebooks of K scalar centroids are stacked as an N_G x K matrix C, each row sorted
// ascending, and factored by a truncated SVD of rank r = int(K * rho):
//
//   C = U S Vh,   U'' = (U S)[:, :r]  (N_G x r),   V' = Vh[:r]  (r x K),   C ~ U'' V'
//
// so codebook g becomes row g of U'' times the shared basis V'. Sorting makes the rows alike (all
// increasing), which is what lets a low rank fit them; a caller holding assignments into the
// unsorted codebooks remaps each through sorted_index(g, a). Optionally U'' (only U'', as the
// reference) is integer-quantized with the integer codebook quantizer (integer_codebook.hpp),
// each row of U'' being one "codebook" of r entries.
//
// The paper found this worse than INT8 codebooks at equal overhead (Table 18); it is here for
// completeness and ablations. The SVD runs in double precision (the reference: fp32
// torch.linalg.svd); the factors are returned as floats.
#include <vqlib/codebook/codebook_set.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/codebook/integer_codebook.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/core/scale_storage.hpp>

#include <Eigen/SVD>

#include <algorithm>
#include <numeric>
#include <optional>
#include <vector>

namespace vqlib {

struct SvdCodebookOptions {
    /// rho in (0, 1]: the rank kept is r = int(K * rho) (truncation, as Python's int()), which
    /// must be >= 1; it is further capped at the number of codebooks (the SVD has no more).
    double rank_fraction = 0.5;
    /// Integer quantization of U'' (the reference: the --codebook-bitwidth quantizer, INT8 per
    /// codebook in the scripts). Empty: U'' stays float, stored at factor_storage.
    std::optional<IntegerCodebookOptions> u_quantization{};
    /// With scope `shared`: how many consecutive rows of U'' share one scale. The reference
    /// quantizes U'' one column group (of G codebooks) at a time: pass G. 0: all rows share one.
    Index rows_per_shared_scale = 0;
    /// Storage of the float factors: V' always, U'' when not integer-quantized. They are rounded
    /// to it before reconstruction (fp32, the default, keeps them as computed).
    ScaleStorage factor_storage = ScaleStorage::fp32;
};

/// Truncated-SVD codebooks: codebook g (sorted ascending) ~ u.row(g) * v.
struct SvdCodebooks {
    Index count = 0;  // codebooks N_G
    Index k = 0;      // entries per codebook K
    Index rank = 0;   // r = min(int(K * rho), N_G)
    /// U'' = (U S)[:, :r], count x rank; the integer-quantized values when u_integer is set.
    MatrixXf u;
    /// V' = Vh[:r], rank x k.
    MatrixXf v;
    /// The integer form of U'': a stack of `count` codebooks of `rank` entries of dimension 1
    /// (entry t of codebook g is u(g, t)).
    std::optional<IntegerCodebooks> u_integer;
    ScaleStorage factor_storage = ScaleStorage::fp32;
    /// order[g*k + j]: the original index of the entry at sorted position j of codebook g.
    std::vector<Index> order;
    /// position[g*k + i]: the sorted position of original entry i of codebook g (the inverse of
    /// order, the reference's `argsort(argsort)`).
    std::vector<Index> position;

    /// Original entry index of sorted position j in codebook g.
    Index original_index(Index g, Index j) const {
        return order[static_cast<std::size_t>(g * k + j)];
    }
    /// Sorted position of original entry i in codebook g: remaps an assignment made against the
    /// unsorted codebook.
    Index sorted_index(Index g, Index i) const {
        return position[static_cast<std::size_t>(g * k + i)];
    }

    /// The reconstructed codebooks U'' V', stacked (count*k) x 1 (codebook_set.hpp), each in
    /// sorted order.
    MatrixXf codebooks() const {
        const MatrixXf product = u * v;  // count x k
        MatrixXf stacked(count * k, 1);
        for (Index g = 0; g < count; ++g)
            for (Index j = 0; j < k; ++j) stacked(g * k + j, 0) = product(g, j);
        return stacked;
    }

    /// Bits of U'': its integer codes and scales, or count * rank floats at factor_storage.
    double u_bits() const {
        return u_integer ? u_integer->total_bits()
                         : static_cast<double>(u.size()) * scale_bits(factor_storage);
    }
    /// Bits of V': rank * k floats at factor_storage (16 or 32; the paper does not count them).
    double v_bits() const { return static_cast<double>(v.size()) * scale_bits(factor_storage); }
    double total_bits() const { return u_bits() + v_bits(); }
};

/// Compresses a stack of 1-D codebooks ((count*k) x 1, codebook_set.hpp). Throws invalid_argument
/// for rho outside (0, 1] or int(K * rho) < 1 (and for invalid integer options), shape_error for a
/// stack that is not count*k x 1, numerical_error for NaN/Inf entries.
template <class Derived>
SvdCodebooks compress_codebooks_svd(const Eigen::MatrixBase<Derived>& codebooks, Index k,
                                    const SvdCodebookOptions& options = {}) {
    const Index count = codebook_count("codebooks", codebooks, k);
    VQLIB_CHECK(codebooks.cols() == 1, shape_error, "codebooks is ", codebooks.rows(), "x",
                codebooks.cols(), ": SVD compression is for 1-D codebooks, expected one column");
    check_finite("codebooks", codebooks);
    const double rho = options.rank_fraction;
    VQLIB_CHECK(rho > 0.0 && rho <= 1.0, invalid_argument, "rank_fraction = ", rho,
                ": expected a value in (0, 1]");
    const auto requested = static_cast<Index>(static_cast<double>(k) * rho);
    VQLIB_CHECK(requested >= 1, invalid_argument, "rank_fraction = ", rho, " with k = ", k,
                " gives rank int(k * rank_fraction) = ", requested, ": expected at least 1");

    SvdCodebooks out;
    out.count = count;
    out.k = k;
    out.rank = std::min(requested, count);
    out.factor_storage = options.factor_storage;
    out.order.resize(static_cast<std::size_t>(count * k));
    out.position.resize(out.order.size());

    // Sort each codebook ascending (stable: tied entries keep their order).
    MatrixXd C(count, k);
    std::vector<Index> perm(static_cast<std::size_t>(k));
    for (Index g = 0; g < count; ++g) {
        std::iota(perm.begin(), perm.end(), Index{0});
        std::stable_sort(perm.begin(), perm.end(), [&](Index a, Index b) {
            return codebooks(g * k + a, 0) < codebooks(g * k + b, 0);
        });
        for (Index j = 0; j < k; ++j) {
            const Index original = perm[static_cast<std::size_t>(j)];
            out.order[static_cast<std::size_t>(g * k + j)] = original;
            out.position[static_cast<std::size_t>(g * k + original)] = j;
            C(g, j) = static_cast<double>(codebooks(g * k + original, 0));
        }
    }

    // K is small (a 1-D codebook has 2^bits entries), so the column-pivoting QR that JacobiSVD
    // starts with reduces C to K x K, and Jacobi is then both cheap and the most accurate.
    const Eigen::JacobiSVD<MatrixXd> svd(C, Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Index r = out.rank;
    const MatrixXd us = svd.matrixU().leftCols(r) * svd.singularValues().head(r).asDiagonal();
    out.u = us.cast<float>();
    out.v = svd.matrixV().leftCols(r).transpose().cast<float>();
    out.v = out.v.unaryExpr(
        [&](float x) { return detail::round_value(x, options.factor_storage); });

    if (options.u_quantization) {
        const IntegerCodebookOptions& q = *options.u_quantization;
        Index per_scale = 1;
        if (q.scope == CodebookScaleScope::shared) {
            per_scale = options.rows_per_shared_scale == 0 ? count : options.rows_per_shared_scale;
            VQLIB_CHECK(per_scale >= 1 && count % per_scale == 0, invalid_argument,
                        "rows_per_shared_scale = ", options.rows_per_shared_scale,
                        ": expected 0 or a positive divisor of the number of codebooks (", count,
                        ")");
        }
        MatrixXf stacked(count * r, 1);  // row g of U'' as codebook g of r entries
        for (Index g = 0; g < count; ++g)
            for (Index t = 0; t < r; ++t) stacked(g * r + t, 0) = out.u(g, t);
        out.u_integer = detail::quantize_codebooks_grouped(stacked, r, q.bits, per_scale,
                                                           q.scale_storage);
        const MatrixXf values = out.u_integer->dequantize();
        for (Index g = 0; g < count; ++g)
            for (Index t = 0; t < r; ++t) out.u(g, t) = values(g * r + t, 0);
    } else {
        out.u = out.u.unaryExpr(
            [&](float x) { return detail::round_value(x, options.factor_storage); });
    }
    return out;
}

}  // namespace vqlib
