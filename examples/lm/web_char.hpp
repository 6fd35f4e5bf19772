#pragma once
// web-char, the small trained character-level transformer of tests/data/models/web-char, in C++ on
// Eigen: its weights (read with vqlib::io), its corpus (xz, decoded with liblzma), its forward
// pass exactly as the model's README specifies it (pre-LayerNorm blocks, 4-head causal attention,
// GELU(erf) MLP, final LayerNorm and head, no biases in linears), test perplexity by the README's
// protocol, and the calibration windows of reference.json.
//
// The forward pass of a block calls back at each of its four linear inputs (q/k/v share the first)
// before the linears of that group run, so a caller can collect Hessians there and even replace
// the group's weights first: that is GPTQ's sequential calibration (lm_quantize.hpp).
#include <vqlib/core.hpp>
#include <vqlib/io/safetensors.hpp>

#include <lzma.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace vqlib::lm {

/// Activations: one token per row (tokens x features), as PyTorch's (batch * sequence, features).
using Activations = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct WebCharConfig {
    Index vocab = 0, d = 0, heads = 0, ff = 0, layers = 0, ctx = 0;
    double eps = 1e-5;
    std::vector<std::uint32_t> codepoints;
    Index head_dim() const { return d / heads; }
};

/// The linears of a block in the README's order, and the input each reads: q/k/v read the first
/// LayerNorm's output, o the attention output, up the second LayerNorm's output, down the GELU.
inline constexpr std::array<const char*, 6> linear_names = {"q", "k", "v", "o", "up", "down"};
enum class LinearInput { attention = 0, output = 1, up = 2, down = 3 };
inline constexpr std::array<LinearInput, 6> linear_inputs = {
    LinearInput::attention, LinearInput::attention, LinearInput::attention,
    LinearInput::output,    LinearInput::up,        LinearInput::down};
inline const char* input_name(LinearInput g) {
    constexpr std::array<const char*, 4> names = {"q/k/v", "o", "up", "down"};
    return names[static_cast<std::size_t>(g)];
}

/// A linear computed some other way than x W^T (decode.hpp: a quantized layer's decode kernel):
/// (x: tokens x in, T: window length) -> tokens x out.
using LinearKernel = std::function<Activations(const Activations&, Index)>;

struct Block {
    Eigen::RowVectorXf ln1_weight, ln1_bias, ln2_weight, ln2_bias;
    /// q, k, v, o, up, down: out_features x in_features, as in PyTorch.
    std::array<MatrixXf, 6> linear;
    /// When set, linear l runs kernel[l] instead of its weight.
    std::array<LinearKernel, 6> kernel;

    Activations apply(std::size_t l, const Activations& x, Index T) const;
};

struct WebChar {
    WebCharConfig config;
    MatrixXf embedding;  // vocab x d
    MatrixXf position;   // ctx x d
    std::vector<Block> blocks;
    Eigen::RowVectorXf lnf_weight, lnf_bias;
    MatrixXf head;  // vocab x d

    /// Linears are numbered block * 6 + position in linear_names (the README's order).
    Index linear_count() const { return static_cast<Index>(blocks.size()) * 6; }
    MatrixXf& linear(Index i) { return blocks[static_cast<std::size_t>(i / 6)].linear[static_cast<std::size_t>(i % 6)]; }
    const MatrixXf& linear(Index i) const {
        return blocks[static_cast<std::size_t>(i / 6)].linear[static_cast<std::size_t>(i % 6)];
    }
    static std::string linear_name(Index i) {
        return "blocks." + std::to_string(i / 6) + "." + linear_names[static_cast<std::size_t>(i % 6)] +
               ".weight";
    }
};

namespace detail {

inline nlohmann::json read_json(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    VQLIB_CHECK(in.good(), io_error, path.string(), ": cannot open");
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw io_error(vqlib::detail::concat(path.string(), ": not valid JSON (", e.what(), ")"));
    }
}

