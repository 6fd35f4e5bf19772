#include <vqlib/io/model_checkpoint.hpp>
#include <vqlib/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"

#include <filesystem>
#include <string>

using namespace vqlib;
namespace fs = std::filesystem;

namespace {

io::TensorMap checkpoint_tensors() {
    MatrixXf a(3, 4), b(2, 2);
    for (Index k = 0; k < a.size(); ++k) a.data()[k] = 0.25f * static_cast<float>(k) - 1.0f;
    b << 1.5f, -2.0f, 0.125f, 3.0f;
    io::TensorMap t;
    t.emplace("layer.weight", io::Tensor::from_matrix(a, io::Dtype::BF16));
    t.emplace("layer.bias", io::Tensor::from_vector(VectorXf::Ones(3), io::Dtype::F32));
    t.emplace("head.weight", io::Tensor::from_matrix(b, io::Dtype::F16));
    return t;
}

void write_index(const fs::path& path, const std::string& map) {
    vqlib::test::write_bytes(path, "{\"metadata\": {}, \"weight_map\": {" + map + "}}");
}

}  // namespace

TEST_CASE("write_safetensors_streamed writes the bytes write_safetensors writes", "[io][model_checkpoint]") {
    vqlib::test::temp_dir dir("model_checkpoint");
    const io::TensorMap tensors = checkpoint_tensors();
    io::write_safetensors(dir.path() / "whole.safetensors", tensors, {{"k", "v"}});
    std::vector<io::TensorSource> sources;
    for (auto it = tensors.rbegin(); it != tensors.rend(); ++it)  // any order
        sources.push_back({it->first, it->second.dtype, it->second.shape, [t = it->second] { return t; }});
    io::write_safetensors_streamed(dir.path() / "streamed.safetensors", sources, {{"k", "v"}});
    CHECK(vqlib::test::read_bytes(dir.path() / "streamed.safetensors") ==
          vqlib::test::read_bytes(dir.path() / "whole.safetensors"));

    // A source that gives another shape than it declared: refused, nothing left behind.
    sources[0].shape = {7};
    CHECK_THROWS_WITH(io::write_safetensors_streamed(dir.path() / "bad.safetensors", sources),
                      Catch::Contains("was declared") && Catch::Contains(sources[0].name));
    CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);
    sources[0] = sources[1];
    CHECK_THROWS_WITH(io::write_safetensors_streamed(dir.path() / "dup.safetensors", sources),
                      Catch::Contains("listed twice"));
}

TEST_CASE("ModelCheckpoint opens single files and shards, reads tensors on demand", "[io][model_checkpoint]") {
    vqlib::test::temp_dir dir("model_checkpoint");
    io::TensorMap all = checkpoint_tensors();
    io::TensorMap first, second;
    first.emplace("layer.weight", all.at("layer.weight"));
    first.emplace("layer.bias", all.at("layer.bias"));
    second.emplace("head.weight", all.at("head.weight"));
    io::write_safetensors(dir.path() / "a.safetensors", first);
    io::write_safetensors(dir.path() / "b.safetensors", second);
    write_index(dir.path() / "model.safetensors.index.json",
                R"("layer.weight": "a.safetensors", "layer.bias": "a.safetensors", "head.weight": "b.safetensors")");
    const auto model = io::ModelCheckpoint::open(dir.path());
    CHECK(model.names() == std::vector<std::string>{"head.weight", "layer.bias", "layer.weight"});
    CHECK(model.shards() == std::vector<std::string>{"a.safetensors", "b.safetensors"});
    CHECK(model.read("layer.bias") == all.at("layer.bias"));
    const MatrixXf W = model.read_matrix("layer.weight");
    const auto values = all.at("layer.weight").to_floats();
    CHECK(W == Eigen::Map<const RowMajorMatrixXf>(values.data(), 3, 4));
    CHECK_THROWS_WITH(model.read_matrix("layer.bias"), Catch::Contains("layer.bias") && Catch::Contains("2-D"));
    // to_matrix converts bytes already read, and refuses a tensor that is not the one listed.
    CHECK(model.to_matrix("layer.weight", model.read("layer.weight")) == W);
    CHECK_THROWS_WITH(model.to_matrix("layer.weight", model.read("head.weight")),
                      Catch::Contains("layer.weight") && Catch::Contains("a.safetensors"));
    CHECK_THROWS_WITH(model.read("nope"), Catch::Contains("no tensor 'nope'"));

    io::write_safetensors(dir.path() / "single.safetensors", all);
    CHECK(io::ModelCheckpoint::open(dir.path() / "single.safetensors").size() == 3);
}

TEST_CASE("ModelCheckpoint refuses inconsistent indexes, naming file and tensor", "[io][model_checkpoint]") {
    vqlib::test::temp_dir dir("model_checkpoint");
    io::TensorMap all = checkpoint_tensors();
    io::write_safetensors(dir.path() / "a.safetensors", all);
    const fs::path index = dir.path() / "i.index.json";
    const auto refused = [&](const std::string& map) {
        write_index(index, map);
        try {
            io::ModelCheckpoint::open(index);
        } catch (const io_error& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    const std::string full = R"("layer.weight": "a.safetensors", "layer.bias": "a.safetensors", "head.weight": "a.safetensors")";
    CHECK(io::ModelCheckpoint::open((write_index(index, full), index)).size() == 3);
    CHECK_THAT(refused(R"("layer.weight": "../a.safetensors")"), Catch::Contains("plain file name"));
    CHECK_THAT(refused(R"("layer.weight": "a.bin")"), Catch::Contains(".safetensors file"));
    CHECK_THAT(refused(R"("layer.weight": "missing.safetensors")"),
               Catch::Contains("missing.safetensors") && Catch::Contains("does not exist"));
    CHECK_THAT(refused(R"("layer.weight": "a.safetensors", "head.weight": "a.safetensors")"),
               Catch::Contains("layer.bias") && Catch::Contains("does not list"));
    CHECK_THAT(refused(full + R"(, "extra": "a.safetensors")"),
               Catch::Contains("'extra'") && Catch::Contains("does not hold it"));
    CHECK_THAT(refused(R"("layer.weight": 3)"), Catch::Contains("layer.weight") && Catch::Contains("file name"));
    vqlib::test::write_bytes(index, "[1, 2]");
    CHECK_THROWS_WITH(io::ModelCheckpoint::open(index), Catch::Contains("expected a JSON object"));
}
