#include <vqlib/core/error.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/transform/hadamard_matrix.hpp>
#include <vqlib/transform/hadamard_transform.hpp>
#include <vqlib/transform/randomized_hadamard.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

#include <cmath>
#include <span>
#include <vector>

namespace {

using vqlib::Index;
using vqlib::MatrixXd;
using vqlib::MatrixXf;
using vqlib::transform::HadamardTransform;
using vqlib::transform::OddFactorPolicy;
using vqlib::transform::RandomizedHadamard;


using vqlib::test::relative_difference;

/// Sizes with a moderate dense matrix: powers of two and m * 2^k for each supported base m.
std::vector<Index> dense_sizes() {
    std::vector<Index> sizes;
    for (Index n = 1; n <= 512; n *= 2) sizes.push_back(n);
    for (Index m : {12, 20, 28, 36, 52, 60, 92, 100, 108, 116, 124, 140, 156, 172})
        for (Index p : {1, 2}) sizes.push_back(m * p);
    sizes.push_back(172 * 4);
    return sizes;
}

/// Large sizes checked on random vectors only.
const std::vector<Index> kLargeSizes = {2048,  4096, 16384, 11008, 14336, 13824,
                                        17920, 9984, 6144,  5120,  22016};

}  // namespace

TEST_CASE("transform/hadamard_transform: factorizations of LLM widths") {
    struct Case {
        Index n, m, p;
    };
    for (const Case& c : {Case{4096, 1, 4096}, Case{11008, 172, 64}, Case{14336, 28, 512},
                          Case{13824, 108, 128}, Case{17920, 140, 128}, Case{22016, 172, 128},
                          Case{12, 12, 1}, Case{40, 20, 2}, Case{5120, 20, 256}, Case{1, 1, 1}}) {
        const auto f = vqlib::transform::factor_hadamard_size(c.n);
        INFO("n = " << c.n);
        REQUIRE(f.has_value());
        CHECK(f->base_order == c.m);
        CHECK(f->power_of_two == c.p);
        CHECK_FALSE(f->hartley);
        const HadamardTransform t(c.n);
        CHECK(t.size() == c.n);
        CHECK(t.base_order() == c.m);
        CHECK(t.is_hadamard());
    }
    CHECK(HadamardTransform(11008).description() ==
          "172 (Goethals-Seidel array of four circulants of order 43) x FWHT(64)");
    CHECK_FALSE(vqlib::transform::is_hadamard_size(6));
    CHECK_FALSE(vqlib::transform::is_hadamard_size(0));
    CHECK(vqlib::transform::is_hadamard_size(11008));
}

