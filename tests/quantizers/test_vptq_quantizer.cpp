// Tests of vqlib/quantizers/vptq_quantizer.hpp on single columns: vectors of v rows go to their
// nearest centroid (brute force), the residual stage to the nearest residual centroid of what is
// left, outlier columns use their own codebook and vector length, and the recorded error is w - q.
#include <vqlib/quantizers/vptq_quantizer.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

#include <limits>
#include <vector>

namespace {

using vqlib::Index;
using vqlib::MatrixXf;

Index brute_nearest(const MatrixXf& codebook, const Eigen::VectorXf& x) {
    Index best = 0;
    float best_d = std::numeric_limits<float>::infinity();
    for (Index i = 0; i < codebook.rows(); ++i) {
        const float d = (codebook.row(i).transpose() - x).squaredNorm();
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    return best;
}

}  // namespace

TEST_CASE("VptqQuantizer: nearest centroid, greedy residual, outlier columns", "[quantizers][vptq]") {
    vqlib::VptqLayer layer;
    auto& L = layer.layout;
    L.out_features = 24;
    L.in_features = 6;
    L.vector_len = 4;
    L.num_centroids = 16;
    L.num_res_centroids = 8;
    L.outlier_size = 2;
    L.outlier_vector_len = 2;
    L.outlier_centroids = 8;
    L.group_num = 2;
    L.group_size = 2;
    layer.centroids = vqlib::test::normal_matrix(32, 4, 1);
    layer.res_centroids = vqlib::test::normal_matrix(16, 4, 2, 0.2);
    layer.outlier_centroids = vqlib::test::normal_matrix(8, 2, 3, 3.0);

    vqlib::VptqQuantizer<> quantizer(layer, true, true);
    CHECK(quantizer.row_granularity() == 4);
    const MatrixXf W = vqlib::test::normal_matrix(24, 6, 4);
    const vqlib::Permutation perm{0, 1, 2, 3, 4, 5};
    const std::vector<bool> dead(6, false);
    const MatrixXf U = MatrixXf::Identity(6, 6);
    quantizer.begin(vqlib::SolveSetup{W, W, perm, dead, U, 6});
    MatrixXf Q(24, 6);
    for (Index p = 0; p < 6; ++p) {
        MatrixXf q(24, 1);
        quantizer.quantize(vqlib::StepView{p, 1, U.block(p, p, 1, 1)}, 0, W.col(p), q);
        Q.col(p) = q;
    }
    // Outlier columns 0, 1: vectors of 2 rows against the outlier codebook.
    for (Index p = 0; p < 2; ++p)
        for (Index r = 0; r < 12; ++r) {
            const Eigen::VectorXf x = W.block(2 * r, p, 2, 1);
            const Index i = brute_nearest(layer.outlier_centroids, x);
            CHECK(layer.outlier_indices[static_cast<std::size_t>(r * 2 + p)] == i);
            CHECK(Q.block(2 * r, p, 2, 1).isApprox(layer.outlier_centroids.row(i).transpose()));
        }
    // Group columns: group (p - 2) / 2, vectors of 4 rows, two-stage lookup.
    for (Index p = 2; p < 6; ++p) {
        const Index g = (p - 2) / 2, c = (p - 2) % 2;
        const MatrixXf C = layer.centroids.middleRows(g * 16, 16);
        const MatrixXf R = layer.res_centroids.middleRows(g * 8, 8);
        for (Index r = 0; r < 6; ++r) {
            const Eigen::VectorXf x = W.block(4 * r, p, 4, 1);
            const Index i = brute_nearest(C, x);
            const Index j = brute_nearest(R, x - C.row(i).transpose());
            const auto at = static_cast<std::size_t>((g * 6 + r) * 2 + c);
            CHECK(layer.indices[at] == i);
            CHECK(layer.res_indices[at] == j);
            CHECK(Q.block(4 * r, p, 4, 1).isApprox((C.row(i) + R.row(j)).transpose()));
        }
    }
    CHECK(quantizer.error().isApprox(W - Q));
    CHECK(layer.dequantize_stored().isApprox(Q));
}

TEST_CASE("VptqQuantizer rejects inconsistent setups", "[quantizers][vptq]") {
    using Catch::Matchers::Contains;
    vqlib::VptqLayer layer;
    layer.layout.out_features = 8;
    layer.layout.in_features = 4;
    layer.layout.vector_len = 4;
    layer.layout.num_centroids = 4;
    layer.layout.group_size = 4;
    layer.centroids = vqlib::test::normal_matrix(4, 4, 1);
    CHECK_THROWS_WITH(vqlib::VptqQuantizer<>(layer, true), Contains("no residual codebook"));
    vqlib::VptqQuantizer<> quantizer(layer, false);
    const MatrixXf W = vqlib::test::normal_matrix(8, 4, 2);
    const vqlib::Permutation perm{1, 0, 2, 3};
    const std::vector<bool> dead(4, false);
    const MatrixXf U = MatrixXf::Identity(4, 4);
    CHECK_THROWS_WITH(quantizer.begin(vqlib::SolveSetup{W, W, perm, dead, U, 4}),
                      Contains("stored column order"));
    layer.layout.group_size = 3;
    CHECK_THROWS_WITH(vqlib::VptqQuantizer<>(layer, false), Contains("in_features = 4"));
}
