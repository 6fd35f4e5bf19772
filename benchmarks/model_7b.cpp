// A Llama-2-7B-shaped model on this machine: the 7 linear shapes of one decoder block
// (q/k/v/o 4096 x 4096, gate/up 11008 x 4096, down 4096 x 11008; rows = output features) with
// LLM-like synthetic weights (Student-t, 4 degrees of freedom, a few outlier rows) and Hessians
// (2/n X X^T of inputs with log-normal channel scales and a few outlier channels), quantized by
// each method's preset. Linears that read the same input share one prepared Hessian (q/k/v;
// gate/up), prepared once per block as a real run would.
//
// One benchmark per (method, shape), one iteration each, next to an SGEMM of the shape's size (an
// R x C by C x C product) in the same process. Counters: seconds (the preparation counted on the
// first linear of each input), the peak resident memory of the call above what was resident
// before it (VmHWM, reset before the call; W and H are resident already), bits per weight, and
// the relative loss tr(E H E^T) / tr(W H W^T). At the end, for each method whose shapes all ran, the model total:
// 32 blocks x (the 7 quantizations + the 4 distinct Hessian preparations).
//
//   vqlib_bench_model_7b --benchmark_filter='gptq/'     one method (gptq, gptvq, pvq, vptq)
//   vqlib_bench_model_7b --benchmark_filter='/q_proj'   one shape for every method
//   vqlib_bench_model_7b --benchmark_filter='gemm|/(q|gate|down)_proj'   the 3 distinct sizes;
//                                  the totals take k/v/o from q and up from gate (marked *)
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/pvq.hpp>
#include <vqlib/vptq.hpp>

#include <benchmark/benchmark.h>

#include "ratio_reporter.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using vqlib::Index;
using vqlib::MatrixXd;
using vqlib::MatrixXf;

constexpr int kBlocks = 32;
constexpr Index kTokens = 4096;

struct Shape {
    const char* name;
    Index rows, cols;
    const char* input;  // linears with the same input share a Hessian
};

const std::vector<Shape>& shapes() {
    static const std::vector<Shape> s = {
        {"q_proj", 4096, 4096, "attn_in"},   {"k_proj", 4096, 4096, "attn_in"},
        {"v_proj", 4096, 4096, "attn_in"},   {"o_proj", 4096, 4096, "attn_out"},
        {"gate_proj", 11008, 4096, "mlp_in"}, {"up_proj", 11008, 4096, "mlp_in"},
        {"down_proj", 4096, 11008, "mlp_mid"}};
    return s;
}

/// A line of /proc/self/status in MiB: VmHWM (peak resident memory since the last reset by
/// clear_refs = 5) or VmRSS (now).
double status_mib(const std::string& field) {
    std::ifstream status("/proc/self/status");
    std::string key;
    while (status >> key) {
        if (key == field) {
            double kb = 0;
            status >> kb;
            return kb / 1024.0;
        }
        std::getline(status, key);
    }
    return 0.0;
}
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

std::uint64_t seed_of(const std::string& s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return h;
}

MatrixXf weight(const Shape& s) {
    vqlib::Rng rng(seed_of(s.name));
    MatrixXf W(s.rows, s.cols);
    for (Index j = 0; j < s.cols; ++j)
        for (Index i = 0; i < s.rows; ++i)
            W(i, j) = static_cast<float>(0.02 * rng.student_t(4) * (i % 509 == 0 ? 4.0 : 1.0));
    return W;
}

/// 2/n X X^T of n = 4096 tokens whose channels have log-normal scales, 1 in 256 of them 20x.
const MatrixXd& hessian(const std::string& input, Index cols) {
    static std::map<std::string, std::unique_ptr<MatrixXd>> cache;
    auto& slot = cache[input];
    if (!slot) {
        vqlib::Rng rng(seed_of(input));
        std::vector<double> scale(static_cast<std::size_t>(cols));
        for (auto& v : scale) v = std::exp(0.5 * rng.normal());
        for (Index i = 0; i < cols; i += 256) scale[static_cast<std::size_t>(i)] *= 20.0;
        MatrixXf X(cols, kTokens);
        for (Index t = 0; t < kTokens; ++t)
            for (Index i = 0; i < cols; ++i)
                X(i, t) = static_cast<float>(scale[static_cast<std::size_t>(i)] * rng.normal());
        vqlib::HessianAccumulator acc(cols);
        acc.add(X);
        slot = std::make_unique<MatrixXd>(acc.finalize());
    }
    return *slot;
}

