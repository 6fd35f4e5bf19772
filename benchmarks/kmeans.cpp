// The cluster component next to Eigen GEMMs of the same shape, run in the same process.
//
// Assignment: N = 65536 points of dimension D against K centroids, D in {1, 2, 4, 8} and
// K in {16, 256, 4096}, each next to the Eigen GEMM (N x D) * (D x K) computed the way the GEMM
// path computes it (blocks of 256 points x 512 centroids into a reused buffer, parallel over
// chunks of 4096 points). Flops counted:
//   Gemm/...           2 N K D (a multiply and an add per product term)
//   Assign*/...        3 N K D for both methods: per point, centroid and coordinate, the direct
//                      kernel's subtract, multiply and add; the GEMM path is charged the same
//                      work, so both GFLOP/s figures compare times directly.
// The printed ratios are times (assignment / GEMM); assignment GFLOP/s as a fraction of the
// GEMM's GFLOP/s is 1.5 / ratio (>= 50% <=> ratio <= 3).
//
// k-means: 1M points, D = 2, K = 256 and 4096, three EM iterations from given centroids; the
// time reported is per iteration (E-step, M-step and objective), next to one assignment of the
// same shape.
//
// Batch: 256 GPTVQ-sized problems (N = 2048, D = 2, K = 256, 25 iterations) with kmeans_batch,
// next to the same number of bare assignments.
#include <vqlib/cluster.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

using vqlib::Index;
using vqlib::MatrixXf;

