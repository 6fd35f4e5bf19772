// VPTQ decode kernels: the packed format's dequantization against VptqLayer::dequantize() (bit
// for bit), and the fused GEMV against dequantize-then-multiply in fp32 on odd shapes (M not a
// multiple of v), with outliers, residuals, groups, permutation and normalization, for packing
// widths T from 1 to 32 bits, batches 1..8 and every instruction-set variant this CPU runs.
//
// Tolerance: |y - y_ref| <= 2 (n + 4) u sum_n (|W_n| |s_n| + |b_n|) |x_n| per entry, u = 2^-24
// (the kernel folds scale into x and bias into one dot product, so the bound uses the unfolded
// magnitudes).
#include <vqlib/core/rng.hpp>
#include <vqlib/kernels/vptq_gemv.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/random.hpp"

#include <limits>

#include <algorithm>
#include <numeric>
#include <vector>

namespace {

using namespace vqlib;
using namespace vqlib::kernels;

using test::isas;
using test::random_matrix;
using test::random_vptq_layer;
using test::same_bits;
using test::VptqSpec;

double worst_error(const MatrixXf& y, const VptqLayer& layer, const MatrixXf& x) {
    const MatrixXf W = layer.dequantize();
    const MatrixXf ref = W * x;
    // Unfolded magnitudes: |W_stored| |scale| + |bias| per original column.
    MatrixXf Ws = layer.dequantize_stored();
    MatrixXf A(Ws.rows(), Ws.cols());
    for (Index p = 0; p < Ws.cols(); ++p) {
        const Index n = layer.perm.empty() ? p : layer.perm[static_cast<std::size_t>(p)];
        A.col(n) = Ws.col(p).cwiseAbs();
        if (layer.layout.enable_norm)
            A.col(n) = (A.col(n).array() * std::abs(layer.weight_scale[n]) +
                        std::abs(layer.weight_bias[n])).matrix();
    }
    return test::summation_error_ratio(y, ref, A * x.cwiseAbs(), W.cols() + 4);
}

void check_layer(const VptqSpec& spec, std::uint64_t seed) {
    const VptqLayer layer = random_vptq_layer(spec, seed);
    const VptqGemvMatrix m = VptqGemvMatrix::from_layer(layer);
    CHECK(m.fp16_codebooks() == spec.fp16);
    REQUIRE(same_bits(dequantize_stored(m), layer.dequantize_stored()));
    REQUIRE(same_bits(dequantize(m), layer.dequantize()));
    REQUIRE(dequantize_half(m) == layer.dequantize().cast<Eigen::half>());
    CHECK(m.bits().total() == Approx(layer.bits().total()));
    Rng rng(seed + 1000);
    for (Index B = 1; B <= max_gemv_batch; ++B) {
        const MatrixXf x = random_matrix(spec.n, B, rng);
        MatrixXf first;
        for (Isa isa : isas()) {
            INFO("v " << spec.v << " k " << spec.k << " kr " << spec.kr << " T " << m.total_bits()
                      << " outliers " << spec.outliers << " groups " << spec.groups << " B " << B
                      << " isa " << isa_name(isa));
            const MatrixXf y = gemv(m, x, {isa, VqStrategy::automatic, true});
            CHECK(worst_error(y, layer, x) <= 1.0);
            if (first.size() == 0)
                first = y;
            else
                CHECK(same_bits(y, first));
        }
    }
}

}  // namespace

TEST_CASE("VPTQ GEMV: packing widths from 1 to 32 bits", "[kernels][vptq]") {
    std::uint64_t seed = 1;
    // (k, k_res): T = 1, 2, 4, 2 + 2, 8, 10 + 2, 12, 16, 8 + 12, 16 + 16.
    const std::vector<std::pair<Index, Index>> sizes{{2, 0},     {4, 0},       {16, 0},   {3, 4},
                                                     {256, 0},   {1000, 3},    {4096, 0}, {65536, 0},
                                                     {256, 4096}, {65536, 65536}};
    for (auto [k, kr] : sizes) {
        VptqSpec s;
        s.k = k;
        s.kr = kr;
        check_layer(s, seed++);
    }
}

