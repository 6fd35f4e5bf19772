// CudaDecodeBackend against CpuDecodeBackend (through cpu_reference.cpp): dequantize bit for bit,
// gemv (batches 1..8) and matmul (any batch) within fp32 rounding, the same bits on a repeated
// call, errors naming x. Small GPTVQ and VPTQ layers of odd sizes. Without a CUDA device the
// comparisons pass with the warning "no CUDA device: skipped"; the first test then checks that
// prepare() throws vqlib::error.
#include <catch2/catch.hpp>

#include <vqlib/backend/cuda.cuh>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include "cpu_reference.hpp"
#include "random_inputs.hpp"

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>

using namespace vqlib;

namespace {

static_assert(DecodeBackend<CudaDecodeBackend, VqLayer>);
static_assert(DecodeBackend<CudaDecodeBackend, VptqLayer>);

using test_cuda::random_below;
using test_cuda::random_matrix;

bool same_bits(const MatrixXf& a, const MatrixXf& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

/// |gpu - cpu| <= 1e-4 (|W| |x| + 1) entrywise: both are fp32 sums of W x in different orders.
bool close(const MatrixXf& gpu, const MatrixXf& cpu, const MatrixXf& w, const MatrixXf& x) {
    if (gpu.rows() != cpu.rows() || gpu.cols() != cpu.cols()) return false;
    const MatrixXf bound = 1e-4f * ((w.cwiseAbs() * x.cwiseAbs()).array() + 1.0f).matrix();
    return ((gpu - cpu).cwiseAbs().array() <= bound.array()).all();
}

/// The comparison, through the concept's operations on the CUDA side.
template <class Layer>
void compare_with_cpu(const Layer& layer, std::mt19937& rng) {
    using B = CudaDecodeBackend;
    const decode_prepared_t<B, Layer> p = B::prepare(layer);
    REQUIRE(p.rows() == layer.rows());
    REQUIRE(p.cols() == layer.cols());
    const MatrixXf w = B::dequantize(p);
    CHECK(same_bits(w, test_cuda::cpu_decode_dequantize(layer)));
    for (Index batch : {Index{1}, Index{3}, Index{8}}) {
        CAPTURE(batch);
        const MatrixXf x = random_matrix(layer.cols(), batch, rng);
        const MatrixXf y = B::gemv(p, x);
        CHECK(close(y, test_cuda::cpu_decode_matmul(layer, x), w, x));
        CHECK(same_bits(B::gemv(p, x), y));
    }
    for (Index batch : {Index{0}, Index{11}}) {
        CAPTURE(batch);
        const MatrixXf x = random_matrix(layer.cols(), batch, rng);
        CHECK(close(B::matmul(p, x), test_cuda::cpu_decode_matmul(layer, x), w, x));
    }
    CHECK_THROWS_AS(B::gemv(p, MatrixXf::Zero(layer.cols() + 1, 1)), shape_error);
    CHECK_THROWS_AS(B::gemv(p, MatrixXf::Zero(layer.cols(), 9)), shape_error);
    CHECK_THROWS_AS(B::matmul(p, MatrixXf::Zero(layer.cols() - 1, 12)), shape_error);
}

VqLayer small_vq_layer(std::mt19937& rng) {
    VqLayer layer;
    VqLayout& L = layer.layout;
    L.rows = 39;
    L.cols = 52;
    L.dim = 2;
    L.k = 16;
    L.rows_per_codebook = 13;
    L.columns_per_group = 26;
    layer.codebooks = random_matrix(L.codebook_count() * L.k, L.dim, rng);
    layer.indices.resize(L.rows, L.vectors_per_row());
    for (Index v = 0; v < L.vectors_per_row(); ++v)
        for (Index r = 0; r < L.rows; ++r)
            layer.indices(r, v) = static_cast<std::uint16_t>(random_below(rng, L.k));
    layer.scale_block = 4;
    layer.scales = random_matrix(L.rows, L.cols / 4, rng).cwiseAbs();
    return layer;
}

/// 37 x 53: residual codebooks, 3 outlier columns, two groups, permutation, normalization.
VptqLayer small_vptq_layer(std::mt19937& rng) {
    VptqLayer layer;
    VptqLayout& L = layer.layout;
    L.out_features = 37;
    L.vector_len = 8;
    L.num_centroids = 16;
    L.num_res_centroids = 4;
    L.group_num = 2;
    L.group_size = 25;
    L.outlier_size = 3;
    L.outlier_vector_len = 2;
    L.outlier_centroids = 5;
    L.in_features = 53;
    L.enable_norm = true;
    L.enable_perm = true;
    const auto codes = static_cast<std::size_t>(L.group_num * L.row_blocks() * L.group_size);
    layer.centroids = random_matrix(L.group_num * L.num_centroids, L.vector_len, rng);
    layer.res_centroids = random_matrix(L.group_num * L.num_res_centroids, L.vector_len, rng, 0.25f);
    for (std::size_t i = 0; i < codes; ++i) {
        layer.indices.push_back(random_below(rng, L.num_centroids));
        layer.res_indices.push_back(random_below(rng, L.num_res_centroids));
    }
    layer.outlier_centroids = random_matrix(L.outlier_centroids, L.outlier_vector_len, rng, 4.0f);
    for (Index i = 0; i < L.outlier_row_blocks() * L.outlier_size; ++i)
        layer.outlier_indices.push_back(random_below(rng, L.outlier_centroids));
    layer.perm.resize(static_cast<std::size_t>(L.in_features));
    std::iota(layer.perm.begin(), layer.perm.end(), Index{0});
    std::shuffle(layer.perm.begin(), layer.perm.end(), rng);
    layer.weight_scale = random_matrix(L.in_features, 1, rng).cwiseAbs();
    layer.weight_bias = random_matrix(L.in_features, 1, rng, 0.1f);
    layer.check_consistent();
    return layer;
}

}  // namespace

TEST_CASE("cuda decode backend: without a device, prepare throws", "[cuda][decode]") {
    if (cuda::device_available()) {
        SUCCEED("a device is present");
        return;
    }
    std::mt19937 rng(1);
    CHECK_THROWS_AS(CudaDecodeBackend::prepare(small_vq_layer(rng)), vqlib::error);
    CHECK_THROWS_AS(CudaDecodeBackend::prepare(small_vptq_layer(rng)), vqlib::error);
}

TEST_CASE("cuda decode backend: GPTVQ and VPTQ layers match CpuDecodeBackend", "[cuda][decode]") {
    if (!cuda::device_available()) {
        WARN("no CUDA device: skipped");
        SUCCEED("no CUDA device: skipped");
        return;
    }
    std::mt19937 rng(2);
    SECTION("GPTVQ") { compare_with_cpu(small_vq_layer(rng), rng); }
    SECTION("VPTQ") { compare_with_cpu(small_vptq_layer(rng), rng); }
}