inline Index json_positive(const nlohmann::json& j, const std::string& key, const std::string& file) {
    VQLIB_CHECK(j.contains(key) && j[key].is_number_integer() && j[key].get<std::int64_t>() > 0,
                io_error, file, ": \"", key, "\" is ",
                j.contains(key) ? j[key].dump() : std::string("missing"), ": expected a positive integer");
    return static_cast<Index>(j[key].get<std::int64_t>());
}

inline MatrixXf tensor_matrix(const io::SafetensorsFile& file, const std::string& name, Index rows,
                              Index cols, const std::string& where) {
    const auto it = file.tensors.find(name);
    VQLIB_CHECK(it != file.tensors.end(), io_error, where, ": tensor \"", name, "\" is missing");
    const io::Tensor& t = it->second;
    const bool vector = rows == 1;
    const bool ok = vector ? (t.shape.size() == 1 && t.shape[0] == cols)
                           : (t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols);
    VQLIB_CHECK(ok && io::is_floating_point(t.dtype), io_error, where, ": tensor \"", name, "\" is ",
                io::dtype_name(t.dtype), " ", io::detail::shape_string(t.shape), ": expected a float ",
                vector ? vqlib::detail::concat("[", cols, "]") : vqlib::detail::concat("[", rows, ", ", cols, "]"));
    MatrixXf m = vector ? MatrixXf(t.to_matrix().transpose()) : t.to_matrix();
    check_finite(name.c_str(), m);
    return m;
}

}  // namespace detail

inline WebCharConfig read_config(const std::filesystem::path& model_dir) {
    const std::filesystem::path path = model_dir / "config.json";
    const nlohmann::json j = detail::read_json(path);
    WebCharConfig c;
    const std::string file = path.string();
    c.vocab = detail::json_positive(j, "vocab", file);
    c.d = detail::json_positive(j, "d", file);
    c.heads = detail::json_positive(j, "h", file);
    c.ff = detail::json_positive(j, "ff", file);
    c.layers = detail::json_positive(j, "layers", file);
    c.ctx = detail::json_positive(j, "ctx", file);
    VQLIB_CHECK(c.d % c.heads == 0, io_error, file, ": d = ", c.d, " is not a multiple of h = ", c.heads);
    if (j.contains("layer_norm_eps")) c.eps = j["layer_norm_eps"].get<double>();
    VQLIB_CHECK(j.value("activation", std::string("gelu_erf")) == "gelu_erf", io_error, file,
                ": activation ", j["activation"].dump(), ": expected \"gelu_erf\"");
    VQLIB_CHECK(!j.value("tied_embeddings", false), io_error, file,
                ": tied_embeddings = true: expected a separate head");
    VQLIB_CHECK(j.contains("vocab_codepoints") && j["vocab_codepoints"].is_array() &&
                    static_cast<Index>(j["vocab_codepoints"].size()) == c.vocab,
                io_error, file, ": \"vocab_codepoints\" must list vocab = ", c.vocab, " code points");
    for (const auto& cp : j["vocab_codepoints"]) c.codepoints.push_back(cp.get<std::uint32_t>());
    return c;
}

