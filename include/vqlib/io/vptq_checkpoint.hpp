#pragma once
// VptqLayer <-> VPTQ's checkpoint format (docs/vptq.md): the layer's tensors under a
// module prefix in a safetensors file, and its entry in config.json's quantization_config, so
// that VPTQ's own loader can read what vqlib writes (and vqlib can read VPTQ's packed models).
//
//   vqlib::io::TensorMap tensors;
//   vqlib::io::add_vptq_layer(tensors, "model.layers.0.mlp.down_proj", result.layer);
//   auto config = vqlib::io::vptq_layer_config(result.layer);
//   ...
//   vqlib::io::save_vptq_model(dir, {{"model.layers.0.mlp.down_proj", result.layer}});
//   auto layers = vqlib::io::load_vptq_model(dir);   // name -> VptqLayer
#include <vqlib/core/error.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/packed_indices.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/io/vptq_config.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace vqlib::io {

/// The layer's entry in quantization_config.config_for_layers (VQuantLinear's init_args).
inline VptqLayerConfig vptq_layer_config(const VptqLayer& layer, bool has_bias = false) {
    const VptqLayout& L = layer.layout;
    L.validate();
    const auto power_of_two = [](Index k) { return k >= 2 && (k & (k - 1)) == 0; };
    VQLIB_CHECK(power_of_two(L.num_centroids) && (!L.has_residual() || power_of_two(L.num_res_centroids)),
                invalid_argument, "num_centroids = ", L.num_centroids, ", num_res_centroids = ",
                L.num_res_centroids, ": VPTQ's packed format needs powers of two");
    VQLIB_CHECK(!L.has_outliers() || L.outlier_vector_len >= 2, invalid_argument,
                "outlier_vector_len = ", L.outlier_vector_len,
                ": VPTQ's loader treats v0 <= 1 as 'no outliers'");
    VptqLayerConfig c;
    c.in_features = L.in_features;
    c.out_features = L.out_features;
    c.vector_lens = {L.has_outliers() ? L.outlier_vector_len : -1, L.vector_len};
    c.num_centroids = {L.has_outliers() ? L.outlier_centroids : -1, L.num_centroids};
    c.num_res_centroids = {-1, L.has_residual() ? L.num_res_centroids : -1};
    c.group_num = L.group_num;
    c.group_size = L.group_size;
    c.outlier_size = L.outlier_size;
    c.enable_norm = L.enable_norm;
    c.enable_perm = L.enable_perm && !layer.perm.empty();
    c.bias = has_bias;
    c.is_indice_packed = true;
    c.validate();
    return c;
}