TEST_CASE(
    "transform/hadamard_transform: dense T is (M kron H_P)/sqrt(n), orthogonal, +-1/sqrt(n)") {
    for (Index n : dense_sizes()) {
        const HadamardTransform t(n);
        const MatrixXd d = t.dense();
        INFO("n = " << n << ": " << t.description());
        // T T^T as the transform of T^T's columns (no n^3 product).
        MatrixXd ttt = d.transpose();
        t.apply_columns(ttt);
        CHECK((ttt - MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff() < 1e-12);
        CHECK(
            ((d.cwiseAbs().array() - 1.0 / std::sqrt(static_cast<double>(n))).abs() < 1e-12).all());
        // Independent construction from the definition.
        const Index m = t.base_order(), p = t.power_of_two();
        const MatrixXd base = vqlib::transform::hadamard_matrix(m).cast<double>();
        const MatrixXd sylvester = vqlib::transform::detail::sylvester_matrix(p).cast<double>();
        MatrixXd expected(n, n);
        for (Index i = 0; i < m; ++i)
            for (Index k = 0; k < m; ++k)
                expected.block(i * p, k * p, p, p) = base(i, k) * sylvester;
        expected /= std::sqrt(static_cast<double>(n));
        CHECK((d - expected).cwiseAbs().maxCoeff() < 1e-12);

        // Float: R R^T = I to 1e-6, and transpose = inverse.
        MatrixXf f = MatrixXf::Identity(n, n);
        t.apply_columns(f);
        MatrixXf fft = f.transpose();
        t.apply_columns(fft);
        CHECK((fft - MatrixXf::Identity(n, n)).cwiseAbs().maxCoeff() < 1e-6f);
        t.apply_transpose_columns(f);
        CHECK((f - MatrixXf::Identity(n, n)).cwiseAbs().maxCoeff() < 1e-6);
        CHECK((f - MatrixXf::Identity(n, n)).colwise().norm().maxCoeff() < 1e-6);
    }
}

TEST_CASE("transform/hadamard_transform: R R^T = I in float up to n = 4096") {
    // R (dense, float) from the transform of the identity; R R^T from the transform of R^T's
    // columns: O(n^2 log n) work instead of a dense n^3 product.
    for (Index n : {Index{1024}, Index{2048}, Index{4096}, Index{12 * 256}, Index{20 * 128},
                    Index{28 * 128}}) {
        const RandomizedHadamard r(n, static_cast<std::uint64_t>(n));
        MatrixXf d = MatrixXf::Identity(n, n);
        r.apply_columns(d);
        INFO("n = " << n << ": " << r.hadamard().description());
        const float expected = 1.0f / std::sqrt(static_cast<float>(n));
        CHECK(((d.cwiseAbs().array() - expected).abs() < 1e-6f * expected).all());
        MatrixXf rrt = d.transpose();
        r.apply_columns(rrt);
        CHECK((rrt - MatrixXf::Identity(n, n)).cwiseAbs().maxCoeff() < 1e-6f);
    }
}

TEST_CASE("transform/hadamard_transform: large sizes preserve norms, inverse and inner products") {
    for (Index n : kLargeSizes) {
        const HadamardTransform t(n);
        INFO("n = " << n << ": " << t.description());
        MatrixXf x = vqlib::test::normal_matrix(n, 3, static_cast<std::uint64_t>(n));
        const MatrixXf y0 = vqlib::test::normal_matrix(n, 3, static_cast<std::uint64_t>(n) + 1);
        MatrixXf tx = x;
        t.apply_columns(tx);
        for (Index c = 0; c < 3; ++c)
            CHECK(std::abs(static_cast<double>(tx.col(c).norm()) / x.col(c).norm() - 1.0) < 1e-6);
        // <T x, y> = <x, T^T y>: apply_transpose is the adjoint.
        MatrixXf ty = y0;
        t.apply_transpose_columns(ty);
        const double lhs = tx.cast<double>().cwiseProduct(y0.cast<double>()).sum();
        const double rhs = x.cast<double>().cwiseProduct(ty.cast<double>()).sum();
        CHECK(std::abs(lhs - rhs) < 1e-5 * x.norm() * y0.norm());
        // Gram matrix preserved (orthogonality on a subspace).
        const MatrixXd g0 = x.cast<double>().transpose() * x.cast<double>();
        const MatrixXd g1 = tx.cast<double>().transpose() * tx.cast<double>();
        CHECK((g1 - g0).cwiseAbs().maxCoeff() < 1e-5 * g0.cwiseAbs().maxCoeff());
        t.apply_transpose_columns(tx);
        CHECK(relative_difference(tx, x) < 1e-6);
        // Float against double.
        MatrixXd xd = x.cast<double>();
        t.apply_columns(xd);
        MatrixXf again = x;
        t.apply_columns(again);
        CHECK(relative_difference(again, xd) < 1e-6);
        // Vector overloads agree with the matrix ones bit for bit.
        std::vector<float> v(x.col(0).data(), x.col(0).data() + n);
        t.apply(std::span<float>(v));
        CHECK(std::equal(v.begin(), v.end(), again.col(0).data()));
        t.apply_transpose(std::span<float>(v));
        CHECK(relative_difference(Eigen::Map<vqlib::VectorXf>(v.data(), n), x.col(0)) < 1e-6);
    }
}

TEST_CASE("transform/hadamard_transform: row transforms equal column transforms of the transpose") {
    // 16384: slabs of 8 rows (a partial one of 5 for 37 rows); 376: the Hartley fallback.
    for (Index n :
         {Index{64}, Index{12 * 8}, Index{4096}, Index{11008}, Index{16384}, Index{376}}) {
        const HadamardTransform t(n, OddFactorPolicy::hartley_fallback);
        for (Index rows : {1, 37, 70}) {
            const MatrixXf a = vqlib::test::normal_matrix(rows, n, static_cast<std::uint64_t>(n + rows));
            MatrixXf by_rows = a;
            t.apply_rows(by_rows);
            MatrixXf by_cols = a.transpose();
            t.apply_columns(by_cols);
            INFO("n = " << n << ", rows = " << rows);
            CHECK(by_rows == by_cols.transpose());
            t.apply_transpose_rows(by_rows);
            MatrixXf back = by_cols;
            t.apply_transpose_columns(back);
            CHECK(by_rows == back.transpose());
            CHECK(relative_difference(by_rows, a) < 1e-6);
        }
        // Double precision, with a random-sign transform on both paths.
        const RandomizedHadamard r(n, 5, OddFactorPolicy::hartley_fallback);
        const MatrixXd ad = vqlib::test::normal_matrix(9, n, 77).cast<double>();
        MatrixXd rows_d = ad, cols_d = ad.transpose();
        r.apply_rows(rows_d);
        r.apply_columns(cols_d);
        CHECK(rows_d == cols_d.transpose());
        r.apply_inverse_rows(rows_d);
        r.apply_inverse_columns(cols_d);
        CHECK(rows_d == cols_d.transpose());
        CHECK(relative_difference(rows_d, ad) < 1e-14);
    }
    // Blocks of a larger matrix (outer stride != rows) work in place.
    const HadamardTransform t(20);
    MatrixXf big = vqlib::test::normal_matrix(50, 40, 3);
    const MatrixXf copy = big;
    t.apply_rows(big.block(5, 10, 30, 20));
    t.apply_columns(big.block(10, 3, 20, 4));
    MatrixXf expected = copy;
    MatrixXf block = copy.block(5, 10, 30, 20);
    t.apply_rows(block);
    expected.block(5, 10, 30, 20) = block;
    MatrixXf block2 = expected.block(10, 3, 20, 4);
    t.apply_columns(block2);
    expected.block(10, 3, 20, 4) = block2;
    CHECK(big == expected);
}

TEST_CASE("transform/hadamard_transform: the Hartley fallback is orthogonal but not Hadamard") {
    for (Index n : {3, 6, 188, 94 * 4, 47 * 2, 7}) {
        INFO("n = " << n);
        CHECK_THROWS_AS(HadamardTransform(n), vqlib::invalid_argument);
        const HadamardTransform t(n, OddFactorPolicy::hartley_fallback);
        CHECK_FALSE(t.is_hadamard());
        const MatrixXd d = t.dense();
        CHECK((d * d.transpose() - MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff() < 1e-12);
        CHECK(d.cwiseAbs().maxCoeff() <= std::sqrt(2.0 / static_cast<double>(n)) + 1e-12);
        MatrixXf x = vqlib::test::normal_matrix(n, 2, 5);
        const MatrixXf x0 = x;
        t.apply_columns(x);
        t.apply_transpose_columns(x);
        CHECK(relative_difference(x, x0) < 1e-6);
    }
    // Where a Hadamard factorization exists, the policy changes nothing.
    CHECK(HadamardTransform(11008, OddFactorPolicy::hartley_fallback).is_hadamard());
}

TEST_CASE("transform/hadamard_transform: unsupported sizes and shape mismatches throw") {
    CHECK_THROWS_AS(HadamardTransform(0), vqlib::invalid_argument);
    CHECK_THROWS_AS(HadamardTransform(-4), vqlib::invalid_argument);
    CHECK_THROWS_AS(HadamardTransform(6), vqlib::invalid_argument);
    CHECK_THROWS_WITH(HadamardTransform(6), Catch::Contains("n = 6"));
    CHECK_THROWS_WITH(HadamardTransform(188 * 2), Catch::Contains("n = 376"));
    CHECK(HadamardTransform(188 * 64).base_order() == 752);  // 47 * 16: Paley I (q = 751)
    CHECK_THROWS_AS(RandomizedHadamard(6, 1), vqlib::invalid_argument);

    const HadamardTransform t(12);
    std::vector<float> wrong(11);
    CHECK_THROWS_AS(t.apply(std::span<float>(wrong)), vqlib::shape_error);
    CHECK_THROWS_WITH(t.apply(std::span<float>(wrong)),
                      Catch::Contains("11 elements") && Catch::Contains("n = 12"));
    MatrixXf a(11, 12);
    CHECK_THROWS_AS(t.apply_columns(a), vqlib::shape_error);
    CHECK_THROWS_WITH(t.apply_columns(a), Catch::Contains("11x12"));
    MatrixXf b(12, 11);
    CHECK_THROWS_AS(t.apply_rows(b), vqlib::shape_error);
    CHECK_THROWS_WITH(t.apply_rows(b), Catch::Contains("12x11"));
    // Empty batches are fine.
    MatrixXf empty(12, 0);
    t.apply_columns(empty);
    MatrixXf no_rows(0, 12);
    t.apply_rows(no_rows);
}

TEST_CASE("transform/randomized_hadamard: R = T diag(s), signs from the seed only") {
    const RandomizedHadamard r(96, 42);
    const RandomizedHadamard same(96, 42);
    const RandomizedHadamard other(96, 43);
    CHECK(r.signs() == same.signs());
    CHECK(r.signs() != other.signs());
    int plus = 0;
    for (Index i = 0; i < 96; ++i) {
        CHECK(r.signs()[static_cast<std::size_t>(i)] == RandomizedHadamard::sign(42, i));
        plus += r.signs()[static_cast<std::size_t>(i)] > 0;
    }
    CHECK(plus > 30);
    CHECK(plus < 66);
    // Pinned values: the sign stream is part of the format (only the seed is stored).
    std::string pinned;
    for (Index i = 0; i < 24; ++i) pinned += RandomizedHadamard::sign(0, i) > 0 ? '+' : '-';
    CHECK(pinned == "-++-+++-+-+-----+-+----+");

    const MatrixXd d = r.dense();
    MatrixXd expected = r.hadamard().dense();
    for (Index j = 0; j < 96; ++j) expected.col(j) *= r.signs()[static_cast<std::size_t>(j)];
    CHECK((d - expected).cwiseAbs().maxCoeff() < 1e-15);
    CHECK((d * d.transpose() - MatrixXd::Identity(96, 96)).cwiseAbs().maxCoeff() < 1e-12);

    // Inverses on vectors, columns and rows.
    MatrixXf x = vqlib::test::normal_matrix(96, 5, 8);
    const MatrixXf x0 = x;
    r.apply_columns(x);
    CHECK(relative_difference(x, d * x0.cast<double>()) < 1e-6);
    r.apply_inverse_columns(x);
    CHECK(relative_difference(x, x0) < 1e-6);
    MatrixXf rows = x0.transpose();
    r.apply_rows(rows);
    CHECK(relative_difference(rows, x0.transpose().cast<double>() * d.transpose()) < 1e-6);
    r.apply_inverse_rows(rows);
    CHECK(relative_difference(rows, x0.transpose()) < 1e-6);
    std::vector<double> v(x0.col(1).data(), x0.col(1).data() + 96);
    r.apply(std::span<double>(v));
    CHECK(relative_difference(Eigen::Map<vqlib::VectorXd>(v.data(), 96),
                              d * x0.col(1).cast<double>()) < 1e-12);
    r.apply_inverse(std::span<double>(v));
    CHECK(relative_difference(Eigen::Map<vqlib::VectorXd>(v.data(), 96), x0.col(1).cast<double>()) <
          1e-14);
}

TEST_CASE(
    "transform/randomized_hadamard: 11008 orthogonal on random vectors, bit-identical across "
    "threads") {
    const RandomizedHadamard r(11008, 2024);
    MatrixXf x = vqlib::test::normal_matrix(11008, 4, 9);
    const MatrixXf x0 = x;
    r.apply_columns(x);
    for (Index c = 0; c < 4; ++c)
        CHECK(std::abs(static_cast<double>(x.col(c).norm()) / x0.col(c).norm() - 1.0) < 1e-6);
    r.apply_inverse_columns(x);
    CHECK(relative_difference(x, x0) < 1e-6);

    const MatrixXf w = vqlib::test::normal_matrix(100, 11008, 10);
    const MatrixXf wc = vqlib::test::normal_matrix(11008, 24, 11);
    MatrixXf rows1 = w, rows2 = w, cols1 = wc, cols2 = wc;
    vqlib::set_num_threads(1);
    r.apply_rows(rows1);
    r.apply_columns(cols1);
    vqlib::set_num_threads(2);
    r.apply_rows(rows2);
    r.apply_columns(cols2);
    vqlib::set_num_threads(0);
    CHECK(rows1 == rows2);
    CHECK(cols1 == cols2);
    MatrixXf rows3 = w;
    r.apply_rows(rows3);
    CHECK(rows1 == rows3);
}
