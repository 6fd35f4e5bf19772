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
//   vqlib_bench_model_7b --write-checkpoint DIR --blocks N   the model as a checkpoint of N blocks
//                                  with its Hessians, for vqlib-quantize (benchmarks/quantize_7b.sh)
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/pvq.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/vptq.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "model_7b_shapes.hpp"
#include "ratio_reporter.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
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
using vqlib::bench::llama7b::seed_of;
using vqlib::bench::llama7b::Shape;
using vqlib::bench::llama7b::shapes;

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

MatrixXf weight(const Shape& s) { return vqlib::bench::llama7b::synthetic_weight(s.rows, s.cols, seed_of(s.name)); }

const MatrixXd& hessian(const std::string& input, Index cols) {
    static std::map<std::string, std::unique_ptr<MatrixXd>> cache;
    auto& slot = cache[input];
    if (!slot) slot = std::make_unique<MatrixXd>(vqlib::bench::llama7b::synthetic_hessian(cols, seed_of(input)));
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
         recipe([=](const MatrixXd& H) { return vqlib::gptvq_prepare_hessian(H, gptvq); },
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

/// --write-checkpoint DIR [--blocks N]: the model as a Llama-2-7B-shaped checkpoint of N decoder
/// blocks for vqlib-quantize (benchmarks/quantize_7b.sh): DIR/model (BF16, one shard per block and
/// one for the embeddings and head, model.safetensors.index.json, config.json) and DIR/hessians
/// (float32: q_proj's serves k/v by the tool's sharing groups, gate/up's names both in input_of).
/// Block b's values are seeded by its tensor names.
void write_checkpoint(const std::filesystem::path& dir, int blocks) {
    namespace fs = std::filesystem;
    namespace l7 = vqlib::bench::llama7b;
    const fs::path model = dir / "model", hessians = dir / "hessians";
    fs::create_directories(model);
    fs::create_directories(hessians);
    const auto shard_name = [&](int s) {
        char name[64];
        std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, blocks + 1);
        return std::string(name);
    };
    const auto bf16 = [](const MatrixXf& m) { return vqlib::io::Tensor::from_matrix(m, vqlib::io::Dtype::BF16); };
    const auto ones = vqlib::io::Tensor::from_vector(vqlib::VectorXf::Ones(l7::kHidden), vqlib::io::Dtype::BF16);
    nlohmann::json weight_map = nlohmann::json::object();
    std::uint64_t total = 0;
    const auto write_shard = [&](int s, const vqlib::io::TensorMap& tensors) {
        for (const auto& [name, t] : tensors) {
            weight_map[name] = shard_name(s);
            total += t.data.size();
        }
        vqlib::io::write_safetensors(model / shard_name(s), tensors, {{"format", "pt"}});
    };
    for (int b = 0; b < blocks; ++b) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::string p = "model.layers." + std::to_string(b) + ".";
        vqlib::io::TensorMap shard;
        shard.emplace(p + "input_layernorm.weight", ones);
        shard.emplace(p + "post_attention_layernorm.weight", ones);
        for (const Shape& sh : shapes()) {
            const std::string name = p + sh.parent + "." + sh.name + ".weight";
            shard.emplace(name, bf16(l7::synthetic_weight(sh.rows, sh.cols, seed_of(name))));
        }
        write_shard(b, shard);
        const auto save = [&](const std::string& file, const std::string& input, Index cols, vqlib::io::Metadata meta) {
            const MatrixXf H = l7::synthetic_hessian(cols, seed_of(p + input)).cast<float>();
            meta["tokens"] = std::to_string(l7::kTokens);
            vqlib::io::write_safetensors(hessians / (p + file), {{"H", vqlib::io::Tensor::from_matrix(H)}}, meta);
        };
        save("self_attn.q_proj.safetensors", "attn_in", l7::kHidden, {});
        save("self_attn.o_proj.safetensors", "attn_out", l7::kHidden, {});
        save("mlp.gate_up.safetensors", "mlp_in", l7::kHidden,
             {{"input_of", p + "mlp.gate_proj.weight," + p + "mlp.up_proj.weight"}});
        save("mlp.down_proj.safetensors", "mlp_mid", l7::kIntermediate, {});
        std::printf("block %d of %d written (%.1f s)\n", b + 1, blocks,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        std::fflush(stdout);
    }
    vqlib::io::TensorMap last;
    last.emplace("model.embed_tokens.weight", bf16(l7::synthetic_weight(l7::kVocab, l7::kHidden, seed_of("embed_tokens"))));
    last.emplace("lm_head.weight", bf16(l7::synthetic_weight(l7::kVocab, l7::kHidden, seed_of("lm_head"))));
    last.emplace("model.norm.weight", ones);
    write_shard(blocks, last);
    const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    const nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                                   {"hidden_size", l7::kHidden},           {"intermediate_size", l7::kIntermediate},
                                   {"num_attention_heads", 32},            {"num_key_value_heads", 32},
                                   {"num_hidden_layers", blocks},          {"vocab_size", l7::kVocab},
                                   {"max_position_embeddings", 4096},      {"rms_norm_eps", 1e-5},
                                   {"hidden_act", "silu"},                 {"tie_word_embeddings", false},
                                   {"bos_token_id", 1},                    {"eos_token_id", 2},
                                   {"torch_dtype", "bfloat16"}};
    std::ofstream(model / "model.safetensors.index.json") << index.dump(2) << "\n";
    std::ofstream(model / "config.json") << config.dump(2) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) != "--write-checkpoint") continue;
        if (i + 1 >= argc) {
            std::fprintf(stderr, "--write-checkpoint: give a directory\n");
            return 2;
        }
        int blocks = 1;
        for (int j = 1; j + 1 < argc; ++j)
            if (std::string(argv[j]) == "--blocks") blocks = std::stoi(argv[j + 1]);
        write_checkpoint(argv[i + 1], blocks);
        return 0;
    }
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
