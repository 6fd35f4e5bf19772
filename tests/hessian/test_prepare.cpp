#include <vqlib/core/rng.hpp>
#include <vqlib/hessian/prepare.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>

namespace {

vqlib::MatrixXd random_hessian(vqlib::Index n, vqlib::Index tokens, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    vqlib::MatrixXd X(n, tokens);
    for (vqlib::Index j = 0; j < tokens; ++j)
        for (vqlib::Index i = 0; i < n; ++i) X(i, j) = rng.normal() * (1.0 + (i % 7));
    return 2.0 / static_cast<double>(tokens) * X * X.transpose();
}

}  // namespace

TEST_CASE("hessian/prepare: U is the upper Cholesky factor of the damped inverse") {
    const vqlib::MatrixXd H = random_hessian(150, 400, 3);
    vqlib::HessianOptions options;
    const auto p = vqlib::prepare_hessian(H, options);
    REQUIRE(p.columns() == 150);
    CHECK(p.attempts == 1);
    CHECK(p.percdamp == options.percdamp);
    CHECK_THAT(p.damp, Catch::Matchers::WithinRel(0.01 * H.diagonal().mean(), 1e-12));
    const vqlib::MatrixXd U = p.U.cast<double>();
    CHECK(U.isUpperTriangular());
    CHECK((U.diagonal().array() > 0).all());
    vqlib::MatrixXd Hd = H;
    Hd.diagonal().array() += p.damp;
    const vqlib::MatrixXd product = U.transpose() * U * Hd;
    CHECK((product - vqlib::MatrixXd::Identity(150, 150)).cwiseAbs().maxCoeff() < 1e-4);
    CHECK_FALSE(p.permuted());
}

TEST_CASE("hessian/prepare: dead columns and act-order") {
    vqlib::MatrixXd H = random_hessian(20, 100, 4);
    H.row(5).setZero();
    H.col(5).setZero();
    vqlib::HessianOptions options;
    options.act_order = true;
    const auto p = vqlib::prepare_hessian(H, options);
    CHECK(p.dead[5]);
    CHECK(std::count(p.dead.begin(), p.dead.end(), true) == 1);
    CHECK(p.permuted());
    // Descending diagonal, with the dead column's diagonal taken as 1 (the reference's order).
    vqlib::MatrixXd Hfix = H;
    Hfix(5, 5) = 1.0;
    for (std::size_t k = 1; k < p.perm.size(); ++k)
        CHECK(Hfix(p.perm[k - 1], p.perm[k - 1]) >= Hfix(p.perm[k], p.perm[k]));
    // U matches the permuted, damped Hessian.
    vqlib::MatrixXd P(20, 20);
    for (vqlib::Index a = 0; a < 20; ++a)
        for (vqlib::Index b = 0; b < 20; ++b) P(a, b) = Hfix(p.perm[a], p.perm[b]);
    P.diagonal().array() += p.damp;
    const vqlib::MatrixXd U = p.U.cast<double>();
    CHECK((U.transpose() * U * P - vqlib::MatrixXd::Identity(20, 20)).cwiseAbs().maxCoeff() < 1e-4);
}

TEST_CASE("hessian/prepare: a failing Cholesky raises the damping step by step") {
    // Singular PSD matrix: with no damping the factorization hits a zero pivot.
    vqlib::MatrixXd H(2, 2);
    H << 1, 1, 1, 1;
    vqlib::HessianOptions options;
    options.percdamp = 0.0;
    const auto p = vqlib::prepare_hessian(H, options);
    CHECK(p.attempts == 2);
    CHECK(p.percdamp == 1e-6);
    CHECK(p.damp == 1e-6);

    options.max_percdamp = 0.0;  // no retries allowed
    CHECK_THROWS_AS(vqlib::prepare_hessian(H, options), vqlib::numerical_error);
}

