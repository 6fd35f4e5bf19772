#include <vqlib/hessian/proxy_loss.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

using vqlib::test::normal_matrix;

TEST_CASE("hessian/proxy_loss: the lower-triangle tiles give tr((W - Q) H (W - Q)^T)") {
    // 333 columns: two full 128-column tiles and a ragged one; 300 rows: a ragged row chunk.
    const vqlib::Index R = 300, C = 333;
    const vqlib::MatrixXf W = normal_matrix(R, C, 1);
    const vqlib::MatrixXf Q = W + 0.1f * normal_matrix(R, C, 2);
    const vqlib::MatrixXd X = normal_matrix(C, 500, 3).cast<double>();
    const vqlib::MatrixXd H = 2.0 / 500 * X * X.transpose();
    const vqlib::MatrixXd d = (W - Q).cast<double>();
    const double naive = (d * H * d.transpose()).trace();
    const double loss = vqlib::proxy_loss(W, Q, H);
    CHECK_THAT(loss, Catch::Matchers::WithinRel(naive, 1e-12));
    // Only the lower triangle is read.
    vqlib::MatrixXd lower = H.triangularView<Eigen::Lower>();
    CHECK(vqlib::proxy_loss(W, Q, lower) == loss);
    // A float H is converted once, an expression evaluated: same figure.
    const vqlib::MatrixXf Hf = H.cast<float>();
    CHECK(vqlib::proxy_loss(W, Q, Hf) == vqlib::proxy_loss(W, Q, Hf.cast<double>().eval()));
    CHECK(vqlib::proxy_loss(W, Q, 1.0 * H) == loss);
    CHECK(vqlib::proxy_loss(W, W, H) == 0.0);
    vqlib::set_num_threads(1);
    const double one = vqlib::proxy_loss(W, Q, H);
    vqlib::set_num_threads(2);
    const double two = vqlib::proxy_loss(W, Q, H);
    vqlib::set_num_threads(0);
    CHECK(one == two);
    CHECK_THROWS_AS(vqlib::proxy_loss(W, Q.leftCols(5), H), vqlib::shape_error);
}

TEST_CASE("hessian/proxy_loss_f32: float32 products within float32 rounding of the float64 loss") {
    // An LLM-like layer: heavy input channels (every 37th 8x), correlated inputs, 1000 columns.
    const vqlib::Index R = 260, C = 1000;
    vqlib::MatrixXf W = normal_matrix(R, C, 4);
    vqlib::MatrixXd X = normal_matrix(C, 1200, 5).cast<double>();
    for (vqlib::Index j = 0; j < C; j += 37) X.row(j) *= 8.0;
    X.rowwise() += X.colwise().mean();
    const vqlib::MatrixXd H = 2.0 / 1200 * X * X.transpose();
    const vqlib::MatrixXf Zero = vqlib::MatrixXf::Zero(R, C);
    const vqlib::MatrixXf Q = W + 0.05f * normal_matrix(R, C, 6);
    for (const vqlib::MatrixXf* q : {&Zero, &Q}) {
        const double exact = vqlib::proxy_loss(W, *q, H);
        const double f32 = vqlib::proxy_loss_f32(W, *q, H);
        CHECK(f32 != exact);  // float32 products: not the float64 figure...
        CHECK_THAT(f32, Catch::Matchers::WithinRel(exact, 1e-5));  // ...but within its rounding
        // A float H is read in place: the same figure as a double H rounded to float.
        CHECK(vqlib::proxy_loss_f32(W, *q, H.cast<float>().eval()) == f32);
        vqlib::set_num_threads(1);
        const double one = vqlib::proxy_loss_f32(W, *q, H);
        vqlib::set_num_threads(2);
        const double two = vqlib::proxy_loss_f32(W, *q, H);
        vqlib::set_num_threads(0);
        CHECK(one == two);
    }
    CHECK(vqlib::proxy_loss_f32(W, W, H) == 0.0);
    CHECK_THROWS_AS(vqlib::proxy_loss_f32(W, Q, H.topLeftCorner(10, 10)), vqlib::shape_error);
}
