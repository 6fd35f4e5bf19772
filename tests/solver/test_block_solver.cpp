#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/quantizers/scalar_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

#include <atomic>
#include <cmath>
#include <limits>

namespace {

vqlib::MatrixXf random_weight(vqlib::Index rows, vqlib::Index cols, std::uint64_t seed) {
    return vqlib::test::student_t_matrix(rows, cols, seed, 4);
}

vqlib::MatrixXd random_hessian(vqlib::Index n, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    vqlib::MatrixXf X(n, 3 * n);
    for (vqlib::Index j = 0; j < X.cols(); ++j) {
        double shared = rng.normal();
        for (vqlib::Index i = 0; i < n; ++i)
            X(i, j) = static_cast<float>(0.6 * shared + rng.normal() * (1 + i % 5));
    }
    vqlib::HessianAccumulator acc(n);
    acc.add(X);
    return acc.finalize();
}

/// A vector quantizer stand-in: D columns per step, each coordinate rounded to a fixed grid of
/// step 0.25 (enough to exercise the D-column update paths).
struct PairRounding {
    vqlib::Index width = 2;
    vqlib::Index step_width() const { return width; }
    vqlib::Index row_granularity() const { return 1; }
    void begin(const vqlib::SolveSetup&) {}
    void begin_block(const vqlib::BlockView&) {}
    void quantize(const vqlib::StepView&, vqlib::Index, vqlib::ConstMatrixRef w,
                  vqlib::MatrixRef q) const {
        q = (w.array() * 4.0f).round() / 4.0f;
    }
};

double damped_loss(const vqlib::MatrixXf& W, const vqlib::MatrixXf& Q, vqlib::MatrixXd H,
                   double damp) {
    H.diagonal().array() += damp;
    return vqlib::proxy_loss(W, Q, H);
}

}  // namespace

static_assert(vqlib::QuantizerPolicy<PairRounding>);
static_assert(!vqlib::QuantizerPolicy<int>);
static_assert(!vqlib::ErrorUpdatePolicy<PairRounding>);

TEST_CASE("solver/block_solver: the sum of E^2 is the damped proxy loss (GPTQ invariant)") {
    const vqlib::MatrixXf W = random_weight(40, 96, 10);
    const vqlib::MatrixXd H = random_hessian(96, 11);
    const auto prepared = vqlib::prepare_hessian(H);
    vqlib::ScalarQuantizer<vqlib::IntGrid> quantizer(vqlib::IntGrid(3, false), {32, false});
    vqlib::SolverOptions options;
    options.block_size = 32;  // several blocks, so the lazy update is exercised
    const auto r = vqlib::BlockSolver<vqlib::DiagonalUpdate>(options).run(W, prepared, quantizer);
    CHECK(r.stats.blocks == 3);
    CHECK(r.stats.steps == 96);
    CHECK_THAT(r.stats.error_sum,
               Catch::Matchers::WithinRel(damped_loss(W, r.Q, H, prepared.damp), 1e-4));
    // With one grid per row, the block size changes the summation order only. (With groups it
    // does more: a group starting inside a block is fitted on the block-start weights.)
    vqlib::ScalarQuantizer<vqlib::IntGrid> row32(vqlib::IntGrid(3, false));
    vqlib::ScalarQuantizer<vqlib::IntGrid> row128(vqlib::IntGrid(3, false));
    const auto r32 = vqlib::BlockSolver<vqlib::DiagonalUpdate>(options).run(W, prepared, row32);
    const auto r128 = vqlib::BlockSolver<vqlib::DiagonalUpdate>().run(W, prepared, row128);
    CHECK_THAT(r128.stats.error_sum, Catch::Matchers::WithinRel(r32.stats.error_sum, 1e-4));
    CHECK((r128.Q - r32.Q).cwiseAbs().maxCoeff() < 1e-3f);
}

TEST_CASE("solver/block_solver: the exact D-column update keeps the invariant, the diagonal one "
          "does not") {
    const vqlib::MatrixXf W = random_weight(30, 64, 12);
    const vqlib::MatrixXd H = random_hessian(64, 13);
    const auto prepared = vqlib::prepare_hessian(H);
    PairRounding pairs;
    const auto exact = vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, prepared, pairs);
    const auto diagonal = vqlib::BlockSolver<vqlib::DiagonalUpdate>().run(W, prepared, pairs);
    const double exact_true = damped_loss(W, exact.Q, H, prepared.damp);
    const double diagonal_true = damped_loss(W, diagonal.Q, H, prepared.damp);
    CHECK_THAT(exact.stats.error_sum, Catch::Matchers::WithinRel(exact_true, 1e-4));
    CHECK(std::abs(diagonal.stats.error_sum - diagonal_true) > 1e-3 * diagonal_true);
    // Round-to-nearest (no feedback) is worse than either.
    const auto rtn = vqlib::BlockSolver<vqlib::NoFeedback>().run(W, prepared, pairs);
    const vqlib::MatrixXf rounded = (W.array() * 4.0f).round() / 4.0f;
    CHECK(rtn.Q == rounded);
    CHECK(damped_loss(W, rtn.Q, H, prepared.damp) > exact_true);
}

