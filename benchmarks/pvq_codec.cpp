// The PVQ lattice codec (vqlib/lattice) in vectors per second, next to the normalization of the
// same vectors (one norm and one scaling per vector) run in the same process.
//
// Shapes: N = 8, 16, 32 at K giving about 2 and 3 bits per weight of shape:
//   N = 8:  K = 7 (2.01 bpw, 17 bits, uint32),  K = 16 (2.98 bpw, 24 bits, uint32)
//   N = 16: K = 12 (1.98 bpw, 32 bits, uint32), K = 27 (2.98 bpw, 48 bits, uint64)
//   N = 32: K = 22 (1.97 bpw, 64 bits, uint64), K = 50 (2.99 bpw, 96 bits, unsigned __int128)
// Per shape: the greedy pulse search (Opus), the search with swap refinement, encode and decode
// in the Opus order, and for the 2-bpw shapes the Fischer order too. Batches of 4096 Gaussian
// vectors; items_per_second counts vectors. Unpack: a packed stream of 4096 indices at the
// automatic (fractional) rate.
#include <vqlib/core/rng.hpp>
#include <vqlib/lattice.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

using namespace vqlib::lattice;

constexpr std::size_t kVectors = 4096;

std::vector<float> gaussian_vectors(int n, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    std::vector<float> x(kVectors * static_cast<std::size_t>(n));
    for (auto& v : x) v = static_cast<float>(rng.normal());
    return x;
}

std::vector<std::int32_t> codewords(const std::vector<float>& x, int n, int k) {
    std::vector<std::int32_t> y(x.size());
    const auto N = static_cast<std::size_t>(n);
    for (std::size_t v = 0; v < kVectors; ++v)
        pvq_search(std::span<const float>(x).subspan(v * N, N), k,
                   std::span<std::int32_t>(y).subspan(v * N, N));
    return y;
}

void set_items(benchmark::State& state) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(kVectors));
}

std::string baseline_name(int n) { return "Normalize/N=" + std::to_string(n); }