struct Measured {
    double seconds = 0, prepare_seconds = 0, peak = 0, bpw = 0, relative_loss = 0;
};
std::map<std::string, std::map<std::string, Measured>> results;  // method -> shape -> figures

/// A method: prepares a Hessian (the shared part) and quantizes one linear with it.
struct Method {
    const char* name;
    const char* preset;
    // Prepares the shape's Hessian when it is the first of its input (or none is held), quantizes
    // the linear with it and fills `m`.
    std::function<void(const Shape&, const MatrixXf&, const MatrixXd&, bool, Measured&)> run;
};

template <class Prepare, class Quantize>
auto recipe(Prepare prepare, Quantize quantize) {
    // One preparation per distinct input, reused by the linears after the first.
    return [prepare, quantize](const Shape& s, const MatrixXf& W, const MatrixXd& H, bool first,
                               Measured& m) {
        using Prepared = decltype(prepare(H));
        static std::map<std::string, std::shared_ptr<Prepared>> prepared;
        auto& slot = prepared[s.input];
        const auto t0 = std::chrono::steady_clock::now();
        if (!slot || first) slot = std::make_shared<Prepared>(prepare(H));
        const auto t1 = std::chrono::steady_clock::now();
        if (first) m.prepare_seconds = std::chrono::duration<double>(t1 - t0).count();
        const auto r = quantize(W, H, *slot);
        m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        m.bpw = r.bits_per_weight;
        m.relative_loss = r.proxy_loss / vqlib::proxy_loss(W, MatrixXf::Zero(W.rows(), W.cols()), H);
    };
}

std::vector<Method> methods() {
    vqlib::GptqConfig<vqlib::IntGrid> gptq{vqlib::IntGrid(4, false)};
    gptq.groups.size = 128;
    const auto gptvq = vqlib::gptvq_presets::paper(2, 2.125);
    auto pvq = vqlib::pvq_presets::best(3.25);
    pvq.incoherence->odd_factor = vqlib::transform::OddFactorPolicy::hartley_fallback;  // 11008
    const auto vptq = vqlib::vptq_presets::v6_k4096();
    return {
        {"gptq", "w4 g128",
         recipe([=](const MatrixXd& H) { return vqlib::prepare_hessian(H, gptq.hessian); },
                [=](const MatrixXf& W, const MatrixXd&, const vqlib::PreparedHessian& p) {
                    return vqlib::gptq(W, p, gptq);
                })},
        {"gptvq", "2D 2.125 bpw best (paper(2, 2.125))",
         recipe([=](const MatrixXd& H) { return vqlib::prepare_hessian(H, gptvq.hessian); },
                [=](const MatrixXf& W, const MatrixXd& H, const vqlib::PreparedHessian& p) {
                    return vqlib::gptvq(W, H, p, gptvq);
                })},
        {"pvq", "3.25 bpw best",
         recipe([=](const MatrixXd& H) { return vqlib::pvq_prepare_hessian(H, pvq); },
                [=](const MatrixXf& W, const MatrixXd& H, const vqlib::PvqHessian& p) {
                    return vqlib::pvq(W, H, p, pvq);
                })},
        {"vptq", "v6 k4096",
         recipe([=](const MatrixXd& H) { return vqlib::vptq_prepare_hessian(H, vptq); },
                [=](const MatrixXf& W, const MatrixXd& H, const vqlib::VptqHessian& p) {
                    return vqlib::vptq(W, H, p, vptq);
                })},
    };
}

void gemm_of_shape(benchmark::State& state, const Shape& s) {
    const MatrixXf a = MatrixXf::Random(s.rows, s.cols);
    const MatrixXf b = MatrixXf::Random(s.cols, s.cols);
    MatrixXf c(s.rows, s.cols);
    for (auto _ : state) {
        vqlib::parallel_for_ranges(s.cols, 256, [&](Index j0, Index j1) {
            c.middleCols(j0, j1 - j0).noalias() = a * b.middleCols(j0, j1 - j0);
        });
        benchmark::DoNotOptimize(c.data());
    }
}

