#pragma once
// Interop between Eigen matrices and xtensor expressions, so that callers holding xtensor data
// can use vqlib without copies, and NPY files can be loaded straight into xtensor.
//
//   as_xtensor(m)         2-D xtensor view of an Eigen matrix, block, map or Ref (no copy):
//                         view(i, j) is m(i, j), and writes through a non-const view reach m.
//   as_eigen(t)           Eigen::Map over an xt::xtensor<T, 2> (no copy): a row-major map for
//                         xtensor's default row-major layout.
//   to_matrix(e)          copies any 2-D xtensor expression into a MatrixXf.
//   load_npy_xtensor(p)   loads an NPY file with load_npy_matrix's checks, into xtensor's layout.
//
// Views borrow memory: they must not outlive what they view. Temporaries that own their data
// (a MatrixXf or xt::xtensor returned by value) are refused at compile time.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/io/npy.hpp>

#include <xtensor/xadapt.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xtensor.hpp>

#include <array>
#include <cstddef>
#include <utility>
#include <filesystem>
#include <type_traits>

namespace vqlib {
namespace detail {

/// An Eigen expression with a data pointer and strides: a matrix, vector, map, block or Ref.
template <class M>
concept eigen_direct_access = std::is_base_of_v<Eigen::DenseBase<M>, M> &&
                              (static_cast<unsigned>(M::Flags) & Eigen::DirectAccessBit) != 0;

template <xt::layout_type L>
constexpr int eigen_storage_order() {
    static_assert(L == xt::layout_type::row_major || L == xt::layout_type::column_major,
                  "vqlib: as_eigen needs an xtensor with a static row-major or column-major "
                  "layout");
    return L == xt::layout_type::row_major ? Eigen::RowMajor : Eigen::ColMajor;
}

template <class T, xt::layout_type L>
using eigen_matrix_for =
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, eigen_storage_order<L>()>;

}  // namespace detail

/// A 2-D xtensor view of an Eigen matrix, block, map or Ref, without copying: view(i, j) is
/// m(i, j) for any storage order and strides. The view is writable when `m` is (a non-const
/// matrix, block or map) and read-only otherwise. It borrows m's memory, so m must outlive it.
///
/// The view is an xt::xstrided_view over the memory m spans, not an xt::adapt adaptor: an
/// adaptor has container semantics, so `adaptor = expression` would replace its strides with
/// row-major ones and copy the data linearly, scrambling a column-major m. A strided view keeps
/// its strides, so `view = expression` and `view *= 2` write m(i, j) as expected.
template <class M>
    requires detail::eigen_direct_access<std::remove_cvref_t<M>>
auto as_xtensor(M&& m) {
    using plain = std::remove_cvref_t<M>;
    static_assert(std::is_lvalue_reference_v<M> ||
                      !std::is_base_of_v<Eigen::PlainObjectBase<plain>, plain>,
                  "vqlib: as_xtensor of a temporary matrix would dangle; pass a named matrix");
    std::array<std::size_t, 2> shape{static_cast<std::size_t>(m.rows()),
                                     static_cast<std::size_t>(m.cols())};
    std::array<std::ptrdiff_t, 2> strides{static_cast<std::ptrdiff_t>(m.rowStride()),
                                          static_cast<std::ptrdiff_t>(m.colStride())};
    // The memory from m(0, 0) to m(rows - 1, cols - 1), gaps between columns included.
    const std::size_t span =
        m.size() == 0 ? 0
                      : static_cast<std::size_t>((m.rows() - 1) * strides[0] +
                                                 (m.cols() - 1) * strides[1] + 1);
    // xtensor gives a dimension of extent 1 the stride 0, and compares strides to choose its
    // assignment loops; follow its convention.
    for (std::size_t k = 0; k < 2; ++k)
        if (shape[k] == 1) strides[k] = 0;
    auto memory = xt::adapt(m.data(), span, xt::no_ownership(), std::array<std::size_t, 1>{span});
    // Shape and strides go in as rvalues, so that the view holds them by value.
    return xt::strided_view(std::move(memory), std::move(shape), std::move(strides), 0,
                            xt::layout_type::dynamic);
}

/// An Eigen::Map over an xt::xtensor<T, 2>, without copying: Map<RowMajorMatrixXf> for the
/// default xt::xtensor<float, 2>. The tensor must outlive the map.
template <class T, xt::layout_type L>
Eigen::Map<detail::eigen_matrix_for<T, L>> as_eigen(xt::xtensor<T, 2, L>& t) {
    return {t.data(), static_cast<Index>(t.shape(0)), static_cast<Index>(t.shape(1))};
}

template <class T, xt::layout_type L>
Eigen::Map<const detail::eigen_matrix_for<T, L>> as_eigen(const xt::xtensor<T, 2, L>& t) {
    return {t.data(), static_cast<Index>(t.shape(0)), static_cast<Index>(t.shape(1))};
}

/// A map over a temporary tensor would dangle.
template <class T, xt::layout_type L>
void as_eigen(xt::xtensor<T, 2, L>&& t) = delete;

/// Copies a 2-D xtensor expression (container, view or lazy expression of any arithmetic type)
/// into a MatrixXf. Throws shape_error when the expression is not 2-D.
template <class E>
MatrixXf to_matrix(const xt::xexpression<E>& expression) {
    const E& e = expression.derived_cast();
    VQLIB_CHECK(e.dimension() == 2, shape_error, "to_matrix: the expression is ", e.dimension(),
                "-D: expected 2-D");
    const auto rows = static_cast<Index>(e.shape()[0]);
    const auto cols = static_cast<Index>(e.shape()[1]);
    MatrixXf m(rows, cols);
    // Assigning through a view of m lets xtensor evaluate the expression in its own order.
    as_xtensor(m) = e;
    return m;
}

/// Loads an NPY file with the checks and conventions of load_npy_matrix (a 1-D array becomes
/// n x 1) into a row-major xt::xtensor<float, 2>, reading straight into the tensor's storage.
inline xt::xtensor<float, 2> load_npy_xtensor(const std::filesystem::path& path) {
    detail::npy_reader reader(path);
    const auto& header = reader.header();
    xt::xtensor<float, 2> t(std::array<std::size_t, 2>{static_cast<std::size_t>(header.rows),
                                                       static_cast<std::size_t>(header.cols)});
    reader.read_into(as_eigen(t));
    return t;
}

}  // namespace vqlib