TEST_CASE("VPTQ GEMV: vector lengths, outliers, groups, permutation and normalization",
          "[kernels][vptq]") {
    std::uint64_t seed = 100;
    for (Index v : {1, 2, 3, 4, 6, 8, 12, 16}) {
        VptqSpec s;
        s.v = v;
        s.k = 64;
        s.kr = 16;
        check_layer(s, seed++);
        s.outliers = 3;  // 53 = 3 + 2 * 25
        s.groups = 2;
        s.perm = true;
        s.norm = true;
        check_layer(s, seed++);
        s.v0 = 3;  // outlier row blocks not aligned with the main ones
        s.k0 = 300;
        s.m = 41;
        check_layer(s, seed++);
    }
}

TEST_CASE("VPTQ GEMV: row blocks side by side, the last one partial", "[kernels][vptq]") {
    // 29 rows = 4 blocks of 8, the last with 5 rows: batches 1 and 2 run the blocks 4 or 2 at a
    // time (on AVX-512 two blocks per register), with and without a residual codebook.
    std::uint64_t seed = 500;
    for (Index kr : {0, 16}) {
        VptqSpec s;
        s.m = 29;
        s.v = 8;
        s.k = 300;
        s.kr = kr;
        check_layer(s, seed++);
        s.m = 61;  // 8 blocks: two runs of 4, the second ending partial
        check_layer(s, seed++);
    }
}

TEST_CASE("VPTQ GEMV: codebooks that are not fp16 values", "[kernels][vptq]") {
    for (Index v : {4, 8, 16}) {
        VptqSpec s;
        s.v = v;
        s.k = 256;
        s.kr = 16;
        s.fp16 = false;
        check_layer(s, 300 + static_cast<std::uint64_t>(v));
        s.k = 65536;
        s.kr = 0;
        check_layer(s, 400 + static_cast<std::uint64_t>(v));
    }
}

TEST_CASE("VPTQ GEMV: results do not depend on the thread count", "[kernels][vptq]") {
    VptqSpec s;
    s.m = 301;
    s.n = 515;
    s.outliers = 3;
    s.groups = 2;
    s.k = 256;
    s.kr = 16;
    s.perm = s.norm = true;
    const VptqGemvMatrix m = VptqGemvMatrix::from_layer(random_vptq_layer(s, 9));
    Rng rng(3);
    const MatrixXf x = random_matrix(s.n, 5, rng);
    set_num_threads(1);
    const MatrixXf y1 = gemv(m, x);
    set_num_threads(3);
    const MatrixXf y3 = gemv(m, x);
    set_num_threads(0);
    const MatrixXf ys = gemv(m, x, {Isa::automatic, VqStrategy::automatic, false});
    CHECK(same_bits(y1, y3));
    CHECK(same_bits(y1, ys));
}

TEST_CASE("VPTQ matmul and errors", "[kernels][vptq]") {
    VptqSpec s;
    s.outliers = 3;
    s.groups = 2;
    s.kr = 4;
    s.perm = s.norm = true;
    const VptqLayer layer = random_vptq_layer(s, 77);
    const VptqGemvMatrix m = VptqGemvMatrix::from_layer(layer);
    Rng rng(4);
    const MatrixXf x = random_matrix(s.n, 11, rng);
    CHECK(worst_error(matmul(m, x), layer, x) <= 1.0);

    MatrixXf y(s.m, 2);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(s.n + 1, 2), y), shape_error);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(s.n, 9)), shape_error);
    MatrixXf y_bad(s.m, 3);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(s.n, 2), y_bad), shape_error);
    VptqLayer bad = layer;
    bad.indices[5] = 16;
    CHECK_THROWS_AS(VptqGemvMatrix::from_layer(bad), invalid_argument);
    bad = layer;
    bad.indices.pop_back();
    CHECK_THROWS_AS(VptqGemvMatrix::from_layer(bad), shape_error);
    bad = layer;
    bad.res_centroids(1, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(VptqGemvMatrix::from_layer(bad), Catch::Contains("res_centroids(1, 2)"));
    bad = layer;
    bad.weight_scale[4] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(VptqGemvMatrix::from_layer(bad), numerical_error);
}
