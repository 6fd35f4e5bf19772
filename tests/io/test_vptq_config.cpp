// Tests of vqlib/io/vptq_config.hpp: VPTQ's per-layer quantization config as config.json holds
// it (docs/vptq.md): JSON round trips, derived layouts and tensor shapes, and one invalid
// config per check.
#include <vqlib/io/vptq_config.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>

using Catch::Matchers::Contains;
using nlohmann::json;
using vqlib::io::VptqLayerConfig;

namespace {

// A Llama q_proj quantized as v8-k65536-256 (about 3 bits), with norm and perm, packed: the
// layer config as VQuantLinear.init_args writes it.
const char* const llama_q_proj = R"({
    "in_features": 4096,
    "out_features": 4096,
    "vector_lens": [-1, 8],
    "num_centroids": [-1, 65536],
    "num_res_centroids": [-1, 256],
    "group_num": 1,
    "group_size": 4096,
    "outlier_size": 0,
    "enable_norm": true,
    "enable_perm": true,
    "bias": false,
    "is_indice_packed": true,
    "indices_as_float": false
})";

// The paper's L2-7B 2.26-bit setting (Table 8): 1% outliers with v0 = 4, k0 = 8192; v = 12,
// k = k_res = 4096; 4 groups. 4096 columns: 41 outliers padded to 44 so that the other 4052
// split into 4 groups of 1013.
const char* const outlier_layer = R"({
    "in_features": 4096,
    "out_features": 4096,
    "vector_lens": [4, 12],
    "num_centroids": [8192, 4096],
    "num_res_centroids": [-1, 4096],
    "group_num": 4,
    "group_size": 1013,
    "outlier_size": 44,
    "enable_norm": true,
    "enable_perm": true,
    "bias": true,
    "is_indice_packed": true,
    "indices_as_float": false
})";

std::string error_of(const json& j) {
    try {
        (void)j.get<VptqLayerConfig>();
    } catch (const vqlib::invalid_argument& e) {
        return e.what();
    }
    return "(no exception)";
}

json with(const char* base, const std::string& key, const json& value) {
    json j = json::parse(base);
    j[key] = value;
    return j;
}

json without(const char* base, const std::string& key) {
    json j = json::parse(base);
    j.erase(key);
    return j;
}

}  // namespace

#define CHECK_INVALID(j, keyword)                                                  \
    do {                                                                           \
        CHECK_THROWS_AS((j).get<VptqLayerConfig>(), vqlib::invalid_argument);      \
        CHECK_THAT(error_of(j), Contains("VPTQ layer config") && Contains(keyword)); \
    } while (false)

TEST_CASE("io/vptq_config: a released layer config reads and writes back unchanged",
          "[io][vptq_config]") {
    const json j = json::parse(llama_q_proj);
    const auto c = j.get<VptqLayerConfig>();
    CHECK(c.in_features == 4096);
    CHECK(c.out_features == 4096);
    CHECK(c.vector_lens == std::array<std::int64_t, 2>{-1, 8});
    CHECK(c.num_centroids == std::array<std::int64_t, 2>{-1, 65536});
    CHECK(c.num_res_centroids == std::array<std::int64_t, 2>{-1, 256});
    CHECK(c.group_num == 1);
    CHECK(c.group_size == 4096);
    CHECK(c.outlier_size == 0);
    CHECK(c.enable_norm);
    CHECK(c.enable_perm);
    CHECK_FALSE(c.bias);
    CHECK(c.is_indice_packed);
    CHECK_FALSE(c.indices_as_float);
    CHECK_FALSE(c.norm_dim.has_value());

    CHECK_FALSE(c.has_outliers());
    CHECK(c.has_residual());
    CHECK(c.vector_len() == 8);
    CHECK(c.index_bits() == 16);
    CHECK(c.residual_bits() == 8);
    CHECK(c.padding() == 0);
    CHECK(c.row_blocks() == 512);
    CHECK(c.outlier_row_blocks() == 0);

    // Exactly the same keys, values and JSON types back.
    const json back = c;
    CHECK(back == j);
    CHECK(back.size() == 13);
    // The Hugging Face integration reads these two unconditionally: always written.
    CHECK(json(without(llama_q_proj, "indices_as_float").get<VptqLayerConfig>()) == j);
    CHECK(back.at("vector_lens").is_array());
    CHECK(back.at("group_size").is_number_integer());
    CHECK(back.at("enable_norm").is_boolean());
    CHECK(back.get<VptqLayerConfig>() == c);

    const auto layout = c.packed_layout();
    CHECK(layout.groups == 1);
    CHECK(layout.rows == 512);
    CHECK(layout.codes_per_row == 4096);
    CHECK(layout.index_bits == 16);
    CHECK(layout.residual_bits == 8);
    CHECK(layout.words_per_row() == 3072);  // ceil(4096 * 24 / 32)
    CHECK(layout.num_centroids == 65536);
    CHECK(layout.num_res_centroids == 256);

    const auto shapes = c.tensor_shapes();
    const std::map<std::string, std::vector<std::int64_t>> expected = {
        {"centroids.weight", {1, 65536 * 8}},
        {"indices", {1, 512, 3072}},
        {"res_centroids.weight", {1, 256 * 8}},
        {"perm", {4096}},
        {"weight_scale", {4096}},
        {"weight_bias", {4096}}};
    CHECK(shapes == expected);
}