// Baseline: x / ||x|| for every vector.
void normalize(benchmark::State& state, int n) {
    const auto x = gaussian_vectors(n, 1);
    std::vector<float> out(x.size());
    const auto N = static_cast<std::size_t>(n);
    for (auto _ : state) {
        for (std::size_t v = 0; v < kVectors; ++v) {
            const float* xv = &x[v * N];
            float ss = 0.0f;
            for (std::size_t j = 0; j < N; ++j) ss += xv[j] * xv[j];
            const float r = 1.0f / std::sqrt(ss);
            for (std::size_t j = 0; j < N; ++j) out[v * N + j] = xv[j] * r;
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_items(state);
}

void search(benchmark::State& state, int n, int k, PulseRefinement refinement) {
    const auto x = gaussian_vectors(n, 1);
    std::vector<std::int32_t> y(x.size());
    const auto N = static_cast<std::size_t>(n);
    const PulseSearchOptions options{refinement};
    for (auto _ : state) {
        double total = 0.0;
        for (std::size_t v = 0; v < kVectors; ++v)
            total += pvq_search(std::span<const float>(x).subspan(v * N, N), k,
                                std::span<std::int32_t>(y).subspan(v * N, N), options);
        benchmark::DoNotOptimize(total);
        benchmark::DoNotOptimize(y.data());
    }
    set_items(state);
    state.SetLabel("baseline=" + baseline_name(n));
}

template <PvqIndex Idx>
void encode(benchmark::State& state, int n, int k, EnumerationOrder order) {
    const PvqCodec<Idx> codec(n, k);
    const auto y = codewords(gaussian_vectors(n, 1), n, k);
    std::vector<Idx> idx(kVectors);
    const auto N = static_cast<std::size_t>(n);
    for (auto _ : state) {
        for (std::size_t v = 0; v < kVectors; ++v)
            idx[v] = codec.encode(std::span<const std::int32_t>(y).subspan(v * N, N), order);
        benchmark::DoNotOptimize(idx.data());
        benchmark::ClobberMemory();
    }
    set_items(state);
    state.SetLabel("baseline=" + baseline_name(n));
}

template <PvqIndex Idx>
void decode(benchmark::State& state, int n, int k, EnumerationOrder order) {
    const PvqCodec<Idx> codec(n, k);
    const auto y0 = codewords(gaussian_vectors(n, 1), n, k);
    std::vector<Idx> idx(kVectors);
    const auto N = static_cast<std::size_t>(n);
    for (std::size_t v = 0; v < kVectors; ++v)
        idx[v] = codec.encode(std::span<const std::int32_t>(y0).subspan(v * N, N), order);
    std::vector<std::int32_t> y(y0.size());
    for (auto _ : state) {
        for (std::size_t v = 0; v < kVectors; ++v)
            codec.decode(idx[v], std::span<std::int32_t>(y).subspan(v * N, N), order);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    set_items(state);
    state.SetLabel("baseline=" + baseline_name(n));
}

template <PvqIndex Idx>
void unpack(benchmark::State& state, int n, int k) {
    const PvqCodec<Idx> codec(n, k);
    const auto y = codewords(gaussian_vectors(n, 1), n, k);
    std::vector<Idx> idx(kVectors);
    const auto N = static_cast<std::size_t>(n);
    for (std::size_t v = 0; v < kVectors; ++v)
        idx[v] = codec.encode(std::span<const std::int32_t>(y).subspan(v * N, N));
    const auto layout = PackedIndexLayout::automatic(codec.size());
    const auto bytes = pack_indices<Idx>(idx, layout);
    std::vector<Idx> out(kVectors);
    for (auto _ : state) {
        unpack_indices<Idx>(bytes, layout, std::span<Idx>(out));
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_items(state);
    state.counters["bits/vector"] = layout.bits_per_vector();
    state.counters["log2 V"] = codec.log2_size();
    state.SetLabel("baseline=" + baseline_name(n));
}

template <PvqIndex Idx>
void register_shape(int n, int k, bool fischer) {
    const std::string shape = "/N=" + std::to_string(n) + "/K=" + std::to_string(k);
    benchmark::RegisterBenchmark(("Search" + shape).c_str(), [n, k](benchmark::State& s) {
        search(s, n, k, PulseRefinement::none);
    });
    benchmark::RegisterBenchmark(("SearchSwap" + shape).c_str(), [n, k](benchmark::State& s) {
        search(s, n, k, PulseRefinement::swap);
    });
    benchmark::RegisterBenchmark(("Encode" + shape).c_str(), [n, k](benchmark::State& s) {
        encode<Idx>(s, n, k, EnumerationOrder::opus);
    });
    benchmark::RegisterBenchmark(("Decode" + shape).c_str(), [n, k](benchmark::State& s) {
        decode<Idx>(s, n, k, EnumerationOrder::opus);
    });
    if (fischer) {
        benchmark::RegisterBenchmark(
            ("EncodeFischer" + shape).c_str(),
            [n, k](benchmark::State& s) { encode<Idx>(s, n, k, EnumerationOrder::fischer); });
        benchmark::RegisterBenchmark(
            ("DecodeFischer" + shape).c_str(),
            [n, k](benchmark::State& s) { decode<Idx>(s, n, k, EnumerationOrder::fischer); });
    }
    benchmark::RegisterBenchmark(("Unpack" + shape).c_str(),
                                 [n, k](benchmark::State& s) { unpack<Idx>(s, n, k); });
}

void register_all() {
    for (int n : {8, 16, 32})
        benchmark::RegisterBenchmark(baseline_name(n).c_str(),
                                     [n](benchmark::State& s) { normalize(s, n); });
    register_shape<std::uint32_t>(8, 7, true);
    register_shape<std::uint32_t>(8, 16, false);
    register_shape<std::uint32_t>(16, 12, true);
    register_shape<std::uint64_t>(16, 27, false);
    register_shape<std::uint64_t>(32, 22, true);
    register_shape<uint128>(32, 50, false);
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    return vqlib::bench::run_with_ratios(argc, argv);
}
