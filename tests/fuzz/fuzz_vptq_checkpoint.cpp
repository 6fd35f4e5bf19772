// libFuzzer target: VPTQ checkpoints (io/vptq_checkpoint.hpp, io/vptq_config.hpp), what
// vqlib-quantize --vptq writes and load_vptq_model reads: a config.json whose
// quantization_config describes each layer, and the layer's tensors.
//
// The input is used two ways:
//  1. as the config.json text, read against the tensors of a valid one-layer checkpoint;
//  2. as a list of edits to the valid pair (built here: a layer with residuals, outliers,
//     normalization and a permutation, in F16 as VPTQ's released models): each edit sets a field
//     of the layer's config (or an entry of one of its arrays) to a number, a boolean or null,
//     removes it, or overwrites bytes, the dtype or the shape of one tensor. Every tensor stays
//     valid on its own; the edits make them disagree with the config, or the config with itself.
// Either way a read must fail with a vqlib::io_error or vqlib::invalid_argument (what the config
// parser and read_vptq_layer document for a config they refuse), or give a layer that dequantizes to finite
// values of the config's shape and goes through the CPU decode backend (decode_check.hpp).
// Anything else (a crash, a sanitizer report, another exception) is a bug.
#include <vqlib/io/vptq_checkpoint.hpp>

#include "decode_check.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace {

constexpr const char* kPrefix = "model.layers.0.mlp.down_proj";

struct Checkpoint {
    nlohmann::json config;
    vqlib::io::TensorMap tensors;
};

const Checkpoint& seed() {
    static const Checkpoint c = [] {
        std::uint64_t state = 977;
        auto next = [&] {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            return static_cast<std::uint32_t>(state >> 33);
        };
        auto uniform = [&] { return static_cast<float>(next() % 2001) / 1000.0f - 1.0f; };
        const vqlib::VptqLayer p = vqlib::fuzz::small_vptq_layer(next, uniform);
        Checkpoint out;
        vqlib::io::add_vptq_layer(out.tensors, kPrefix, p, vqlib::io::Dtype::F16);
        vqlib::io::VptqQuantizationConfig qc;
        qc.config_for_layers[kPrefix] = vqlib::io::vptq_layer_config(p);
        out.config["quantization_config"] = qc;
        // The seed itself must read back, or the edits would only ever test refusals.
        const auto back = vqlib::io::read_vptq_layer(out.tensors, kPrefix, qc.config_for_layers.at(kPrefix));
        vqlib::fuzz::require("fuzz_vptq_checkpoint", back.dequantize().allFinite(), "the seed does not read back");
        return out;
    }();
    return c;
}

void check(const nlohmann::json& config, const vqlib::io::TensorMap& tensors) {
    vqlib::io::VptqQuantizationConfig qc;
    try {
        qc = vqlib::io::vptq_config_from_model_config(config);
    } catch (const vqlib::io_error&) {
        return;  // refused: fine, as long as it was an io_error or invalid_argument
    } catch (const vqlib::invalid_argument&) {
        return;
    }
    for (const auto& [prefix, layer_config] : qc.config_for_layers) {
        vqlib::VptqLayer layer;
        try {
            layer = vqlib::io::read_vptq_layer(tensors, prefix, layer_config);
        } catch (const vqlib::io_error&) {
            continue;
        } catch (const vqlib::invalid_argument&) {
            continue;
        }
        const vqlib::MatrixXf w = layer.dequantize();
        vqlib::fuzz::require("fuzz_vptq_checkpoint",
                             w.rows() == layer_config.out_features && w.cols() == layer_config.in_features,
                             "a layer read back has another shape than its config");
        vqlib::fuzz::require("fuzz_vptq_checkpoint", w.allFinite(), "a layer read back dequantizes to non-finite values");
        vqlib::fuzz::check_decode(layer, w, "fuzz_vptq_checkpoint");
    }
}

/// Applies edits read from `input` to the seed.
Checkpoint edited(std::span<const std::uint8_t> input) {
    Checkpoint c = seed();
    nlohmann::json& entry = c.config["quantization_config"]["config_for_layers"][kPrefix];
    vqlib::fuzz::EditInput in(input);
    while (in.has(3)) {
        const std::uint8_t op = in.byte() % 8;
        std::vector<std::string> keys;
        for (const auto& [key, _] : entry.items()) keys.push_back(key);
        if (keys.empty()) break;
        nlohmann::json* field = &entry[keys[in.byte() % keys.size()]];
        if (field->is_array() && !field->empty() && (in.byte() & 1)) field = &(*field)[in.byte() % field->size()];
        switch (op) {
        case 0: *field = in.word() % 40; break;
        case 1: *field = in.word(); break;
        case 2: *field = (in.byte() & 1) != 0; break;
        case 3: *field = nullptr; break;
        case 4: entry.erase(keys[in.byte() % keys.size()]); break;
        default: vqlib::fuzz::edit_tensor(c.tensors, op, 40, in); break;  // bytes, dtype or shape
        }
    }
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    const nlohmann::json text = nlohmann::json::parse(input.begin(), input.end(), nullptr, false);
    if (!text.is_discarded()) check(text, seed().tensors);
    const Checkpoint c = edited(input);
    check(c.config, c.tensors);
    return 0;
}

#include "standalone_main.hpp"
