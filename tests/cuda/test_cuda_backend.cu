// The CUDA backend against the CPU results: nearest_centroid and dequantize bit-identical,
// subtract_product and the fused GEMVs within fp32 rounding of the fp32 reference
// (dequantize() then multiply). Random layers of odd sizes, every D / K / packing width the
// kernels distinguish. Without a CUDA device every test passes with a warning
// "no CUDA device: skipped" (the no-device test checks that the wrappers then throw).
#include <catch2/catch.hpp>

#include <vqlib/backend/cuda.cuh>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include "cpu_reference.hpp"
#include "random_inputs.hpp"
#include "skip.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

using namespace vqlib;


namespace {

using test_cuda::random_below;
using test_cuda::random_matrix;

/// |y - ref| <= tol * (|W| |X| + 1), elementwise: above fp32 summation error (n u |W||X|) for
/// these sizes, below the change one wrong code makes (about |W||X| / n).
void check_close(const MatrixXf& y, const MatrixXf& w, const MatrixXf& x, float tol = 1e-4f) {
    REQUIRE(y.rows() == w.rows());
    REQUIRE(y.cols() == x.cols());
    const MatrixXd ref = w.cast<double>() * x.cast<double>();
    const MatrixXd mag = w.cast<double>().cwiseAbs() * x.cast<double>().cwiseAbs();
    Index bad = 0;
    for (Index b = 0; b < y.cols(); ++b)
        for (Index r = 0; r < y.rows(); ++r) {
            const double err = std::abs(static_cast<double>(y(r, b)) - ref(r, b));
            if (err > tol * (mag(r, b) + 1.0)) {
                if (bad < 5) UNSCOPED_INFO("row " << r << ", batch " << b << ": " << y(r, b)
                                                  << " vs " << ref(r, b));
                ++bad;
            }
        }
    CHECK(bad == 0);
}

/// The number of entries where a and b differ (bitwise as floats, NaN never expected).
Index mismatches(const MatrixXf& a, const MatrixXf& b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) return -1;
    return (a.array() != b.array()).count();
}

}  // namespace

TEST_CASE("cuda: device_available answers without crashing", "[cuda]") {
    const bool available = cuda::device_available();
    CHECK(available == cuda::device_available());  // cached, stable
    if (!available) {
        WARN("no CUDA device: the wrappers must throw vqlib::error");
        MatrixXf points = MatrixXf::Zero(3, 2), centroids = MatrixXf::Zero(2, 2);
        std::vector<std::int32_t> out(3);
        CHECK_THROWS_AS(CudaBackend::nearest_centroid(points, centroids, Weights{}, out), vqlib::error);
        MatrixXf c = MatrixXf::Zero(2, 2);
        CHECK_THROWS_AS(CudaBackend::subtract_product(c, c, c), vqlib::error);
    } else {
        INFO("device: " << cuda::device_name());
        SUCCEED();
    }
}

TEST_CASE("cuda: errors name the CUDA call", "[cuda]") {
    // Selecting device -1 fails on any machine, with or without a GPU, and leaves no sticky
    // error behind; the message names the call and CUDA's error.
    try {
        VQLIB_CUDA_CHECK(cudaSetDevice(-1));
        FAIL("cudaSetDevice(-1) succeeded");
    } catch (const vqlib::error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(what.find("cudaSetDevice(-1)") != std::string::npos);
        CHECK(what.find("failed") != std::string::npos);
    }
    if (cuda::device_available()) VQLIB_CUDA_CHECK(cudaSetDevice(0));
}

