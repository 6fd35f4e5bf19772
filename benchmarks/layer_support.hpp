#pragma once
// Shared by the whole-layer benchmarks (gptvq.cpp, vptq.cpp): a seeded random layer and the
// in-process baseline, an Eigen SGEMM of the layer's size; and by the decode benchmarks
// (decode.cpp, decode_peers.cpp): quantized layers with random codes and codebooks.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

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

/// A GPTVQ layer with random codes and normal codebooks (decode speed does not depend on the
/// values): D, K, a codebook per rpc rows x 256 columns.
inline VqLayer random_gptvq_layer(Index rows, Index cols, Index d, Index k, Index rpc, std::uint64_t seed) {
    Rng rng(seed);
    VqLayer layer;
    layer.layout = {rows, cols, d, k, rpc, 256};
    layer.codebooks = random_matrix(layer.layout.codebook_count() * k, d, seed + 1, false);
    layer.indices.resize(rows, cols / d);
    for (Index v = 0; v < cols / d; ++v)
        for (Index r = 0; r < rows; ++r)
            layer.indices(r, v) = static_cast<std::uint16_t>(rng.next() % static_cast<std::uint64_t>(k));
    return layer;
}

/// A VPTQ layer, one group, vectors of v, k centroids with fp16 values (as VPTQ stores them).
inline VptqLayer random_vptq_layer(Index rows, Index cols, Index v, Index k, std::uint64_t seed) {
    Rng rng(seed);
    VptqLayer layer;
    auto& L = layer.layout;
    L.out_features = rows;
    L.in_features = cols;
    L.vector_len = v;
    L.num_centroids = k;
    L.group_num = 1;
    L.group_size = cols;
    layer.centroids = random_matrix(k, v, seed + 1, false).cast<Eigen::half>().cast<float>();
    layer.indices.resize(static_cast<std::size_t>(L.row_blocks() * cols));
    for (auto& i : layer.indices) i = static_cast<std::uint32_t>(rng.next() % static_cast<std::uint64_t>(k));
    return layer;
}

}  // namespace vqlib::bench
