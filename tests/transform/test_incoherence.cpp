#include <vqlib/core/error.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/transform/incoherence.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

#include <cmath>

namespace {

using vqlib::Index;
using vqlib::MatrixXd;
using vqlib::MatrixXf;
using vqlib::transform::IncoherenceOptions;
using vqlib::transform::IncoherenceTransform;


using vqlib::test::relative_difference;

/// A PSD Hessian 2/n X X^T from correlated inputs with a few outlier features.
MatrixXd random_hessian(Index cols, Index tokens, std::uint64_t seed) {
    MatrixXf x = vqlib::test::normal_matrix(cols, tokens, seed);
    const MatrixXf mixing =
        vqlib::test::normal_matrix(cols, cols, seed + 1) / std::sqrt(static_cast<float>(cols));
    x = (mixing * x).eval();
    x.row(3) *= 20.0f;
    x.row(cols / 2) *= 8.0f;
    const MatrixXd xd = x.cast<double>();
    return 2.0 / static_cast<double>(tokens) * xd * xd.transpose();
}

/// A crude "quantizer": rounding to a grid of step 0.25 (any Q works for the invariance).
MatrixXf fake_quantize(const MatrixXf& w) { return (w * 4.0f).array().round().matrix() / 4.0f; }

}  // namespace

TEST_CASE("transform/incoherence: the proxy loss is invariant and restore inverts transform") {
    const Index rows = 160, cols = 344;  // 20 * 8 and 172 * 2
    const MatrixXf w = vqlib::test::normal_matrix(rows, cols, 1);
    const MatrixXf q = fake_quantize(w);
    const MatrixXd h = random_hessian(cols, 700, 2);
    const IncoherenceTransform it(rows, cols, {.seed = 7});

    MatrixXf w2 = w, q2 = q;
    MatrixXd h2 = h;
    it.transform_weights(w2);
    it.transform_weights(q2);
    it.transform_hessian(h2);
    const double before = vqlib::proxy_loss(w, q, h);
    const double after = vqlib::proxy_loss(w2, q2, h2);
    CHECK(before > 0.0);
    CHECK(std::abs(after - before) < 1e-6 * before);

    // Direct dense check of W' = R_out W R_in^T and H' = R_in H R_in^T.
    const MatrixXd r_out = it.output_rotation()->dense();
    const MatrixXd r_in = it.input_rotation()->dense();
    CHECK(relative_difference(w2, r_out * w.cast<double>() * r_in.transpose()) < 1e-6);
    CHECK(relative_difference(h2, r_in * h * r_in.transpose()) < 1e-12);

    MatrixXf back = w2;
    it.restore_weights(back);
    CHECK(relative_difference(back, w) < 1e-6);
    MatrixXd hback = h2;
    it.restore_hessian(hback);
    CHECK(relative_difference(hback, h) < 1e-12);

    // The float Hessian overload agrees with the double one.
    MatrixXf hf = h.cast<float>();
    it.transform_hessian(hf);
    CHECK(relative_difference(hf, h2) < 1e-6);
    CHECK(std::abs(vqlib::proxy_loss(w2, q2, hf) - before) < 1e-5 * before);

    // Double weights.
    MatrixXd wd = w.cast<double>();
    it.transform_weights(wd);
    CHECK(relative_difference(w2, wd) < 1e-6);
    it.restore_weights(wd);
    CHECK(relative_difference(wd, w.cast<double>()) < 1e-12);
}

TEST_CASE("transform/incoherence: a Llama-2 FFN down-projection width (cols = 11008)") {
    // H = 2/n X X^T is too large to form here (11008^2 doubles); the proxy loss is evaluated as
    // 2/n ||(W - Q) X||^2, whose rotated form uses X' = R_in X (H' = 2/n X' X'^T).
    const Index rows = 64, cols = 11008, tokens = 40;
    const MatrixXf w = vqlib::test::normal_matrix(rows, cols, 3);
    const MatrixXf q = fake_quantize(w);
    const MatrixXf x = vqlib::test::normal_matrix(cols, tokens, 4);
    const IncoherenceTransform it(rows, cols, {.seed = 11});
    MatrixXf w2 = w, q2 = q, x2 = x;
    it.transform_weights(w2);
    it.transform_weights(q2);
    it.transform_inputs(x2);
    auto loss = [&](const MatrixXf& a, const MatrixXf& b, const MatrixXf& inputs) {
        const MatrixXd e = (a - b).cast<double>() * inputs.cast<double>();
        return 2.0 / tokens * e.squaredNorm();
    };
    const double before = loss(w, q, x);
    CHECK(std::abs(loss(w2, q2, x2) - before) < 1e-5 * before);
    it.restore_weights(w2);
    CHECK(relative_difference(w2, w) < 1e-6);
    // R_in on random vectors: norms kept to 1e-6.
    for (Index c = 0; c < tokens; ++c)
        CHECK(std::abs(static_cast<double>(x2.col(c).norm()) / x.col(c).norm() - 1.0) < 1e-6);
}