/// Reads config.json and model.safetensors of a web-char model directory; every tensor is checked
/// for name, dtype, shape and finiteness (io_error naming it).
inline WebChar load_web_char(const std::filesystem::path& model_dir) {
    WebChar m;
    m.config = read_config(model_dir);
    const WebCharConfig& c = m.config;
    const std::filesystem::path path = model_dir / "model.safetensors";
    const io::SafetensorsFile file = io::read_safetensors(path);
    const std::string where = path.string();
    m.embedding = detail::tensor_matrix(file, "emb.weight", c.vocab, c.d, where);
    m.position = detail::tensor_matrix(file, "pos", c.ctx, c.d, where);
    m.lnf_weight = detail::tensor_matrix(file, "lnf.weight", 1, c.d, where);
    m.lnf_bias = detail::tensor_matrix(file, "lnf.bias", 1, c.d, where);
    m.head = detail::tensor_matrix(file, "head.weight", c.vocab, c.d, where);
    const std::array<std::pair<Index, Index>, 6> shapes = {
        std::pair{c.d, c.d}, std::pair{c.d, c.d}, std::pair{c.d, c.d},
        std::pair{c.d, c.d}, std::pair{c.ff, c.d}, std::pair{c.d, c.ff}};
    for (Index b = 0; b < c.layers; ++b) {
        Block block;
        const std::string p = "blocks." + std::to_string(b) + ".";
        block.ln1_weight = detail::tensor_matrix(file, p + "ln1.weight", 1, c.d, where);
        block.ln1_bias = detail::tensor_matrix(file, p + "ln1.bias", 1, c.d, where);
        block.ln2_weight = detail::tensor_matrix(file, p + "ln2.weight", 1, c.d, where);
        block.ln2_bias = detail::tensor_matrix(file, p + "ln2.bias", 1, c.d, where);
        for (std::size_t l = 0; l < 6; ++l)
            block.linear[l] = detail::tensor_matrix(file, p + linear_names[l] + ".weight",
                                                    shapes[l].first, shapes[l].second, where);
        m.blocks.push_back(std::move(block));
    }
    const std::size_t expected = 5 + 10 * static_cast<std::size_t>(c.layers);
    VQLIB_CHECK(file.tensors.size() == expected, io_error, where, ": holds ", file.tensors.size(),
                " tensors: expected ", expected, " for a ", c.layers, "-block web-char model");
    return m;
}

// ---------------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------------

/// Decompresses an .xz file with liblzma (io_error naming the file on any failure).
inline std::string read_xz(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    VQLIB_CHECK(in.good(), io_error, path.string(), ": cannot open");
    const std::vector<std::uint8_t> packed((std::istreambuf_iterator<char>(in)), {});
    lzma_stream stream = LZMA_STREAM_INIT;
    VQLIB_CHECK(lzma_stream_decoder(&stream, UINT64_MAX, 0) == LZMA_OK, io_error, path.string(),
                ": liblzma cannot start a decoder");
    std::string out;
    std::vector<std::uint8_t> buffer(1 << 20);
    stream.next_in = packed.data();
    stream.avail_in = packed.size();
    lzma_ret ret = LZMA_OK;
    while (ret == LZMA_OK) {
        stream.next_out = buffer.data();
        stream.avail_out = buffer.size();
        ret = lzma_code(&stream, LZMA_FINISH);
        out.append(reinterpret_cast<const char*>(buffer.data()), buffer.size() - stream.avail_out);
    }
    lzma_end(&stream);
    VQLIB_CHECK(ret == LZMA_STREAM_END, io_error, path.string(), ": not a complete .xz stream (liblzma error ",
                static_cast<int>(ret), ")");
    return out;
}

/// The corpus as token ids (UTF-8 decoded, each code point's index in vocab_codepoints), split as
/// the README says: the first int(0.9 n) characters train, the rest test.
struct Corpus {
    std::vector<std::int32_t> train, test;
};

inline Corpus load_corpus(const std::filesystem::path& model_dir, const WebCharConfig& c) {
    const std::filesystem::path path = model_dir / "corpus.txt.xz";
    const std::string text = read_xz(path);
    std::vector<std::int32_t> lookup;
    for (std::size_t i = 0; i < c.codepoints.size(); ++i) {
        if (c.codepoints[i] >= lookup.size()) lookup.resize(c.codepoints[i] + 1, -1);
        lookup[c.codepoints[i]] = static_cast<std::int32_t>(i);
    }
    std::vector<std::int32_t> ids;
    ids.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        const int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        VQLIB_CHECK(len > 0 && i + static_cast<std::size_t>(len) <= text.size(), io_error, path.string(),
                    ": invalid UTF-8 at byte ", i);
        std::uint32_t cp = len == 1 ? b : b & (0x7Fu >> len);
        for (int k = 1; k < len; ++k) {
            const auto cont = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
            VQLIB_CHECK((cont >> 6) == 2, io_error, path.string(), ": invalid UTF-8 at byte ", i);
            cp = (cp << 6) | (cont & 0x3Fu);
        }
        VQLIB_CHECK(cp < lookup.size() && lookup[cp] >= 0, io_error, path.string(),
                    ": character U+", cp, " at byte ", i, " is not in the vocabulary");
        ids.push_back(lookup[cp]);
        i += static_cast<std::size_t>(len);
    }
    const auto split = static_cast<std::size_t>(0.9 * static_cast<double>(ids.size()));
    Corpus corpus;
    corpus.train.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(split));
    corpus.test.assign(ids.begin() + static_cast<std::ptrdiff_t>(split), ids.end());
    return corpus;
}

