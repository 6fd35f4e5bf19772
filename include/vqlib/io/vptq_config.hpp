#pragma once
// VPTQ's per-layer quantization config: the entries of config.json's
//     "quantization_config": {"quant_method": "vptq",
//                             "config_for_layers": {"model.layers.0.self_attn.q_proj": {...}},
//                             "shared_layer_config": {"q_proj": {...}}}
// (docs/vptq.md). Each entry is VQuantLinear's init_args, passed by VPTQ's loader as
// keyword arguments to VQuantLinear, so its keys and JSON shapes are fixed:
//
//   key                 JSON             meaning
//   in_features         integer          N, input columns
//   out_features        integer          M, output rows
//   vector_lens         [v0, v]          outlier and main vector lengths (v0 = -1: no outliers)
//   num_centroids       [k0, k]          outlier and main codebook sizes (k0 = -1: none)
//   num_res_centroids   [k0_res, k_res]  residual codebook sizes (-1: none; k0_res is always -1)
//   group_num           integer          G, codebooks for the non-outlier columns
//   group_size          integer          columns per codebook, (N - outlier_size) / G
//   outlier_size        integer          outlier columns (the first stored columns), 0 if none
//   enable_norm         bool             per-input-column weight_scale / weight_bias present
//   enable_perm         bool             a column permutation `perm` is present
//   bias                bool             a `bias` vector is present
//   is_indice_packed    bool             indices bit-packed as int32 (vqlib/formats/packed_indices.hpp)
//   indices_as_float    bool             legacy: unpacked indices stored as fp16 (false)
// and, only in some versions, norm_dim (0), enable_proxy_error and vector_quant_dim ("out");
// these are read when present, kept, and written back only when set. (They must not be written
// otherwise: VPTQ's loader passes enable_proxy_error itself, and VQuantLinear takes no norm_dim
// in current versions. indices_as_float, in turn, must always be written: the Hugging Face
// transformers integration reads layer_params["indices_as_float"] unconditionally.)
//
// As in VQuantLinear, outliers are enabled when v0 > 1 and k0 > 0, and a residual codebook when
// k_res > 0. Absent is_indice_packed and indices_as_float read as false (VQuantLinear's
// defaults, configs written before packing existed); both are always written. from_json is
// strict: every required key present with its JSON type (integers must
// be JSON integers, not 8.0; flags must be true/false), no unknown keys (VQuantLinear would
// reject them too), and the values consistent (see VptqLayerConfig::validate). Failures throw
// vqlib::invalid_argument naming the key and the value.
#include <vqlib/core/error.hpp>
#include <vqlib/formats/packed_indices.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vqlib::io {

/// One layer's VPTQ quantization config (VQuantLinear's init_args).
struct VptqLayerConfig {
    std::int64_t in_features = 0;                              ///< N
    std::int64_t out_features = 0;                             ///< M
    std::array<std::int64_t, 2> vector_lens{-1, 8};            ///< [v0, v]
    std::array<std::int64_t, 2> num_centroids{-1, 65536};      ///< [k0, k]
    std::array<std::int64_t, 2> num_res_centroids{-1, -1};     ///< [k0_res, k_res]
    std::int64_t group_num = 1;                                ///< G
    std::int64_t group_size = 0;                               ///< (N - outlier_size) / G
    std::int64_t outlier_size = 0;                             ///< outlier columns
    bool enable_norm = false;
    bool enable_perm = false;
    bool bias = false;
    bool is_indice_packed = true;
    bool indices_as_float = false;  ///< legacy: unpacked indices stored as fp16
    // Keys present only in some VPTQ versions: read when present, written only when set.
    std::optional<std::int64_t> norm_dim;            ///< always 0 (per input column)
    std::optional<bool> enable_proxy_error;
    std::optional<std::string> vector_quant_dim;     ///< always "out"

    /// v, the main vector length.
    std::int64_t vector_len() const { return vector_lens[1]; }
    /// True when the layer has an outlier codebook (v0 > 1 and k0 > 0, as VQuantLinear decides).
    bool has_outliers() const { return vector_lens[0] > 1 && num_centroids[0] > 0; }
    /// True when the layer has a residual codebook (k_res > 0).
    bool has_residual() const { return num_res_centroids[1] > 0; }

