// Tests of vqlib/io/layer_checkpoint.hpp: every layer format a recipe returns (INT and minifloat
// scalar layers, GPTVQ, VPTQ, PVQ) written into one checkpoint and read back dequantizes to the
// same bits with the same fields; damaged checkpoints are refused with an io_error naming what is
// wrong; a failed save writes nothing.
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/pvq.hpp>
#include <vqlib/vptq.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"

#include <map>
#include <string>

using Catch::Matchers::Contains;

namespace {

/// One small layer quantized by each recipe (64 x 256, random Student-t weights, a Hessian
/// from correlated random inputs).
const std::map<std::string, vqlib::io::QuantizedLayer>& recipe_layers() {
    static const auto layers = [] {
        vqlib::Rng rng(11);
        vqlib::MatrixXf W(64, 256), X(256, 2048);
        for (vqlib::Index j = 0; j < W.cols(); ++j)
            for (vqlib::Index i = 0; i < W.rows(); ++i) W(i, j) = static_cast<float>(0.02 * rng.student_t(4));
        for (vqlib::Index t = 0; t < X.cols(); ++t)
            for (vqlib::Index j = 0; j < X.rows(); ++j)
                X(j, t) = static_cast<float>(rng.normal() * (j % 37 == 3 ? 8.0 : 1.0));
        vqlib::HessianAccumulator acc(256);
        acc.add(X);
        const vqlib::MatrixXd H = acc.finalize();

        std::map<std::string, vqlib::io::QuantizedLayer> out;
        vqlib::GptqConfig<vqlib::IntGrid> int3{vqlib::IntGrid(3, false)};
        int3.groups.size = 32;
        int3.hessian.act_order = true;  // dynamic groups under act-order: g_idx is stored
        out.emplace("blocks.0.int3", vqlib::gptq(W, H, int3).layer);
        vqlib::GptqConfig<vqlib::IntGrid> int4{
            vqlib::IntGrid(4, true, {}, vqlib::ScaleStorage::fp16)};
        int4.groups.size = 128;
        out.emplace("blocks.0.int4", vqlib::gptq(W, H, int4).layer);
        vqlib::GptqConfig<vqlib::MinifloatGrid> fp8{
            vqlib::MinifloatGrid(vqlib::MinifloatFormat::fp8_e4m3())};
        fp8.groups.size = 64;
        out.emplace("blocks.0.fp8", vqlib::gptq(W, H, fp8).layer);
        out.emplace("blocks.0.gptvq", vqlib::gptvq(W, H, vqlib::gptvq_presets::best(2, 2, 1024)).layer);
        out.emplace("blocks.0.gptvq_scaled", vqlib::gptvq(W, H, vqlib::gptvq_presets::paper_scaled(2, 2.125)).layer);
        out.emplace("blocks.0.gptvq_svd", vqlib::gptvq(W, H, vqlib::gptvq_presets::paper_svd(2.125)).layer);
        auto vptq = vqlib::vptq_presets::make(4, 64, 16, 2.0, 2, 16, 2);
        vptq.enable_norm = true;
        out.emplace("blocks.0.vptq", vqlib::vptq(W, H, vptq).layer);
        out.emplace("blocks.0.pvq", vqlib::pvq(W, H, vqlib::pvq_presets::best(32, 3.25)).layer);
        return out;
    }();
    return layers;
}

vqlib::MatrixXf dequantized(const vqlib::io::QuantizedLayer& layer) {
    return std::visit([](const auto& l) { return vqlib::MatrixXf(l.dequantize()); }, layer);
}

bool same_bits(const vqlib::MatrixXf& a, const vqlib::MatrixXf& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

/// The checkpoint of one recipe layer, with its "vqlib" JSON parsed for editing.
struct Editable {
    vqlib::io::SafetensorsFile file;
    nlohmann::json doc;
    explicit Editable(const std::string& name) {
        file = vqlib::io::layer_checkpoint({{name, recipe_layers().at(name)}});
        doc = nlohmann::json::parse(file.metadata.at("vqlib"));
    }
    nlohmann::json& entry(const std::string& name) { return doc["layers"][name]; }
    vqlib::io::SafetensorsFile edited() const {
        vqlib::io::SafetensorsFile f = file;
        f.metadata["vqlib"] = doc.dump();
        return f;
    }
};

void require_refused(const vqlib::io::SafetensorsFile& file, const std::string& message) {
    try {
        (void)vqlib::io::layers_from_checkpoint(file);
        FAIL("accepted a damaged checkpoint; expected an io_error containing: " << message);
    } catch (const vqlib::io_error& e) {
        CHECK_THAT(e.what(), Contains(message));
    }
}

}  // namespace

TEST_CASE("a layer checkpoint reloads every layer format bit for bit", "[io][layer_checkpoint]") {
    vqlib::test::temp_dir dir("vqlib_layer_ckpt_");
    const auto path = dir / "model.vqlib.safetensors";
    vqlib::io::save_layer_checkpoint(path, recipe_layers(), {{"base_model", "test"}});
    REQUIRE(dir.entries() == std::vector<std::string>{"model.vqlib.safetensors"});

    const auto file = vqlib::io::read_safetensors(path);
    CHECK(file.metadata.at("base_model") == "test");
    const auto loaded = vqlib::io::layers_from_checkpoint(file);
    REQUIRE(loaded.size() == recipe_layers().size());
    for (const auto& [name, layer] : recipe_layers()) {
        INFO(name);
        const auto& back = loaded.at(name);
        REQUIRE(back.index() == layer.index());
        CHECK(same_bits(dequantized(back), dequantized(layer)));
        // The stored bits are counted the same way.
        const auto bits = [](const auto& l) { return l.bits().per_weight(); };
        CHECK(std::visit(bits, back) == std::visit(bits, layer));
    }
    // Fields the decode kernels read come back as they were.
    const auto& int3 = std::get<vqlib::ScalarLayer<vqlib::IntGrid>>(loaded.at("blocks.0.int3"));
    const auto& int3_in = std::get<vqlib::ScalarLayer<vqlib::IntGrid>>(recipe_layers().at("blocks.0.int3"));
    CHECK(int3.stores_g_idx);
    CHECK(int3.g_idx == int3_in.g_idx);
    CHECK(int3.codes == int3_in.codes);
    CHECK(int3.grid.bits() == 3);
    const auto& vptq = std::get<vqlib::VptqLayer>(loaded.at("blocks.0.vptq"));
    CHECK(vptq.perm == std::get<vqlib::VptqLayer>(recipe_layers().at("blocks.0.vptq")).perm);
    CHECK(vptq.layout.has_outliers());
    CHECK(vptq.layout.has_residual());
    const auto& svd = std::get<vqlib::VqLayer>(loaded.at("blocks.0.gptvq_svd"));
    CHECK(svd.codebook_rank() == 2);
    CHECK(svd.basis == std::get<vqlib::VqLayer>(recipe_layers().at("blocks.0.gptvq_svd")).basis);
    CHECK(std::get<vqlib::VqLayer>(loaded.at("blocks.0.gptvq_scaled")).scale_block == 64);
    const auto& pvq = std::get<vqlib::PvqLayer<unsigned __int128>>(loaded.at("blocks.0.pvq"));
    CHECK(pvq.indices == std::get<vqlib::PvqLayer<unsigned __int128>>(recipe_layers().at("blocks.0.pvq")).indices);
    CHECK(pvq.incoherence.has_value());

    // Serializing the reloaded layers gives the same file.
    CHECK(vqlib::io::layer_checkpoint(loaded, {{"base_model", "test"}}) == file);
}

TEST_CASE("a layer checkpoint refuses damaged entries by name", "[io][layer_checkpoint]") {
    SECTION("not a vqlib checkpoint, bad JSON, other format or version") {
        Editable e("blocks.0.int4");
        vqlib::io::SafetensorsFile f = e.file;
        f.metadata.erase("vqlib");
        require_refused(f, "metadata key 'vqlib' is missing");
        f.metadata["vqlib"] = "{nope";
        require_refused(f, "is not valid JSON");
        e.doc["version"] = 2;
        require_refused(e.edited(), "version 2: this build reads version 1");
        e.doc["version"] = 1;
        e.doc["format"] = "other";
        require_refused(e.edited(), "format \"other\"");
    }
    SECTION("fields: missing, mistyped, out of range, unknown kind") {
        Editable e("blocks.0.int4");
        e.entry("blocks.0.int4").erase("bits");
        require_refused(e.edited(), "layer 'blocks.0.int4': field 'bits' is missing");
        e.entry("blocks.0.int4")["bits"] = 4.5;
        require_refused(e.edited(), "field 'bits' = 4.5: expected an integer");
        e.entry("blocks.0.int4")["bits"] = 17;
        require_refused(e.edited(), "field 'bits' = 17: expected an integer in [1, 16]");
        e.entry("blocks.0.int4")["bits"] = 4;
        e.entry("blocks.0.int4")["kind"] = "lattice";
        require_refused(e.edited(), "field 'kind' = \"lattice\": expected one of int, minifloat");
        e.entry("blocks.0.int4")["kind"] = "int";
        e.entry("blocks.0.int4")["groups"] = 3;
        require_refused(e.edited(), "field 'groups' = 3: expected 2");
    }
    SECTION("SVD-factored GPTVQ codebooks: the basis and its fields") {
        Editable e("blocks.0.gptvq_svd");
        auto f = e.file;
        f.tensors.erase("blocks.0.gptvq_svd.basis");
        require_refused(f, "tensor 'blocks.0.gptvq_svd.basis' is missing");
        e.entry("blocks.0.gptvq_svd")["codebook_rank"] = 5;
        require_refused(e.edited(), "field 'codebook_rank' = 5: expected an integer in [1, 4]");
        e.entry("blocks.0.gptvq_svd")["codebook_rank"] = 1;
        require_refused(e.edited(), "tensor 'blocks.0.gptvq_svd.basis'");
    }
    SECTION("tensors: missing, wrong dtype or shape, values out of range") {
        Editable e("blocks.0.int3");
        auto f = e.file;
        f.tensors.erase("blocks.0.int3.scales");
        require_refused(f, "tensor 'blocks.0.int3.scales' is missing");
        f = e.file;
        f.tensors["blocks.0.int3.codes"].dtype = vqlib::io::Dtype::I8;
        require_refused(f, "tensor 'blocks.0.int3.codes' has dtype I8: expected U8");
        f = e.file;
        f.tensors["blocks.0.int3.codes"].data[5] = 8;  // 3-bit codes
        require_refused(f, "tensor 'blocks.0.int3.codes' element 5 = 8: expected a value below 8");
        f = e.file;
        f.tensors["blocks.0.int3.g_idx"].data[0] = 99;
        require_refused(f, "tensor 'blocks.0.int3.g_idx' element 0 = 99");
        f = e.file;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(f.tensors["blocks.0.int3.zeros"].data.data() + 4, &nan, 4);
        require_refused(f, "tensor 'blocks.0.int3.zeros' element 1 = nan: expected a finite value");
        f = e.file;  // finite parts whose products overflow (found by the fuzz target)
        auto& scales = f.tensors["blocks.0.int3.scales"].data;
        const float huge = std::numeric_limits<float>::max();
        for (std::size_t k = 0; k + 4 <= scales.size(); k += 4) std::memcpy(scales.data() + k, &huge, 4);
        require_refused(f, "layer 'blocks.0.int3': dequantizes to non-finite weights");
    }
    SECTION("vector layers: indices, permutations, layouts") {
        Editable v("blocks.0.gptvq");
        auto f = v.file;
        auto& idx = f.tensors["blocks.0.gptvq.indices"].data;
        idx[0] = 16;  // k = 16
        idx[1] = 0;
        require_refused(f, "index 16 at (0, 0): expected a value below k = 16");
        v.entry("blocks.0.gptvq")["dim"] = 3;
        require_refused(v.edited(), "expected dim | columns_per_group | cols");

        Editable p("blocks.0.vptq");
        f = p.file;
        auto& perm = f.tensors["blocks.0.vptq.perm"].data;
        std::memcpy(perm.data(), perm.data() + 8, 8);  // a repeated column
        require_refused(f, "tensor 'blocks.0.vptq.perm' element 1");
        p.entry("blocks.0.vptq")["group_size"] = 7;
        require_refused(p.edited(), "layer 'blocks.0.vptq': invalid layout");

        Editable q("blocks.0.pvq");
        f = q.file;
        auto& words = f.tensors["blocks.0.pvq.indices"].data;
        std::fill(words.begin() + 8, words.begin() + 16, std::uint8_t{0xff});  // high word
        require_refused(f, "indices element 0 is not below the number of PVQ codewords V(32, 50)");
        q.entry("blocks.0.pvq")["pulses"] = 100000;
        require_refused(q.edited(), "field 'pulses' = 100000");
    }
}

TEST_CASE("a failed layer checkpoint save writes nothing", "[io][layer_checkpoint]") {
    vqlib::test::temp_dir dir("vqlib_layer_ckpt_");
    const auto path = dir / "x.safetensors";
    REQUIRE_THROWS_AS(vqlib::io::save_layer_checkpoint(path, recipe_layers(), {{"vqlib", "mine"}}),
                      vqlib::invalid_argument);
    vqlib::VptqLayer broken = std::get<vqlib::VptqLayer>(recipe_layers().at("blocks.0.vptq"));
    broken.indices.pop_back();
    REQUIRE_THROWS_AS(vqlib::io::save_layer_checkpoint(path, {{"a", broken}}), vqlib::shape_error);
    CHECK(dir.entries().empty());
}