TEST_CASE("cuda: nearest_centroid equals the CPU backend's indices", "[cuda][assignment]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    std::mt19937 rng(7);
    const Index dims[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33};
    const Index ks[] = {1, 3, 17, 256, 1031};
    for (Index d : dims)
        for (Index k : ks)
            for (int weighted = 0; weighted < 2; ++weighted) {
                CAPTURE(d, k, weighted);
                const Index n = 1003;
                MatrixXf centroids = random_matrix(k, d, rng);
                // Duplicate centroids: ties go to the lowest index.
                if (k >= 3) centroids.row(k - 1) = centroids.row(1);
                MatrixXf points = random_matrix(n, d, rng);
                // Some points exactly on a centroid, some on the duplicated one.
                for (Index i = 0; i < n; i += 11) points.row(i) = centroids.row(random_below(rng, k));
                if (k >= 3) points.row(5) = centroids.row(1);
                std::vector<float> weights;
                if (weighted)
                    for (Index j = 0; j < d; ++j)
                        weights.push_back(std::uniform_real_distribution<float>(0.1f, 3.0f)(rng));
                std::vector<std::int32_t> gpu(static_cast<std::size_t>(n)), cpu(gpu.size());
                CudaBackend::nearest_centroid(points, centroids, weights, gpu);
                test_cuda::cpu_nearest_centroid(points, centroids, weights, cpu);
                CHECK(gpu == cpu);
                if (k >= 3) CHECK(gpu[5] == 1);
            }
}

TEST_CASE("cuda: nearest_centroid accepts strided points (a block of a larger matrix)",
          "[cuda][assignment]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    std::mt19937 rng(8);
    const MatrixXf big = random_matrix(517, 9, rng);
    const MatrixXf centroids = random_matrix(29, 4, rng);
    const auto points = big.block(3, 2, 501, 4);
    std::vector<std::int32_t> gpu(501), cpu(501);
    CudaBackend::nearest_centroid(points, centroids, Weights{}, gpu);
    test_cuda::cpu_nearest_centroid(points, centroids, {}, cpu);
    CHECK(gpu == cpu);
}

TEST_CASE("cuda: dequantize of grouped scalar codes equals the CPU backend", "[cuda][dequantize]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    std::mt19937 rng(9);
    const Index rows = 37, cols = 53, groups = 4;
    CodeMatrix codes(rows, cols);
    std::vector<float> lut(13);
    for (auto& v : lut) v = std::normal_distribution<float>()(rng);
    for (Index j = 0; j < cols; ++j)
        for (Index r = 0; r < rows; ++r)
            codes(r, j) = static_cast<std::uint16_t>(random_below(rng, static_cast<Index>(lut.size())));
    std::vector<float> scales(static_cast<std::size_t>(groups * rows)), zeros(scales.size());
    for (auto& s : scales) s = std::uniform_real_distribution<float>(0.01f, 1.0f)(rng);
    for (auto& z : zeros) z = std::normal_distribution<float>()(rng);
    std::vector<std::int32_t> g_idx(static_cast<std::size_t>(cols));
    for (auto& g : g_idx) g = static_cast<std::int32_t>(random_below(rng, groups));
    const GroupedScalarView view{codes, lut, scales, zeros, g_idx};
    for (Index begin : {Index{0}, Index{5}}) {
        CAPTURE(begin);
        const Index width = cols - begin - 3;
        MatrixXf gpu_big = MatrixXf::Constant(rows + 4, width + 2, -7.0f);
        MatrixXf cpu_big = gpu_big;
        CudaBackend::dequantize(view, begin, gpu_big.block(2, 1, rows, width));
        test_cuda::cpu_dequantize(view, begin, cpu_big.block(2, 1, rows, width));
        CHECK(mismatches(gpu_big, cpu_big) == 0);
    }
}

TEST_CASE("cuda: subtract_product matches the CPU backend", "[cuda][backend]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    std::mt19937 rng(10);
    for (Index k : {Index{1}, Index{13}, Index{40}}) {
        CAPTURE(k);
        const MatrixXf a = random_matrix(37, k, rng), b = random_matrix(k, 29, rng);
        MatrixXf big = random_matrix(41, 33, rng);
        MatrixXf cpu = big.block(1, 2, 37, 29);
        CudaBackend::subtract_product(big.block(1, 2, 37, 29), a, b);
        test_cuda::cpu_subtract_product(cpu, a, b);
        const float err = (big.block(1, 2, 37, 29) - cpu).cwiseAbs().maxCoeff();
        CHECK(err <= 1e-4f * (1.0f + static_cast<float>(k)));
    }
}