    /// b = log2(k), rounded down as VPTQ's int(math.log2(k)) (exact when packed: k is then a
    /// power of two).
    int index_bits() const {
        if (num_centroids[1] <= 0) return 0;
        return static_cast<int>(std::bit_width(static_cast<std::uint64_t>(num_centroids[1]))) - 1;
    }
    /// b_r = log2(k_res), or 0 without a residual codebook.
    int residual_bits() const {
        return has_residual() ? static_cast<int>(std::bit_width(
                                    static_cast<std::uint64_t>(num_res_centroids[1]))) - 1
                              : 0;
    }

    /// (-M) mod v: zero rows appended so that M divides into vectors.
    std::int64_t padding() const {
        return (vector_len() - out_features % vector_len()) % vector_len();
    }
    /// R = (M + padding) / v: vectors per column, the rows of the indices tensor.
    std::int64_t row_blocks() const { return (out_features + padding()) / vector_len(); }
    /// (-M) mod v0, for the outlier columns (0 without outliers).
    std::int64_t outlier_padding() const {
        return has_outliers() ? (vector_lens[0] - out_features % vector_lens[0]) % vector_lens[0]
                              : 0;
    }
    /// ceil(M / v0): vectors per outlier column (0 without outliers).
    std::int64_t outlier_row_blocks() const {
        return has_outliers() ? (out_features + outlier_padding()) / vector_lens[0] : 0;
    }

    /// The layout of the packed `indices` tensor: [G, R, ceil(group_size * (b + b_r) / 32)],
    /// with range checks against k and k_res. Throws invalid_argument unless the config is
    /// valid and packed.
    PackedLayout packed_layout() const {
        validate();
        VQLIB_CHECK(is_indice_packed, invalid_argument,
                    "VPTQ layer config: is_indice_packed = false: the indices are not packed");
        PackedLayout layout;
        layout.groups = group_num;
        layout.rows = row_blocks();
        layout.codes_per_row = group_size;
        layout.index_bits = index_bits();
        layout.residual_bits = residual_bits();
        layout.num_centroids = static_cast<std::uint64_t>(num_centroids[1]);
        layout.num_res_centroids =
            has_residual() ? static_cast<std::uint64_t>(num_res_centroids[1]) : 0;
        return layout;
    }

    /// The tensors a checkpoint holds for this layer, by name suffix (appended to the module
    /// name and a '.'), with their shapes (docs/vptq.md): centroids.weight [G, k*v],
    /// indices [G, R, W] packed or [G, R, group_size] unpacked, res_centroids.weight
    /// [G, k_res*v] and (unpacked only) res_indices [G, R, group_size] with a residual,
    /// outlier_centroids.weight [1, k0*v0] and outlier_indices [1, ceil(M/v0), outlier_size]
    /// with outliers, perm [N] with enable_perm, weight_scale and weight_bias [N] with
    /// enable_norm, bias [M] with bias. (A perm absorbed by VPTQ's pre_process tool is absent.)
    std::map<std::string, std::vector<std::int64_t>> tensor_shapes() const {
        validate();
        const std::int64_t g = group_num;
        const std::int64_t r = row_blocks();
        const std::int64_t v = vector_len();
        std::map<std::string, std::vector<std::int64_t>> shapes;
        shapes["centroids.weight"] = {g, num_centroids[1] * v};
        shapes["indices"] = {g, r,
                             is_indice_packed ? packed_layout().words_per_row() : group_size};
        if (has_residual()) {
            shapes["res_centroids.weight"] = {g, num_res_centroids[1] * v};
            if (!is_indice_packed) shapes["res_indices"] = {g, r, group_size};
        }
        if (has_outliers()) {
            shapes["outlier_centroids.weight"] = {1, num_centroids[0] * vector_lens[0]};
            shapes["outlier_indices"] = {1, outlier_row_blocks(), outlier_size};
        }
        if (enable_perm) shapes["perm"] = {in_features};
        if (enable_norm) {
            shapes["weight_scale"] = {in_features};
            shapes["weight_bias"] = {in_features};
        }
        if (bias) shapes["bias"] = {out_features};
        return shapes;
    }

