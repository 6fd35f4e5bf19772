#pragma once
// The reference CPU backend: every role of backend/backend.hpp in one type. Algorithms include
// only the role they use (backend/cpu_linear_algebra.hpp, cpu_assignment.hpp,
// cpu_dequantize.hpp); this header is for code that wants them all.
#include <vqlib/backend/backend.hpp>
#include <vqlib/backend/cpu_assignment.hpp>
#include <vqlib/backend/cpu_dequantize.hpp>
#include <vqlib/backend/cpu_linear_algebra.hpp>

namespace vqlib {

struct CpuBackend : CpuLinearAlgebra, CpuAssignment, CpuDequantize {
    static const char* name() { return "cpu"; }
};

static_assert(Backend<CpuBackend>);

}  // namespace vqlib
