#pragma once
// Test support for the decode kernels and the decode trait: random quantized layers of any shape
// (GPTVQ, VPTQ, 4-bit INT), the instruction-set variants this CPU runs, and the summation-error
// ratio the kernels are checked with.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/formats/scalar_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace vqlib::test {

/// Normal entries times `scale`, drawn column by column from `rng`.
inline MatrixXf random_matrix(Index rows, Index cols, Rng& rng, double scale = 1.0) {
    MatrixXf m(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<float>(scale * rng.normal());
    return m;
}

/// Values that fp16 represents (VPTQ stores codebooks, scales and biases as fp16), rounded after
/// scaling (a scaled fp16 value may fall among the subnormals and lose bits).
inline MatrixXf fp16_matrix(Index rows, Index cols, Rng& rng, double scale = 1.0) {
    return random_matrix(rows, cols, rng, scale).cast<Eigen::half>().cast<float>();
}

inline std::uint32_t random_below(Rng& rng, Index n) {
    return static_cast<std::uint32_t>(rng.below(static_cast<std::uint64_t>(n)));
}

/// A GPTVQ layer: random codebooks and codes; normalization scales when scale_block > 0.
inline VqLayer random_vq_layer(Index rows, Index cols, Index d, Index k, Index rows_per_codebook,
                               Index columns_per_group, Index scale_block, std::uint64_t seed) {
    Rng rng(seed);
    VqLayer layer;
    layer.layout.rows = rows;
    layer.layout.cols = cols;
    layer.layout.dim = d;
    layer.layout.k = k;
    layer.layout.rows_per_codebook = rows_per_codebook;
    layer.layout.columns_per_group = columns_per_group;
    layer.codebooks = random_matrix(layer.layout.codebook_count() * k, d, rng);
    layer.indices.resize(rows, cols / d);
    for (Index v = 0; v < cols / d; ++v)
        for (Index r = 0; r < rows; ++r)
            layer.indices(r, v) = static_cast<std::uint16_t>(random_below(rng, k));
    if (scale_block > 0) {
        layer.scale_block = scale_block;
        layer.scales = random_matrix(rows, (cols + scale_block - 1) / scale_block, rng).cwiseAbs();
    }
    return layer;
}

/// The shape of a random VPTQ layer: m x n, vectors of v rows, k centroids (+ kr residual ones)
/// per group, `outliers` outlier columns with (v0, k0), perm and normalization.
struct VptqSpec {
    Index m = 37, n = 53, v = 8, k = 16, kr = 0;
    Index outliers = 0, v0 = 2, k0 = 5;
    Index groups = 1;
    bool norm = false, perm = false;
    bool fp16 = true;  // codebooks of fp16 values (as VPTQ stores them); false: any floats
};

inline VptqLayer random_vptq_layer(const VptqSpec& s, std::uint64_t seed) {
    Rng rng(seed);
    VptqLayer layer;
    VptqLayout& L = layer.layout;
    L.out_features = s.m;
    L.in_features = s.n;
    L.vector_len = s.v;
    L.num_centroids = s.k;
    L.num_res_centroids = s.kr;
    L.outlier_size = s.outliers;
    L.outlier_vector_len = s.outliers > 0 ? s.v0 : 0;
    L.outlier_centroids = s.outliers > 0 ? s.k0 : 0;
    L.group_num = s.groups;
    L.group_size = (s.n - s.outliers) / s.groups;
    L.enable_norm = s.norm;
    L.enable_perm = s.perm;
    L.validate();
    const Index R = L.row_blocks();
    layer.centroids = s.fp16 ? fp16_matrix(s.groups * s.k, s.v, rng)
                             : random_matrix(s.groups * s.k, s.v, rng);
    const auto count = static_cast<std::size_t>(s.groups * R * L.group_size);
    for (std::size_t i = 0; i < count; ++i) layer.indices.push_back(random_below(rng, s.k));
    if (s.kr > 0) {
        layer.res_centroids = s.fp16 ? fp16_matrix(s.groups * s.kr, s.v, rng, 0.25)
                                     : random_matrix(s.groups * s.kr, s.v, rng, 0.25);
        for (std::size_t i = 0; i < count; ++i) layer.res_indices.push_back(random_below(rng, s.kr));
    }
    if (s.outliers > 0) {
        layer.outlier_centroids = fp16_matrix(s.k0, s.v0, rng, 4.0);
        for (Index i = 0; i < L.outlier_row_blocks() * s.outliers; ++i)
            layer.outlier_indices.push_back(random_below(rng, s.k0));
    }
    if (s.perm) {
        layer.perm.resize(static_cast<std::size_t>(s.n));
        std::iota(layer.perm.begin(), layer.perm.end(), Index{0});
        for (Index i = s.n - 1; i > 0; --i)
            std::swap(layer.perm[static_cast<std::size_t>(i)], layer.perm[random_below(rng, i + 1)]);
    }
    if (s.norm) {
        layer.weight_scale = fp16_matrix(s.n, 1, rng).cwiseAbs();
        layer.weight_bias = fp16_matrix(s.n, 1, rng, 0.1);
    }
    layer.check_consistent();
    return layer;
}

/// A 4-bit integer layer with contiguous groups, fp16 scales and (asymmetric) integer zeros.
inline ScalarLayer<IntGrid> random_int4_layer(Index rows, Index cols, Index group_size,
                                              bool symmetric, std::uint64_t seed) {
    Rng rng(seed);
    ScalarLayer<IntGrid> layer{IntGrid(4, symmetric, {}, ScaleStorage::fp16), group_size, {}, {}, {}};
    layer.codes.resize(rows, cols);
    for (Index c = 0; c < cols; ++c)
        for (Index r = 0; r < rows; ++r) layer.codes(r, c) = static_cast<std::uint16_t>(rng.below(16));
    const Index gs = group_size > 0 ? group_size : cols;
    const Index groups = (cols + gs - 1) / gs;
    for (Index g = 0; g < groups * rows; ++g) {
        GridParams p;
        p.scale = static_cast<float>(Eigen::half(0.01 + rng.uniform()));
        p.zero = symmetric ? 8.0f : static_cast<float>(rng.below(16));
        layer.params.push_back(p);
    }
    for (Index c = 0; c < cols; ++c) layer.g_idx.push_back(static_cast<std::int32_t>(c / gs));
    return layer;
}

/// The instruction-set variants this CPU runs, portable first.
inline std::vector<kernels::Isa> isas() {
    std::vector<kernels::Isa> out{kernels::Isa::portable};
    if (kernels::isa_supported(kernels::Isa::avx2)) out.push_back(kernels::Isa::avx2);
    if (kernels::isa_supported(kernels::Isa::avx512)) out.push_back(kernels::Isa::avx512);
    return out;
}

/// max over entries of |y - ref| / (2 terms u abs_ref), u = 2^-24: at most 1 when y and ref sum
/// the same products (abs_ref = their magnitudes, terms = how many per entry, plus the kernel's
/// extra operations) in two orders.
inline double summation_error_ratio(const MatrixXf& y, const MatrixXf& ref, const MatrixXf& abs_ref,
                                    Index terms) {
    const double u = std::ldexp(1.0, -24);
    double worst = 0.0;
    for (Index b = 0; b < y.cols(); ++b)
        for (Index r = 0; r < y.rows(); ++r) {
            const double bound = 2.0 * static_cast<double>(terms) * u * abs_ref(r, b) + 1e-30;
            worst = std::max(worst, std::abs(double(y(r, b)) - double(ref(r, b))) / bound);
        }
    return worst;
}

}  // namespace vqlib::test