TEST_CASE("io/vptq_config: outliers, groups, padding and bias", "[io][vptq_config]") {
    const json j = json::parse(outlier_layer);
    const auto c = j.get<VptqLayerConfig>();
    CHECK(c.has_outliers());
    CHECK(c.has_residual());
    CHECK(c.index_bits() == 12);
    CHECK(c.residual_bits() == 12);
    CHECK(c.padding() == 8);         // (-4096) mod 12
    CHECK(c.row_blocks() == 342);    // 4104 / 12
    CHECK(c.outlier_padding() == 0);
    CHECK(c.outlier_row_blocks() == 1024);
    CHECK(json(c) == j);

    const auto layout = c.packed_layout();
    CHECK(layout.shape() == std::array<std::int64_t, 3>{4, 342, 760});  // ceil(1013 * 24 / 32)

    const auto shapes = c.tensor_shapes();
    CHECK(shapes.at("centroids.weight") == std::vector<std::int64_t>{4, 4096 * 12});
    CHECK(shapes.at("indices") == std::vector<std::int64_t>{4, 342, 760});
    CHECK(shapes.at("res_centroids.weight") == std::vector<std::int64_t>{4, 4096 * 12});
    CHECK(shapes.count("res_indices") == 0);
    CHECK(shapes.at("outlier_centroids.weight") == std::vector<std::int64_t>{1, 8192 * 4});
    CHECK(shapes.at("outlier_indices") == std::vector<std::int64_t>{1, 1024, 44});
    CHECK(shapes.at("bias") == std::vector<std::int64_t>{4096});

    // out_features not a multiple of v0 or v.
    json odd = j;
    odd["out_features"] = 1030;
    const auto o = odd.get<VptqLayerConfig>();
    CHECK(o.padding() == 2);  // 1032 = 86 * 12
    CHECK(o.row_blocks() == 86);
    CHECK(o.outlier_padding() == 2);
    CHECK(o.outlier_row_blocks() == 258);
}

