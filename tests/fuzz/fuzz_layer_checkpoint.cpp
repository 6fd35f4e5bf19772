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
#include <vqlib/io/layer_checkpoint.hpp>

#include "decode_check.hpp"

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

    const vqlib::VptqLayer p = vqlib::fuzz::small_vptq_layer(next, uniform);
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
        std::visit([&](const auto& l) { vqlib::fuzz::check_decode(l, w, "fuzz_layer_checkpoint"); }, layer);
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
    vqlib::fuzz::EditInput in(input);
    while (in.has(3)) {
        const std::uint8_t op = in.byte() % 8;
        nlohmann::json& entry = doc["layers"][names[in.byte() % names.size()]];
        std::vector<std::string> keys;
        for (const auto& [key, _] : entry.items()) keys.push_back(key);
        const std::string key = keys.empty() ? "kind" : keys[in.byte() % keys.size()];
        switch (op) {
        case 0: entry[key] = in.word() % 70; break;
        case 1: entry[key] = in.word(); break;
        case 2: entry[key] = (in.byte() & 1) != 0; break;
        case 3: entry[key] = std::string(1, static_cast<char>('a' + in.byte() % 26)); break;
        case 4: entry.erase(key); break;
        default: vqlib::fuzz::edit_tensor(file.tensors, op, 9, in); break;  // bytes, dtype or shape
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