MatrixXf random_matrix(Index rows, Index cols, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    MatrixXf m(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<float>(rng.normal());
    return m;
}

constexpr Index kPoints = 65536;

void set_flops(benchmark::State& state, double flops) {
    state.counters["GFLOP/s"] = benchmark::Counter(
        flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void gemm_baseline(benchmark::State& state, Index d, Index k) {
    const MatrixXf x = random_matrix(kPoints, d, 1);
    const MatrixXf ct = random_matrix(d, k, 2);
    for (auto _ : state) {
        vqlib::parallel_for_ranges(kPoints, 4096, [&](Index i0, Index i1) {
            MatrixXf block(256, std::min<Index>(512, k));
            for (Index r = i0; r < i1; r += 256)
                for (Index k0 = 0; k0 < k; k0 += 512) {
                    const Index kt = std::min<Index>(512, k - k0);
                    block.leftCols(kt).noalias() = x.middleRows(r, 256) * ct.middleCols(k0, kt);
                }
            float* result = block.data();
            benchmark::DoNotOptimize(result);
        });
    }
    set_flops(state, 2.0 * kPoints * k * d);
}

void assignment(benchmark::State& state, Index d, Index k, vqlib::AssignmentMethod method) {
    const MatrixXf x = random_matrix(kPoints, d, 1);
    const MatrixXf c = random_matrix(k, d, 2);
    std::vector<std::int32_t> out(static_cast<std::size_t>(kPoints));
    for (auto _ : state) {
        vqlib::assign_nearest(x, c, {}, out, {}, {method, true});
        std::int32_t* result = out.data();
        benchmark::DoNotOptimize(result);
    }
    set_flops(state, 3.0 * kPoints * k * d);
}

constexpr Index kKMeansPoints = 1 << 20;

void kmeans_iterations(benchmark::State& state, Index k) {
    const MatrixXf x = random_matrix(kKMeansPoints, 2, 3);
    vqlib::KMeansParameters p;
    p.k = k;
    p.max_iterations = 3;
    p.seeding = vqlib::GivenCentroids{x.topRows(k)};
    for (auto _ : state) {
        const auto r = vqlib::kmeans(x, p);
        double seconds = 0.0;
        for (const auto& it : r.iterations) seconds += it.seconds;
        state.SetIterationTime(seconds / static_cast<double>(r.iterations.size()));
    }
    set_flops(state, 3.0 * kKMeansPoints * k * 2);
}

void kmeans_assignment(benchmark::State& state, Index k) {
    const MatrixXf x = random_matrix(kKMeansPoints, 2, 3);
    const MatrixXf c = x.topRows(k);
    std::vector<std::int32_t> out(static_cast<std::size_t>(kKMeansPoints));
    for (auto _ : state) {
        vqlib::assign_nearest(x, c, {}, out);
        std::int32_t* result = out.data();
        benchmark::DoNotOptimize(result);
    }
    set_flops(state, 3.0 * kKMeansPoints * k * 2);
}

constexpr Index kBatchProblems = 256;
constexpr Index kBatchPoints = 2048;
constexpr Index kBatchK = 256;
constexpr int kBatchIterations = 25;

void batch_kmeans(benchmark::State& state) {
    std::vector<MatrixXf> points;
    std::vector<MatrixXf> weights;
    std::vector<vqlib::KMeansProblem> problems;
    for (Index i = 0; i < kBatchProblems; ++i) {
        points.push_back(random_matrix(kBatchPoints, 2, 10 + static_cast<std::uint64_t>(i)));
        weights.push_back(points.back().cwiseAbs());
    }
    for (Index i = 0; i < kBatchProblems; ++i)
        problems.emplace_back(points[static_cast<std::size_t>(i)],
                              vqlib::Weights::elementwise(weights[static_cast<std::size_t>(i)]));
    vqlib::KMeansParameters p;
    p.k = kBatchK;
    p.max_iterations = kBatchIterations;
    p.tolerance = 0.0;
    int iterations_run = 0;
    for (auto _ : state) {
        const auto results = vqlib::kmeans_batch(problems, p);
        for (const auto& r : results) iterations_run += static_cast<int>(r.iterations.size()) + 1;
    }
    state.counters["E-steps/problem"] = static_cast<double>(iterations_run) /
                                        static_cast<double>(state.iterations() * kBatchProblems);
}

void batch_assignments(benchmark::State& state) {
    std::vector<MatrixXf> points;
    std::vector<MatrixXf> weights;
    for (Index i = 0; i < kBatchProblems; ++i) {
        points.push_back(random_matrix(kBatchPoints, 2, 10 + static_cast<std::uint64_t>(i)));
        weights.push_back(points.back().cwiseAbs());
    }
    const MatrixXf c = random_matrix(kBatchK, 2, 5);
    std::vector<std::int32_t> out(static_cast<std::size_t>(kBatchProblems * kBatchPoints));
    for (auto _ : state) {
        // One E-step per problem per EM iteration, plus the final one.
        vqlib::parallel_for(kBatchProblems, [&](Index i) {
            for (int it = 0; it <= kBatchIterations; ++it)
                vqlib::assign_nearest(
                    points[static_cast<std::size_t>(i)], c,
                    vqlib::Weights::elementwise(weights[static_cast<std::size_t>(i)]),
                    std::span<std::int32_t>(out).subspan(static_cast<std::size_t>(i * kBatchPoints),
                                                         static_cast<std::size_t>(kBatchPoints)),
                    {}, {vqlib::AssignmentMethod::direct, false});
        });
        std::int32_t* result = out.data();
        benchmark::DoNotOptimize(result);
    }
}

void register_all() {
    using vqlib::AssignmentMethod;
    for (Index d : {1, 2, 4, 8}) {
        for (Index k : {16, 256, 4096}) {
            const std::string shape = "/D=" + std::to_string(d) + "/K=" + std::to_string(k);
            const std::string gemm = "Gemm" + shape;
            benchmark::RegisterBenchmark(gemm.c_str(),
                                         [d, k](benchmark::State& s) { gemm_baseline(s, d, k); })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
            for (auto method : {AssignmentMethod::direct, AssignmentMethod::gemm}) {
                const std::string name =
                    std::string(method == AssignmentMethod::direct ? "AssignDirect"
                                                                   : "AssignGemmPath") +
                    shape;
                benchmark::RegisterBenchmark(name.c_str(),
                                             [d, k, method, gemm](benchmark::State& s) {
                                                 assignment(s, d, k, method);
                                                 s.SetLabel("baseline=" + gemm);
                                             })
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime();
            }
        }
    }
    for (Index k : {256, 4096}) {
        const std::string shape = "/N=1M/D=2/K=" + std::to_string(k);
        const std::string assign = "KMeansAssignment" + shape;
        benchmark::RegisterBenchmark(assign.c_str(),
                                     [k](benchmark::State& s) { kmeans_assignment(s, k); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("KMeansIteration" + shape).c_str(),
                                     [k, assign](benchmark::State& s) {
                                         kmeans_iterations(s, k);
                                         s.SetLabel("baseline=" + assign);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->Iterations(2);
    }
    benchmark::RegisterBenchmark("BatchAssignments/256x(N=2048,D=2,K=256)x26",
                                 [](benchmark::State& s) { batch_assignments(s); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(
        "BatchKMeans/256x(N=2048,D=2,K=256,25 it)",
        [](benchmark::State& s) {
            batch_kmeans(s);
            s.SetLabel("baseline=BatchAssignments/256x(N=2048,D=2,K=256)x26");
        })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    return vqlib::bench::run_with_ratios(argc, argv);
}
