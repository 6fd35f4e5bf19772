#pragma once
// Test support: seeded random matrices shared by the tests.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/types.hpp>

namespace vqlib::test {

/// Heavy-tailed weights: Student-t with `dof` degrees of freedom, filled column by column.
inline MatrixXf student_t_matrix(Index rows, Index cols, std::uint64_t seed, int dof) {
    Rng rng(seed);
    MatrixXf w(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) w(i, j) = static_cast<float>(rng.student_t(dof));
    return w;
}

}  // namespace vqlib::test
