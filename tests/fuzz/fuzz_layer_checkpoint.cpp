// libFuzzer target: vqlib layer checkpoints (io/layer_checkpoint.hpp), damaged at random.
//
// The input is used two ways:
//  1. as a whole safetensors file, read as a layer checkpoint;
//  2. as a list of edits applied to a valid checkpoint holding one layer of each format (built
//     here by hand): each edit sets a JSON field of a layer to a number, a boolean, a string or
//     null, removes it, or overwrites bytes, the dtype or the shape of one tensor.
// Either way a read must fail with a vqlib::io_error, or return layers that dequantize to finite
// values of the declared shape and serialize back to a checkpoint that reads the same. Each layer
// read is then taken on to the decode path, as an inference stack would: the CPU decode backend
// must refuse it with a vqlib::error, or prepare it to the same dequantized values and multiply
// (gemv, batch 3; matmul, batch 9) to the dequantized product within fp32 rounding. Anything else
// (a crash, a sanitizer report, another exception) is a bug.
//
// Built with -DVQLIB_FUZZ_STANDALONE instead of -fsanitize=fuzzer, it gets a main that runs each
// file named on the command line through the target once.
#include <vqlib/backend/cpu_decode.hpp>
#include <vqlib/io/layer_checkpoint.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_layer_checkpoint: %s\n", what);
        std::abort();
    }
}

/// One small layer of each format, with deterministic pseudo-random contents.
vqlib::io::SafetensorsFile seed_checkpoint() {
    std::uint64_t state = 12345;
    auto next = [&] {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<std::uint32_t>(state >> 33);
    };
    auto uniform = [&] { return static_cast<float>(next() % 2001) / 1000.0f - 1.0f; };
    std::map<std::string, vqlib::io::QuantizedLayer> layers;

    vqlib::ScalarLayer<vqlib::IntGrid> s{vqlib::IntGrid(3, false), 4, {}, {}, {}, false};
    s.codes.resize(3, 8);
    for (vqlib::Index j = 0; j < 8; ++j)
        for (vqlib::Index i = 0; i < 3; ++i) s.codes(i, j) = static_cast<std::uint16_t>(next() % 8);
    for (int k = 0; k < 6; ++k) s.params.push_back({0.5f + 0.25f * static_cast<float>(k % 3), 3.0f});
    for (int j = 0; j < 8; ++j) s.g_idx.push_back(j / 4);
    layers.emplace("int", s);

    vqlib::ScalarLayer<vqlib::IntGrid> s4{vqlib::IntGrid(4, false, {}, vqlib::ScaleStorage::fp16), 4, {}, {}, {}, false};
    s4.codes.resize(3, 8);
    for (vqlib::Index j = 0; j < 8; ++j)
        for (vqlib::Index i = 0; i < 3; ++i) s4.codes(i, j) = static_cast<std::uint16_t>(next() % 16);
    for (int k = 0; k < 6; ++k) s4.params.push_back({0.125f * static_cast<float>(1 + k % 3), static_cast<float>(k % 16)});
    for (int j = 0; j < 8; ++j) s4.g_idx.push_back(j / 4);
    layers.emplace("int4", s4);

    vqlib::ScalarLayer<vqlib::MinifloatGrid> f{
        vqlib::MinifloatGrid(vqlib::MinifloatFormat::fp4_e2m1()), 0, {}, {}, {}, false};
    f.codes.resize(2, 4);
    for (vqlib::Index j = 0; j < 4; ++j)
        for (vqlib::Index i = 0; i < 2; ++i) f.codes(i, j) = static_cast<std::uint16_t>(next() % 16);
    f.params = {{0.25f, 0.0f}, {0.5f, 0.0f}};
    f.g_idx.assign(4, 0);
    layers.emplace("fp4", f);

    vqlib::VqLayer v;
    v.layout = {4, 8, 2, 4, 2, 4};  // rows, cols, dim, k, rows_per_codebook, columns_per_group
    v.codebooks.resize(v.layout.codebook_count() * v.layout.k, 2);
    for (vqlib::Index k = 0; k < v.codebooks.size(); ++k) v.codebooks.data()[k] = uniform();
    v.indices.resize(4, 4);
    for (vqlib::Index k = 0; k < v.indices.size(); ++k) v.indices.data()[k] = static_cast<std::uint16_t>(next() % 4);
    v.scale_block = 4;
    v.scales = vqlib::MatrixXf::Constant(4, 2, 0.5f);
    layers.emplace("vq", v);

    vqlib::VptqLayer p;
    auto& L = p.layout;
    L.out_features = 6;
    L.in_features = 6;
    L.vector_len = 2;
    L.num_centroids = 4;
    L.num_res_centroids = 2;
    L.outlier_vector_len = 2;
    L.outlier_centroids = 2;
    L.outlier_size = 2;
    L.group_num = 2;
    L.group_size = 2;
    L.enable_norm = true;
    L.enable_perm = true;
    p.centroids.resize(8, 2);
    p.res_centroids.resize(4, 2);
    p.outlier_centroids.resize(2, 2);
    for (auto* m : {&p.centroids, &p.res_centroids, &p.outlier_centroids})
        for (vqlib::Index k = 0; k < m->size(); ++k) m->data()[k] = uniform();
    for (int k = 0; k < 2 * 3 * 2; ++k) {
        p.indices.push_back(next() % 4);
        p.res_indices.push_back(next() % 2);
    }
    for (int k = 0; k < 3 * 2; ++k) p.outlier_indices.push_back(next() % 2);
    p.perm = {5, 4, 3, 2, 1, 0};
    p.weight_scale = vqlib::VectorXf::Constant(6, 2.0f);
    p.weight_bias = vqlib::VectorXf::Constant(6, -0.5f);
    layers.emplace("vptq", p);

    vqlib::PvqLayer<unsigned __int128> q;
    q.rows = 2;
    q.cols = 8;
    q.dim = 4;
    q.pulses = 3;
    const auto size = q.codec().size();
    for (int k = 0; k < 4; ++k) {
        q.indices.push_back(static_cast<unsigned __int128>(next()) % size);
        q.gain_codes.push_back(static_cast<std::uint16_t>(next() % 4));
    }
    q.gains.levels = {0.25f, 0.5f, 0.75f, 1.0f};
    q.gains.bits = 2;
    q.row_norms = {1.5f, 2.5f};
    q.perm = {1, 0, 2, 3, 4, 5, 7, 6};
    q.incoherence = vqlib::transform::IncoherenceOptions{};
    layers.emplace("pvq", q);

    return vqlib::io::layer_checkpoint(layers);
}