TEST_CASE("io/vptq_config: unpacked legacy configs and optional keys", "[io][vptq_config]") {
    // is_indice_packed absent: VQuantLinear's default, unpacked int16 indices.
    json j = json::parse(llama_q_proj);
    j.erase("is_indice_packed");
    j.erase("indices_as_float");
    auto c = j.get<VptqLayerConfig>();
    CHECK_FALSE(c.is_indice_packed);
    CHECK_THROWS_AS(c.packed_layout(), vqlib::invalid_argument);
    CHECK(c.tensor_shapes().at("indices") == std::vector<std::int64_t>{1, 512, 4096});
    CHECK(c.tensor_shapes().at("res_indices") == std::vector<std::int64_t>{1, 512, 4096});
    CHECK(json(c).at("is_indice_packed") == false);
    CHECK(json(c).at("indices_as_float") == false);

    // Optional keys come back only when present.
    j["indices_as_float"] = true;
    j["norm_dim"] = 0;
    j["enable_proxy_error"] = false;
    j["vector_quant_dim"] = "out";
    c = j.get<VptqLayerConfig>();
    CHECK(c.indices_as_float);
    CHECK(c.norm_dim == 0);
    CHECK(c.enable_proxy_error == false);
    CHECK(c.vector_quant_dim == "out");
    json back = c;
    j["is_indice_packed"] = false;
    CHECK(back == j);

    // A non-power-of-two codebook is fine unpacked.
    json small = without(llama_q_proj, "is_indice_packed");
    small["num_centroids"] = {-1, 3000};
    small["num_res_centroids"] = {-1, -1};
    c = small.get<VptqLayerConfig>();
    CHECK(c.index_bits() == 11);  // int(log2(3000))
    CHECK_FALSE(c.has_residual());
    CHECK(c.residual_bits() == 0);

    // k_res = 0 means no residual codebook (VPTQ's "-k65536-0" models).
    json zero = json::parse(llama_q_proj);
    zero["num_res_centroids"] = {-1, 0};
    c = zero.get<VptqLayerConfig>();
    CHECK_FALSE(c.has_residual());
    CHECK(c.packed_layout().residual_bits == 0);
    CHECK(c.packed_layout().words_per_row() == 2048);
}

TEST_CASE("io/vptq_config: keys and JSON types are checked", "[io][vptq_config][errors]") {
    for (const char* key : {"in_features", "out_features", "vector_lens", "num_centroids",
                            "num_res_centroids", "group_num", "group_size", "outlier_size",
                            "enable_norm", "enable_perm", "bias"}) {
        CAPTURE(key);
        CHECK_INVALID(without(llama_q_proj, key), std::string("missing key '") + key + "'");
    }
    CHECK_INVALID(with(llama_q_proj, "vector_len", 8), "unexpected key 'vector_len'");
    CHECK_INVALID(with(llama_q_proj, "device", "cuda"), "unexpected key 'device'");
    CHECK_INVALID(json::array(), "expected a JSON object");

    CHECK_INVALID(with(llama_q_proj, "in_features", 4096.0), "'in_features' = 4096.0: expected an "
                                                            "integer");
    CHECK_INVALID(with(llama_q_proj, "group_size", "4096"), "'group_size' = \"4096\"");
    CHECK_INVALID(with(llama_q_proj, "outlier_size", true), "'outlier_size' = true");
    CHECK_INVALID(with(llama_q_proj, "in_features", 18446744073709551615ull), "is too large");
    CHECK_INVALID(with(llama_q_proj, "enable_norm", 1),
                  "'enable_norm' = 1: expected true or false");
    CHECK_INVALID(with(llama_q_proj, "bias", "false"), "'bias' = \"false\"");
    CHECK_INVALID(with(llama_q_proj, "is_indice_packed", nullptr), "'is_indice_packed' = null");
    CHECK_INVALID(with(llama_q_proj, "indices_as_float", 0), "'indices_as_float' = 0");
    CHECK_INVALID(with(llama_q_proj, "norm_dim", "0"), "'norm_dim' = \"0\"");
    CHECK_INVALID(with(llama_q_proj, "vector_quant_dim", 1), "'vector_quant_dim' = 1");

    CHECK_INVALID(with(llama_q_proj, "vector_lens", json::array({8})),
                  "'vector_lens' = [8]: expected [outlier vector length, vector length], a list "
                  "of 2 integers");
    CHECK_INVALID(with(llama_q_proj, "vector_lens", 8), "'vector_lens' = 8");
    CHECK_INVALID(with(llama_q_proj, "num_centroids", json::array({-1, 65536, 1})),
                  "'num_centroids' = [-1,65536,1]");
    CHECK_INVALID(with(llama_q_proj, "num_res_centroids", json::array({-1, 256.5})),
                  "'num_res_centroids' = [-1,256.5]");
}

