#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/hessian/accumulator.hpp>
#include <vqlib/io/npy.hpp>

#include <catch2/catch.hpp>

#include <limits>

#include "../support/fixtures.hpp"

namespace {

vqlib::MatrixXf random_matrix(vqlib::Index rows, vqlib::Index cols, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    vqlib::MatrixXf m(rows, cols);
    for (vqlib::Index j = 0; j < cols; ++j)
        for (vqlib::Index i = 0; i < rows; ++i) m(i, j) = static_cast<float>(rng.normal());
    return m;
}

double relative_difference(const vqlib::MatrixXd& a, const vqlib::MatrixXd& b) {
    return (a - b).norm() / b.norm();
}

}  // namespace

TEST_CASE("hessian/accumulator: H from the fixture's X equals its H.npy to 1e-6 relative") {
    const auto dir = vqlib::test::reference_layer_dir();
    const vqlib::MatrixXf X = vqlib::load_npy_matrix(dir / "X.npy");
    const vqlib::MatrixXf H_ref = vqlib::load_npy_matrix(dir / "H.npy");
    vqlib::HessianAccumulator acc(X.rows());
    acc.add(X);
    CHECK(acc.tokens() == X.cols());
    const vqlib::MatrixXd H = acc.finalize();
    const vqlib::MatrixXd ref = H_ref.cast<double>();
    CHECK(relative_difference(H, ref) < 1e-6);
    // Elementwise, relative to the largest entry (float32 storage of the fixture).
    CHECK((H - ref).cwiseAbs().maxCoeff() < 1e-6 * ref.cwiseAbs().maxCoeff());
    CHECK(H == H.transpose());
}

TEST_CASE("hessian/accumulator: batches, token rows and merged shards give the same H") {
    const vqlib::MatrixXf X = random_matrix(70, 3000, 1);
    vqlib::HessianAccumulator all(70);
    all.add(X);

    vqlib::HessianAccumulator batches(70);
    batches.add(X.leftCols(1000));
    batches.add(X.middleCols(1000, 1500));
    batches.add(X.rightCols(500));
    CHECK(batches.tokens() == 3000);
    CHECK(relative_difference(batches.finalize(), all.finalize()) < 1e-13);

    vqlib::HessianAccumulator rows(70);
    const vqlib::MatrixXf A = X.transpose();
    rows.add_rows(A);
    CHECK(rows.finalize() == all.finalize());

    vqlib::HessianAccumulator shard1(70), shard2(70);
    shard1.add(X.leftCols(1200));
    shard2.add(X.rightCols(1800));
    shard1.merge(shard2);
    CHECK(shard1.tokens() == 3000);
    CHECK(relative_difference(shard1.finalize(), all.finalize()) < 1e-13);

    // H = 2/n X X^T, computed independently.
    const vqlib::MatrixXd Xd = X.cast<double>();
    const vqlib::MatrixXd direct = 2.0 / 3000.0 * Xd * Xd.transpose();
    CHECK(relative_difference(all.finalize(), direct) < 1e-13);
}

TEST_CASE("hessian/accumulator: bit-identical with 1 and 2 threads") {
    const vqlib::MatrixXf X = random_matrix(200, 1500, 2);
    vqlib::set_num_threads(1);
    vqlib::HessianAccumulator one(200);
    one.add(X);
    vqlib::set_num_threads(2);
    vqlib::HessianAccumulator two(200);
    two.add(X);
    vqlib::set_num_threads(0);
    CHECK(one.finalize() == two.finalize());
}

TEST_CASE("hessian/accumulator: bad input is rejected with a clear error") {
    vqlib::HessianAccumulator acc(8);
    CHECK_THROWS_AS(acc.add(vqlib::MatrixXf::Ones(7, 3)), vqlib::shape_error);
    CHECK_THROWS_WITH(acc.add(vqlib::MatrixXf::Ones(7, 3)), Catch::Contains("7x3") &&
                                                                Catch::Contains("8 rows"));
    vqlib::MatrixXf bad = vqlib::MatrixXf::Ones(8, 4);
    bad(3, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(acc.add(bad), vqlib::numerical_error);
    CHECK_THROWS_WITH(acc.add(bad), Catch::Contains("X(3, 2)"));
    bad(3, 2) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(acc.add(bad), vqlib::numerical_error);
    CHECK(acc.tokens() == 0);
    CHECK_THROWS_AS(acc.finalize(), vqlib::invalid_argument);
    vqlib::HessianAccumulator other(9);
    CHECK_THROWS_AS(acc.merge(other), vqlib::shape_error);
    CHECK_THROWS_AS(vqlib::HessianAccumulator(0), vqlib::invalid_argument);
}