/// reference.json: the fp32 test perplexity, the evaluation length and the calibration windows.
struct Reference {
    double fp32_test_perplexity = 0;
    Index eval_chars = 0;
    std::vector<Index> calibration_window_starts;
};

inline Reference read_reference(const std::filesystem::path& model_dir) {
    const std::filesystem::path path = model_dir / "reference.json";
    const nlohmann::json j = detail::read_json(path);
    Reference r;
    VQLIB_CHECK(j.contains("fp32_test_perplexity") && j["fp32_test_perplexity"].is_number(), io_error,
                path.string(), ": \"fp32_test_perplexity\" missing or not a number");
    r.fp32_test_perplexity = j["fp32_test_perplexity"].get<double>();
    r.eval_chars = detail::json_positive(j, "eval_chars", path.string());
    VQLIB_CHECK(j.contains("calibration_window_starts") && j["calibration_window_starts"].is_array(),
                io_error, path.string(), ": \"calibration_window_starts\" missing or not an array");
    for (const auto& s : j["calibration_window_starts"]) r.calibration_window_starts.push_back(s.get<Index>());
    return r;
}

// ---------------------------------------------------------------------------------------------
// Forward pass
// ---------------------------------------------------------------------------------------------

/// Calls body(r0, r1) on row ranges of whole windows (T rows each, about 1024 rows a range), in
/// parallel; each range runs the same serial code whatever the thread count.
template <class Body>
void for_row_ranges(Index rows, Index T, Body&& body) {
    const Index chunk = T * std::max<Index>(1, 1024 / T);
    parallel_for_ranges(rows, chunk, body);
}

/// What LayerNorm's backward pass needs (finetune.hpp).
struct NormCache {
    Activations xhat;     // (x - mean) / sqrt(var + eps)
    Eigen::VectorXf inv;  // 1 / sqrt(var + eps) per row
};

/// LayerNorm over each row: biased variance, eps, then weight and bias; with `cache`, also the
/// normalized rows and their 1/std.
inline Activations layer_norm(const Activations& x, const Eigen::RowVectorXf& weight,
                              const Eigen::RowVectorXf& bias, double eps, Index T, NormCache* cache = nullptr) {
    Activations y(x.rows(), x.cols());
    if (cache) {
        cache->xhat.resize(x.rows(), x.cols());
        cache->inv.resize(x.rows());
    }
    const float n = static_cast<float>(x.cols());
    for_row_ranges(x.rows(), T, [&](Index r0, Index r1) {
        for (Index t = r0; t < r1; ++t) {
            const float mean = x.row(t).sum() / n;
            const float var = (x.row(t).array() - mean).square().sum() / n;
            const float inv = 1.0f / std::sqrt(var + static_cast<float>(eps));
            if (cache) {
                cache->inv(t) = inv;
                cache->xhat.row(t) = ((x.row(t).array() - mean) * inv).matrix();
            }
            y.row(t) = ((x.row(t).array() - mean) * inv * weight.array() + bias.array()).matrix();
        }
    });
    return y;
}

/// y = x W^T (W: out x in, as PyTorch's Linear without bias).
inline Activations linear(const Activations& x, const MatrixXf& W, Index T) {
    Activations y(x.rows(), W.rows());
    for_row_ranges(x.rows(), T, [&](Index r0, Index r1) {
        y.middleRows(r0, r1 - r0).noalias() = x.middleRows(r0, r1 - r0) * W.transpose();
    });
    return y;
}

