// VPTQ on a 4096 x 4096 layer (v = 8: 2,097,152 vectors of 8 rows), next to an Eigen SGEMM of the
// layer's size (4096^3 multiply-adds) run in the same process.
//
//   BM_VptqKMeansIteration/K     one Hessian-weighted EM iteration (assignment + M-step + the
//                                objective) over all vectors with K = 4096 or 65536 centroids
//                                (VPTQ runs up to 100 of them per codebook), plain E-steps, the
//                                mean of 2 iterations as timed by kmeans() itself;
//   BM_VptqKMeansFull/K          VPTQ's whole k-means (random seeds, <= 100 iterations,
//                                tolerance 1e-5) with the default bounded E-steps: iterations
//                                run, share of the plain work, first and last iteration times;
//   BM_VptqAssignment/K          the E-step alone (bare nearest-centroid search);
//   BM_Vptq_v8_k65536/I          the whole recipe with the k-means cut to I iterations (0: the
//                                preset's own stopping); counters report the seconds of k-means
//                                and of the two-stage sweep.
#include <vqlib/vptq.hpp>

#include <benchmark/benchmark.h>

#include "layer_support.hpp"
#include "ratio_reporter.hpp"

namespace {

constexpr vqlib::Index kSize = 4096;
constexpr vqlib::Index kVector = 8;

using vqlib::bench::random_matrix;

/// The layer's vectors of 8 rows (column by column) and a weight per vector, as vptq() fits them.
struct Vectors {
    vqlib::MatrixXf points;
    std::vector<float> weights;
};

const Vectors& layer_vectors() {
    static const Vectors v = [] {
        const vqlib::MatrixXf W = random_matrix(kSize, kSize, 3, false);
        Vectors out{vqlib::MatrixXf(kSize / kVector * kSize, kVector), {}};
        vqlib::Rng rng(5);
        for (vqlib::Index j = 0; j < kSize; ++j) {
            const float h = static_cast<float>(0.5 + rng.uniform());
            for (vqlib::Index r = 0; r < kSize / kVector; ++r) {
                for (vqlib::Index t = 0; t < kVector; ++t)
                    out.points(j * (kSize / kVector) + r, t) = W(r * kVector + t, j);
                out.weights.push_back(h);
            }
        }
        return out;
    }();
    return v;
}

void BM_GemmFloat_LayerSize(benchmark::State& state) { vqlib::bench::gemm_of_layer_size(state, kSize); }

void BM_VptqKMeansIteration(benchmark::State& state) {
    const auto& v = layer_vectors();
    const vqlib::Index k = state.range(0);
    vqlib::KMeansParameters p = vqlib::VptqConfig::default_kmeans();
    p.k = k;
    p.max_iterations = 2;
    p.tolerance = 0.0;
    p.seeding = vqlib::GivenCentroids{v.points.topRows(k)};
    p.acceleration = vqlib::KMeansAcceleration::none;  // the plain E-step's cost
    for (auto _ : state) {
        const auto r = vqlib::kmeans(v.points, vqlib::Weights::per_point(std::span<const float>(v.weights)), p);
        double seconds = 0.0;
        for (const auto& it : r.iterations) seconds += it.seconds;
        state.SetIterationTime(seconds / static_cast<double>(r.iterations.size()));
        benchmark::DoNotOptimize(r.objective);
    }
    state.counters["vectors"] = static_cast<double>(v.points.rows());
    state.SetLabel("baseline=BM_GemmFloat_LayerSize");
}

// VPTQ's own k-means as vptq() runs it (random seeding, up to 100 iterations, tolerance 1e-5) with
// bounded E-steps (the default, exact); the plain cost is iterations x BM_VptqKMeansIteration.
void BM_VptqKMeansFull(benchmark::State& state) {
    const auto& v = layer_vectors();
    vqlib::KMeansParameters p = vqlib::VptqConfig::default_kmeans();
    p.k = state.range(0);
    for (auto _ : state) {
        const auto r = vqlib::kmeans(v.points, vqlib::Weights::per_point(std::span<const float>(v.weights)), p);
        double work = 0.0;
        for (const auto& it : r.iterations) work += it.distances_computed;
        state.counters["iterations"] = static_cast<double>(r.iterations.size());
        state.counters["bound_groups"] = static_cast<double>(r.bound_groups);
        state.counters["work"] = work / (static_cast<double>(r.iterations.size()) *
                                         static_cast<double>(v.points.rows()) * static_cast<double>(p.k));
        state.counters["s_first_iteration"] = r.iterations.front().seconds;
        state.counters["s_last_iteration"] = r.iterations.back().seconds;
        benchmark::DoNotOptimize(r.objective);
    }
    state.SetLabel("baseline=BM_GemmFloat_LayerSize");
}

void BM_VptqAssignment(benchmark::State& state) {
    const auto& v = layer_vectors();
    const vqlib::Index k = state.range(0);
    const vqlib::MatrixXf c = v.points.topRows(k);
    std::vector<std::int32_t> out(static_cast<std::size_t>(v.points.rows()));
    for (auto _ : state) {
        vqlib::assign_nearest(v.points, c, {}, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["GFLOP/s"] = benchmark::Counter(
        3.0 * double(v.points.rows()) * double(k) * kVector, benchmark::Counter::kIsIterationInvariantRate,
        benchmark::Counter::kIs1000);
    state.SetLabel("baseline=BM_GemmFloat_LayerSize");
}

// state.range(0): k-means iterations (0: the preset's, up to 100 with tolerance 1e-5).
void BM_Vptq_v8_k65536(benchmark::State& state) {
    const vqlib::MatrixXf W = random_matrix(kSize, kSize, 3, false);
    vqlib::HessianAccumulator acc(kSize);
    acc.add(random_matrix(kSize, kSize, 4, true));
    const vqlib::MatrixXd H = acc.finalize();
    auto config = vqlib::vptq_presets::v8_k65536();
    if (state.range(0) > 0) config.kmeans.max_iterations = static_cast<int>(state.range(0));
    for (auto _ : state) {
        const auto r = vqlib::vptq(W, H, config);
        state.counters["s_kmeans"] = r.seconds_kmeans;
        state.counters["s_sweep"] = r.seconds_solve;
        state.counters["s_total"] = r.seconds;
        state.counters["bpw"] = r.bits_per_weight;
        benchmark::DoNotOptimize(r.proxy_loss);
    }
    state.SetLabel("baseline=BM_GemmFloat_LayerSize");
}

}  // namespace

BENCHMARK(BM_GemmFloat_LayerSize)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_VptqAssignment)->Arg(4096)->Arg(65536)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_VptqKMeansIteration)->Arg(4096)->Arg(65536)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);
BENCHMARK(BM_VptqKMeansFull)->Arg(4096)->Arg(65536)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_Vptq_v8_k65536)->Arg(2)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

int main(int argc, char** argv) { return vqlib::bench::run_with_ratios(argc, argv); }