TEST_CASE("io/vptq_config: values are validated", "[io][vptq_config][errors]") {
    CHECK_INVALID(with(llama_q_proj, "in_features", 0), "'in_features' = 0");
    CHECK_INVALID(with(llama_q_proj, "out_features", -5), "'out_features' = -5");
    CHECK_INVALID(with(llama_q_proj, "out_features", std::int64_t{1} << 40),
                  "'out_features' = 1099511627776");
    CHECK_INVALID(with(llama_q_proj, "vector_lens", json::array({-1, 0})), "v = 0");
    CHECK_INVALID(with(llama_q_proj, "vector_lens", json::array({-2, 8})), "v0 = -2");
    CHECK_INVALID(with(llama_q_proj, "num_centroids", json::array({-1, 0})), "k = 0");
    CHECK_INVALID(with(llama_q_proj, "num_res_centroids", json::array({-7, 256})), "-7 must be");

    // Packed indices need power-of-two codebooks and at most 32 bits per code.
    CHECK_INVALID(with(llama_q_proj, "num_centroids", json::array({-1, 3000})),
                  "k = 3000 must be a power of two >= 2 for packed indices");
    CHECK_INVALID(with(llama_q_proj, "num_centroids", json::array({-1, 1})), "k = 1");
    CHECK_INVALID(with(llama_q_proj, "num_res_centroids", json::array({-1, 300})),
                  "k_res = 300 must be a power of two");
    CHECK_INVALID(with(llama_q_proj, "num_res_centroids", json::array({-1, std::int64_t{1} << 17})),
                  "16 + 17 = 33: packed codes hold at most 32 bits");
    json wide = json::parse(llama_q_proj);
    wide["num_centroids"] = {-1, std::int64_t{1} << 16};
    wide["num_res_centroids"] = {-1, std::int64_t{1} << 16};
    CHECK_NOTHROW(wide.get<VptqLayerConfig>());  // T = 32
    // Unpacked indices are int16.
    json unpacked = json::parse(llama_q_proj);
    unpacked["is_indice_packed"] = false;
    unpacked["num_centroids"] = {-1, 131072};
    CHECK_INVALID(unpacked, "k = 131072 exceeds 65536");
    unpacked["num_centroids"] = {-1, 65536};
    unpacked["num_res_centroids"] = {-1, 131072};
    CHECK_INVALID(unpacked, "k_res = 131072 exceeds 65536");
    CHECK_INVALID(with(llama_q_proj, "indices_as_float", true),
                  "'indices_as_float' = true with 'is_indice_packed' = true");

    // Column partition.
    CHECK_INVALID(with(llama_q_proj, "group_size", 4000),
                  "outlier_size + group_num * group_size = 0 + 1 * 4000 = 4000: expected "
                  "in_features = 4096");
    CHECK_INVALID(with(llama_q_proj, "group_num", 0), "'group_num' = 0");
    CHECK_INVALID(with(llama_q_proj, "group_size", 0), "'group_size' = 0");
    CHECK_INVALID(with(llama_q_proj, "outlier_size", 96),
                  "'outlier_size' = 96 without an outlier codebook");
    CHECK_INVALID(with(outlier_layer, "group_size", 1000), "= 44 + 4 * 1000 = 4044");
    CHECK_INVALID(with(outlier_layer, "outlier_size", 0), "'outlier_size' = 0 with an outlier "
                                                          "codebook");
    CHECK_INVALID(with(outlier_layer, "num_res_centroids", json::array({256, 4096})),
                  "the outlier residual must be -1");
    CHECK_INVALID(with(outlier_layer, "num_centroids", json::array({131072, 4096})),
                  "k0 = 131072 exceeds 65536");
    // v0 = 1 or k0 <= 0 disables outliers, as in VQuantLinear: then outlier_size must be 0.
    CHECK_INVALID(with(outlier_layer, "vector_lens", json::array({1, 12})),
                  "'outlier_size' = 44 without an outlier codebook (v0 = 1, k0 = 8192");

    CHECK_INVALID(with(llama_q_proj, "norm_dim", 1), "'norm_dim' = 1: only 0");
    CHECK_INVALID(with(llama_q_proj, "vector_quant_dim", "in"), "'vector_quant_dim' = 'in'");

    // to_json refuses invalid configs too.
    VptqLayerConfig c = json::parse(llama_q_proj).get<VptqLayerConfig>();
    c.group_size = 7;
    json out;
    CHECK_THROWS_AS(out = c, vqlib::invalid_argument);
    CHECK_THROWS_AS(c.validate(), vqlib::invalid_argument);
    CHECK_THROWS_AS(c.tensor_shapes(), vqlib::invalid_argument);
}