TEST_CASE("transform/incoherence: outliers are spread out") {
    const Index rows = 128, cols = 512;
    MatrixXf w = vqlib::test::normal_matrix(rows, cols, 5) * 0.01f;
    w(17, 300) = 5.0f;
    w(90, 3) = -4.0f;
    const double mu_before =
        w.cwiseAbs().maxCoeff() * std::sqrt(static_cast<double>(rows * cols)) / w.norm();
    const IncoherenceTransform it(rows, cols, {.seed = 1});
    it.transform_weights(w);
    const double mu_after =
        w.cwiseAbs().maxCoeff() * std::sqrt(static_cast<double>(rows * cols)) / w.norm();
    CHECK(mu_before > 100.0);
    CHECK(mu_after < 6.0);
}

TEST_CASE("transform/incoherence: inputs and outputs, one-sided options, determinism") {
    const Index rows = 48, cols = 96;
    const MatrixXf w = vqlib::test::normal_matrix(rows, cols, 6);
    const MatrixXf x = vqlib::test::normal_matrix(cols, 10, 7);
    const IncoherenceTransform it(rows, cols, {.seed = 3});
    MatrixXf w2 = w, x2 = x;
    it.transform_weights(w2);
    it.transform_inputs(x2);
    MatrixXf y = w2 * x2;
    it.restore_outputs(y);
    CHECK(relative_difference(y, w * x) < 1e-5);

    // Only inputs rotated: W' = W R_in^T, H still rotated.
    const IncoherenceTransform in_only(rows, cols, {.seed = 3, .rotate_outputs = false});
    CHECK(in_only.output_rotation() == nullptr);
    REQUIRE(in_only.input_rotation() != nullptr);
    MatrixXf w3 = w;
    in_only.transform_weights(w3);
    CHECK(relative_difference(
              w3, w.cast<double>() * in_only.input_rotation()->dense().transpose()) < 1e-6);
    // Same seed, same R_in as the two-sided transform.
    CHECK(in_only.input_rotation()->signs() == it.input_rotation()->signs());

    // Only outputs: H untouched, inputs untouched; rows need not be... still a Hadamard size.
    const IncoherenceTransform out_only(rows, cols, {.seed = 3, .rotate_inputs = false});
    MatrixXd h = random_hessian(cols, 200, 8);
    const MatrixXd h0 = h;
    out_only.transform_hessian(h);
    CHECK(h == h0);
    MatrixXf w4 = w;
    out_only.transform_weights(w4);
    CHECK(relative_difference(w4, out_only.output_rotation()->dense() * w.cast<double>()) < 1e-6);

    // Unrotated side may have any size.
    CHECK_NOTHROW(IncoherenceTransform(7, cols, {.seed = 1, .rotate_outputs = false}));
    CHECK_THROWS_AS(IncoherenceTransform(7, cols, {.seed = 1}), vqlib::invalid_argument);

    // Different seeds give different rotations; rows == cols still gives R_out != R_in.
    const IncoherenceTransform sq(64, 64, {.seed = 9});
    CHECK(sq.output_rotation()->signs() != sq.input_rotation()->signs());

    // Thread count does not change anything.
    MatrixXf a = vqlib::test::normal_matrix(256, 1536, 12), b = a;
    MatrixXd ha = random_hessian(1536, 50, 13), hb = ha;
    const IncoherenceTransform big(256, 1536, {.seed = 5});
    vqlib::set_num_threads(1);
    big.transform_weights(a);
    big.transform_hessian(ha);
    vqlib::set_num_threads(2);
    big.transform_weights(b);
    big.transform_hessian(hb);
    vqlib::set_num_threads(0);
    CHECK(a == b);
    CHECK(ha == hb);
}

TEST_CASE("transform/incoherence: shape errors name the shapes") {
    const IncoherenceTransform it(48, 96, {.seed = 1});
    MatrixXf w(96, 48);
    CHECK_THROWS_AS(it.transform_weights(w), vqlib::shape_error);
    CHECK_THROWS_WITH(it.transform_weights(w),
                      Catch::Contains("96x48") && Catch::Contains("48x96"));
    CHECK_THROWS_AS(it.restore_weights(w), vqlib::shape_error);
    MatrixXd h(48, 48);
    CHECK_THROWS_AS(it.transform_hessian(h), vqlib::shape_error);
    CHECK_THROWS_WITH(it.transform_hessian(h),
                      Catch::Contains("48x48") && Catch::Contains("96x96"));
    MatrixXf hf(96, 95);
    CHECK_THROWS_AS(it.transform_hessian(hf), vqlib::shape_error);
    MatrixXf x(48, 3);
    CHECK_THROWS_AS(it.transform_inputs(x), vqlib::shape_error);
    MatrixXf y(96, 3);
    CHECK_THROWS_AS(it.restore_outputs(y), vqlib::shape_error);
    CHECK_THROWS_AS(IncoherenceTransform(0, 96), vqlib::invalid_argument);
    CHECK_THROWS_WITH(IncoherenceTransform(48, 188), Catch::Contains("n = 188"));
}
