// The decode trait: CpuDecodeBackend satisfies DecodeBackend for GPTVQ, VPTQ and INT4 layers, and
// a function written against the concept alone (check_decode) checks the contract on odd sizes:
// dequantize() equals the layer's own dequantize() bit for bit; gemv() (batches 1..8) and
// matmul() (any batch) equal dequantize-then-multiply within fp32 summation error, and repeat
// their bits. Then the CPU specifics: options, thread counts, decode_matmul, errors.
#include <vqlib/backend/cpu.hpp>
#include <vqlib/backend/cpu_decode.hpp>
#include <vqlib/backend/decode.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/formats/minifloat_grid.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/random.hpp"

#include <cmath>
#include <concepts>
#include <cstring>
#include <numeric>
#include <string>

namespace {

using namespace vqlib;

static_assert(!DecodeBackend<CpuDecodeBackend, ScalarLayer<MinifloatGrid>>,
              "no CPU decode format for minifloat layers");
static_assert(!DecodeBackend<CpuBackend, VqLayer>, "the algorithms' backend is not a decode backend");

using test::random_int4_layer;
using test::random_matrix;
using test::random_vq_layer;
using test::same_bits;

/// Entries of y farther from W x (in double) than tol * (|W| |x| + 1): the summation error of
/// fp32 at these sizes is below 1e-5 |W| |x|, one wrong code moves an entry by about |W| |x| / N.
Index entries_off(const MatrixXf& y, const MatrixXf& W, const MatrixXf& x, double tol = 1e-4) {
    if (y.rows() != W.rows() || y.cols() != x.cols()) return y.size() + 1;
    const MatrixXd ref = W.cast<double>() * x.cast<double>();
    const MatrixXd mag = W.cast<double>().cwiseAbs() * x.cast<double>().cwiseAbs();
    Index off = 0;
    for (Index b = 0; b < y.cols(); ++b)
        for (Index r = 0; r < y.rows(); ++r)
            if (std::abs(static_cast<double>(y(r, b)) - ref(r, b)) > tol * (mag(r, b) + 1.0)) {
                if (off < 3) UNSCOPED_INFO("row " << r << ", column " << b << ": " << y(r, b)
                                                  << " vs " << ref(r, b));
                ++off;
            }
    return off;
}

/// The contract of backend/decode.hpp on one layer, through the concept's operations only.
template <class B, class Layer>
    requires DecodeBackend<B, Layer>
void check_decode(const Layer& layer, std::uint64_t seed) {
    INFO("backend " << B::name());
    const decode_prepared_t<B, Layer> p = B::prepare(layer);
    REQUIRE(p.rows() == layer.rows());
    REQUIRE(p.cols() == layer.cols());
    const MatrixXf W = layer.dequantize();
    CHECK(same_bits(B::dequantize(p), W));

    Rng rng(seed);
    for (Index batch = 1; batch <= max_decode_gemv_batch; ++batch) {
        CAPTURE(batch);
        const MatrixXf x = random_matrix(layer.cols(), batch, rng);
        const MatrixXf y = B::gemv(p, x);
        CHECK(entries_off(y, W, x) == 0);
        CHECK(same_bits(B::gemv(p, x), y));
    }
    for (Index batch : {Index{0}, Index{1}, Index{8}, Index{9}, Index{21}}) {
        CAPTURE(batch);
        const MatrixXf x = random_matrix(layer.cols(), batch, rng);
        const MatrixXf y = B::matmul(p, x);
        CHECK(entries_off(y, W, x) == 0);
        CHECK(same_bits(B::matmul(p, x), y));
    }
    // A block of a larger matrix: x need not be contiguous.
    const MatrixXf big = random_matrix(layer.cols() + 3, 6, rng);
    CHECK(entries_off(B::gemv(p, big.block(2, 1, layer.cols(), 3)), W,
                      big.block(2, 1, layer.cols(), 3)) == 0);
}

// ---- layers of odd sizes ----------------------------------------------------------------------

/// M x (outliers + groups * group_size), vectors of v rows, residual codebooks of k_res entries;
/// outlier columns with v0 = 2, k0 = 5.
VptqLayer random_vptq_layer(Index M, Index v, Index k, Index k_res, Index groups, Index group_size,
                            Index outliers, bool norm_and_perm, std::uint64_t seed) {
    test::VptqSpec s;
    s.m = M;
    s.n = outliers + groups * group_size;
    s.v = v;
    s.k = k;
    s.kr = k_res;
    s.outliers = outliers;
    s.groups = groups;
    s.norm = s.perm = norm_and_perm;
    return test::random_vptq_layer(s, seed);
}

// The worked example of docs/backends.md, section 3 (keep the two in step).
/// Decodes by dequantizing once, at prepare(), then multiplying with Eigen: the simplest
/// DecodeBackend, for any layer type with a dequantize() method.
struct DenseDecodeBackend {
    struct Dense {
        vqlib::MatrixXf w;
        vqlib::Index rows() const { return w.rows(); }
        vqlib::Index cols() const { return w.cols(); }
    };
    template <class Layer>
    using prepared = Dense;

