// Host-only: the CpuBackend and CpuDecodeBackend calls the CUDA tests compare with (see
// cpu_reference.hpp).
#include "cpu_reference.hpp"

#include <vqlib/backend/cpu.hpp>
#include <vqlib/backend/cpu_decode.hpp>

namespace vqlib::test_cuda {

void cpu_nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                          std::span<const float> weights, std::span<std::int32_t> out) {
    CpuAssignment{}.nearest_centroid(
        points, centroids, weights.empty() ? Weights{} : Weights::per_coordinate(weights), out);
}

void cpu_dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out) {
    CpuBackend::dequantize(layer, column_begin, out);
}

void cpu_subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b) {
    CpuBackend::subtract_product(c, a, b);
}

MatrixXf cpu_decode_dequantize(const VqLayer& layer) {
    return CpuDecodeBackend::dequantize(CpuDecodeBackend::prepare(layer));
}

MatrixXf cpu_decode_dequantize(const VptqLayer& layer) {
    return CpuDecodeBackend::dequantize(CpuDecodeBackend::prepare(layer));
}

MatrixXf cpu_decode_matmul(const VqLayer& layer, ConstMatrixRef x) {
    return decode_matmul<CpuDecodeBackend>(layer, x);
}

MatrixXf cpu_decode_matmul(const VptqLayer& layer, ConstMatrixRef x) {
    return decode_matmul<CpuDecodeBackend>(layer, x);
}

}  // namespace vqlib::test_cuda
