#pragma once
// The layout of a set of codebooks, shared by every component of codebook/.
//
// G codebooks of K centroids of dimension D are one (G*K) x D float matrix, "stacked": codebook g
// occupies rows [g*K, (g+1)*K), one centroid per row, column j holding coordinate j. This is the
// layout of VqLayer::codebooks, so the codebooks of a layer (or of one column group) can be passed
// as they are, or as a middleRows() block of them. K is passed alongside; G = rows / K.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <string_view>

namespace vqlib {

/// The number of codebooks G in a stacked (G*K) x D matrix. Throws invalid_argument for k < 1 and
/// shape_error unless the matrix holds at least one codebook, a whole number of them, of D >= 1.
template <class Derived>
Index codebook_count(std::string_view name, const Eigen::DenseBase<Derived>& codebooks, Index k) {
    VQLIB_CHECK(k >= 1, invalid_argument, "k = ", k, ": expected at least one centroid per codebook");
    VQLIB_CHECK(codebooks.rows() >= k && codebooks.rows() % k == 0 && codebooks.cols() >= 1,
                shape_error, name, " is ", codebooks.rows(), "x", codebooks.cols(),
                ": expected a stack of (count * k) x dim with k = ", k,
                ", at least one codebook and dim >= 1");
    return codebooks.rows() / k;
}

/// Codebook g (K x D) of a stacked matrix, as a block (read-write when `codebooks` is).
template <class Derived>
auto codebook_of(Eigen::DenseBase<Derived>& codebooks, Index k, Index g) {
    return codebooks.middleRows(g * k, k);
}

template <class Derived>
auto codebook_of(const Eigen::DenseBase<Derived>& codebooks, Index k, Index g) {
    return codebooks.middleRows(g * k, k);
}

}  // namespace vqlib
