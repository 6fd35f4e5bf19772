#include <vqlib/transform/incoherent_recipe.hpp>

#include <vqlib/gptq.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

#include <cmath>

namespace {

using vqlib::Index;
using vqlib::MatrixXd;
using vqlib::MatrixXf;

/// H = 2/n X X^T of correlated inputs with two outlier features (the case incoherence is for).
MatrixXd outlier_feature_hessian(Index cols, std::uint64_t seed) {
    MatrixXf x = vqlib::test::normal_matrix(cols, 4 * cols, seed);
    const MatrixXf mixing = vqlib::test::normal_matrix(cols, cols, seed + 1) / std::sqrt(static_cast<float>(cols));
    x = (mixing * x).eval();
    x.row(5) *= 25.0f;
    x.row(cols - 3) *= 10.0f;
    const MatrixXd xd = x.cast<double>();
    return 2.0 / static_cast<double>(x.cols()) * xd * xd.transpose();
}

/// Heavy-tailed weights with a few outlier input columns.
MatrixXf outlier_column_weights(Index rows, Index cols, std::uint64_t seed) {
    MatrixXf w = vqlib::test::student_t_matrix(rows, cols, seed, 4) * 0.02f;
    w.col(1) *= 12.0f;
    w.col(cols / 2) *= 8.0f;
    return w;
}

vqlib::GptqConfig<vqlib::IntGrid> int2_g64() {
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(2, /*symmetric=*/false)};
    config.groups.size = 64;
    return config;
}

}  // namespace

TEST_CASE("incoherent: the restored Q is R_out^T Q' R_in and the loss is the rotated problem's",
          "[transform][incoherent]") {
    const MatrixXf W = outlier_column_weights(64, 128, 11);
    const MatrixXd H = outlier_feature_hessian(128, 12);
    const auto config = int2_g64();
    vqlib::transform::IncoherenceOptions options;
    options.seed = 99;
    MatrixXf Wr_seen;
    MatrixXd Hr_seen;
    const auto r = vqlib::incoherent(W, H, options, [&](const MatrixXf& Wr, const MatrixXd& Hr) {
        Wr_seen = Wr;
        Hr_seen = Hr;
        return vqlib::gptq(Wr, Hr, config);
    });
    // The recipe saw R_out W R_in^T and R_in H R_in^T, built here from the seed independently.
    const vqlib::transform::IncoherenceTransform rotation(64, 128, options);
    MatrixXf Wr = W;
    rotation.transform_weights(Wr);
    MatrixXd Hr = H;
    rotation.transform_hessian(Hr);
    CHECK(vqlib::test::same_bits(Wr_seen, Wr));
    CHECK(vqlib::test::relative_difference(Hr_seen, Hr) == 0.0);
    // The layer lives in the rotated basis; Q is its dequantization rotated back.
    MatrixXf Q = r.result.layer.dequantize();
    const double rotated_loss = vqlib::proxy_loss(Wr, Q, Hr);
    r.rotation.restore_weights(Q);
    CHECK(vqlib::test::relative_difference(r.result.Q, Q) < 1e-6);
    // Orthogonal rotations: the caller's loss equals the rotated problem's.
    CHECK(std::abs(r.result.proxy_loss / rotated_loss - 1) < 1e-5);
    CHECK(std::abs(r.result.proxy_loss / vqlib::proxy_loss(W, r.result.Q, H) - 1) < 1e-12);
    CHECK(r.result.seconds > 0);
}

TEST_CASE("incoherent: INT2 GPTQ on outlier columns loses less in the rotated basis", "[transform][incoherent]") {
    const MatrixXf W = outlier_column_weights(128, 256, 21);
    const MatrixXd H = outlier_feature_hessian(256, 22);
    const auto config = int2_g64();
    const double plain = vqlib::gptq(W, H, config).proxy_loss;
    for (std::uint64_t seed : {1u, 2u, 3u}) {
        vqlib::transform::IncoherenceOptions options;
        options.seed = seed;
        const auto r = vqlib::incoherent(W, H, options,
                                         [&](const MatrixXf& Wr, const MatrixXd& Hr) { return vqlib::gptq(Wr, Hr, config); });
        INFO("seed " << seed << ": incoherent " << r.result.proxy_loss << ", plain " << plain);
        CHECK(r.result.proxy_loss < 0.8 * plain);
    }
}

TEST_CASE("incoherent: shapes are checked, and sizes without a Hadamard transform refused", "[transform][incoherent]") {
    const auto config = int2_g64();
    auto recipe = [&](const MatrixXf& Wr, const MatrixXd& Hr) { return vqlib::gptq(Wr, Hr, config); };
    const MatrixXf W = outlier_column_weights(64, 128, 31);
    CHECK_THROWS_AS(vqlib::incoherent(W, MatrixXd::Identity(64, 64), {}, recipe), vqlib::shape_error);
    CHECK_THROWS_AS(vqlib::incoherent(W, MatrixXd::Identity(128, 64), {}, recipe), vqlib::shape_error);
    const MatrixXf odd = outlier_column_weights(64, 11 * 13, 32);
    CHECK_THROWS_WITH(vqlib::incoherent(odd, MatrixXd::Identity(143, 143), {}, recipe),
                      Catch::Contains("143"));
    // A recipe returning the wrong shape is caught, naming the shapes.
    auto wrong = [&](const MatrixXf& Wr, const MatrixXd& Hr) {
        auto r = vqlib::gptq(Wr, Hr, config);
        r.Q = MatrixXf::Zero(2, 2);
        return r;
    };
    CHECK_THROWS_WITH(vqlib::incoherent(W, outlier_feature_hessian(128, 33), {}, wrong), Catch::Contains("2x2"));
}
