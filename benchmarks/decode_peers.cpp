// Decode kernels next to ggml's (llama.cpp's tensor library), in one process, interleaved.
//
// vqlib (exact mode: kernels/*_gemv.hpp; fast mode: int8 activations, kernels/*_fast.hpp):
//   Int4/g128/{exact,fast}          symmetric INT4, group 128, fp16 scales (4.125 bpw), RTN of W
//   Gptvq2D/K16/8x256/{exact,fast}  GPTVQ's 2.125 bpw groups: a codebook per 8 rows x 256 columns
//   Gptvq2D/K16/256x256/{exact,fast} large codebooks, one per 256 x 256 block (2 bpw)
//   Gptvq4D/K256/{exact,fast}       4-D, K = 256, a codebook per 256 columns (2 bpw)
//   Vptq/v8/k4096/{exact,fast}, Vptq/v8/k65536/{exact,fast}   VPTQ, one group (fp16 / int8 codebooks)
//   .../avx2                        the same kernels' AVX2 variants (GemvOptions::isa = avx2), the
//                                   code CPUs without AVX-512 run, measured on this CPU
// ggml, when built with VQLIB_BENCH_GGML (benchmarks/CMakeLists.txt), quantizing the same W:
//   ggml/Q4_0, ggml/Q4_K, ggml/Q2_K   in ggml's CPU_REPACK buffers where it repacks them on this
//                                      CPU (interleaved rows; "/plain" without the repacking)
//   ggml/IQ2_XXS                       2.06 bpw i-quant (needs an importance matrix: ones)
//   each a ggml_mul_mat graph on the CPU backend with as many threads as vqlib uses; ggml
//   quantizes the F32 activations to its Q8 formats inside the call, as vqlib's fast mode does.
// Shapes (rows x cols = out x in): 4096 x 4096, 11008 x 4096 (gate/up), 4096 x 11008 (down);
// batches 1 and 8; hot (the same operand every call: it sits in the last-level cache) and cold
// (copies totalling 128 MiB cycled, so every call streams from DRAM, as decoding does).
//
// Interleaved rounds: main() runs with --benchmark_repetitions=5 and random interleaving unless
// told otherwise, and the ratios use the median. Baseline of each entry: ggml/Q2_K of the same
// shape, batch and temperature (ggml/Q4_0 for the INT4 entries); without ggml, vqlib's exact INT4.
// Counters: bpw (bytes read per weight, in bits), GB/s of that stream, and err: the relative
// error ||y - W_hat x|| / ||W_hat x|| against the format's own dequantized weights in double
// (ggml's through its to_float), batch 8, measured once. The operands of a kernel, shape and
// temperature are built on first use and kept (up to ~6 GB for the cold copies of all).
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/kernels.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#ifdef VQLIB_HAVE_GGML
#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>
#endif

#include "layer_support.hpp"
#include "ratio_reporter.hpp"