    /// Throws invalid_argument, naming the key and value, unless:
    ///   - in_features and out_features are in [1, 2^31 - 1];
    ///   - v in [1, 65536] and k >= 1; v0, k0, k0_res, k_res >= -1; v0 <= 65536;
    ///   - with outliers (v0 > 1, k0 > 0): k0 <= 65536 (int16 outlier indices), k0_res = -1
    ///     (VPTQ has no outlier residual) and outlier_size >= 1; without: outlier_size = 0;
    ///   - group_num >= 1, group_size >= 1, outlier_size + group_num * group_size = in_features;
    ///   - packed (is_indice_packed): k and k_res (if > 0) powers of two, k >= 2, and
    ///     log2 k + log2 k_res <= 32; unpacked: k, k_res <= 65536 (int16 indices);
    ///   - indices_as_float only with unpacked indices; norm_dim, if set, 0; vector_quant_dim,
    ///     if set, "out".
    /// `context` starts the messages (the layer's name when reading quantization_config).
    void validate(std::string_view context = "VPTQ layer config") const {
        const auto fail = [context](const auto&... parts) {
            throw invalid_argument(::vqlib::detail::concat(context, ": ", parts...));
        };
        constexpr std::int64_t max_features = (std::int64_t{1} << 31) - 1;
        constexpr std::int64_t max_vector_len = 65536;
        constexpr std::int64_t max_centroids = std::int64_t{1} << 32;
        for (const auto& [key, value] : {std::pair{"in_features", in_features},
                                         std::pair{"out_features", out_features}})
            if (value < 1 || value > max_features)
                fail("'", key, "' = ", value, ": expected a value in [1, ", max_features, "]");
        if (vector_lens[1] < 1 || vector_lens[1] > max_vector_len)
            fail("'vector_lens' = [", vector_lens[0], ", ", vector_lens[1], "]: v = ",
                 vector_lens[1], " must be in [1, ", max_vector_len, "]");
        if (vector_lens[0] < -1 || vector_lens[0] > max_vector_len)
            fail("'vector_lens' = [", vector_lens[0], ", ", vector_lens[1], "]: v0 = ",
                 vector_lens[0], " must be -1 (no outliers) or in [0, ", max_vector_len, "]");
        if (num_centroids[1] < 1 || num_centroids[1] > max_centroids)
            fail("'num_centroids' = [", num_centroids[0], ", ", num_centroids[1], "]: k = ",
                 num_centroids[1], " must be in [1, 2^32]");
        if (num_centroids[0] < -1 || num_centroids[0] > max_centroids)
            fail("'num_centroids' = [", num_centroids[0], ", ", num_centroids[1], "]: k0 = ",
                 num_centroids[0], " must be -1 (no outliers) or in [0, 2^32]");
        for (const std::int64_t k : num_res_centroids)
            if (k < -1 || k > max_centroids)
                fail("'num_res_centroids' = [", num_res_centroids[0], ", ", num_res_centroids[1],
                     "]: ", k, " must be -1 (none) or in [0, 2^32]");

        if (has_outliers()) {
            if (num_centroids[0] > 65536)
                fail("'num_centroids' = [", num_centroids[0], ", ", num_centroids[1],
                     "]: k0 = ", num_centroids[0],
                     " exceeds 65536, the most int16 outlier indices can address");
            if (num_res_centroids[0] != -1)
                fail("'num_res_centroids' = [", num_res_centroids[0], ", ", num_res_centroids[1],
                     "]: the outlier residual must be -1 (VPTQ does not support residual "
                     "quantization of outliers)");
            if (outlier_size < 1)
                fail("'outlier_size' = ", outlier_size, " with an outlier codebook (v0 = ",
                     vector_lens[0], ", k0 = ", num_centroids[0], "): expected >= 1");
        } else if (outlier_size != 0) {
            fail("'outlier_size' = ", outlier_size, " without an outlier codebook (v0 = ",
                 vector_lens[0], ", k0 = ", num_centroids[0],
                 "; outliers need v0 > 1 and k0 > 0): expected 0");
        }
        if (group_num < 1 || group_num > in_features)
            fail("'group_num' = ", group_num, ": expected a value in [1, in_features = ",
                 in_features, "]");
        if (group_size < 1 || group_size > in_features)
            fail("'group_size' = ", group_size, ": expected a value in [1, in_features = ",
                 in_features, "]");
        if (outlier_size < 0 || outlier_size > in_features)
            fail("'outlier_size' = ", outlier_size, ": expected a value in [0, in_features = ",
                 in_features, "]");
        if (outlier_size + group_num * group_size != in_features)
            fail("outlier_size + group_num * group_size = ", outlier_size, " + ", group_num,
                 " * ", group_size, " = ", outlier_size + group_num * group_size,
                 ": expected in_features = ", in_features);

        const auto power_of_two = [](std::int64_t k) {
            return k > 0 && std::has_single_bit(static_cast<std::uint64_t>(k));
        };
        if (is_indice_packed) {
            if (num_centroids[1] < 2 || !power_of_two(num_centroids[1]))
                fail("'num_centroids' = [", num_centroids[0], ", ", num_centroids[1], "]: k = ",
                     num_centroids[1], " must be a power of two >= 2 for packed indices");
            if (has_residual() && !power_of_two(num_res_centroids[1]))
                fail("'num_res_centroids' = [", num_res_centroids[0], ", ", num_res_centroids[1],
                     "]: k_res = ", num_res_centroids[1],
                     " must be a power of two for packed indices");
            if (index_bits() + residual_bits() > max_code_bits)
                fail("index bits log2(k) + log2(k_res) = ", index_bits(), " + ", residual_bits(),
                     " = ", index_bits() + residual_bits(),
                     ": packed codes hold at most 32 bits");
        } else {
            if (num_centroids[1] > 65536)
                fail("'num_centroids' = [", num_centroids[0], ", ", num_centroids[1], "]: k = ",
                     num_centroids[1], " exceeds 65536, the most unpacked int16 indices can "
                     "address");
            if (num_res_centroids[1] > 65536)
                fail("'num_res_centroids' = [", num_res_centroids[0], ", ", num_res_centroids[1],
                     "]: k_res = ", num_res_centroids[1],
                     " exceeds 65536, the most unpacked int16 indices can address");
        }
        if (indices_as_float && is_indice_packed)
            fail("'indices_as_float' = true with 'is_indice_packed' = true: float indices are "
                 "a legacy unpacked format");
        if (norm_dim && *norm_dim != 0)
            fail("'norm_dim' = ", *norm_dim, ": only 0 (per input column) is supported");
        if (vector_quant_dim && *vector_quant_dim != "out")
            fail("'vector_quant_dim' = '", *vector_quant_dim,
                 "': only \"out\" (vectors along the output dimension) is supported");
    }

