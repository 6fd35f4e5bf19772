// write_demo_inputs: a small Llama-shaped checkpoint and its Hessians, deterministic.
#include "tool.hpp"

#include <vqlib/io/npy.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/io/temporary_file.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>

namespace vqlib::quantize {

namespace {

/// splitmix64 and Box-Muller: the same numbers on every platform.
class DemoRng {
public:
    explicit DemoRng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
    double normal() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }

private:
    std::uint64_t state_;
};

/// LLM-like weights: Gaussian rows of varying scale, a few outlier input columns.
MatrixXf demo_weight(Index rows, Index cols, std::uint64_t seed) {
    DemoRng rng(seed);
    MatrixXf W(rows, cols);
    VectorXf col_scale(cols), row_scale(rows);
    for (Index j = 0; j < cols; ++j) col_scale(j) = j % 37 == 5 ? 4.0f : 1.0f;
    for (Index i = 0; i < rows; ++i) row_scale(i) = static_cast<float>(0.5 + rng.uniform());
    const float base = 1.0f / std::sqrt(static_cast<float>(cols));
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) W(i, j) = static_cast<float>(rng.normal()) * base * row_scale(i) * col_scale(j);
    return W;
}

/// 2/n X X^T of n correlated inputs with heavy channels, as forward hooks accumulate it.
MatrixXd demo_hessian(Index cols, std::uint64_t seed) {
    DemoRng rng(seed);
    const Index n = 4 * cols;
    MatrixXd X(cols, n);
    VectorXd scale(cols);
    for (Index j = 0; j < cols; ++j) scale(j) = (j % 53 == 7 ? 8.0 : 1.0) * (0.3 + rng.uniform());
    for (Index t = 0; t < n; ++t) {
        const double shared = rng.normal();
        for (Index j = 0; j < cols; ++j) X(j, t) = scale(j) * (0.8 * rng.normal() + 0.6 * shared);
    }
    MatrixXd H = (2.0 / static_cast<double>(n)) * X * X.transpose();
    return (H + H.transpose()) / 2;  // symmetric to the last bit
}

io::Tensor bf16_tensor(const MatrixXf& m) { return io::Tensor::from_matrix(m, io::Dtype::BF16); }

}  // namespace

void write_demo_inputs(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    const fs::path model = dir / "model", hessians = dir / "hessians";
    fs::create_directories(model);
    fs::create_directories(hessians);
    constexpr Index hidden = 256, intermediate = 512, vocab = 320, layers = 2;
    std::uint64_t seed = 1;
    io::TensorMap shard[2];
    nlohmann::json weight_map = nlohmann::json::object();
    const auto put = [&](int s, const std::string& name, io::Tensor t) {
        weight_map[name] = s == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        shard[s].emplace(name, std::move(t));
    };
    put(0, "model.embed_tokens.weight", bf16_tensor(demo_weight(vocab, hidden, seed++)));
    for (Index l = 0; l < layers; ++l) {
        const int s = l == 0 ? 0 : 1;
        const std::string p = "model.layers." + std::to_string(l) + ".";
        put(s, p + "input_layernorm.weight", io::Tensor::from_vector(VectorXf::Ones(hidden), io::Dtype::BF16));
        put(s, p + "post_attention_layernorm.weight", io::Tensor::from_vector(VectorXf::Ones(hidden), io::Dtype::BF16));
        for (const char* m : {"q_proj", "k_proj", "v_proj", "o_proj"})
            put(s, p + "self_attn." + m + ".weight", bf16_tensor(demo_weight(hidden, hidden, seed++)));
        put(s, p + "mlp.gate_proj.weight", bf16_tensor(demo_weight(intermediate, hidden, seed++)));
        put(s, p + "mlp.up_proj.weight", bf16_tensor(demo_weight(intermediate, hidden, seed++)));
        put(s, p + "mlp.down_proj.weight", bf16_tensor(demo_weight(hidden, intermediate, seed++)));
        // The three ways the Hessian directory names its files: q_proj's serves k/v by the sharing
        // groups (.npy), gate/up's lists both in input_of, o/down by their own names.
        vqlib::save_npy(hessians / (p + "self_attn.q_proj.npy"), MatrixXf(demo_hessian(hidden, seed++).cast<float>()));
        io::write_safetensors(hessians / (p + "mlp.gate_up.safetensors"),
                              {{"H", io::Tensor::from_matrix(demo_hessian(hidden, seed++).cast<float>())}},
                              {{"input_of", p + "mlp.gate_proj.weight," + p + "mlp.up_proj.weight"}});
        io::write_safetensors(hessians / (p + "self_attn.o_proj.safetensors"),
                              {{"H", io::Tensor::from_matrix(demo_hessian(hidden, seed++).cast<float>())}});
        vqlib::save_npy(hessians / (p + "mlp.down_proj.npy"), MatrixXd(demo_hessian(intermediate, seed++)));
    }
    put(1, "model.norm.weight", io::Tensor::from_vector(VectorXf::Ones(hidden), io::Dtype::BF16));
    put(1, "lm_head.weight", bf16_tensor(demo_weight(vocab, hidden, seed++)));
    io::write_safetensors(model / "model-00001-of-00002.safetensors", shard[0], {{"format", "pt"}});
    io::write_safetensors(model / "model-00002-of-00002.safetensors", shard[1], {{"format", "pt"}});
    const nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
    const nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                                   {"model_type", "llama"},
                                   {"hidden_size", hidden},
                                   {"intermediate_size", intermediate},
                                   {"num_attention_heads", 4},
                                   {"num_key_value_heads", 4},
                                   {"num_hidden_layers", layers},
                                   {"vocab_size", vocab},
                                   {"max_position_embeddings", 256},
                                   {"rms_norm_eps", 1e-5},
                                   {"hidden_act", "silu"},
                                   {"tie_word_embeddings", false},
                                   {"torch_dtype", "bfloat16"}};
    for (const auto& [file, text] : {std::pair{"model.safetensors.index.json", index.dump(2)},
                                     std::pair{"config.json", config.dump(2)}}) {
        io::detail::temporary_file out(model / file, "JSON");
        const std::string t = text + "\n";
        out.write(t.data(), t.size());
        out.commit();
    }
}

}  // namespace vqlib::quantize