namespace {

VqLayer random_vq_layer(Index rows, Index dim, Index k, Index rows_per_codebook,
                        Index vectors_per_group, Index groups, Index scale_block,
                        std::mt19937& rng) {
    VqLayer layer;
    VqLayout& L = layer.layout;
    L.rows = rows;
    L.dim = dim;
    L.k = k;
    L.rows_per_codebook = rows_per_codebook;
    L.columns_per_group = vectors_per_group * dim;
    L.cols = L.columns_per_group * groups;
    layer.codebooks = random_matrix(L.codebook_count() * k, dim, rng);
    layer.indices.resize(rows, L.vectors_per_row());
    for (Index v = 0; v < L.vectors_per_row(); ++v)
        for (Index r = 0; r < rows; ++r)
            layer.indices(r, v) = static_cast<std::uint16_t>(random_below(rng, k));
    layer.scale_block = scale_block;
    if (scale_block > 0) {
        layer.scales.resize(rows, (L.cols + scale_block - 1) / scale_block);
        for (Index j = 0; j < layer.scales.cols(); ++j)
            for (Index r = 0; r < rows; ++r)
                layer.scales(r, j) = std::uniform_real_distribution<float>(0.1f, 2.0f)(rng);
    }
    return layer;
}

}  // namespace

TEST_CASE("cuda: GPTVQ dequantize and fused GEMV match the CPU", "[cuda][gptvq]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    std::mt19937 rng(11);
    struct Case {
        Index rows, dim, k, rows_per_codebook, vectors_per_group, groups, scale_block;
    };
    const Case cases[] = {
        {37, 1, 16, 1, 19, 3, 0},   {39, 2, 256, 3, 9, 2, 0},  {41, 2, 16, 1, 7, 3, 5},
        {33, 3, 64, 11, 5, 3, 0},   {45, 4, 4096, 1, 3, 2, 0}, {29, 4, 256, 29, 6, 1, 4},
        {31, 8, 300, 1, 2, 3, 0},   {7, 5, 2, 7, 3, 1, 3},
    };
    for (const Case& c : cases) {
        CAPTURE(c.rows, c.dim, c.k, c.rows_per_codebook, c.vectors_per_group, c.groups,
                c.scale_block);
        const VqLayer layer = random_vq_layer(c.rows, c.dim, c.k, c.rows_per_codebook,
                                              c.vectors_per_group, c.groups, c.scale_block, rng);
        const MatrixXf cpu = layer.dequantize();
        const MatrixXf gpu = cuda::dequantize(layer);
        CHECK(mismatches(gpu, cpu) == 0);
        for (Index batch : {Index{1}, Index{2}, Index{5}, Index{8}}) {
            CAPTURE(batch);
            const MatrixXf x = random_matrix(layer.cols(), batch, rng);
            check_close(cuda::gemv(layer, x), cpu, x);
        }
    }
}

namespace {

struct VptqCase {
    Index M, v, k, k_res, group_num, group_size;
    Index outlier_size, v0, k0;
    bool norm, perm;
};

VptqLayer random_vptq_layer(const VptqCase& c, std::mt19937& rng) {
    VptqLayer layer;
    VptqLayout& L = layer.layout;
    L.out_features = c.M;
    L.vector_len = c.v;
    L.num_centroids = c.k;
    L.num_res_centroids = c.k_res;
    L.group_num = c.group_num;
    L.group_size = c.group_size;
    L.outlier_size = c.outlier_size;
    L.outlier_vector_len = c.outlier_size > 0 ? c.v0 : 0;
    L.outlier_centroids = c.outlier_size > 0 ? c.k0 : 0;
    L.in_features = c.outlier_size + c.group_num * c.group_size;
    L.enable_norm = c.norm;
    L.enable_perm = c.perm;
    const Index R = L.row_blocks();
    layer.centroids = random_matrix(c.group_num * c.k, c.v, rng);
    const auto n = static_cast<std::size_t>(c.group_num * R * c.group_size);
    layer.indices.resize(n);
    for (auto& i : layer.indices) i = random_below(rng, c.k);
    if (c.k_res > 0) {
        layer.res_centroids = random_matrix(c.group_num * c.k_res, c.v, rng, 0.1f);
        layer.res_indices.resize(n);
        for (auto& i : layer.res_indices) i = random_below(rng, c.k_res);
    }
    if (c.outlier_size > 0) {
        layer.outlier_centroids = random_matrix(c.k0, c.v0, rng, 3.0f);
        layer.outlier_indices.resize(static_cast<std::size_t>(L.outlier_row_blocks() * c.outlier_size));
        for (auto& i : layer.outlier_indices) i = random_below(rng, c.k0);
    }
    if (c.perm) {
        layer.perm.resize(static_cast<std::size_t>(L.in_features));
        std::iota(layer.perm.begin(), layer.perm.end(), Index{0});
        std::shuffle(layer.perm.begin(), layer.perm.end(), rng);
    }
    if (c.norm) {
        layer.weight_scale = VectorXf(L.in_features);
        layer.weight_bias = VectorXf(L.in_features);
        for (Index j = 0; j < L.in_features; ++j) {
            layer.weight_scale[j] = std::uniform_real_distribution<float>(0.5f, 2.0f)(rng);
            layer.weight_bias[j] = std::normal_distribution<float>(0.0f, 0.1f)(rng);
        }
    }
    layer.check_consistent();
    return layer;
}

}  // namespace