namespace {

using vqlib::Index;
using vqlib::MatrixXf;
namespace kn = vqlib::kernels;

constexpr std::size_t kColdBytes = std::size_t{128} << 20;

std::size_t copies_for(std::size_t bytes, bool cold) {
    return cold ? std::max<std::size_t>(2, (kColdBytes + bytes - 1) / bytes) : 1;
}

MatrixXf random_matrix(Index rows, Index cols, std::uint64_t seed) {
    return vqlib::bench::random_matrix(rows, cols, seed, false);
}

double relative_error(const MatrixXf& y, const MatrixXf& W, const MatrixXf& x) {
    const Eigen::MatrixXd ref = W.cast<double>() * x.cast<double>();
    return (y.cast<double>() - ref).norm() / ref.norm();
}

/// One kernel on one shape: `copies` operands, run(i, x, y) multiplies with operand i.
struct Kernel {
    std::size_t bytes = 0;
    double err = 0.0;
    std::function<void(std::size_t, const MatrixXf&, MatrixXf&)> run;
};


/// A vqlib format in `copies` copies.
template <class Fmt>
Kernel vqlib_kernel(const Fmt& m, std::size_t copies, const MatrixXf& W, const MatrixXf& x8,
                    kn::GemvOptions options = {}) {
    auto formats = std::make_shared<std::vector<Fmt>>(copies, m);
    Kernel k;
    k.bytes = m.stream_bytes();
    MatrixXf y(m.rows(), x8.cols());
    kn::gemv(m, x8, y, options);
    k.err = relative_error(y, W, x8);
    k.run = [formats, options](std::size_t i, const MatrixXf& x, MatrixXf& y) {
        kn::gemv((*formats)[i], x, y, options);
    };
    return k;
}

#ifdef VQLIB_HAVE_GGML

struct GgmlState {
    ggml_backend_t cpu = nullptr;
    ggml_backend_buffer_type_t repack = nullptr;
    GgmlState() {
        cpu = ggml_backend_cpu_init();
        ggml_backend_dev_t dev = ggml_backend_get_device(cpu);
        auto get_extra = reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(
            ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts"));
        if (get_extra)
            for (ggml_backend_buffer_type_t* b = get_extra(dev); b && *b; ++b)
                if (std::string(ggml_backend_buft_name(*b)) == "CPU_REPACK") repack = *b;
    }
    static GgmlState& get() {
        static GgmlState s;
        return s;
    }
};

/// True when ggml's CPU_REPACK buffer repacks a rows x cols tensor of `type` on this CPU.
bool ggml_repacks(ggml_type type, Index rows, Index cols) {
    GgmlState& g = GgmlState::get();
    if (!g.repack) return false;
    ggml_init_params p{ggml_tensor_overhead() * 2, nullptr, true};
    ggml_context* ctx = ggml_init(p);
    ggml_tensor* w = ggml_new_tensor_2d(ctx, type, cols, rows);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, g.repack);
    const bool repacked = buf && w->extra != nullptr;
    if (buf) ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    return repacked;
}

/// ggml_mul_mat of `type` on `copies` weight tensors, with a graph per copy and batch (1, 8).
class GgmlMatmul {
public:
    GgmlMatmul(ggml_type type, bool repack, const std::vector<std::uint8_t>& data, Index rows, Index cols,
               std::size_t copies) {
        GgmlState& g = GgmlState::get();
        ggml_backend_cpu_set_n_threads(g.cpu, vqlib::num_threads());
        repacked_ = repack && ggml_repacks(type, rows, cols);
        ggml_init_params wp{ggml_tensor_overhead() * (copies + 1), nullptr, true};
        ggml_init_params ap{ggml_tensor_overhead() * (1 + 4 * copies) + 2 * ggml_graph_overhead() * copies, nullptr, true};
        wctx_ = ggml_init(wp);
        actx_ = ggml_init(ap);
        for (std::size_t i = 0; i < copies; ++i) {
            ggml_tensor* w = ggml_new_tensor_2d(wctx_, type, cols, rows);
            for (int b = 0; b < 2; ++b) {
                ggml_tensor* x = ggml_new_tensor_2d(actx_, GGML_TYPE_F32, cols, b == 0 ? 1 : 8);
                ggml_tensor* y = ggml_mul_mat(actx_, w, x);
                ggml_cgraph* gf = ggml_new_graph(actx_);
                ggml_build_forward_expand(gf, y);
                ops_[b].push_back({w, x, y, gf});
            }
        }
        wbuf_ = ggml_backend_alloc_ctx_tensors_from_buft(wctx_, repacked_ ? g.repack : ggml_backend_cpu_buffer_type());
        abuf_ = ggml_backend_alloc_ctx_tensors(actx_, g.cpu);
        if (!wbuf_ || !abuf_) throw std::runtime_error("ggml: buffer allocation failed");
        for (auto& op : ops_[0]) ggml_backend_tensor_set(op.w, data.data(), 0, data.size());
    }
    ~GgmlMatmul() {
        if (wbuf_) ggml_backend_buffer_free(wbuf_);
        if (abuf_) ggml_backend_buffer_free(abuf_);
        ggml_free(wctx_);
        ggml_free(actx_);
    }
    GgmlMatmul(const GgmlMatmul&) = delete;
    GgmlMatmul& operator=(const GgmlMatmul&) = delete;

    bool repacked() const { return repacked_; }

