// Host-only: the CpuBackend calls the CUDA tests compare with (see cpu_reference.hpp).
#include "cpu_reference.hpp"

#include <vqlib/backend/cpu.hpp>

namespace vqlib::test_cuda {

void cpu_nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids,
                          std::span<const float> weights, std::span<std::int32_t> out) {
    CpuBackend::nearest_centroid(points, centroids, weights, out);
}

void cpu_dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out) {
    CpuBackend::dequantize(layer, column_begin, out);
}

void cpu_subtract_product(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b) {
    CpuBackend::subtract_product(c, a, b);
}

}  // namespace vqlib::test_cuda