namespace detail {

inline std::vector<float> stacked_codebooks(const MatrixXf& stacked, Index groups) {
    // [G, k*v]: row g holds centroid i at [i*v, (i+1)*v).
    std::vector<float> out(static_cast<std::size_t>(stacked.size()));
    const Index per_group = groups > 0 ? stacked.rows() / groups : 0;
    std::size_t at = 0;
    for (Index g = 0; g < groups; ++g)
        for (Index i = 0; i < per_group; ++i)
            for (Index t = 0; t < stacked.cols(); ++t) out[at++] = stacked(g * per_group + i, t);
    return out;
}

inline MatrixXf unstack_codebooks(const std::vector<float>& flat, Index groups, Index k, Index v) {
    MatrixXf out(groups * k, v);
    std::size_t at = 0;
    for (Index g = 0; g < groups; ++g)
        for (Index i = 0; i < k; ++i)
            for (Index t = 0; t < v; ++t) out(g * k + i, t) = flat[at++];
    return out;
}

inline const Tensor& checkpoint_tensor(const TensorMap& tensors, const std::string& name,
                                       const std::vector<std::int64_t>& shape) {
    const auto it = tensors.find(name);
    VQLIB_CHECK(it != tensors.end(), io_error, "VPTQ checkpoint: tensor '", name, "' is missing");
    VQLIB_CHECK(it->second.shape == shape, io_error, "VPTQ checkpoint: tensor '", name,
                "' has shape ", ::vqlib::io::detail::shape_string(it->second.shape),
                ": the layer config gives ", ::vqlib::io::detail::shape_string(shape));
    return it->second;
}

inline std::vector<float> checkpoint_floats(const Tensor& t, const std::string& name) {
    VQLIB_CHECK(t.dtype == Dtype::F16 || t.dtype == Dtype::BF16 || t.dtype == Dtype::F32,
                io_error, "VPTQ checkpoint: tensor '", name, "' has dtype ", dtype_name(t.dtype),
                ": expected F16, BF16 or F32");
    std::vector<float> values = t.to_floats();
    for (std::size_t k = 0; k < values.size(); ++k)
        VQLIB_CHECK(std::isfinite(values[k]), io_error, "VPTQ checkpoint: tensor '", name, "' holds ", values[k],
                    " at element ", k, ": expected finite values");
    return values;
}

/// uint16 values stored as I16 bits (packed checkpoints), or plain I64/I32 (unpacked ones).
inline std::vector<std::uint32_t> checkpoint_unsigned(const Tensor& t, const std::string& name) {
    std::vector<std::uint32_t> out;
    if (t.dtype == Dtype::I16 || t.dtype == Dtype::U16) {
        for (auto v : t.bits_as<std::uint16_t>()) out.push_back(v);
    } else if (t.dtype == Dtype::I32) {
        for (auto v : t.bits_as<std::int32_t>()) {
            VQLIB_CHECK(v >= 0, io_error, "VPTQ checkpoint: tensor '", name, "' holds ", v);
            out.push_back(static_cast<std::uint32_t>(v));
        }
    } else if (t.dtype == Dtype::I64) {
        for (auto v : t.bits_as<std::int64_t>()) {
            VQLIB_CHECK(v >= 0 && v <= 0xffffffffLL, io_error, "VPTQ checkpoint: tensor '", name,
                        "' holds ", v);
            out.push_back(static_cast<std::uint32_t>(v));
        }
    } else {
        throw io_error(::vqlib::detail::concat("VPTQ checkpoint: tensor '", name, "' has dtype ",
                                               dtype_name(t.dtype), ": expected I16, I32 or I64"));
    }
    return out;
}

}  // namespace detail

/// Adds the layer's tensors under `prefix` + "." (centroids.weight, indices (packed int32),
/// res_centroids.weight, outlier_centroids.weight, outlier_indices (int16), perm (int16),
/// weight_scale, weight_bias, and bias when given) with floating-point tensors in `dtype`
/// (F16 as VPTQ's released models, or BF16/F32).
inline void add_vptq_layer(TensorMap& tensors, const std::string& prefix, const VptqLayer& layer,
                           Dtype dtype = Dtype::F16, const VectorXf* bias = nullptr) {
    layer.check_consistent();
    VQLIB_CHECK(is_floating_point(dtype) && dtype != Dtype::F64, invalid_argument,
                "add_vptq_layer: dtype ", dtype_name(dtype), ": expected F16, BF16 or F32");
    const VptqLayerConfig config = vptq_layer_config(layer, bias != nullptr);
    const auto shapes = config.tensor_shapes();
    const VptqLayout& L = layer.layout;
    const std::string p = prefix.empty() ? std::string() : prefix + ".";
    auto put = [&](const std::string& name, Tensor t) {
        VQLIB_CHECK(!tensors.count(p + name), invalid_argument, "add_vptq_layer: tensor '", p + name,
                    "' already exists");
        tensors.emplace(p + name, std::move(t));
    };

    const auto centroids = detail::stacked_codebooks(layer.centroids, L.group_num);
    put("centroids.weight", Tensor::from_floats(dtype, shapes.at("centroids.weight"), centroids));
    const PackedIndices packed =
        pack_codes(config.packed_layout(), layer.indices,
                   L.has_residual() ? std::span<const std::uint32_t>(layer.res_indices)
                                    : std::span<const std::uint32_t>());
    put("indices", Tensor::from_bits(Dtype::I32, shapes.at("indices"), as_int32_words(packed.words)));
    if (L.has_residual()) {
        const auto res = detail::stacked_codebooks(layer.res_centroids, L.group_num);
        put("res_centroids.weight", Tensor::from_floats(dtype, shapes.at("res_centroids.weight"), res));
    }
    if (L.has_outliers()) {
        const auto out = detail::stacked_codebooks(layer.outlier_centroids, 1);
        put("outlier_centroids.weight",
            Tensor::from_floats(dtype, shapes.at("outlier_centroids.weight"), out));
        std::vector<std::uint16_t> idx(layer.outlier_indices.begin(), layer.outlier_indices.end());
        put("outlier_indices", Tensor::from_bits(Dtype::I16, shapes.at("outlier_indices"), idx));
    }
    if (config.enable_perm) {
        VQLIB_CHECK(L.in_features <= 65536, invalid_argument, "add_vptq_layer: in_features = ",
                    L.in_features, ": the int16 perm holds at most 65536 columns");
        std::vector<std::uint16_t> perm(layer.perm.begin(), layer.perm.end());
        put("perm", Tensor::from_bits(Dtype::I16, shapes.at("perm"), perm));
    }
    if (L.enable_norm) {
        put("weight_scale", Tensor::from_vector(layer.weight_scale, dtype));
        put("weight_bias", Tensor::from_vector(layer.weight_bias, dtype));
    }
    if (bias) {
        VQLIB_CHECK(bias->size() == L.out_features, shape_error, "add_vptq_layer: bias has ",
                    bias->size(), " entries: expected out_features = ", L.out_features);
        put("bias", Tensor::from_vector(*bias, dtype));
    }
}

