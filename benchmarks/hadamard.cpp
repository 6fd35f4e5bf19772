// The Hadamard transforms next to a memcpy of the same bytes, run in the same process.
//
// For n in {4096, 11008 = 172 * 64, 14336 = 28 * 512, 16384} and 4096 vectors of length n
// (64 MB to 256 MB of floats):
//   Memcpy/n=...                 copy of the 4096 x n floats, parallel over the same chunks
//                                (the baseline of the n's other benchmarks)
//   RHT/Contiguous/n=...         RandomizedHadamard::apply_columns on an n x 4096 matrix: each
//                                vector contiguous (= a row-major 4096 x n matrix, row-wise)
//   RHT/Rows/n=...               RandomizedHadamard::apply_rows on a column-major 4096 x n matrix
//                                (W R^T, the input side of incoherence processing: strided rows)
//   Incoherence/4096xn           IncoherenceTransform::transform_weights (both sides) of a
//                                4096 x n layer
// and single-vector FWHTs (n = 1024, 4096, 16384; one thread) next to a memcpy of one vector.
// bytes_per_second counts the matrix once per iteration (as the memcpy does); the printed
// ratios are times relative to the baseline.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/transform.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

using vqlib::Index;
using vqlib::MatrixXf;

constexpr Index kVectors = 4096;

MatrixXf random_matrix(Index rows, Index cols, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    MatrixXf m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.normal());
    return m;
}

void set_bytes(benchmark::State& state, double bytes) {
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
}

void memcpy_matrix(benchmark::State& state, Index n) {
    const MatrixXf src = random_matrix(kVectors, n, 1);
    MatrixXf dst(kVectors, n);
    const Index total = src.size();
    for (auto _ : state) {
        vqlib::parallel_for_ranges(total, Index{1} << 20, [&](Index b, Index e) {
            std::memcpy(dst.data() + b, src.data() + b,
                        static_cast<std::size_t>(e - b) * sizeof(float));
        });
        float* out = dst.data();
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * static_cast<double>(total));
}

void rht_contiguous(benchmark::State& state, Index n) {
    MatrixXf a = random_matrix(n, kVectors, 2);
    const vqlib::transform::RandomizedHadamard r(n, 7);
    for (auto _ : state) {
        r.apply_columns(a);
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * static_cast<double>(a.size()));
}

void rht_rows(benchmark::State& state, Index n) {
    MatrixXf a = random_matrix(kVectors, n, 3);
    const vqlib::transform::RandomizedHadamard r(n, 7);
    for (auto _ : state) {
        r.apply_rows(a);
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * static_cast<double>(a.size()));
}

void incoherence(benchmark::State& state, Index n) {
    MatrixXf w = random_matrix(kVectors, n, 4);
    const vqlib::transform::IncoherenceTransform it(kVectors, n, {.seed = 7});
    for (auto _ : state) {
        it.transform_weights(w);
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * static_cast<double>(w.size()));
}

void memcpy_vector(benchmark::State& state, std::size_t n) {
    std::vector<float> src(n, 1.0f), dst(n);
    for (auto _ : state) {
        std::memcpy(dst.data(), src.data(), n * sizeof(float));
        float* out = dst.data();
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * static_cast<double>(n));
}

void fwht_vector(benchmark::State& state, std::size_t n) {
    std::vector<float> x(n, 1.0f);
    for (auto _ : state) {
        vqlib::transform::fwht(x.data(), n);
        float* out = x.data();
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * static_cast<double>(n));
}

void register_all() {
    for (Index n : {4096, 11008, 14336, 16384}) {
        const std::string suffix = "/n=" + std::to_string(n);
        const std::string baseline = "Memcpy" + suffix;
        benchmark::RegisterBenchmark(baseline.c_str(),
                                     [n](benchmark::State& s) { memcpy_matrix(s, n); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        auto with_baseline = [&](const std::string& name, void (*fn)(benchmark::State&, Index)) {
            benchmark::RegisterBenchmark(name.c_str(),
                                         [n, fn, baseline](benchmark::State& s) {
                                             fn(s, n);
                                             s.SetLabel("baseline=" + baseline);
                                         })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
        };
        with_baseline("RHT/Contiguous" + suffix, &rht_contiguous);
        with_baseline("RHT/Rows" + suffix, &rht_rows);
        with_baseline("Incoherence/4096x" + std::to_string(n), &incoherence);
    }
    for (std::size_t n : {1024u, 4096u, 16384u}) {
        const std::string suffix = "/n=" + std::to_string(n);
        const std::string baseline = "MemcpyVector" + suffix;
        benchmark::RegisterBenchmark(baseline.c_str(),
                                     [n](benchmark::State& s) { memcpy_vector(s, n); });
        benchmark::RegisterBenchmark(("Fwht" + suffix).c_str(), [n, baseline](benchmark::State& s) {
            fwht_vector(s, n);
            s.SetLabel("baseline=" + baseline);
        });
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    return vqlib::bench::run_with_ratios(argc, argv);
}
