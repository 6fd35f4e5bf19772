// GPTVQ 2D at 2.125 bpw (K = 16, 2048 weights per INT8 codebook, the `best` preset) on a
// 4096 x 4096 layer, next to an Eigen SGEMM of the layer's size (4096^3 multiply-adds) run in the
// same process. Each stage's seconds are reported as counters. Target: under 30 s on 2 cores.
#include <vqlib/gptvq.hpp>

#include <benchmark/benchmark.h>

#include "layer_support.hpp"
#include "ratio_reporter.hpp"

namespace {

constexpr vqlib::Index kSize = 4096;

using vqlib::bench::random_matrix;

void BM_GemmFloat_LayerSize(benchmark::State& state) { vqlib::bench::gemm_of_layer_size(state, kSize); }

void run_gptvq(benchmark::State& state, vqlib::CodebookUpdateMethod update) {
    const vqlib::MatrixXf W = random_matrix(kSize, kSize, 3, false);
    vqlib::HessianAccumulator acc(kSize);
    acc.add(random_matrix(kSize, kSize, 4, true));
    const vqlib::MatrixXd H = acc.finalize();
    auto config = vqlib::gptvq_presets::paper(2, 2.125);
    config.codebook_update.method = update;
    vqlib::GptvqResult r;
    for (auto _ : state) {
        r = vqlib::gptvq(W, H, config);
        benchmark::DoNotOptimize(r.Q.data());
    }
    state.counters["prepare_s"] = r.stats.seconds_prepare;
    state.counters["codebook_init_s"] = r.stats.seconds_policy_setup;
    state.counters["sweep_s"] = r.stats.seconds_row_phase;
    state.counters["codebook_update_s"] = r.codebook_update.seconds;
    state.counters["bpw"] = r.layer.bits_per_weight();
    state.SetLabel("baseline=BM_GemmFloat_LayerSize");
}

void BM_Gptvq2D_2125_NoCodebookUpdate(benchmark::State& state) {
    run_gptvq(state, vqlib::CodebookUpdateMethod::none);
}
void BM_Gptvq2D_2125_LeastSquaresUpdate(benchmark::State& state) {
    run_gptvq(state, vqlib::CodebookUpdateMethod::least_squares);
}

BENCHMARK(BM_GemmFloat_LayerSize)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Gptvq2D_2125_NoCodebookUpdate)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_Gptvq2D_2125_LeastSquaresUpdate)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

int main(int argc, char** argv) { return vqlib::bench::run_with_ratios(argc, argv); }