TEST_CASE("io/vptq_config: quantization_config and lookup by module name",
          "[io][vptq_config]") {
    const json model_config = {
        {"architectures", {"LlamaForCausalLM"}},
        {"hidden_size", 4096},
        {"quantization_config",
         {{"quant_method", "vptq"},
          {"config_for_layers",
           {{"model.layers.0.self_attn.q_proj", json::parse(llama_q_proj)},
            {"model.layers.0.mlp.gate_proj", json::parse(outlier_layer)}}},
          {"shared_layer_config", {{"o_proj", json::parse(llama_q_proj)}}},
          {"enable_proxy_error", false},
          {"modules_to_not_convert", nullptr}}}};
    const auto q = vqlib::io::vptq_config_from_model_config(model_config);
    CHECK(q.config_for_layers.size() == 2);
    CHECK(q.shared_layer_config.size() == 1);
    REQUIRE(q.find("model.layers.0.mlp.gate_proj") != nullptr);
    CHECK(q.find("model.layers.0.mlp.gate_proj")->has_outliers());
    REQUIRE(q.find("model.layers.7.self_attn.o_proj") != nullptr);
    CHECK(q.find("model.layers.7.self_attn.o_proj") == &q.shared_layer_config.at("o_proj"));
    CHECK(q.find("o_proj") != nullptr);
    CHECK(q.find("model.layers.0.self_attn.k_proj") == nullptr);
    CHECK(q.find("lm_head") == nullptr);

    // Written back: quant_method, config_for_layers, shared_layer_config; read back equal.
    const json written = q;
    CHECK(written.at("quant_method") == "vptq");
    CHECK(written.at("config_for_layers").at("model.layers.0.self_attn.q_proj") ==
          json::parse(llama_q_proj));
    CHECK(written.get<vqlib::io::VptqQuantizationConfig>() == q);

    // Multimodal models keep it under text_config.
    const json multimodal = {{"text_config", {{"quantization_config", written}}}};
    CHECK(vqlib::io::vptq_config_from_model_config(multimodal) == q);
    CHECK_THROWS_AS(vqlib::io::vptq_config_from_model_config(json{{"hidden_size", 1}}),
                    vqlib::invalid_argument);

    const auto error = [](const json& j) {
        try {
            (void)j.get<vqlib::io::VptqQuantizationConfig>();
        } catch (const vqlib::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("(no exception)");
    };
    json bad = written;
    bad["quant_method"] = "aqlm";
    CHECK_THAT(error(bad), Contains("'quant_method' = \"aqlm\": expected \"vptq\""));
    bad.erase("quant_method");
    CHECK_THAT(error(bad), Contains("'quant_method' = (missing)"));
    bad = written;
    bad["config_for_layers"]["model.layers.3.mlp.up_proj"] = with(llama_q_proj, "group_size", 5);
    CHECK_THAT(error(bad), Contains("VPTQ config_for_layers['model.layers.3.mlp.up_proj']") &&
                               Contains("group_size"));
    bad = written;
    bad["shared_layer_config"]["v_proj"] = without(llama_q_proj, "bias");
    CHECK_THAT(error(bad), Contains("shared_layer_config['v_proj']: missing key 'bias'"));
    bad = written;
    bad["config_for_layers"] = json::array();
    CHECK_THAT(error(bad), Contains("'config_for_layers' = []"));
    CHECK_THAT(error(json{{"quant_method", "vptq"}}), Contains("neither"));
}
