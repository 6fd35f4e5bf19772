#pragma once
// The CPU backend's results for the CUDA tests, from a host-only translation unit
// (cpu_reference.cpp, compiled by the C++ compiler), so that the CPU kernels the CUDA results
// are compared with are the ones a C++ build runs (compiled with the C++ compiler's flags, not
// through nvcc's host pass).
#include <vqlib/backend/backend.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <cstdint>
#include <span>

namespace vqlib::test_cuda {

/// CpuAssignment::nearest_centroid (weights: per-coordinate, or empty for none).
void cpu_nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                          std::span<const float> weights, std::span<std::int32_t> out);
/// CpuBackend::dequantize.
void cpu_dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out);
/// CpuBackend::subtract_product.
void cpu_subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b);

/// CpuDecodeBackend::dequantize of the prepared layer.
MatrixXf cpu_decode_dequantize(const VqLayer& layer);
MatrixXf cpu_decode_dequantize(const VptqLayer& layer);
/// CpuDecodeBackend::matmul of the prepared layer.
MatrixXf cpu_decode_matmul(const VqLayer& layer, ConstMatrixRef x);
MatrixXf cpu_decode_matmul(const VptqLayer& layer, ConstMatrixRef x);

}  // namespace vqlib::test_cuda