/// Whether shape k is the first of the linears reading its input (the one that prepares).
bool prepares(std::size_t k) { return k == 0 || std::string(shapes()[k - 1].input) != shapes()[k].input; }

void print_model_totals() {
    std::printf("\nLlama-2-7B-shaped model, %d blocks (shared preparations counted once per block;\n"
                "a shape not run is taken from a measured one of the same size, marked *):\n",
                kBlocks);
    std::printf("%-6s %10s %10s %10s %12s %10s\n", "method", "quantize", "prepare", "total", "total/block",
                "peak MiB");
    for (const auto& [method, by_shape] : results) {
        double quantize = 0, prepare = 0, peak = 0;
        std::string estimated;
        bool complete = true;
        for (std::size_t k = 0; k < shapes().size(); ++k) {
            const Shape& s = shapes()[k];
            const Measured* m = nullptr;
            const Measured* prep = nullptr;  // a measured first-of-input shape of the same width
            for (std::size_t j = 0; j < shapes().size(); ++j) {
                const auto it = by_shape.find(shapes()[j].name);
                if (it == by_shape.end()) continue;
                if (shapes()[j].rows == s.rows && shapes()[j].cols == s.cols && (!m || j == k)) m = &it->second;
                if (shapes()[j].cols == s.cols && prepares(j) && (!prep || j == k)) prep = &it->second;
            }
            if (!m || (prepares(k) && !prep)) {
                complete = false;
                break;
            }
            if (!by_shape.count(s.name)) estimated += std::string(estimated.empty() ? "" : ",") + s.name;
            quantize += m->seconds;
            prepare += prepares(k) ? prep->prepare_seconds : 0.0;
            peak = std::max(peak, m->peak);
        }
        if (!complete) {
            std::printf("%-6s (a shape of a size not measured)\n", method.c_str());
            continue;
        }
        const double block = quantize + prepare;
        const char* preset = "";
        for (const auto& m : methods())
            if (method == m.name) preset = m.preset;
        std::printf("%-6s %9.0fs %9.0fs %9.1fmin %11.1fs %10.0f  %s%s%s\n", method.c_str(),
                    kBlocks * quantize, kBlocks * prepare, kBlocks * block / 60.0, block, peak, preset,
                    estimated.empty() ? "" : "  *", estimated.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    for (const auto& s : shapes()) {
        const std::string name = std::string("gemm/") + s.name;
        benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& st) { gemm_of_shape(st, s); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->Iterations(1);
    }
    for (const auto& method : methods()) {
        std::string previous_input;
        for (const auto& s : shapes()) {
            const bool first = previous_input != s.input;
            previous_input = s.input;
            const std::string name = std::string(method.name) + "/" + s.name;
            benchmark::RegisterBenchmark(name.c_str(), [method, s, first](benchmark::State& st) {
                const MatrixXf W = weight(s);
                const MatrixXd& H = hessian(s.input, s.cols);
                Measured m;
                double before = 0;
                for (auto _ : st) {
                    before = status_mib("VmRSS:");
                    reset_peak();
                    method.run(s, W, H, first, m);
                    m.peak = status_mib("VmHWM:") - before;
                    st.SetIterationTime(m.seconds + m.prepare_seconds);
                }
                results[method.name][s.name] = m;
                st.counters["quantize_s"] = m.seconds;
                st.counters["prepare_s"] = m.prepare_seconds;
                st.counters["peak_MiB"] = m.peak;  // above the resident memory before the call
                st.counters["bpw"] = m.bpw;
                st.counters["rel_loss"] = m.relative_loss;
                st.SetLabel(std::string("baseline=gemm/") + s.name);
            })
                ->Unit(benchmark::kMillisecond)
                ->UseManualTime()
                ->Iterations(1);
        }
    }
    const int rc = vqlib::bench::run_with_ratios(argc, argv);
    print_model_totals();
    return rc;
}
