#pragma once
// Argument checks shared by the components: finiteness and shapes, with messages that name the
// argument, the offending value and where it sits.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <cmath>
#include <string_view>

namespace vqlib {

/// Throws numerical_error naming the first NaN/Inf entry of `m` (row, column and value).
template <class Derived>
void check_finite(std::string_view name, const Eigen::DenseBase<Derived>& m) {
    if (m.allFinite()) return;
    for (Index j = 0; j < m.cols(); ++j)
        for (Index i = 0; i < m.rows(); ++i)
            if (!std::isfinite(static_cast<double>(m(i, j))))
                throw numerical_error(detail::concat(name, "(", i, ", ", j, ") = ", m(i, j),
                                                     ": expected finite values only"));
}

/// Throws shape_error unless `m` is `rows` x `cols`.
template <class Derived>
void check_shape(std::string_view name, const Eigen::DenseBase<Derived>& m, Index rows,
                 Index cols) {
    VQLIB_CHECK(m.rows() == rows && m.cols() == cols, shape_error, name, " is ", m.rows(), "x",
                m.cols(), ": expected ", rows, "x", cols);
}

/// Throws shape_error unless `m` is square.
template <class Derived>
void check_square(std::string_view name, const Eigen::DenseBase<Derived>& m) {
    VQLIB_CHECK(m.rows() == m.cols(), shape_error, name, " is ", m.rows(), "x", m.cols(),
                ": expected a square matrix");
}

}  // namespace vqlib
