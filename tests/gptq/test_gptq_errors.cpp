// Bad input to GPTQ gets a clear vqlib exception naming the argument and its value.
#include <vqlib/core/rng.hpp>
#include <vqlib/gptq.hpp>

#include <catch2/catch.hpp>

#include <limits>

namespace {

struct Layer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

Layer small_layer() {
    vqlib::Rng rng(21);
    Layer l{vqlib::MatrixXf(6, 16), vqlib::MatrixXd()};
    for (vqlib::Index j = 0; j < 16; ++j)
        for (vqlib::Index i = 0; i < 6; ++i) l.W(i, j) = static_cast<float>(rng.normal());
    vqlib::MatrixXd X(16, 64);
    for (vqlib::Index j = 0; j < 64; ++j)
        for (vqlib::Index i = 0; i < 16; ++i) X(i, j) = rng.normal();
    l.H = X * X.transpose() / 32.0;
    return l;
}

const vqlib::GptqConfig<vqlib::IntGrid> int4{vqlib::IntGrid(4, false)};

}  // namespace

TEST_CASE("gptq/errors: NaN or Inf in W or H") {
    using Catch::Contains;
    auto l = small_layer();
    l.W(3, 9) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(vqlib::gptq(l.W, l.H, int4), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::gptq(l.W, l.H, int4), Contains("W(3, 9) = nan"));
    l = small_layer();
    l.W(0, 0) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(vqlib::gptq(l.W, l.H, int4), Contains("W(0, 0) = -inf"));
    l = small_layer();
    l.H(4, 5) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(vqlib::gptq(l.W, l.H, int4), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::gptq(l.W, l.H, int4), Contains("H(4, 5) = inf"));
}

TEST_CASE("gptq/errors: non-square, mismatched, non-PSD and all-zero H") {
    using Catch::Contains;
    const auto l = small_layer();
    CHECK_THROWS_AS(vqlib::gptq(l.W, vqlib::MatrixXd(l.H.leftCols(15)), int4), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::gptq(l.W, vqlib::MatrixXd(l.H.leftCols(15)), int4),
                      Contains("16x15") && Contains("square"));
    CHECK_THROWS_WITH(vqlib::gptq(l.W, vqlib::MatrixXd::Identity(12, 12), int4),
                      Contains("12x12") && Contains("16x16"));
    vqlib::MatrixXd indefinite = l.H;
    indefinite -= 2.0 * l.H.diagonal().maxCoeff() * vqlib::MatrixXd::Identity(16, 16) / 3.0;
    indefinite.diagonal() = l.H.diagonal();
    // Off-diagonal pushed beyond the PSD bound.
    indefinite(1, 2) = indefinite(2, 1) = 2.0 * std::sqrt(l.H(1, 1) * l.H(2, 2));
    CHECK_THROWS_AS(vqlib::gptq(l.W, indefinite, int4), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::gptq(l.W, indefinite, int4), Contains("positive semi-definite"));
    CHECK_THROWS_WITH(vqlib::gptq(l.W, vqlib::MatrixXd::Zero(16, 16), int4), Contains("all zero"));
}

TEST_CASE("gptq/errors: bits out of range and group size not dividing the columns") {
    using Catch::Contains;
    const auto l = small_layer();
    CHECK_THROWS_AS(vqlib::GptqConfig<vqlib::IntGrid>{vqlib::IntGrid(0, false)},
                    vqlib::invalid_argument);
    CHECK_THROWS_WITH(vqlib::IntGrid(33, true), Contains("bits = 33"));
    auto config = int4;
    config.groups.size = 5;
    CHECK_THROWS_AS(vqlib::gptq(l.W, l.H, config), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::gptq(l.W, l.H, config), Contains("group size = 5") && Contains("C = 16"));
}

TEST_CASE("gptq: GPTQ beats round-to-nearest and reports the damping used") {
    const auto l = small_layer();
    auto config = int4;
    config.groups.size = 8;
    const auto g = vqlib::gptq(l.W, l.H, config);
    const auto r = vqlib::rtn(l.W, l.H, config);
    CHECK(g.proxy_loss < r.proxy_loss);
    CHECK(g.percdamp_used == 0.01);
    CHECK(g.cholesky_attempts == 1);
    // RTN without a Hessian gives the same layer (no dead columns here).
    CHECK(vqlib::rtn(l.W, config).Q == r.Q);
}
