// vqlib example: quantize a layer with VPTQ, write it as VPTQ's checkpoint (model.safetensors +
// config.json with quantization_config), read it back, and check the round trip.
//
// Prints the tensors written (name, dtype, shape) and the layer's config entry. Exits with 1
// unless the reloaded layer dequantizes bit-exactly to the quantized weights, and the written
// tensors have the shapes the config implies (VptqLayerConfig::tensor_shapes()).
#include <vqlib/io/safetensors.hpp>
#include <vqlib/io/vptq_checkpoint.hpp>
#include <vqlib/vptq.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
    // A 200 x 384 layer (200 rows: not a multiple of v = 8, so the last row block is padded).
    vqlib::Rng rng(3);
    vqlib::MatrixXf W(200, 384);
    for (vqlib::Index j = 0; j < W.cols(); ++j)
        for (vqlib::Index i = 0; i < W.rows(); ++i) W(i, j) = static_cast<float>(0.02 * rng.student_t(4));
    vqlib::MatrixXf X(384, 1536);
    for (vqlib::Index t = 0; t < X.cols(); ++t)
        for (vqlib::Index j = 0; j < X.rows(); ++j)
            X(j, t) = static_cast<float>(rng.normal() * (j % 97 == 5 ? 25.0 : 1.0));
    vqlib::HessianAccumulator acc(384);
    acc.add(X);
    const vqlib::MatrixXd H = acc.finalize();

    // v = 8, k = 256 + residual 16, 2% outlier columns (v0 = 4, k0 = 64), 2 column groups.
    const auto config = vqlib::vptq_presets::make(8, 256, 16, 2.0, 4, 64, 2);
    const auto result = vqlib::vptq(W, H, config);
    std::printf("%s: %.4f bits per weight, proxy loss %.5g (%.5g before the residual)\n",
                config.name.c_str(), result.bits_per_weight, result.proxy_loss,
                result.proxy_loss_first_pass);

    const std::filesystem::path dir =
        argc > 1 ? std::filesystem::path(argv[1])
                 : std::filesystem::temp_directory_path() / "vqlib_example_vptq_checkpoint";
    const std::string name = "model.layers.0.mlp.down_proj";
    vqlib::io::save_vptq_model(dir, {{name, result.layer}});
    std::printf("wrote %s/{model.safetensors, config.json}\n", dir.string().c_str());

    bool ok = true;
    const auto file = vqlib::io::read_safetensors(dir / "model.safetensors");
    const auto layer_config = vqlib::io::vptq_layer_config(result.layer);
    for (const auto& [tensor, shape] : layer_config.tensor_shapes()) {
        const auto it = file.tensors.find(name + "." + tensor);
        if (it == file.tensors.end() || it->second.shape != shape) {
            std::printf("FAIL: tensor %s missing or of the wrong shape\n", tensor.c_str());
            ok = false;
            continue;
        }
        std::string dims;
        for (auto d : shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
        std::printf("  %-56s %-4s [%s]\n", it->first.c_str(),
                    std::string(vqlib::io::dtype_name(it->second.dtype)).c_str(), dims.c_str());
    }
    std::printf("config_for_layers[\"%s\"] = %s\n", name.c_str(),
                nlohmann::json(layer_config).dump().c_str());

    const auto layers = vqlib::io::load_vptq_model(dir);
    if (layers.at(name).dequantize() != result.Q) {
        std::printf("FAIL: the reloaded layer does not dequantize to the same weights\n");
        ok = false;
    }
    if (argc <= 1) std::filesystem::remove_all(dir);
    std::printf("%s\n", ok ? "all checks passed" : "checks FAILED");
    return ok ? 0 : 1;
}