/// The decode path of one layer read back (dequantized to w): refused with a vqlib::error, or
/// prepared to the same values and multiplied to w x within fp32 rounding.
template <class Layer>
void check_decode(const Layer& layer, const vqlib::MatrixXf& w) {
    if constexpr (vqlib::DecodeBackend<vqlib::CpuDecodeBackend, Layer>) {
        using B = vqlib::CpuDecodeBackend;
        std::optional<vqlib::decode_prepared_t<B, Layer>> p;
        try {
            p.emplace(B::prepare(layer));
        } catch (const vqlib::error&) {
            return;  // refused by the backend: fine, as long as it was a vqlib::error
        }
        require(p->rows() == w.rows() && p->cols() == w.cols(), "a prepared layer has another shape");
        require(B::dequantize(*p) == w, "a prepared layer dequantizes to other values");
        for (const vqlib::Index batch : {3, 9}) {
            vqlib::MatrixXf x(w.cols(), batch);
            for (vqlib::Index k = 0; k < x.size(); ++k) x.data()[k] = static_cast<float>(k % 7) / 4.0f - 0.75f;
            const vqlib::MatrixXf y = batch <= vqlib::max_decode_gemv_batch ? B::gemv(*p, x) : B::matmul(*p, x);
            require(y.rows() == w.rows() && y.cols() == batch, "a decode product has another shape");
            const vqlib::MatrixXd wd = w.cast<double>(), xd = x.cast<double>();
            const vqlib::MatrixXd exact = wd * xd, bound = wd.cwiseAbs() * xd.cwiseAbs();
            for (vqlib::Index k = 0; k < y.size(); ++k) {
                if (!(bound.data()[k] < 1e30)) continue;  // near float overflow: no bound to check
                const double tolerance = 1e-5 * static_cast<double>(w.cols()) * bound.data()[k] + 1e-30;
                require(std::abs(static_cast<double>(y.data()[k]) - exact.data()[k]) <= tolerance,
                        "a decode product differs from the dequantized product beyond fp32 rounding");
            }
        }
    }
}

