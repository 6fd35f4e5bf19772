#pragma once
// Shared by the whole-layer benchmarks (gptvq.cpp, vptq.cpp): a seeded random layer and the
// in-process baseline, an Eigen SGEMM of the layer's size.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <benchmark/benchmark.h>

namespace vqlib::bench {

/// Normal entries; with `channels`, row i scaled by 1 + i % 5 (inputs with uneven channels).
inline MatrixXf random_matrix(Index r, Index c, std::uint64_t seed, bool channels) {
    Rng rng(seed);
    MatrixXf m(r, c);
    for (Index j = 0; j < c; ++j)
        for (Index i = 0; i < r; ++i)
            m(i, j) = static_cast<float>(rng.normal() * (channels ? 1.0 + i % 5 : 1.0));
    return m;
}

/// An n x n x n SGEMM, parallel over column blocks as vqlib's loops are.
inline void gemm_of_layer_size(benchmark::State& state, Index n) {
    const MatrixXf a = random_matrix(n, n, 1, false);
    const MatrixXf b = random_matrix(n, n, 2, false);
    MatrixXf c(n, n);
    for (auto _ : state) {
        parallel_for_ranges(n, 256, [&](Index j0, Index j1) {
            c.middleCols(j0, j1 - j0).noalias() = a * b.middleCols(j0, j1 - j0);
        });
        benchmark::DoNotOptimize(c.data());
    }
}

}  // namespace vqlib::bench