/// Multi-head causal self-attention over windows of T consecutive rows (x holds whole windows).
/// With `probs`, the attention probabilities are kept there: T rows per (window, head), in that order.
inline Activations attention(const Activations& q, const Activations& k, const Activations& v,
                             Index T, Index heads, Activations* probs = nullptr) {
    const Index d = q.cols(), hd = d / heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Activations out(q.rows(), d);
    if (probs) probs->resize(q.rows() * heads, T);
    for_row_ranges(q.rows(), T, [&](Index r0, Index r1) {
        Activations local(probs ? 0 : T, probs ? 0 : T);
        for (Index w0 = r0; w0 < r1; w0 += T) {
            for (Index h = 0; h < heads; ++h) {
                auto scores = probs ? probs->middleRows((w0 / T * heads + h) * T, T) : local.middleRows(0, T);
                const auto Q = q.block(w0, h * hd, T, hd);
                const auto K = k.block(w0, h * hd, T, hd);
                const auto V = v.block(w0, h * hd, T, hd);
                scores.noalias() = Q * K.transpose();
                for (Index t = 0; t < T; ++t) {
                    float m = -std::numeric_limits<float>::infinity();
                    for (Index s = 0; s <= t; ++s) m = std::max(m, scores(t, s) * scale);
                    float sum = 0;
                    for (Index s = 0; s <= t; ++s) {
                        scores(t, s) = std::exp(scores(t, s) * scale - m);
                        sum += scores(t, s);
                    }
                    for (Index s = 0; s <= t; ++s) scores(t, s) /= sum;
                    for (Index s = t + 1; s < T; ++s) scores(t, s) = 0;
                }
                out.block(w0, h * hd, T, hd).noalias() = scores * V;
            }
        }
    });
    return out;
}

inline Activations Block::apply(std::size_t l, const Activations& x, Index T) const {
    return kernel[l] ? kernel[l](x, T) : lm::linear(x, linear[l], T);
}

inline void gelu_in_place(Activations& x, Index T) {
    const float r = static_cast<float>(1.0 / std::sqrt(2.0));
    for_row_ranges(x.rows(), T, [&](Index r0, Index r1) {
        for (Index t = r0; t < r1; ++t)
            for (Index j = 0; j < x.cols(); ++j) x(t, j) = 0.5f * x(t, j) * (1.0f + std::erf(x(t, j) * r));
    });
}

/// Called at each linear input of a block, before that group's linears run: (block index, which
/// input, the input activations). The callback may change that group's weights through its own
/// reference to the model: forward_block reads them only after the callback returns.
using InputCallback = std::function<void(Index, LinearInput, const Activations&)>;

/// The embedding of windows of token ids (each window `T` ids, concatenated).
inline Activations embed(const WebChar& m, std::span<const std::int32_t> ids, Index T) {
    Activations x(static_cast<Index>(ids.size()), m.config.d);
    for (Index t = 0; t < x.rows(); ++t)
        x.row(t) = m.embedding.row(ids[static_cast<std::size_t>(t)]) + m.position.row(t % T);
    return x;
}

/// One block on windows of T rows, in place; calls `on_input` (if set) at each linear input.
inline void forward_block(const WebChar& m, Index b, Activations& x, Index T, const InputCallback& on_input = {}) {
    const Block& block = m.blocks[static_cast<std::size_t>(b)];
    const double eps = m.config.eps;
    auto tap = [&](LinearInput g, const Activations& a) {
        if (on_input) on_input(b, g, a);
    };
    const Activations y = layer_norm(x, block.ln1_weight, block.ln1_bias, eps, T);
    tap(LinearInput::attention, y);
    const Activations a = attention(block.apply(0, y, T), block.apply(1, y, T), block.apply(2, y, T),
                                    T, m.config.heads);
    tap(LinearInput::output, a);
    x += block.apply(3, a, T);
    const Activations z = layer_norm(x, block.ln2_weight, block.ln2_bias, eps, T);
    tap(LinearInput::up, z);
    Activations u = block.apply(4, z, T);
    gelu_in_place(u, T);
    tap(LinearInput::down, u);
    x += block.apply(5, u, T);
}

/// Logits (rows x vocab) of windows of T ids.
inline Activations forward(const WebChar& m, std::span<const std::int32_t> ids, Index T) {
    Activations x = embed(m, ids, T);
    for (Index b = 0; b < static_cast<Index>(m.blocks.size()); ++b) forward_block(m, b, x, T);
    return linear(layer_norm(x, m.lnf_weight, m.lnf_bias, m.config.eps, T), m.head, T);
}

