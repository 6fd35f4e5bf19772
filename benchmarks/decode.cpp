// Decode kernels (vqlib::kernels) on LLM-sized layers, next to the INT4 baseline, an fp32 Eigen
// GEMV and a memcpy of the compressed stream's size, all in the same run.
//
// Layers (rows x cols = out x in): 4096 x 4096 and 4096 x 11008, random codes and codebooks
// (decode speed does not depend on what the values are):
//   Gptvq2D/K16     D = 2, K = 16 (4-bit codes: 2 bpw), codebook per 256 columns x 256 rows
//   Gptvq4D/K256    D = 4, K = 256 (8-bit codes: 2 bpw), codebook per 256 columns x all rows
//   each with the lut and the gather strategy (/lut, /gather); on CPUs with AVX-512 VBMI the 4D
//   lut looks codes up in byte planes, and /lut-floats runs it without them for comparison;
//   Gptvq2D/K16/8x256  D = 2, K = 16 with GPTVQ's own 2.125 bpw groups (a codebook per 8 rows x
//                   256 columns), automatic strategy (the gather with register codebooks);
//   Vptq/v8/k65536  v = 8, k = 65536, one group (16-bit codes: 2 bpw)
//   Vptq/v8/k256    v = 8, k = 256, one group (8-bit codes: 1 bpw)
//   Int4/g128       symmetric INT4, group 128, fp16 scales (4.125 bpw), round-to-nearest
//   Fp32            Eigen GEMV of the fp32 matrix, parallel over the same row chunks
// Every GEMV uses batch 1 (decode); on 4096 x 4096 also batch 8.
//
// Counters: Wps = weights per second (rows * cols / time), GB/s = bytes of the stream the
// kernel reads (codes, scales, codebooks once: stream_bytes()) / time, bpw = those bytes per
// weight in bits. Each GEMV's baseline is Memcpy/<bytes>: a parallel memcpy of the same number
// of bytes (which reads and writes them; ReadOnly/<bytes> only reads them, for reference). The
// ratio printed at the end is time / memcpy time: <= 2 means >= 50% of memcpy bandwidth. The
// VQ GEMVs are also run a second time as .../vsInt4 with the INT4 GEMV of the same shape and
// batch as baseline: < 1 means faster than INT4.
//
// Hot and cold. A 4096 x 4096 layer at 2-4 bpw is 2-9 MB: run after run it stays in the last-
// level cache, and the memcpy baseline then measures cache bandwidth. In LLM decoding every
// layer's weights come from DRAM once per token, so each benchmark also runs "cold" (.../cold):
// it cycles through copies of the format (and of x, y) whose total exceeds kColdBytes, so every
// iteration streams its operand from DRAM; its baselines are the cold memcpy
// (MemcpyCold/<bytes>, cycling the same way) and the cold INT4 GEMV.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/kernels.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "layer_support.hpp"
#include "ratio_reporter.hpp"