    /// y = W_i x for a batch of 1 or 8.
    void run(std::size_t i, const MatrixXf& x, MatrixXf& y) {
        Op& op = ops_[x.cols() == 1 ? 0 : 1][i];
        ggml_backend_tensor_set(op.x, x.data(), 0, sizeof(float) * static_cast<std::size_t>(x.size()));
        ggml_backend_graph_compute(GgmlState::get().cpu, op.gf);
        ggml_backend_tensor_get(op.y, y.data(), 0, sizeof(float) * static_cast<std::size_t>(y.size()));
    }

private:
    struct Op {
        ggml_tensor *w, *x, *y;
        ggml_cgraph* gf;
    };
    ggml_context* wctx_ = nullptr;
    ggml_context* actx_ = nullptr;
    ggml_backend_buffer_t wbuf_ = nullptr;
    ggml_backend_buffer_t abuf_ = nullptr;
    bool repacked_ = false;
    std::vector<Op> ops_[2];
};

/// W quantized by ggml (row-major rows of `cols`), and its dequantized values.
struct GgmlWeights {
    std::vector<std::uint8_t> data;
    MatrixXf dequantized;
};

GgmlWeights ggml_quantize(ggml_type type, const MatrixXf& W) {
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Wr = W;
    GgmlWeights q;
    const std::size_t row = ggml_row_size(type, W.cols());
    q.data.resize(row * static_cast<std::size_t>(W.rows()));
    const std::vector<float> ones(static_cast<std::size_t>(W.cols()), 1.0f);
    ggml_quantize_chunk(type, Wr.data(), q.data.data(), 0, W.rows(), W.cols(),
                        ggml_quantize_requires_imatrix(type) ? ones.data() : nullptr);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> D(W.rows(), W.cols());
    const auto* traits = ggml_get_type_traits(type);
    for (Index r = 0; r < W.rows(); ++r)
        traits->to_float(q.data.data() + row * static_cast<std::size_t>(r), D.row(r).data(), W.cols());
    q.dequantized = D;
    return q;
}

#endif  // VQLIB_HAVE_GGML

/// The formats of one shape, built once.
struct Shape {
    Index rows, cols;
    MatrixXf w;
    kn::Int4GemvMatrix int4;
    kn::Int4FastMatrix int4_fast;
    vqlib::VqLayer paper_layer, large_layer;
    kn::VqGemvMatrix paper, large, four;
    kn::VqFastMatrix paper_fast, large_fast, four_fast;
    kn::VptqGemvMatrix vptq4096, vptq65536;
    kn::VptqFastMatrix vptq4096_fast, vptq65536_fast;
#ifdef VQLIB_HAVE_GGML
    std::map<std::string, GgmlWeights> ggml;
#endif
};

Shape& shape(Index rows, Index cols) {
    static std::vector<std::unique_ptr<Shape>> shapes;
    for (auto& s : shapes)
        if (s->rows == rows && s->cols == cols) return *s;
    auto s = std::make_unique<Shape>();
    s->rows = rows;
    s->cols = cols;
    s->w = random_matrix(rows, cols, 1);
    s->int4 = kn::Int4GemvMatrix::quantize_rtn(s->w, 128, true);
    s->int4_fast = kn::Int4FastMatrix::from_matrix(s->int4);
    s->paper_layer = vqlib::bench::random_gptvq_layer(rows, cols, 2, 16, 8, 2);
    s->large_layer = vqlib::bench::random_gptvq_layer(rows, cols, 2, 16, 256, 3);
    s->paper = kn::VqGemvMatrix::from_layer(s->paper_layer);
    s->large = kn::VqGemvMatrix::from_layer(s->large_layer);
    s->paper_fast = kn::VqFastMatrix::from_layer(s->paper_layer);
    s->large_fast = kn::VqFastMatrix::from_layer(s->large_layer);
    const vqlib::VqLayer four = vqlib::bench::random_gptvq_layer(rows, cols, 4, 256, rows, 4);
    s->four = kn::VqGemvMatrix::from_layer(four);
    s->four_fast = kn::VqFastMatrix::from_layer(four);
    const vqlib::VptqLayer v4096 = vqlib::bench::random_vptq_layer(rows, cols, 8, 4096, 5);
    const vqlib::VptqLayer v65536 = vqlib::bench::random_vptq_layer(rows, cols, 8, 65536, 6);
    s->vptq4096 = kn::VptqGemvMatrix::from_layer(v4096);
    s->vptq65536 = kn::VptqGemvMatrix::from_layer(v65536);
    s->vptq4096_fast = kn::VptqFastMatrix::from_layer(v4096);
    s->vptq65536_fast = kn::VptqFastMatrix::from_layer(v65536);
    shapes.push_back(std::move(s));
    return *shapes.back();
}

/// Kernels built on first use, kept for the whole run (interleaved repetitions reuse them).
Kernel& kernel(const std::string& key, const std::function<Kernel()>& make) {
    static std::map<std::string, Kernel> kernels;
    auto it = kernels.find(key);
    if (it == kernels.end()) it = kernels.emplace(key, make()).first;
    return it->second;
}

void run_kernel(benchmark::State& state, Kernel& k, Index rows, Index cols, Index batch, bool cold,
                const std::string& baseline) {
    const std::size_t n = copies_for(k.bytes, cold);
    std::vector<MatrixXf> xs(n, random_matrix(cols, batch, 9));
    std::vector<MatrixXf> ys(n, MatrixXf(rows, batch));
    std::size_t next = 0;
    for (auto _ : state) {
        k.run(next, xs[next], ys[next]);
        benchmark::DoNotOptimize(ys[next].data());
        benchmark::ClobberMemory();
        next = (next + 1) % n;
    }
    const double weights = static_cast<double>(rows * cols);
    state.counters["bpw"] = 8.0 * static_cast<double>(k.bytes) / weights;
    state.counters["GB/s"] = benchmark::Counter(static_cast<double>(k.bytes) / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
    state.counters["err"] = k.err;
    state.SetLabel("baseline=" + baseline);
}

void register_shape(Index rows, Index cols, Index batch, bool cold) {
    const std::string suffix = "/" + std::to_string(rows) + "x" + std::to_string(cols) + "/B=" +
                               std::to_string(batch) + (cold ? "/cold" : "");
#ifdef VQLIB_HAVE_GGML
    const std::string vq_base = "ggml/Q2_K" + suffix, int4_base = "ggml/Q4_0" + suffix;
#else
    const std::string vq_base = "Int4/g128/exact" + suffix, int4_base = vq_base;
#endif
    auto add = [&](const std::string& name, const std::string& baseline, std::function<Kernel(Shape&, std::size_t)> make,
                   std::function<std::size_t(Shape&)> bytes) {
        const std::string full = name + suffix;
        // One set of operands per kernel, shape and temperature, for both batches.
        const std::string key = name + "/" + std::to_string(rows) + "x" + std::to_string(cols) + (cold ? "/cold" : "");
        benchmark::RegisterBenchmark(full.c_str(), [=](benchmark::State& state) {
            Shape& s = shape(rows, cols);
            const std::size_t n = copies_for(bytes(s), cold);
            Kernel& k = kernel(key, [&] { return make(s, n); });
            run_kernel(state, k, rows, cols, batch, cold, baseline);
        })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    };
    const MatrixXf x8 = random_matrix(cols, 8, 10);
    auto fmt = [&](auto member, kn::GemvOptions o = {}) {
        return [member, o, x8](Shape& s, std::size_t n) {
            const auto& m = s.*member;
            return vqlib_kernel(m, n, kn::dequantize(m), x8, o);
        };
    };
    auto bytes_of = [](auto member) { return [member](Shape& s) { return (s.*member).stream_bytes(); }; };
    add("Int4/g128/exact", int4_base, fmt(&Shape::int4), bytes_of(&Shape::int4));
    add("Int4/g128/fast", int4_base, fmt(&Shape::int4_fast), bytes_of(&Shape::int4_fast));
    add("Gptvq2D/K16/8x256/exact", vq_base, fmt(&Shape::paper), bytes_of(&Shape::paper));
    add("Gptvq2D/K16/8x256/fast", vq_base, fmt(&Shape::paper_fast), bytes_of(&Shape::paper_fast));
    add("Gptvq2D/K16/256x256/exact", vq_base, fmt(&Shape::large), bytes_of(&Shape::large));
    add("Gptvq2D/K16/256x256/fast", vq_base, fmt(&Shape::large_fast), bytes_of(&Shape::large_fast));
    add("Gptvq4D/K256/exact", vq_base, fmt(&Shape::four), bytes_of(&Shape::four));
    add("Gptvq4D/K256/fast", vq_base, fmt(&Shape::four_fast), bytes_of(&Shape::four_fast));
    // The AVX2 variants (what CPUs without AVX-512 run), on this CPU.
    kn::GemvOptions avx2;
    avx2.isa = kn::Isa::avx2;
    add("Int4/g128/fast/avx2", int4_base, fmt(&Shape::int4_fast, avx2), bytes_of(&Shape::int4_fast));
    add("Gptvq2D/K16/8x256/exact/avx2", vq_base, fmt(&Shape::paper, avx2), bytes_of(&Shape::paper));
    add("Gptvq2D/K16/8x256/fast/avx2", vq_base, fmt(&Shape::paper_fast, avx2), bytes_of(&Shape::paper_fast));
    add("Gptvq2D/K16/256x256/fast/avx2", vq_base, fmt(&Shape::large_fast, avx2), bytes_of(&Shape::large_fast));
    add("Vptq/v8/k4096/exact", vq_base, fmt(&Shape::vptq4096), bytes_of(&Shape::vptq4096));
    add("Vptq/v8/k65536/exact", vq_base, fmt(&Shape::vptq65536), bytes_of(&Shape::vptq65536));
    add("Vptq/v8/k4096/fast", vq_base, fmt(&Shape::vptq4096_fast), bytes_of(&Shape::vptq4096_fast));
    add("Vptq/v8/k65536/fast", vq_base, fmt(&Shape::vptq65536_fast), bytes_of(&Shape::vptq65536_fast));
#ifdef VQLIB_HAVE_GGML
    struct G {
        const char* name;
        ggml_type type;
        bool repack;
    };
    for (const G& g : {G{"ggml/Q4_0", GGML_TYPE_Q4_0, true}, G{"ggml/Q4_K", GGML_TYPE_Q4_K, true},
                       G{"ggml/Q2_K", GGML_TYPE_Q2_K, true}, G{"ggml/Q2_K/plain", GGML_TYPE_Q2_K, false},
                       G{"ggml/IQ2_XXS", GGML_TYPE_IQ2_XXS, false}}) {
        const std::string base = g.type == GGML_TYPE_Q4_0 || g.type == GGML_TYPE_Q4_K ? int4_base : vq_base;
        auto weights = [g](Shape& s) -> GgmlWeights& {
            auto it = s.ggml.find(g.name);
            if (it == s.ggml.end()) it = s.ggml.emplace(g.name, ggml_quantize(g.type, s.w)).first;
            return it->second;
        };
        add(g.name, base,
            [g, weights, x8](Shape& s, std::size_t n) {
                GgmlWeights& q = weights(s);
                auto mm = std::make_shared<GgmlMatmul>(g.type, g.repack, q.data, s.rows, s.cols, n);
                Kernel k;
                k.bytes = q.data.size();
                MatrixXf y(s.rows, 8);
                mm->run(0, x8, y);
                k.err = relative_error(y, q.dequantized, x8);
                if (g.repack && !mm->repacked()) benchmark::AddCustomContext(std::string(g.name) + " repacked", "no");
                k.run = [mm](std::size_t i, const MatrixXf& x, MatrixXf& y) { mm->run(i, x, y); };
                return k;
            },
            [weights](Shape& s) { return weights(s).data.size(); });
    }
#endif
}

}  // namespace

int main(int argc, char** argv) {
    for (bool cold : {false, true})
        for (auto [rows, cols] : {std::pair<Index, Index>{4096, 4096}, {11008, 4096}, {4096, 11008}})
            for (Index batch : {1, 8}) register_shape(rows, cols, batch, cold);
#ifdef VQLIB_HAVE_GGML
    benchmark::AddCustomContext("ggml", std::string(ggml_version()) + " " + ggml_commit());
#endif
    // Interleaved rounds by default (the ratios then use the medians).
    std::vector<char*> args(argv, argv + argc);
    std::string reps = "--benchmark_repetitions=5", inter = "--benchmark_enable_random_interleaving=true",
                only = "--benchmark_report_aggregates_only=true";
    bool has_reps = false;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]).rfind("--benchmark_repetitions", 0) == 0) has_reps = true;
    if (!has_reps) args.insert(args.begin() + 1, {reps.data(), inter.data(), only.data()});
    int n = static_cast<int>(args.size());
    return vqlib::bench::run_with_ratios(n, args.data());
}
