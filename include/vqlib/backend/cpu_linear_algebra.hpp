#pragma once
// The CPU linear-algebra role: Eigen products, single-threaded on purpose (the solver
// parallelizes over fixed row chunks, which keeps every result independent of the thread count).
#include <vqlib/backend/linear_algebra.hpp>
#include <vqlib/core/types.hpp>

namespace vqlib {

struct CpuLinearAlgebra {
    static const char* name() { return "cpu"; }

    static void subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b) {
        if (a.cols() == 1) {
            c.noalias() -= a.col(0) * b.row(0);  // rank-1 update, no GEMM packing
        } else {
            c.noalias() -= a * b;
        }
    }
};

static_assert(LinearAlgebraBackend<CpuLinearAlgebra>);

}  // namespace vqlib