TEST_CASE("solver/block_solver: bit-identical results with 1 and 2 threads") {
    const vqlib::MatrixXf W = random_weight(300, 128, 14);  // 3 row chunks
    const vqlib::MatrixXd H = random_hessian(128, 15);
    const auto prepared = vqlib::prepare_hessian(H);
    auto run = [&](int threads) {
        vqlib::set_num_threads(threads);
        vqlib::ScalarQuantizer<vqlib::IntGrid> q(vqlib::IntGrid(4, false), {64, false});
        vqlib::SolverOptions options;
        options.block_size = 64;
        auto r = vqlib::BlockSolver<vqlib::DiagonalUpdate>(options).run(W, prepared, q);
        vqlib::set_num_threads(0);
        return r;
    };
    const auto one = run(1);
    const auto two = run(2);
    CHECK(one.Q == two.Q);
    CHECK(one.stats.error_sum == two.stats.error_sum);
}

TEST_CASE("solver/block_solver: shape and value errors") {
    const vqlib::MatrixXd H = random_hessian(32, 16);
    const auto prepared = vqlib::prepare_hessian(H);
    vqlib::MatrixXf W = random_weight(8, 32, 17);
    PairRounding pairs;
    vqlib::BlockSolver<vqlib::ExactUpdate> solver;

    const vqlib::MatrixXf wrong = random_weight(8, 30, 18);
    CHECK_THROWS_AS(solver.run(wrong, prepared, pairs), vqlib::shape_error);
    CHECK_THROWS_WITH(solver.run(wrong, prepared, pairs), Catch::Contains("8x30"));

    PairRounding triples{3};
    CHECK_THROWS_WITH(solver.run(W, prepared, triples), Catch::Contains("D = 3"));

    vqlib::SolverOptions options;
    options.block_size = 5;
    CHECK_THROWS_AS(vqlib::BlockSolver<vqlib::ExactUpdate>(options).run(W, prepared, pairs),
                    vqlib::shape_error);
    options.block_size = 0;
    CHECK_THROWS_AS(vqlib::BlockSolver<vqlib::ExactUpdate>{options}, vqlib::invalid_argument);

    W(2, 7) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(solver.run(W, prepared, pairs), vqlib::numerical_error);
    CHECK_THROWS_WITH(solver.run(W, prepared, pairs), Catch::Contains("W(2, 7)"));
}

namespace {

/// A mock linear-algebra backend: counts its calls and computes c -= a * b with a plain triple
/// loop in double (so its results differ from Eigen's float GEMM only by rounding).
struct CountingLinearAlgebra {
    static inline std::atomic<long> calls{0};
    static inline std::atomic<long> rank_one_calls{0};
    static const char* name() { return "counting"; }
    static void subtract_product(vqlib::MatrixRef c, vqlib::ConstMatrixRef a,
                                 vqlib::ConstMatrixRef b) {
        REQUIRE(a.rows() == c.rows());
        REQUIRE(b.cols() == c.cols());
        REQUIRE(a.cols() == b.rows());
        ++calls;
        if (a.cols() == 1) ++rank_one_calls;
        for (vqlib::Index j = 0; j < c.cols(); ++j)
            for (vqlib::Index i = 0; i < c.rows(); ++i) {
                double s = 0.0;
                for (vqlib::Index k = 0; k < a.cols(); ++k) s += double(a(i, k)) * double(b(k, j));
                c(i, j) = static_cast<float>(c(i, j) - s);
            }
    }
};
static_assert(vqlib::LinearAlgebraBackend<CountingLinearAlgebra>);
static_assert(!vqlib::LinearAlgebraBackend<PairRounding>);

}  // namespace

TEST_CASE("solver/block_solver: a mock linear-algebra backend drives the solver") {
    // 96 columns in blocks of 32, one row chunk: each step but the last of a block updates the
    // rest of its block (31 per block), and each block but the last updates the later columns.
    const vqlib::MatrixXf W = random_weight(24, 96, 31);
    const vqlib::MatrixXd H = random_hessian(96, 32);
    const auto prepared = vqlib::prepare_hessian(H);
    vqlib::SolverOptions options;
    options.block_size = 32;
    vqlib::ScalarQuantizer<vqlib::IntGrid> cpu_q(vqlib::IntGrid(3, false), {});
    vqlib::ScalarQuantizer<vqlib::IntGrid> mock_q(vqlib::IntGrid(3, false), {});
    const auto cpu = vqlib::BlockSolver<vqlib::ExactUpdate>(options).run(W, prepared, cpu_q);
    CountingLinearAlgebra::calls = 0;
    CountingLinearAlgebra::rank_one_calls = 0;
    const auto mock =
        vqlib::BlockSolver<vqlib::ExactUpdate, CountingLinearAlgebra>(options).run(W, prepared, mock_q);
    CHECK(CountingLinearAlgebra::calls == 3 * 31 + 2);
    CHECK(CountingLinearAlgebra::rank_one_calls == 3 * 31);
    // The same grid decisions up to rounding of the products: nearly every code equal, and the
    // solver's invariant (sum E^2 = damped proxy loss) holds with the mock too.
    const auto differing = (cpu.Q.array() != mock.Q.array()).count();
    CHECK(differing <= W.size() / 100);
    CHECK_THAT(mock.stats.error_sum,
               Catch::Matchers::WithinRel(damped_loss(W, mock.Q, H, prepared.damp), 1e-3));
    // The decoded layer is the solver's own Q.
    CHECK(mock_q.layer().dequantize() == mock.Q);
}
