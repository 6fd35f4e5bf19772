// VPTQ fast mode (v = 8): int8 codebooks within half a step (s / 2) of the layer's centroids; the
// GEMV equal, up to fp32 rounding, to the stored weights times the int8 activations of x' plus the
// fp32 outlier and bias terms, and within the documented bound of the stored product; on odd
// shapes (rows not a multiple of 16, residual codebooks, outlier columns, several groups,
// permutation and normalization), batches 1..8, every fast variant (bit for bit), thread counts;
// unsupported layouts refused by field.
#include <vqlib/core/rng.hpp>
#include <vqlib/kernels/vptq_fast.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"
#include "../support/fast_decode.hpp"
#include "../support/random.hpp"

#include <cmath>

namespace {

using namespace vqlib;
using namespace vqlib::kernels;

test::VptqSpec vptq_spec(Index m, Index k, Index kr, Index groups, Index group_size, Index outliers, bool norm) {
    test::VptqSpec s;
    s.m = m;
    s.n = outliers + groups * group_size;
    s.v = 8;
    s.k = k;
    s.kr = kr;
    s.outliers = outliers;
    s.groups = groups;
    s.norm = s.perm = norm;
    return s;
}

/// x' of the fast GEMV: permuted, scaled x (stored order).
MatrixXf stored_input(const VptqLayer& layer, const MatrixXf& x) {
    MatrixXf xs(x.rows(), x.cols());
    for (Index p = 0; p < x.rows(); ++p) {
        const Index n = layer.perm.empty() ? p : layer.perm[static_cast<std::size_t>(p)];
        xs.row(p) = layer.layout.enable_norm ? (x.row(n) * layer.weight_scale[n]).eval() : x.row(n);
    }
    return xs;
}

void check_vptq_fast(const VptqLayer& layer, std::uint64_t seed) {
    const VptqLayout& L = layer.layout;
    const VptqFastMatrix m = VptqFastMatrix::from_layer(layer);
    const MatrixXf Ws = m.dequantize_stored();
    // Centroids within half a step of the layer's: compare the stored weights.
    const MatrixXf Wl = layer.dequantize_stored();
    const float smax = layer.centroids.cwiseAbs().maxCoeff() / 127.0f;
    const float rmax = L.has_residual() ? layer.res_centroids.cwiseAbs().maxCoeff() / 127.0f : 0.0f;
    CHECK((Ws - Wl).cwiseAbs().maxCoeff() <= 0.5f * (smax + rmax) * 1.0001f);
    Rng rng(seed);
    const Index O = L.outlier_size, N = L.in_features;
    for (Index B = 1; B <= max_gemv_batch; ++B) {
        const MatrixXf x = test::fast_test_input(N, B, rng);
        const MatrixXf xs = stored_input(layer, x);
        const Int8Activations a(xs.bottomRows(N - O));
        // Reference: outliers and bias in double, main columns with x'_q.
        MatrixXd ref = Ws.leftCols(O).cast<double>() * xs.topRows(O).cast<double>() +
                       Ws.rightCols(N - O).cast<double>() * a.dequantize().cast<double>();
        MatrixXd mag = Ws.cast<double>().cwiseAbs() * xs.cast<double>().cwiseAbs();
        if (L.enable_norm)
            for (Index b = 0; b < B; ++b) {
                const double beta = layer.weight_bias.cast<double>().dot(x.col(b).cast<double>());
                ref.col(b).array() += beta;
                mag.col(b).array() += layer.weight_bias.cast<double>().cwiseAbs().dot(x.col(b).cast<double>().cwiseAbs());
            }
        MatrixXf first;
        for (Isa isa : test::fast_isas()) {
            INFO("rows " << L.out_features << " cols " << N << " B " << B << " isa " << isa_name(isa));
            GemvOptions o;
            o.isa = isa;
            const MatrixXf y = gemv(m, x, o);
            const double u = std::ldexp(1.0, -24);
            const double terms = static_cast<double>(a.blocks() + O + N + 4);
            double worst = 0.0;
            for (Index b = 0; b < B; ++b)
                for (Index r = 0; r < y.rows(); ++r)
                    worst = std::max(worst, std::abs(double(y(r, b)) - ref(r, b)) / (2.0 * terms * u * mag(r, b) + 1e-30));
            CHECK(worst <= 1.0);
            if (first.size() == 0)
                first = y;
            else
                CHECK(test::same_bits(y, first));
        }
    }
}

}  // namespace

TEST_CASE("VPTQ fast: odd shapes, residuals, outliers, groups, permutation and normalization",
          "[kernels][fast][vptq]") {
    check_vptq_fast(test::random_vptq_layer(vptq_spec(37, 16, 0, 1, 50, 0, false), 1), 2);
    check_vptq_fast(test::random_vptq_layer(vptq_spec(37, 300, 4, 2, 64, 3, true), 3), 4);
    check_vptq_fast(test::random_vptq_layer(vptq_spec(64, 4096, 0, 3, 32, 0, true), 5), 6);
    check_vptq_fast(test::random_vptq_layer(vptq_spec(21, 70000 % 65536, 256, 1, 96, 5, false), 7), 8);
}

TEST_CASE("VPTQ fast: the plain layer's bound, threads, prefill and errors", "[kernels][fast][vptq]") {
    const VptqLayer layer = test::random_vptq_layer(vptq_spec(53, 64, 16, 2, 96, 0, false), 9);
    const VptqFastMatrix m = VptqFastMatrix::from_layer(layer);
    // No outliers, permutation or normalization: the generic fast checks apply to W.
    test::check_fast_gemv(m, dequantize(m), 10);
    Rng rng(11);
    test::check_fast_threads_and_prefill(m, rng);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(191, 1)), shape_error);
    CHECK_THROWS_AS(gemv(m, MatrixXf::Zero(192, 9)), shape_error);
    auto refuse = [](const test::VptqSpec& s, const char* field) {
        const VptqLayer l = test::random_vptq_layer(s, 12);
        CHECK_FALSE(VptqFastMatrix::supported(l));
        CHECK_THROWS_WITH(VptqFastMatrix::from_layer(l), Catch::Contains(field));
    };
    test::VptqSpec six = vptq_spec(24, 16, 0, 1, 32, 0, false);
    six.v = 6;
    refuse(six, "vector_len = 6");
    refuse(vptq_spec(16, 16, 0, 2, 40, 0, false), "group_size = 40");
}