/// Reads the layer under `prefix` described by `config` (a packed checkpoint). Throws io_error
/// naming the tensor for a missing tensor, a shape or dtype that disagrees with the config, an
/// index out of range, a non-finite codebook, scale or bias value, or a perm that is not a
/// permutation.
inline VptqLayer read_vptq_layer(const TensorMap& tensors, const std::string& prefix,
                                 const VptqLayerConfig& config) {
    config.validate(prefix);
    VQLIB_CHECK(config.is_indice_packed, io_error, prefix,
                ": unpacked (legacy) VPTQ checkpoints are not supported; repack them");
    const auto shapes = config.tensor_shapes();
    const std::string p = prefix.empty() ? std::string() : prefix + ".";
    VptqLayer layer;
    VptqLayout& L = layer.layout;
    L.out_features = config.out_features;
    L.in_features = config.in_features;
    L.vector_len = config.vector_len();
    L.num_centroids = config.num_centroids[1];
    L.num_res_centroids = config.has_residual() ? config.num_res_centroids[1] : 0;
    if (config.has_outliers()) {
        L.outlier_vector_len = config.vector_lens[0];
        L.outlier_centroids = config.num_centroids[0];
        L.outlier_size = config.outlier_size;
    }
    L.group_num = config.group_num;
    L.group_size = config.group_size;
    L.enable_norm = config.enable_norm;
    L.enable_perm = config.enable_perm;
    L.validate();

    auto tensor = [&](const std::string& name) -> const Tensor& {
        return detail::checkpoint_tensor(tensors, p + name, shapes.at(name));
    };
    layer.centroids = detail::unstack_codebooks(
        detail::checkpoint_floats(tensor("centroids.weight"), p + "centroids.weight"), L.group_num,
        L.num_centroids, L.vector_len);
    {
        const Tensor& t = tensor("indices");
        VQLIB_CHECK(t.dtype == Dtype::I32, io_error, "VPTQ checkpoint: tensor '", p,
                    "indices' has dtype ", dtype_name(t.dtype), ": expected I32 (packed codes)");
        const auto words = t.bits_as<std::uint32_t>();
        UnpackedCodes codes;
        try {
            codes = unpack_codes(config.packed_layout(), std::span<const std::uint32_t>(words));
        } catch (const error& e) {
            throw io_error(::vqlib::detail::concat("VPTQ checkpoint: tensor '", p, "indices': ", e.what()));
        }
        layer.indices = std::move(codes.indices);
        if (L.has_residual()) layer.res_indices = std::move(codes.residuals);
    }
    if (L.has_residual()) {
        layer.res_centroids = detail::unstack_codebooks(
            detail::checkpoint_floats(tensor("res_centroids.weight"), p + "res_centroids.weight"),
            L.group_num, L.num_res_centroids, L.vector_len);
    }
    if (L.has_outliers()) {
        layer.outlier_centroids = detail::unstack_codebooks(
            detail::checkpoint_floats(tensor("outlier_centroids.weight"), p + "outlier_centroids.weight"),
            1, L.outlier_centroids, L.outlier_vector_len);
        layer.outlier_indices = detail::checkpoint_unsigned(tensor("outlier_indices"), p + "outlier_indices");
        for (auto i : layer.outlier_indices)
            VQLIB_CHECK(Index(i) < L.outlier_centroids, io_error, "VPTQ checkpoint: tensor '", p,
                        "outlier_indices' holds ", i, ": expected < ", L.outlier_centroids);
    }
    if (L.enable_perm) {
        const auto perm = detail::checkpoint_unsigned(tensor("perm"), p + "perm");
        std::vector<bool> seen(static_cast<std::size_t>(L.in_features), false);
        layer.perm.resize(perm.size());
        for (std::size_t k = 0; k < perm.size(); ++k) {
            VQLIB_CHECK(Index(perm[k]) < L.in_features && !seen[perm[k]], io_error,
                        "VPTQ checkpoint: tensor '", p, "perm' is not a permutation (entry ", k,
                        " = ", perm[k], ")");
            seen[perm[k]] = true;
            layer.perm[k] = static_cast<Index>(perm[k]);
        }
    }
    if (L.enable_norm) {
        const auto scale = detail::checkpoint_floats(tensor("weight_scale"), p + "weight_scale");
        const auto bias = detail::checkpoint_floats(tensor("weight_bias"), p + "weight_bias");
        layer.weight_scale = Eigen::Map<const VectorXf>(scale.data(), static_cast<Index>(scale.size()));
        layer.weight_bias = Eigen::Map<const VectorXf>(bias.data(), static_cast<Index>(bias.size()));
    }
    layer.check_consistent();
    return layer;
}