void check_file(const vqlib::io::SafetensorsFile& file) {
    std::map<std::string, vqlib::io::QuantizedLayer> layers;
    try {
        layers = vqlib::io::layers_from_checkpoint(file);
    } catch (const vqlib::io_error&) {
        return;  // refused: fine, as long as it was an io_error
    }
    for (const auto& [name, layer] : layers) {
        const vqlib::MatrixXf w = std::visit([](const auto& l) { return vqlib::MatrixXf(l.dequantize()); }, layer);
        require(w.allFinite(), "a layer read back dequantizes to non-finite values");
        std::visit([&](const auto& l) { check_decode(l, w); }, layer);
    }
    const auto again = vqlib::io::layer_checkpoint(layers);
    const auto reread = vqlib::io::layers_from_checkpoint(again);
    require(vqlib::io::layer_checkpoint(reread) == again, "re-serialized checkpoint differs");
}

/// Applies edits read from `input` to the seed checkpoint.
vqlib::io::SafetensorsFile edited(std::span<const std::uint8_t> input) {
    static const vqlib::io::SafetensorsFile seed = seed_checkpoint();
    vqlib::io::SafetensorsFile file = seed;
    nlohmann::json doc = nlohmann::json::parse(file.metadata.at("vqlib"));
    std::vector<std::string> names;
    for (const auto& [name, _] : doc["layers"].items()) names.push_back(name);
    std::size_t at = 0;
    auto byte = [&]() -> std::uint8_t { return at < input.size() ? input[at++] : 0; };
    auto word = [&] {
        std::int64_t v = 0;
        for (int k = 0; k < 4; ++k) v = (v << 8) | byte();
        return v - (std::int64_t{1} << 31);
    };
    while (at + 3 <= input.size()) {
        const std::uint8_t op = byte() % 8;
        nlohmann::json& entry = doc["layers"][names[byte() % names.size()]];
        std::vector<std::string> keys;
        for (const auto& [key, _] : entry.items()) keys.push_back(key);
        const std::string key = keys.empty() ? "kind" : keys[byte() % keys.size()];
        switch (op) {
        case 0: entry[key] = word() % 70; break;
        case 1: entry[key] = word(); break;
        case 2: entry[key] = (byte() & 1) != 0; break;
        case 3: entry[key] = std::string(1, static_cast<char>('a' + byte() % 26)); break;
        case 4: entry.erase(key); break;
        default: {  // a tensor: bytes, dtype or shape
            if (file.tensors.empty()) break;
            auto it = file.tensors.begin();
            std::advance(it, byte() % file.tensors.size());
            vqlib::io::Tensor& t = it->second;
            if (op == 5 && !t.data.empty()) {
                t.data[static_cast<std::size_t>(word()) % t.data.size()] = byte();
            } else if (op == 6) {
                t.dtype = vqlib::io::all_dtypes[byte() % vqlib::io::all_dtypes.size()];
                t.data.resize(t.expected_bytes());
            } else if (!t.shape.empty()) {
                t.shape[byte() % t.shape.size()] = byte() % 9;
                t.data.resize(t.expected_bytes());
            }
        }
        }
    }
    file.metadata["vqlib"] = doc.dump();
    return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    try {
        check_file(vqlib::io::parse_safetensors(input, "fuzz"));
    } catch (const vqlib::error&) {
        // not a safetensors file
    }
    check_file(edited(input));
    return 0;
}

#include "standalone_main.hpp"