    static const char* name() { return "dense"; }

    template <class Layer>
        requires requires(const Layer& l) { { l.dequantize() } -> std::same_as<vqlib::MatrixXf>; }
    static Dense prepare(const Layer& layer) {
        return {layer.dequantize()};
    }

    static vqlib::MatrixXf dequantize(const Dense& p) { return p.w; }

    static vqlib::MatrixXf gemv(const Dense& p, vqlib::ConstMatrixRef x) {
        VQLIB_CHECK(x.cols() >= 1 && x.cols() <= vqlib::max_decode_gemv_batch, vqlib::shape_error,
                    "gemv (dense): x has ", x.cols(), " columns: expected 1..",
                    vqlib::max_decode_gemv_batch);
        return matmul(p, x);
    }

    static vqlib::MatrixXf matmul(const Dense& p, vqlib::ConstMatrixRef x) {
        VQLIB_CHECK(x.rows() == p.cols(), vqlib::shape_error, "matmul (dense): x has ", x.rows(),
                    " rows: expected ", p.cols());
        return p.w * x;
    }
};

static_assert(vqlib::DecodeBackend<DenseDecodeBackend, vqlib::VqLayer>);

/// The message of the shape_error f throws ("" when it throws none).
template <class F>
std::string shape_error_message(F&& f) {
    try {
        f();
    } catch (const shape_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("decode backend: the concept", "[backend][decode]") {
    STATIC_REQUIRE(DecodeBackend<CpuDecodeBackend, VqLayer>);
    STATIC_REQUIRE(DecodeBackend<CpuDecodeBackend, VptqLayer>);
    STATIC_REQUIRE(DecodeBackend<CpuDecodeBackend, ScalarLayer<IntGrid>>);
    STATIC_REQUIRE(std::same_as<decode_prepared_t<CpuDecodeBackend, VqLayer>, kernels::VqGemvMatrix>);
    CHECK(std::string(CpuDecodeBackend::name()) == "cpu");
}

TEST_CASE("decode backend: CPU, GPTVQ layers of odd sizes", "[backend][decode][gptvq]") {
    // 4-bit codes in two bands with normalization; 8-bit codes, D = 3, per-row codebooks;
    // 16-bit codes (K = 300).
    check_decode<CpuDecodeBackend>(random_vq_layer(39, 52, 2, 16, 13, 26, 4, 1), 2);
    check_decode<CpuDecodeBackend>(random_vq_layer(37, 51, 3, 200, 1, 51, 0, 3), 4);
    check_decode<CpuDecodeBackend>(random_vq_layer(21, 44, 4, 300, 21, 44, 0, 5), 6);
}

TEST_CASE("decode backend: CPU, VPTQ layers of odd sizes", "[backend][decode][vptq]") {
    // Residual codebooks, outlier columns, two groups, permutation and normalization; then a
    // plain layer with v = 6 (no SIMD-width rows) and 12-bit codes.
    check_decode<CpuDecodeBackend>(random_vptq_layer(37, 8, 16, 4, 2, 25, 3, true, 7), 8);
    check_decode<CpuDecodeBackend>(random_vptq_layer(29, 6, 4096, 0, 1, 43, 0, false, 9), 10);
}

TEST_CASE("decode backend: CPU, INT4 layers of odd sizes", "[backend][decode][int4]") {
    check_decode<CpuDecodeBackend>(random_int4_layer(37, 77, 16, false, 11), 12);
    check_decode<CpuDecodeBackend>(random_int4_layer(19, 130, 128, true, 13), 14);
}

TEST_CASE("decode backend: a backend written against the concept (docs/backends.md)",
          "[backend][decode]") {
    STATIC_REQUIRE(DecodeBackend<DenseDecodeBackend, VptqLayer>);
    STATIC_REQUIRE(DecodeBackend<DenseDecodeBackend, ScalarLayer<IntGrid>>);
    check_decode<DenseDecodeBackend>(random_vq_layer(39, 52, 2, 16, 13, 26, 4, 23), 24);
    check_decode<DenseDecodeBackend>(random_vptq_layer(37, 8, 16, 4, 2, 25, 3, true, 25), 26);
    // Against the CPU kernels on the same input: equal up to summation order.
    const auto layer = random_int4_layer(37, 77, 16, false, 27);
    Rng rng(28);
    const MatrixXf x = random_matrix(77, 4, rng);
    const MatrixXf dense = DenseDecodeBackend::gemv(DenseDecodeBackend::prepare(layer), x);
    const MatrixXf cpu = CpuDecodeBackend::gemv(CpuDecodeBackend::prepare(layer), x);
    const MatrixXf W = layer.dequantize();
    const MatrixXf bound = 1e-4f * ((W.cwiseAbs() * x.cwiseAbs()).array() + 1.0f).matrix();
    CHECK(((dense - cpu).cwiseAbs().array() <= bound.array()).all());
}

TEST_CASE("decode backend: CPU options, thread counts and decode_matmul", "[backend][decode]") {
    using B = CpuDecodeBackend;
    const auto p = B::prepare(random_vq_layer(45, 64, 2, 16, 15, 32, 0, 15));
    Rng rng(16);
    const MatrixXf x = random_matrix(64, 5, rng);
    const MatrixXf y = B::gemv(p, x, {kernels::Isa::automatic, kernels::VqStrategy::gather, true});
    // Every instruction set and thread count gives the same bits.
    CHECK(same_bits(B::gemv(p, x, {kernels::Isa::portable, kernels::VqStrategy::gather, false}), y));
    set_num_threads(1);
    const MatrixXf y1 = B::gemv(p, x, {kernels::Isa::automatic, kernels::VqStrategy::gather, true});
    set_num_threads(3);
    const MatrixXf y3 = B::gemv(p, x, {kernels::Isa::automatic, kernels::VqStrategy::gather, true});
    set_num_threads(0);
    CHECK(same_bits(y1, y));
    CHECK(same_bits(y3, y));
    // Up to 8 columns, matmul is gemv.
    CHECK(same_bits(B::matmul(p, x), B::gemv(p, x)));

    const auto layer = random_int4_layer(23, 50, 10, false, 17);
    const MatrixXf xp = random_matrix(50, 12, rng);
    CHECK(same_bits(decode_matmul<B>(layer, xp), B::matmul(B::prepare(layer), xp)));
}

TEST_CASE("decode backend: CPU errors name the argument", "[backend][decode]") {
    using B = CpuDecodeBackend;
    const auto vptq = B::prepare(random_vptq_layer(13, 4, 16, 0, 1, 21, 0, false, 18));
    const auto int4 = B::prepare(random_int4_layer(16, 20, 10, true, 19));

    const std::string rows = shape_error_message([&] { (void)B::gemv(vptq, MatrixXf::Zero(22, 1)); });
    CHECK_THAT(rows, Catch::Matchers::Contains("x has 22 rows: expected 21"));
    const std::string wide = shape_error_message([&] { (void)B::gemv(int4, MatrixXf::Zero(20, 9)); });
    CHECK_THAT(wide, Catch::Matchers::Contains("x has 9 columns"));
    CHECK_THAT(wide, Catch::Matchers::Contains("matmul"));
    CHECK_THAT(shape_error_message([&] { (void)B::gemv(int4, MatrixXf::Zero(20, 0)); }),
               Catch::Matchers::Contains("x has 0 columns"));
    CHECK_THAT(shape_error_message([&] { (void)B::matmul(int4, MatrixXf::Zero(19, 12)); }),
               Catch::Matchers::Contains("x has 19 rows: expected 20"));
    CHECK_THAT(shape_error_message([&] { (void)decode_matmul<B>(random_vq_layer(16, 8, 2, 4, 16, 8, 0, 20), MatrixXf::Zero(9, 1)); }),
               Catch::Matchers::Contains("x has 9 rows: expected 8"));

    // Layers the kernels cannot take: a 3-bit grid, an index past its codebook.
    ScalarLayer<IntGrid> three = random_int4_layer(16, 20, 10, true, 21);
    three.grid = IntGrid(3, true, {}, ScaleStorage::fp16);
    CHECK_THROWS_AS(B::prepare(three), invalid_argument);
    VqLayer bad = random_vq_layer(16, 8, 2, 4, 16, 8, 0, 22);
    bad.indices(3, 1) = 4;
    CHECK_THROWS_AS(B::prepare(bad), invalid_argument);
}
