#pragma once
// The backend trait, split by role. Each algorithm names only the role it uses:
//   LinearAlgebraBackend  (backend/linear_algebra.hpp)  the block solver's products
//   AssignmentBackend     (backend/assignment.hpp)      k-means E-steps and codebook lookups
//   DequantizeBackend     (backend/dequantize.hpp)      grouped scalar layers back to floats
//   DecodeBackend         (backend/decode.hpp)          quantized layers at inference time
// A type providing all of the first three (CpuBackend, CudaBackend) is a Backend.
#include <vqlib/backend/assignment.hpp>
#include <vqlib/backend/dequantize.hpp>
#include <vqlib/backend/linear_algebra.hpp>

namespace vqlib {

template <class B>
concept Backend = LinearAlgebraBackend<B> && AssignmentBackend<B> && DequantizeBackend<B>;

}  // namespace vqlib
