#pragma once
// Random inputs shared by the CUDA tests (host code; the .cu files and cpu_reference.cpp may both
// include it).
#include <vqlib/core/types.hpp>

#include <cstdint>
#include <random>

namespace vqlib::test_cuda {

/// Normal entries (mean 0, standard deviation `scale`), drawn column by column.
inline MatrixXf random_matrix(Index rows, Index cols, std::mt19937& rng, float scale = 1.0f) {
    std::normal_distribution<float> normal(0.0f, scale);
    MatrixXf m(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) m(i, j) = normal(rng);
    return m;
}

/// Uniform in [0, n).
inline std::uint32_t random_below(std::mt19937& rng, Index n) {
    return std::uniform_int_distribution<std::uint32_t>(0, static_cast<std::uint32_t>(n - 1))(rng);
}

}  // namespace vqlib::test_cuda