/// Writes `<dir>/model.safetensors` with every layer's tensors and `<dir>/config.json` with
/// {"quantization_config": {"quant_method": "vptq", "config_for_layers": {...}}}, both
/// atomically. Creates `dir` if needed.
inline void save_vptq_model(const std::filesystem::path& dir,
                            const std::map<std::string, VptqLayer>& layers,
                            Dtype dtype = Dtype::F16) {
    VQLIB_CHECK(!layers.empty(), invalid_argument, "save_vptq_model: no layers");
    TensorMap tensors;
    VptqQuantizationConfig qc;
    for (const auto& [name, layer] : layers) {
        add_vptq_layer(tensors, name, layer, dtype);
        qc.config_for_layers[name] = vptq_layer_config(layer);
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    VQLIB_CHECK(!ec, io_error, "save_vptq_model: cannot create directory ", dir.string(), ": ",
                ec.message());
    write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
    nlohmann::json config;
    config["quantization_config"] = qc;
    const std::string text = config.dump(2) + "\n";
    ::vqlib::io::detail::temporary_file out(dir / "config.json", "safetensors");
    out.write(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    out.commit();
}

/// Reads a directory written by save_vptq_model (or a VPTQ model with a single safetensors file):
/// every module listed in config_for_layers.
inline std::map<std::string, VptqLayer> load_vptq_model(const std::filesystem::path& dir) {
    std::ifstream in(dir / "config.json", std::ios::binary);
    VQLIB_CHECK(in.good(), io_error, "load_vptq_model: cannot open ", (dir / "config.json").string());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json config;
    try {
        config = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw io_error(::vqlib::detail::concat("load_vptq_model: ", (dir / "config.json").string(),
                                               " is not valid JSON: ", e.what()));
    }
    const VptqQuantizationConfig qc = vptq_config_from_model_config(config);
    const SafetensorsFile file = read_safetensors(dir / "model.safetensors");
    std::map<std::string, VptqLayer> out;
    for (const auto& [name, layer_config] : qc.config_for_layers)
        out.emplace(name, read_vptq_layer(file.tensors, name, layer_config));
    return out;
}

}  // namespace vqlib::io