namespace {

using vqlib::Index;
using vqlib::MatrixXf;
namespace kn = vqlib::kernels;

MatrixXf random_matrix(Index rows, Index cols, std::uint64_t seed) {
    return vqlib::bench::random_matrix(rows, cols, seed, false);
}


/// Shared state of one shape, built once.
struct Shape {
    Index rows, cols;
    std::string name;
    MatrixXf w;
    kn::VqGemvMatrix gptvq2, gptvq4, gptvq2_paper;
    kn::VptqGemvMatrix vptq65536, vptq256;
    kn::Int4GemvMatrix int4;
};

Shape& shape(Index rows, Index cols) {
    static std::vector<std::unique_ptr<Shape>> shapes;
    for (auto& s : shapes)
        if (s->rows == rows && s->cols == cols) return *s;
    auto s = std::make_unique<Shape>();
    s->rows = rows;
    s->cols = cols;
    s->name = std::to_string(rows) + "x" + std::to_string(cols);
    s->w = random_matrix(rows, cols, 1);
    s->gptvq2 = kn::VqGemvMatrix::from_layer(vqlib::bench::random_gptvq_layer(rows, cols, 2, 16, 256, 2));
    s->gptvq4 = kn::VqGemvMatrix::from_layer(vqlib::bench::random_gptvq_layer(rows, cols, 4, 256, rows, 3));
    s->gptvq2_paper = kn::VqGemvMatrix::from_layer(vqlib::bench::random_gptvq_layer(rows, cols, 2, 16, 8, 6));
    s->vptq65536 = kn::VptqGemvMatrix::from_layer(vqlib::bench::random_vptq_layer(rows, cols, 8, 65536, 4));
    s->vptq256 = kn::VptqGemvMatrix::from_layer(vqlib::bench::random_vptq_layer(rows, cols, 8, 256, 5));
    s->int4 = kn::Int4GemvMatrix::quantize_rtn(s->w, 128, true);
    shapes.push_back(std::move(s));
    return *shapes.back();
}

void set_counters(benchmark::State& state, double weights, double bytes) {
    state.counters["Wps"] = benchmark::Counter(weights, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
    state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bpw"] = 8.0 * bytes / weights;
}

/// Bytes per memcpy chunk: fixed, so the work split does not depend on the thread count.
constexpr std::size_t kCopyChunk = 256 * 1024;
/// Cold runs cycle through copies totalling at least this much (4x a 32 MiB last-level cache).
constexpr std::size_t kColdBytes = std::size_t{128} << 20;

/// How many copies of `bytes` a cold run cycles through (1 when hot).
std::size_t copies_for(std::size_t bytes, bool cold) {
    return cold ? std::max<std::size_t>(2, (kColdBytes + bytes - 1) / bytes) : 1;
}

void memcpy_bench(benchmark::State& state, std::size_t bytes, bool read_only, bool cold = false) {
    const std::size_t n = copies_for(bytes, cold);
    std::vector<std::vector<std::uint8_t>> srcs(n, std::vector<std::uint8_t>(bytes, 1));
    std::vector<std::vector<std::uint8_t>> dsts(read_only ? 0 : n, std::vector<std::uint8_t>(bytes));
    std::vector<std::uint64_t> sums((bytes + kCopyChunk - 1) / kCopyChunk);
    const Index chunks = static_cast<Index>(sums.size());
    std::size_t next = 0;
    for (auto _ : state) {
        const std::vector<std::uint8_t>& src = srcs[next];
        std::vector<std::uint8_t>& dst = read_only ? srcs[next] : dsts[next];
        next = (next + 1) % n;
        vqlib::parallel_for(chunks, [&](Index c) {
            const std::size_t b0 = static_cast<std::size_t>(c) * kCopyChunk;
            const std::size_t n = std::min(kCopyChunk, bytes - b0);
            if (read_only) {
                std::uint64_t s = 0;
                const std::uint64_t* p = reinterpret_cast<const std::uint64_t*>(src.data() + b0);
                for (std::size_t i = 0; i < n / 8; ++i) s += p[i];
                sums[static_cast<std::size_t>(c)] = s;
            } else {
                std::memcpy(dst.data() + b0, src.data() + b0, n);
            }
        });
        benchmark::DoNotOptimize(sums.data());
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

/// Runs gemv over `copies` copies of the format, x and y in turn (one copy: hot).
template <class Fmt>
void gemv_bench(benchmark::State& state, const Fmt& m, Index batch, kn::GemvOptions options,
                std::size_t bytes, bool cold) {
    const std::size_t n = copies_for(bytes, cold);
    const std::vector<Fmt> formats(n, m);
    const std::vector<MatrixXf> xs(n, random_matrix(m.cols(), batch, 9));
    std::vector<MatrixXf> ys(n, MatrixXf(m.rows(), batch));
    std::size_t next = 0;
    for (auto _ : state) {
        kn::gemv(formats[next], xs[next], ys[next], options);
        benchmark::DoNotOptimize(ys[next].data());
        benchmark::ClobberMemory();
        next = (next + 1) % n;
    }
    set_counters(state, static_cast<double>(m.rows() * m.cols()), static_cast<double>(bytes));
}

void fp32_bench(benchmark::State& state, const MatrixXf& w, Index batch, bool cold) {
    const std::size_t n = copies_for(static_cast<std::size_t>(4 * w.size()), cold);
    const std::vector<MatrixXf> ws(n, w);
    const MatrixXf x = random_matrix(w.cols(), batch, 9);
    MatrixXf y(w.rows(), batch);
    std::size_t next = 0;
    for (auto _ : state) {
        const MatrixXf& wn = ws[next];
        vqlib::parallel_for_ranges(w.rows(), 64, [&](Index r0, Index r1) {
            y.middleRows(r0, r1 - r0).noalias() = wn.middleRows(r0, r1 - r0) * x;
        });
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        next = (next + 1) % n;
    }
    set_counters(state, static_cast<double>(w.size()), 4.0 * static_cast<double>(w.size()));
}

std::string memcpy_name(std::size_t bytes, bool cold) {
    return (cold ? "MemcpyCold/" : "Memcpy/") + std::to_string(bytes);
}

void register_memcpy(std::size_t bytes, bool cold, std::vector<std::size_t>& done) {
    const std::size_t key = 2 * bytes + (cold ? 1 : 0);
    for (auto b : done)
        if (b == key) return;
    done.push_back(key);
    benchmark::RegisterBenchmark(memcpy_name(bytes, cold).c_str(),
                                 [bytes, cold](benchmark::State& s) { memcpy_bench(s, bytes, false, cold); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(((cold ? "ReadOnlyCold/" : "ReadOnly/") + std::to_string(bytes)).c_str(),
                                 [bytes, cold](benchmark::State& s) {
                                     memcpy_bench(s, bytes, true, cold);
                                     s.SetLabel("baseline=" + memcpy_name(bytes, cold));
                                 })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
}

void register_shape(Index rows, Index cols, std::vector<Index> batches, bool cold) {
    std::vector<std::size_t> copies;
    const std::string tag = std::to_string(rows) + "x" + std::to_string(cols);
    for (Index B : batches) {
        const std::string suffix = "/" + tag + "/B=" + std::to_string(B) + (cold ? "/cold" : "");
        auto add = [&](const std::string& name, std::size_t bytes, auto run, bool vs_int4) {
            register_memcpy(bytes, cold, copies);
            const std::string base = memcpy_name(bytes, cold);
            benchmark::RegisterBenchmark((name + suffix).c_str(),
                                         [run, base, cold](benchmark::State& s) {
                                             run(s, cold);
                                             s.SetLabel("baseline=" + base);
                                         })
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
            if (vs_int4) {
                const std::string int4 = "Int4/g128" + suffix;
                benchmark::RegisterBenchmark((name + suffix + "/vsInt4").c_str(),
                                             [run, int4, cold](benchmark::State& s) {
                                                 run(s, cold);
                                                 s.SetLabel("baseline=" + int4);
                                             })
                    ->Unit(benchmark::kMicrosecond)
                    ->UseRealTime();
            }
        };
        Shape& sh = shape(rows, cols);
        add("Int4/g128", sh.int4.stream_bytes(),
            [&sh, B](benchmark::State& s, bool c) { gemv_bench(s, sh.int4, B, {}, sh.int4.stream_bytes(), c); }, false);
        add("Fp32", static_cast<std::size_t>(4 * sh.w.size()),
            [&sh, B](benchmark::State& s, bool c) { fp32_bench(s, sh.w, B, c); }, false);
        for (auto strategy : {kn::VqStrategy::lut, kn::VqStrategy::gather}) {
            const std::string st = strategy == kn::VqStrategy::lut ? "/lut" : "/gather";
            const kn::GemvOptions o{kn::Isa::automatic, strategy, true};
            add("Gptvq2D/K16" + st, sh.gptvq2.stream_bytes(),
                [&sh, B, o](benchmark::State& s, bool c) { gemv_bench(s, sh.gptvq2, B, o, sh.gptvq2.stream_bytes(), c); },
                true);
            add("Gptvq4D/K256" + st, sh.gptvq4.stream_bytes(),
                [&sh, B, o](benchmark::State& s, bool c) { gemv_bench(s, sh.gptvq4, B, o, sh.gptvq4.stream_bytes(), c); },
                true);
        }
        if (kn::cpu_has_vbmi()) {  // the lut before byte-plane lookups, for comparison
            const kn::GemvOptions o{kn::Isa::automatic, kn::VqStrategy::lut, true, false};
            add("Gptvq4D/K256/lut-floats", sh.gptvq4.stream_bytes(),
                [&sh, B, o](benchmark::State& s, bool c) { gemv_bench(s, sh.gptvq4, B, o, sh.gptvq4.stream_bytes(), c); },
                true);
        }
        add("Gptvq2D/K16/8x256", sh.gptvq2_paper.stream_bytes(),
            [&sh, B](benchmark::State& s, bool c) { gemv_bench(s, sh.gptvq2_paper, B, {}, sh.gptvq2_paper.stream_bytes(), c); },
            true);
        add("Vptq/v8/k65536", sh.vptq65536.stream_bytes(),
            [&sh, B](benchmark::State& s, bool c) { gemv_bench(s, sh.vptq65536, B, {}, sh.vptq65536.stream_bytes(), c); },
            true);
        add("Vptq/v8/k256", sh.vptq256.stream_bytes(),
            [&sh, B](benchmark::State& s, bool c) { gemv_bench(s, sh.vptq256, B, {}, sh.vptq256.stream_bytes(), c); },
            true);
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_shape(4096, 4096, {1, 8}, false);
    register_shape(4096, 11008, {1}, false);
    register_shape(4096, 4096, {1, 8}, true);
    register_shape(4096, 11008, {1}, true);
    return vqlib::bench::run_with_ratios(argc, argv);
}
