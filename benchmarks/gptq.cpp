// GPTQ's stages on a 4096 x 4096 layer, each next to an Eigen GEMM of the same flop count run in
// the same process: Hessian accumulation (float64), Hessian preparation (Cholesky + triangular
// inverse, float64; also at 11008 columns), the block solver (float32), the exact proxy loss, and
// the public gptq() call end to end. Run with --benchmark_min_time=... as needed;
// the ratios printed at the end are the figures to quote.
#include <vqlib/gptq.hpp>

#include <benchmark/benchmark.h>

#include "ratio_reporter.hpp"

#include <string>

namespace {

constexpr vqlib::Index kColumns = 4096;
constexpr vqlib::Index kRows = 4096;
constexpr vqlib::Index kTokens = 2048;

template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> random_matrix(vqlib::Index r, vqlib::Index c,
                                                                      std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> m(r, c);
    for (vqlib::Index j = 0; j < c; ++j)
        for (vqlib::Index i = 0; i < r; ++i) m(i, j) = static_cast<Scalar>(rng.normal());
    return m;
}

/// An Eigen GEMM (m x k) * (k x n), parallelized by vqlib's fixed column chunks like the kernels
/// it is compared with (Eigen's own threading is off inside vqlib::parallel_for).
template <class Scalar>
void gemm_baseline(benchmark::State& state, vqlib::Index m, vqlib::Index n, vqlib::Index k) {
    using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    const Matrix a = random_matrix<Scalar>(m, k, 1);
    const Matrix b = random_matrix<Scalar>(k, n, 2);
    Matrix c(m, n);
    for (auto _ : state) {
        vqlib::parallel_for_ranges(n, 256, [&](vqlib::Index j0, vqlib::Index j1) {
            c.middleCols(j0, j1 - j0).noalias() = a * b.middleCols(j0, j1 - j0);
        });
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
}

// Hessian accumulation: the lower triangle of X X^T, C^2 T multiply-adds.
void BM_HessianAccumulate(benchmark::State& state) {
    const vqlib::MatrixXf X = random_matrix<float>(kColumns, kTokens, 3);
    for (auto _ : state) {
        vqlib::HessianAccumulator acc(kColumns);
        acc.add(X);
        benchmark::DoNotOptimize(acc);
    }
    state.counters["GFLOP/s"] = benchmark::Counter(
        1.0 * kColumns * kColumns * kTokens, benchmark::Counter::kIsIterationInvariantRate,
        benchmark::Counter::kIs1000);
    state.SetLabel("baseline=BM_GemmDouble_HessianFlops");
}
void BM_GemmDouble_HessianFlops(benchmark::State& state) {
    gemm_baseline<double>(state, kColumns, kColumns / 2, kTokens);  // C^2 T flops
}

// Preparation: Cholesky (C^3/3) and triangular inverse (C^3/3), in float64, at 4096 columns and
// at 11008 (Llama-2-7B's MLP down-projection), each next to a DGEMM of the same flops.
vqlib::MatrixXd hessian_of_size(vqlib::Index columns, std::uint64_t seed) {
    const vqlib::MatrixXf X = random_matrix<float>(columns, kTokens, seed);
    vqlib::HessianAccumulator acc(columns);
    acc.add(X);
    return acc.finalize();
}

void BM_PrepareHessian(benchmark::State& state) {
    const vqlib::Index n = state.range(0);
    const vqlib::MatrixXd H = hessian_of_size(n, 4);
    for (auto _ : state) {
        auto p = vqlib::prepare_hessian(H);
        benchmark::DoNotOptimize(p.U.data());
    }
    state.counters["GFLOP/s"] = benchmark::Counter(
        2.0 / 3.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
        benchmark::Counter::kIs1000);
    state.SetLabel("baseline=BM_GemmDouble_PrepareFlops/" + std::to_string(n));
}
void BM_GemmDouble_PrepareFlops(benchmark::State& state) {
    const vqlib::Index n = state.range(0);
    gemm_baseline<double>(state, n, n / 3, n);  // 2/3 C^3 flops
}

// The exact proxy loss tr((W - Q) H (W - Q)^T) in float64 (LossEvaluation::exact): R C^2
// multiply-adds using H's symmetry, next to the solve it reports on.
void BM_ProxyLossExact(benchmark::State& state) {
    const vqlib::MatrixXd H = hessian_of_size(kColumns, 7);
    const vqlib::MatrixXf W = random_matrix<float>(kRows, kColumns, 8);
    const vqlib::MatrixXf Q = W + 0.01f * random_matrix<float>(kRows, kColumns, 9);
    for (auto _ : state) benchmark::DoNotOptimize(vqlib::proxy_loss(W, Q, H));
    state.counters["GFLOP/s"] = benchmark::Counter(
        1.0 * kRows * kColumns * kColumns, benchmark::Counter::kIsIterationInvariantRate,
        benchmark::Counter::kIs1000);
    state.SetLabel("baseline=BM_GptqSolve");
}

// The public call end to end: gptq(W, H, config), INT4 g128, preparation included, the loss from
// the solver's error sum (the default).
void BM_Gptq_W4G128(benchmark::State& state) {
    const vqlib::MatrixXd H = hessian_of_size(kColumns, 10);
    const vqlib::MatrixXf W = random_matrix<float>(kRows, kColumns, 11);
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(4, false)};
    config.groups.size = 128;
    double prepare = 0, solve = 0;
    for (auto _ : state) {
        auto r = vqlib::gptq(W, H, config);
        prepare = r.stats.seconds_prepare;
        solve = r.stats.seconds_total;
        benchmark::DoNotOptimize(r.Q.data());
    }
    state.counters["prepare_s"] = prepare;
    state.counters["solve_s"] = solve;
    state.SetLabel("baseline=BM_GemmFloat_SolverFlops");
}

// The block solver with INT4 g128: R C^2 + R C B flops of updates (lazy GEMMs + intra-block).
void BM_GptqSolve(benchmark::State& state) {
    const vqlib::MatrixXf X = random_matrix<float>(kColumns, kTokens, 5);
    vqlib::HessianAccumulator acc(kColumns);
    acc.add(X);
    const auto prepared = vqlib::prepare_hessian(acc.finalize());
    const vqlib::MatrixXf W = random_matrix<float>(kRows, kColumns, 6);
    for (auto _ : state) {
        vqlib::ScalarQuantizer<vqlib::IntGrid> q(vqlib::IntGrid(4, false), {128, false});
        auto r = vqlib::BlockSolver<vqlib::DiagonalUpdate>().run(W, prepared, q);
        benchmark::DoNotOptimize(r.Q.data());
    }
    const double flops = 1.0 * kRows * kColumns * (kColumns + 128);
    state.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
    state.SetLabel("baseline=BM_GemmFloat_SolverFlops");
}
void BM_GemmFloat_SolverFlops(benchmark::State& state) {
    gemm_baseline<float>(state, kRows, kColumns, (kColumns + 128) / 2);
}

BENCHMARK(BM_GemmDouble_HessianFlops)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_HessianAccumulate)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemmDouble_PrepareFlops)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PrepareHessian)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemmDouble_PrepareFlops)->Arg(11008)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_PrepareHessian)->Arg(11008)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_GemmFloat_SolverFlops)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GptqSolve)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ProxyLossExact)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Gptq_W4G128)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return vqlib::bench::run_with_ratios(argc, argv); }
