#pragma once
// Test support: seeded random matrices shared by the tests, and comparisons.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/types.hpp>

#include <cstring>

namespace vqlib::test {

/// Heavy-tailed weights: Student-t with `dof` degrees of freedom, filled column by column.
inline MatrixXf student_t_matrix(Index rows, Index cols, std::uint64_t seed, int dof) {
    Rng rng(seed);
    MatrixXf w(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) w(i, j) = static_cast<float>(rng.student_t(dof));
    return w;
}

/// Standard normal entries times `scale`, filled column by column.
inline MatrixXf normal_matrix(Index rows, Index cols, std::uint64_t seed, double scale = 1.0) {
    Rng rng(seed);
    MatrixXf m(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<float>(scale * rng.normal());
    return m;
}

/// Entries uniform in [0.1, 2.1): positive weights.
inline MatrixXf positive_matrix(Index rows, Index cols, std::uint64_t seed) {
    Rng rng(seed);
    MatrixXf m(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<float>(0.1 + 2.0 * rng.uniform());
    return m;
}

/// ||a - b|| / ||b|| in double precision, for any two Eigen expressions of the same shape.
template <class A, class B>
double relative_difference(const A& a, const B& b) {
    return (a.template cast<double>() - b.template cast<double>()).norm() /
           b.template cast<double>().norm();
}

/// True when a and b have the same shape and the same bits (two empty matrices included).
inline bool same_bits(const MatrixXf& a, const MatrixXf& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           (a.size() == 0 ||
            std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0);
}

}  // namespace vqlib::test