    friend bool operator==(const VptqLayerConfig&, const VptqLayerConfig&) = default;
};

namespace detail {

template <class... Parts>
[[noreturn]] void vptq_config_error(std::string_view context, const Parts&... parts) {
    throw invalid_argument(::vqlib::detail::concat(context, ": ", parts...));
}

inline std::string json_text(const nlohmann::json& value) {
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (text.size() > 80) text = text.substr(0, 80) + "...";
    return text;
}

inline std::int64_t json_int(const nlohmann::json& object, const char* key,
                             std::string_view context) {
    const nlohmann::json& value = object.at(key);
    if (value.is_number_unsigned()) {
        if (value.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            vptq_config_error(context, "'", key, "' = ", json_text(value), " is too large");
        return static_cast<std::int64_t>(value.get<std::uint64_t>());
    }
    if (value.is_number_integer()) return value.get<std::int64_t>();
    vptq_config_error(context, "'", key, "' = ", json_text(value), ": expected an integer");
}

inline bool json_bool(const nlohmann::json& object, const char* key, std::string_view context) {
    const nlohmann::json& value = object.at(key);
    if (!value.is_boolean())
        vptq_config_error(context, "'", key, "' = ", json_text(value),
                          ": expected true or false");
    return value.get<bool>();
}

inline std::array<std::int64_t, 2> json_pair(const nlohmann::json& object, const char* key,
                                             std::string_view context,
                                             std::string_view meaning) {
    const nlohmann::json& value = object.at(key);
    const auto is_int = [](const nlohmann::json& x) {
        return x.is_number_integer() &&
               (!x.is_number_unsigned() ||
                x.get<std::uint64_t>() <=
                    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
    };
    if (!value.is_array() || value.size() != 2 || !is_int(value[0]) || !is_int(value[1]))
        vptq_config_error(context, "'", key, "' = ", json_text(value), ": expected ", meaning,
                          ", a list of 2 integers");
    return {value[0].get<std::int64_t>(), value[1].get<std::int64_t>()};
}

/// Parses one layer config; `context` prefixes messages.
inline VptqLayerConfig parse_vptq_layer_config(const nlohmann::json& j,
                                               std::string_view context) {
    if (!j.is_object())
        vptq_config_error(context, "expected a JSON object, got ", json_text(j));
    static constexpr std::array<const char*, 11> required = {
        "in_features",  "out_features", "vector_lens", "num_centroids",
        "num_res_centroids", "group_num", "group_size",  "outlier_size",
        "enable_norm",  "enable_perm",  "bias"};
    static constexpr std::array<const char*, 5> optional = {
        "is_indice_packed", "indices_as_float", "norm_dim", "enable_proxy_error",
        "vector_quant_dim"};
    for (const auto& item : j.items()) {
        const auto known = [&](const auto& keys) {
            for (const char* k : keys)
                if (item.key() == k) return true;
            return false;
        };
        if (!known(required) && !known(optional))
            vptq_config_error(context, "unexpected key '", item.key(), "'");
    }
    for (const char* key : required)
        if (!j.contains(key)) vptq_config_error(context, "missing key '", key, "'");

    VptqLayerConfig c;
    c.in_features = json_int(j, "in_features", context);
    c.out_features = json_int(j, "out_features", context);
    c.vector_lens =
        json_pair(j, "vector_lens", context, "[outlier vector length, vector length]");
    c.num_centroids = json_pair(j, "num_centroids", context,
                                "[outlier num centroids, num centroids]");
    c.num_res_centroids = json_pair(j, "num_res_centroids", context,
                                    "[outlier num res centroids, num res centroids]");
    c.group_num = json_int(j, "group_num", context);
    c.group_size = json_int(j, "group_size", context);
    c.outlier_size = json_int(j, "outlier_size", context);
    c.enable_norm = json_bool(j, "enable_norm", context);
    c.enable_perm = json_bool(j, "enable_perm", context);
    c.bias = json_bool(j, "bias", context);
    // VQuantLinear's default when the key is absent (configs written before packing existed).
    c.is_indice_packed =
        j.contains("is_indice_packed") ? json_bool(j, "is_indice_packed", context) : false;
    c.indices_as_float =
        j.contains("indices_as_float") ? json_bool(j, "indices_as_float", context) : false;
    if (j.contains("norm_dim")) c.norm_dim = json_int(j, "norm_dim", context);
    if (j.contains("enable_proxy_error"))
        c.enable_proxy_error = json_bool(j, "enable_proxy_error", context);
    if (j.contains("vector_quant_dim")) {
        const nlohmann::json& value = j.at("vector_quant_dim");
        if (!value.is_string())
            vptq_config_error(context, "'vector_quant_dim' = ", json_text(value),
                              ": expected a string");
        c.vector_quant_dim = value.get<std::string>();
    }
    c.validate(context);
    return c;
}

}  // namespace detail

/// Writes `c` as VPTQ's loaders read it: the 13 keys of the table at the top, plus norm_dim,
/// enable_proxy_error and vector_quant_dim when set. Throws invalid_argument unless
/// c.validate() passes.
inline void to_json(nlohmann::json& j, const VptqLayerConfig& c) {
    c.validate();
    j = nlohmann::json::object();
    j["in_features"] = c.in_features;
    j["out_features"] = c.out_features;
    j["vector_lens"] = c.vector_lens;
    j["num_centroids"] = c.num_centroids;
    j["num_res_centroids"] = c.num_res_centroids;
    j["group_num"] = c.group_num;
    j["group_size"] = c.group_size;
    j["outlier_size"] = c.outlier_size;
    j["enable_norm"] = c.enable_norm;
    j["enable_perm"] = c.enable_perm;
    j["bias"] = c.bias;
    j["is_indice_packed"] = c.is_indice_packed;
    j["indices_as_float"] = c.indices_as_float;
    if (c.norm_dim) j["norm_dim"] = *c.norm_dim;
    if (c.enable_proxy_error) j["enable_proxy_error"] = *c.enable_proxy_error;
    if (c.vector_quant_dim) j["vector_quant_dim"] = *c.vector_quant_dim;
}

/// Reads a layer config strictly (see the top of this header) and validates it. Throws
/// invalid_argument naming the key and value.
inline void from_json(const nlohmann::json& j, VptqLayerConfig& c) {
    c = detail::parse_vptq_layer_config(j, "VPTQ layer config");
}

/// config.json's "quantization_config" for a VPTQ model: per-module configs by full module name,
/// and configs shared by every module with a given last name component ("q_proj").
struct VptqQuantizationConfig {
    std::map<std::string, VptqLayerConfig> config_for_layers;
    std::map<std::string, VptqLayerConfig> shared_layer_config;

    /// The config of module `name` ("model.layers.0.self_attn.q_proj"): its config_for_layers
    /// entry, else the shared_layer_config entry of its last component, else nullptr (a module
    /// that is not quantized).
    const VptqLayerConfig* find(std::string_view name) const {
        if (const auto it = config_for_layers.find(std::string(name));
            it != config_for_layers.end())
            return &it->second;
        const std::size_t dot = name.rfind('.');
        const std::string tail(dot == std::string_view::npos ? name : name.substr(dot + 1));
        if (const auto it = shared_layer_config.find(tail); it != shared_layer_config.end())
            return &it->second;
        return nullptr;
    }

    friend bool operator==(const VptqQuantizationConfig&,
                           const VptqQuantizationConfig&) = default;
};

/// Writes {"quant_method": "vptq", "config_for_layers": {...}} and, when not empty,
/// "shared_layer_config".
inline void to_json(nlohmann::json& j, const VptqQuantizationConfig& c) {
    j = nlohmann::json::object();
    j["quant_method"] = "vptq";
    j["config_for_layers"] = nlohmann::json::object();
    for (const auto& [name, layer] : c.config_for_layers) j["config_for_layers"][name] = layer;
    if (!c.shared_layer_config.empty()) {
        j["shared_layer_config"] = nlohmann::json::object();
        for (const auto& [name, layer] : c.shared_layer_config)
            j["shared_layer_config"][name] = layer;
    }
}

/// Reads a "quantization_config" object: "quant_method" must be "vptq", "config_for_layers" and
/// "shared_layer_config" (each optional, at least one not empty) map names to layer configs,
/// each read strictly. Other keys (enable_proxy_error, modules_to_not_convert, ... written by
/// other tools) are ignored. Throws invalid_argument naming the layer, key and value.
inline void from_json(const nlohmann::json& j, VptqQuantizationConfig& c) {
    const std::string_view context = "VPTQ quantization_config";
    if (!j.is_object())
        detail::vptq_config_error(context, "expected a JSON object, got ", detail::json_text(j));
    if (!j.contains("quant_method") || j.at("quant_method") != "vptq")
        detail::vptq_config_error(
            context, "'quant_method' = ",
            j.contains("quant_method") ? detail::json_text(j.at("quant_method")) : "(missing)",
            ": expected \"vptq\"");
    VptqQuantizationConfig out;
    for (const auto& [key, target] :
         {std::pair{"config_for_layers", &out.config_for_layers},
          std::pair{"shared_layer_config", &out.shared_layer_config}}) {
        if (!j.contains(key)) continue;
        const nlohmann::json& layers = j.at(key);
        if (!layers.is_object())
            detail::vptq_config_error(context, "'", key, "' = ", detail::json_text(layers),
                                      ": expected an object of layer configs");
        for (const auto& item : layers.items())
            target->emplace(item.key(), detail::parse_vptq_layer_config(
                                            item.value(), ::vqlib::detail::concat(
                                                              "VPTQ ", key, "['", item.key(),
                                                              "']")));
    }
    if (out.config_for_layers.empty() && out.shared_layer_config.empty())
        detail::vptq_config_error(context, "neither 'config_for_layers' nor "
                                           "'shared_layer_config' holds a layer config");
    c = std::move(out);
}

/// The VPTQ quantization config of a model's config.json (parsed): its "quantization_config",
/// or, for multimodal models, "text_config"."quantization_config". Throws invalid_argument if
/// neither is present or it is not a valid VPTQ config.
inline VptqQuantizationConfig vptq_config_from_model_config(const nlohmann::json& config) {
    const nlohmann::json* q = nullptr;
    if (config.is_object() && config.contains("quantization_config"))
        q = &config.at("quantization_config");
    else if (config.is_object() && config.contains("text_config") &&
             config.at("text_config").is_object() &&
             config.at("text_config").contains("quantization_config"))
        q = &config.at("text_config").at("quantization_config");
    VQLIB_CHECK(q != nullptr, invalid_argument,
                "model config: no 'quantization_config' (nor 'text_config.quantization_config')");
    return q->get<VptqQuantizationConfig>();
}

}  // namespace vqlib::io