TEST_CASE("cuda: VPTQ packed dequantize and fused GEMV match the CPU", "[cuda][vptq]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    std::mt19937 rng(12);
    // Merged code widths T = b + b_r: 8, 4, 12, 16, 13 + 9 = 22 (straddling words), 16 + 16 = 32,
    // 1; v from 1 to 20 (20 > 16: the dequantize + GEMV fallback); outliers, norm, perm.
    const VptqCase cases[] = {
        {45, 8, 256, 0, 1, 37, 0, 0, 0, false, false},
        {45, 8, 16, 0, 2, 19, 0, 0, 0, true, true},
        {37, 6, 4096, 0, 1, 23, 5, 4, 64, false, true},
        {50, 4, 256, 256, 3, 11, 0, 0, 0, true, false},
        {33, 12, 5000, 300, 2, 17, 3, 3, 33, true, true},
        {19, 4, 65536, 65536, 1, 9, 0, 0, 0, false, false},
        {23, 1, 2, 0, 1, 41, 2, 2, 5, false, false},
        {41, 16, 1000, 0, 1, 29, 0, 0, 0, true, true},
        {43, 20, 128, 16, 2, 13, 4, 20, 7, true, true},
    };
    for (const VptqCase& c : cases) {
        CAPTURE(c.M, c.v, c.k, c.k_res, c.group_num, c.group_size, c.outlier_size, c.v0, c.k0,
                c.norm, c.perm);
        const VptqLayer layer = random_vptq_layer(c, rng);
        const MatrixXf cpu = layer.dequantize();
        const MatrixXf gpu = cuda::dequantize(layer);
        CHECK(mismatches(gpu, cpu) == 0);
        for (Index batch : {Index{1}, Index{3}, Index{8}}) {
            CAPTURE(batch);
            const MatrixXf x = random_matrix(layer.cols(), batch, rng);
            check_close(cuda::gemv(layer, x), cpu, x);
        }
    }
}

TEST_CASE("cuda: VPTQ decodes codes given as a packed word stream", "[cuda][vptq]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    std::mt19937 rng(13);
    const VptqLayer layer = random_vptq_layer({29, 8, 1024, 64, 2, 15, 0, 0, 0, false, false}, rng);
    const io::PackedIndices packed = io::pack_codes(cuda::vptq_packed_layout(layer.layout),
                                                    layer.indices, layer.res_indices);
    const cuda::DeviceVptqLayer device(layer, packed.words);
    cuda::DeviceBuffer<float> w(static_cast<std::size_t>(layer.rows() * layer.cols()));
    device.dequantize_device(w.data(), layer.rows());
    VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
    MatrixXf gpu(layer.rows(), layer.cols());
    w.download(std::span<float>(gpu.data(), static_cast<std::size_t>(gpu.size())));
    CHECK(mismatches(gpu, layer.dequantize()) == 0);
    // A word count that does not match the layout is refused.
    std::vector<std::uint32_t> short_words(packed.words.begin(), packed.words.end() - 1);
    CHECK_THROWS_AS(cuda::DeviceVptqLayer(layer, short_words), vqlib::shape_error);
}