TEST_CASE("hessian/prepare: bad Hessians are rejected with a clear error") {
    using Catch::Contains;
    // Non-square.
    CHECK_THROWS_AS(vqlib::prepare_hessian(vqlib::MatrixXd::Identity(3, 4)), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::prepare_hessian(vqlib::MatrixXd::Identity(3, 4)), Contains("3x4"));
    // NaN / Inf.
    vqlib::MatrixXd H = vqlib::MatrixXd::Identity(4, 4);
    H(1, 2) = H(2, 1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(vqlib::prepare_hessian(H), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::prepare_hessian(H), Contains("H(2, 1) = nan"));
    H(1, 2) = H(2, 1) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(vqlib::prepare_hessian(H), vqlib::numerical_error);
    // All zero.
    CHECK_THROWS_AS(vqlib::prepare_hessian(vqlib::MatrixXd::Zero(5, 5)), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::prepare_hessian(vqlib::MatrixXd::Zero(5, 5)), Contains("all zero"));
    // Negative diagonal.
    H = vqlib::MatrixXd::Identity(4, 4);
    H(2, 2) = -1.0;
    CHECK_THROWS_WITH(vqlib::prepare_hessian(H), Contains("H(2, 2) = -1"));
    // Not symmetric.
    H = vqlib::MatrixXd::Identity(4, 4);
    H(0, 3) = 0.5;
    CHECK_THROWS_WITH(vqlib::prepare_hessian(H), Contains("symmetric"));
    // A 2x2 minor that is not PSD.
    H << 1, 3, 0, 0, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1;
    CHECK_THROWS_WITH(vqlib::prepare_hessian(H), Contains("not positive semi-definite"));
    // Indefinite with every 2x2 minor fine (eigenvalues 1.9, 1.9, -0.8): Cholesky fails at every
    // damping up to the limit; the message names the size and the damping tried.
    vqlib::MatrixXd A(3, 3);
    A << 1, 0.9, 0.9, 0.9, 1, -0.9, 0.9, -0.9, 1;
    CHECK_THROWS_AS(vqlib::prepare_hessian(A), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::prepare_hessian(A), Contains("3x3") && Contains("percdamp up to 0.1"));
    // Bad options.
    vqlib::HessianOptions options;
    options.percdamp = -0.1;
    CHECK_THROWS_AS(vqlib::prepare_hessian(vqlib::MatrixXd::Identity(2, 2), options),
                    vqlib::invalid_argument);
}

TEST_CASE("hessian/prepare: blocked and parallel, it matches a dense factorization and does not depend on the thread count") {
    // 700 columns: several 192-column Cholesky panels, 384-row panel tasks and inverse blocks,
    // each with a ragged tail.
    const vqlib::Index n = 700;
    vqlib::MatrixXd H = random_hessian(n, 300, 11);  // rank 300: the damping makes it definite
    H.row(17).setZero();
    H.col(17).setZero();
    vqlib::HessianOptions options;
    options.act_order = true;
    vqlib::set_num_threads(1);
    const auto one = vqlib::prepare_hessian(H, options);
    vqlib::set_num_threads(2);
    const auto two = vqlib::prepare_hessian(H, options);
    vqlib::set_num_threads(3);
    const auto three = vqlib::prepare_hessian(H, options);
    vqlib::set_num_threads(0);
    CHECK(one.U == two.U);
    CHECK(one.U == three.U);
    CHECK(one.perm == two.perm);
    CHECK(one.damp == two.damp);

    // The same U from Eigen's unblocked LLT of J P H P^T J and a dense triangular inverse.
    vqlib::MatrixXd P(n, n);
    for (vqlib::Index a = 0; a < n; ++a)
        for (vqlib::Index b = 0; b < n; ++b) P(a, b) = H(one.perm[a], one.perm[b]);
    for (vqlib::Index k = 0; k < n; ++k)
        if (one.perm[k] == 17) P(k, k) = 1.0;
    P.diagonal().array() += one.damp;
    const vqlib::MatrixXd Prev = P.reverse();
    const Eigen::LLT<vqlib::MatrixXd> llt(Prev);
    REQUIRE(llt.info() == Eigen::Success);
    const vqlib::MatrixXd L = llt.matrixL();
    const vqlib::MatrixXd Linv =
        L.triangularView<Eigen::Lower>().solve(vqlib::MatrixXd::Identity(n, n));
    const vqlib::MatrixXd U = Linv.reverse();
    const double scale = U.cwiseAbs().maxCoeff();
    CHECK((one.U.cast<double>() - U.triangularView<Eigen::Upper>().toDenseMatrix()).cwiseAbs().maxCoeff() <
          1e-5 * scale);
    CHECK(one.U.triangularView<Eigen::StrictlyLower>().toDenseMatrix().isZero(0.0f));
}

TEST_CASE("hessian/prepare: a float H, a double H and an expression give the same U") {
    const vqlib::MatrixXf Hf = random_hessian(230, 500, 12).cast<float>();
    const vqlib::MatrixXd Hd = Hf.cast<double>();
    const auto from_float = vqlib::prepare_hessian(Hf);
    const auto from_double = vqlib::prepare_hessian(Hd);
    const auto from_block = vqlib::prepare_hessian(Hd.block(0, 0, 230, 230));
    const auto from_expression = vqlib::prepare_hessian(2.0 * Hd - Hd);
    CHECK(from_float.U == from_double.U);
    CHECK(from_block.U == from_double.U);
    CHECK(from_expression.U == from_double.U);
}

TEST_CASE("hessian/prepare: act-order over units of several columns") {
    const vqlib::MatrixXd H = random_hessian(24, 100, 9);
    vqlib::HessianOptions options;
    options.act_order = true;
    options.act_order_unit = 3;
    const auto p = vqlib::prepare_hessian(H, options);
    REQUIRE(p.permuted());
    // Each unit of 3 columns stays whole and in order; units by descending summed diagonal.
    std::vector<double> sums;
    for (std::size_t k = 0; k < p.perm.size(); k += 3) {
        CHECK(p.perm[k] % 3 == 0);
        CHECK(p.perm[k + 1] == p.perm[k] + 1);
        CHECK(p.perm[k + 2] == p.perm[k] + 2);
        sums.push_back(H(p.perm[k], p.perm[k]) + H(p.perm[k + 1], p.perm[k + 1]) + H(p.perm[k + 2], p.perm[k + 2]));
    }
    CHECK(std::is_sorted(sums.rbegin(), sums.rend()));
    // Unit 1 is GPTQ's column order.
    options.act_order_unit = 1;
    const auto p1 = vqlib::prepare_hessian(H, options);
    for (std::size_t k = 1; k < p1.perm.size(); ++k)
        CHECK(H(p1.perm[k - 1], p1.perm[k - 1]) >= H(p1.perm[k], p1.perm[k]));
    options.act_order_unit = 5;
    CHECK_THROWS_WITH(vqlib::prepare_hessian(H, options), Catch::Contains("act_order_unit = 5") && Catch::Contains("C = 24"));
    options.act_order_unit = 0;
    CHECK_THROWS_WITH(vqlib::prepare_hessian(H, options), Catch::Contains("act_order_unit = 0"));
}
