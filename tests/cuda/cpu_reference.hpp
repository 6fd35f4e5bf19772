#pragma once
// The CPU backend's results for the CUDA tests, from a host-only translation unit
// (cpu_reference.cpp, compiled by the C++ compiler): nvcc 13 cannot compile
// vqlib/backend/cpu.hpp (its front end mistranslates a pack expansion of
// cluster/assignment_kernels.hpp), so the .cu tests reach CpuBackend through these functions.
#include <vqlib/backend/backend.hpp>
#include <vqlib/core/types.hpp>

#include <cstdint>
#include <span>

namespace vqlib::test_cuda {

/// CpuBackend::nearest_centroid.
void cpu_nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                          std::span<const float> weights, std::span<std::int32_t> out);
/// CpuBackend::dequantize.
void cpu_dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out);
/// CpuBackend::subtract_product.
void cpu_subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b);

}  // namespace vqlib::test_cuda
