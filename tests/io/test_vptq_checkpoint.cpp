// Tests of vqlib/io/vptq_checkpoint.hpp: a quantized layer written as VPTQ's checkpoint (tensors
// and quantization_config) and read back dequantizes bit-exactly; the tensors have the names,
// shapes and dtypes of VPTQ's packed format; inconsistent checkpoints are rejected.
#include <vqlib/io/vptq_checkpoint.hpp>

#include <catch2/catch.hpp>

#include "../support/decode_layers.hpp"

#include <filesystem>
#include <fstream>
#include <utility>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() /
               ("vqlib_vptq_ckpt_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)));
        fs::remove_all(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

/// A VPTQ layer with random codebooks and indices: 44 x 96, v = 4, k = 32 (+ 16 residual), two
/// groups, 4 outlier columns at v0 = 2, k0 = 16, act-order, optional normalization. The io
/// round trip is what is tested, so the layer need not come from a quantization run.
struct QuantizedLayer {
    vqlib::VptqLayer layer;
    vqlib::MatrixXf Q;  // layer.dequantize() before it was written
};

QuantizedLayer quantized_layer(bool outliers, bool residual, bool norm) {
    vqlib::test::VptqSpec s;
    s.m = 44;
    s.n = 96;
    s.v = 4;
    s.k = 32;
    s.kr = residual ? 16 : 0;
    s.outliers = outliers ? 4 : 0;
    s.v0 = 2;
    s.k0 = 16;
    s.groups = 2;
    s.norm = norm;
    s.perm = true;
    vqlib::VptqLayer layer = vqlib::test::random_vptq_layer(s, 21 + 2 * outliers + residual);
    vqlib::MatrixXf Q = layer.dequantize();
    return {std::move(layer), std::move(Q)};
}

}  // namespace

TEST_CASE("VPTQ checkpoint: write, read, dequantize bit-exactly", "[io][vptq]") {
    const bool outliers = GENERATE(false, true);
    const bool residual = GENERATE(false, true);
    const bool norm = GENERATE(false, true);
    INFO("outliers " << outliers << ", residual " << residual << ", norm " << norm);
    const auto r = quantized_layer(outliers, residual, norm);
    TempDir dir;
    const std::string name = "model.layers.0.mlp.down_proj";
    vqlib::io::save_vptq_model(dir.path, {{name, r.layer}});
    const auto back = vqlib::io::load_vptq_model(dir.path);
    REQUIRE(back.count(name) == 1);
    CHECK(back.at(name).dequantize() == r.Q);

    // The tensors as VPTQ's loader expects them.
    const auto file = vqlib::io::read_safetensors(dir.path / "model.safetensors");
    const auto& t = file.tensors;
    const auto& L = r.layer.layout;
    CHECK(t.at(name + ".centroids.weight").dtype == vqlib::io::Dtype::F16);
    CHECK(t.at(name + ".centroids.weight").shape == std::vector<std::int64_t>{2, 32 * 4});
    CHECK(t.at(name + ".indices").dtype == vqlib::io::Dtype::I32);
    CHECK(t.at(name + ".indices").shape ==
          std::vector<std::int64_t>{2, 11, (L.group_size * (residual ? 9 : 5) + 31) / 32});
    CHECK(t.at(name + ".perm").dtype == vqlib::io::Dtype::I16);
    CHECK(t.count(name + ".res_centroids.weight") == (residual ? 1u : 0u));
    CHECK(t.count(name + ".res_indices") == 0u);  // merged into the packed codes
    CHECK(t.count(name + ".outlier_indices") == (outliers ? 1u : 0u));
    CHECK(t.count(name + ".weight_scale") == (norm ? 1u : 0u));
    if (outliers) {
        CHECK(t.at(name + ".outlier_indices").shape ==
              std::vector<std::int64_t>{1, 22, L.outlier_size});
    }

    // config.json's quantization_config.
    std::ifstream in(dir.path / "config.json");
    const auto config = nlohmann::json::parse(in);
    const auto& layer = config.at("quantization_config").at("config_for_layers").at(name);
    CHECK(config.at("quantization_config").at("quant_method") == "vptq");
    CHECK(layer.at("vector_lens") == nlohmann::json::array({outliers ? 2 : -1, 4}));
    CHECK(layer.at("num_centroids") == nlohmann::json::array({outliers ? 16 : -1, 32}));
    CHECK(layer.at("num_res_centroids") == nlohmann::json::array({-1, residual ? 16 : -1}));
    CHECK(layer.at("is_indice_packed") == true);
    CHECK(layer.at("enable_perm") == true);
    CHECK(layer.at("enable_norm") == norm);
}

TEST_CASE("VPTQ checkpoint: inconsistent checkpoints are rejected", "[io][vptq]") {
    const auto r = quantized_layer(false, true, false);
    vqlib::io::TensorMap tensors;
    vqlib::io::add_vptq_layer(tensors, "m", r.layer);
    const auto config = vqlib::io::vptq_layer_config(r.layer);
    CHECK(vqlib::io::read_vptq_layer(tensors, "m", config).dequantize() == r.Q);

    SECTION("missing tensor") {
        tensors.erase("m.res_centroids.weight");
        CHECK_THROWS_WITH(vqlib::io::read_vptq_layer(tensors, "m", config),
                          Contains("'m.res_centroids.weight' is missing"));
    }
    SECTION("shape disagrees with the config") {
        auto c = config;
        c.num_centroids[1] = 64;
        CHECK_THROWS_WITH(vqlib::io::read_vptq_layer(tensors, "m", c), Contains("m.centroids.weight"));
    }
    SECTION("perm is not a permutation") {
        auto perm = tensors.at("m.perm").bits_as<std::uint16_t>();
        perm[3] = perm[4];
        tensors.at("m.perm") = vqlib::io::Tensor::from_bits(vqlib::io::Dtype::I16, {96}, perm);
        CHECK_THROWS_WITH(vqlib::io::read_vptq_layer(tensors, "m", config),
                          Contains("not a permutation"));
    }
    SECTION("wrong dtype for the packed indices") {
        auto& idx = tensors.at("m.indices");
        idx.dtype = vqlib::io::Dtype::F32;
        CHECK_THROWS_WITH(vqlib::io::read_vptq_layer(tensors, "m", config), Contains("expected I32"));
    }
    SECTION("duplicate layer") {
        CHECK_THROWS_WITH(vqlib::io::add_vptq_layer(tensors, "m", r.layer), Contains("already exists"));
    }
    SECTION("non-power-of-two codebooks cannot be written") {
        auto layer = r.layer;
        layer.layout.num_centroids = 24;
        CHECK_THROWS_WITH(vqlib::io::vptq_layer_config(layer), Contains("powers of two"));
    }
}