/// Sum of the cross-entropy (natural log) of `targets` under `logits`, accumulated in double.
inline double cross_entropy_sum(const Activations& logits, std::span<const std::int32_t> targets) {
    double total = 0;
    for (Index t = 0; t < logits.rows(); ++t) {
        const double m = logits.row(t).maxCoeff();
        double s = 0;
        for (Index v = 0; v < logits.cols(); ++v) s += std::exp(static_cast<double>(logits(t, v)) - m);
        total += m + std::log(s) - logits(t, targets[static_cast<std::size_t>(t)]);
    }
    return total;
}

struct Perplexity {
    double perplexity = 0;
    double mean_cross_entropy = 0;
    Index tokens = 0;
    Index windows = 0;
};

/// Test perplexity by the README's protocol: windows at j = 0, T, 2T, ... while j < chars - T - 1
/// over the first `chars` test characters, each predicting its next T characters. Windows run in
/// batches; their losses are summed in window order (the same result for any thread count).
inline Perplexity test_perplexity(const WebChar& m, std::span<const std::int32_t> test, Index chars) {
    const Index T = m.config.ctx;
    VQLIB_CHECK(chars > T + 1 && chars <= static_cast<Index>(test.size()), invalid_argument,
                "chars = ", chars, ": expected ", T + 2, " .. ", test.size(), " (the test split)");
    std::vector<Index> starts;
    for (Index j = 0; j < chars - T - 1; j += T) starts.push_back(j);
    // Batches of 64 windows, one after the other; the work inside a batch runs in parallel.
    const Index per_batch = 64;
    std::vector<double> losses(starts.size());
    for (Index w0 = 0; w0 < static_cast<Index>(starts.size()); w0 += per_batch) {
        const Index w1 = std::min<Index>(static_cast<Index>(starts.size()), w0 + per_batch);
        std::vector<std::int32_t> ids, targets;
        for (Index w = w0; w < w1; ++w) {
            const auto s = static_cast<std::size_t>(starts[static_cast<std::size_t>(w)]);
            ids.insert(ids.end(), test.begin() + s, test.begin() + s + T);
            targets.insert(targets.end(), test.begin() + s + 1, test.begin() + s + T + 1);
        }
        const Activations logits = forward(m, ids, T);
        parallel_for(w1 - w0, [&](Index i) {
            const Index r = i * T;
            losses[static_cast<std::size_t>(w0 + i)] = cross_entropy_sum(
                logits.middleRows(r, T),
                std::span<const std::int32_t>(targets).subspan(static_cast<std::size_t>(r),
                                                               static_cast<std::size_t>(T)));
        });
    }
    Perplexity p;
    double total = 0;
    for (double l : losses) total += l;
    p.windows = static_cast<Index>(starts.size());
    p.tokens = p.windows * T;
    p.mean_cross_entropy = total / static_cast<double>(p.tokens);
    p.perplexity = std::exp(p.mean_cross_entropy);
    return p;
}

/// The calibration windows: the first `windows` starts of reference.json, T train ids each.
inline std::vector<std::int32_t> calibration_ids(const Corpus& corpus, const Reference& ref, Index windows,
                                                 Index T) {
    VQLIB_CHECK(windows >= 1 && windows <= static_cast<Index>(ref.calibration_window_starts.size()),
                invalid_argument, "calibration windows = ", windows, ": expected 1 .. ",
                ref.calibration_window_starts.size(), " (reference.json)");
    std::vector<std::int32_t> ids;
    for (Index w = 0; w < windows; ++w) {
        const Index s = ref.calibration_window_starts[static_cast<std::size_t>(w)];
        VQLIB_CHECK(s >= 0 && s + T <= static_cast<Index>(corpus.train.size()), io_error,
                    "reference.json: calibration window start ", s, " is outside the train split");
        ids.insert(ids.end(), corpus.train.begin() + s, corpus.train.begin() + s + T);
    }
    return ids;
}

}  // namespace vqlib::lm
