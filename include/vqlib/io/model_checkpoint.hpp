#pragma once
// A model checkpoint as Hugging Face writes it: one safetensors file, or shards listed by a
// `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {"<tensor>": "<shard file>"}}).
// Only the headers are read up front; tensors are read one at a time, on demand, so a model larger
// than memory can be walked tensor by tensor.
//
//   auto model = vqlib::io::ModelCheckpoint::open("llama-2-7b");   // a directory, an index or a file
//   for (const auto& name : model.names())
//       if (model.info(name).shape.size() == 2) { MatrixXf W = model.read_matrix(name); ... }
//
// Opening checks the whole checkpoint before anything is read: the index's JSON (an object whose
// weight_map maps names to plain file names in the index's directory, no paths), every shard's
// header, that each tensor of the weight map lies in the shard it names, that no shard holds a
// tensor the index does not list or lists elsewhere, and that no tensor appears twice. Every
// failure is an io_error naming the file and the tensor.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vqlib::io {

/// The parsed `model.safetensors.index.json`: tensor name -> shard file name, and the metadata.
struct CheckpointIndex {
    std::map<std::string, std::string> weight_map;
    nlohmann::json metadata = nlohmann::json::object();
};

/// Parses and validates an index's text (`where` names it in errors). A shard file name must be a
/// plain, non-empty file name (no directory part, not "." or "..") ending in ".safetensors".
/// Throws io_error.
inline CheckpointIndex parse_checkpoint_index(std::string_view text, std::string_view where) {
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw io_error(::vqlib::detail::concat(where, ": not valid JSON: ", e.what()));
    }
    VQLIB_CHECK(doc.is_object(), io_error, where, ": the index is ", detail::json_kind(doc),
                ": expected a JSON object with a 'weight_map'");
    CheckpointIndex index;
    if (const auto it = doc.find("metadata"); it != doc.end()) {
        VQLIB_CHECK(it->is_object() || it->is_null(), io_error, where, ": field 'metadata' is ",
                    detail::json_kind(*it), ": expected a JSON object");
        if (it->is_object()) index.metadata = *it;
    }
    const auto map = doc.find("weight_map");
    VQLIB_CHECK(map != doc.end(), io_error, where, ": field 'weight_map' is missing");
    VQLIB_CHECK(map->is_object(), io_error, where, ": field 'weight_map' is ",
                detail::json_kind(*map), ": expected a JSON object");
    for (const auto& [name, file] : map->items()) {
        VQLIB_CHECK(!name.empty(), io_error, where, ": weight_map has an empty tensor name");
        VQLIB_CHECK(file.is_string(), io_error, where, ": weight_map entry '", name, "' is ",
                    detail::json_kind(file), ": expected a file name");
        const std::string f = file.get<std::string>();
        const bool plain = !f.empty() && f != "." && f != ".." &&
                           f.find('/') == std::string::npos && f.find('\\') == std::string::npos &&
                           f.find('\0') == std::string::npos;
        VQLIB_CHECK(plain, io_error, where, ": weight_map entry '", name, "' names file \"",
                    detail::escaped(f), "\": expected a plain file name in the index's directory");
        VQLIB_CHECK(f.size() > 12 && f.ends_with(".safetensors"), io_error, where,
                    ": weight_map entry '", name, "' names file \"", detail::escaped(f),
                    "\": expected a .safetensors file");
        index.weight_map.emplace(name, f);
    }
    VQLIB_CHECK(!index.weight_map.empty(), io_error, where, ": weight_map is empty");
    return index;
}

/// A checkpoint's tensors by name, each in its shard.
class ModelCheckpoint {
public:
    struct Location {
        std::filesystem::path file;
        TensorInfo info;
    };

    /// Opens `path`: a .safetensors file, a `*.index.json`, or a directory holding
    /// `model.safetensors.index.json` or `model.safetensors`. Throws io_error.
    static ModelCheckpoint open(const std::filesystem::path& path) {
        namespace fs = std::filesystem;
        std::error_code ec;
        VQLIB_CHECK(fs::exists(path, ec), io_error, "checkpoint '", path.string(), "': no such file or directory");
        if (fs::is_directory(path, ec)) {
            if (fs::exists(path / "model.safetensors.index.json", ec))
                return open_index(path / "model.safetensors.index.json");
            if (fs::exists(path / "model.safetensors", ec)) return open_file(path / "model.safetensors");
            throw io_error(::vqlib::detail::concat(
                "checkpoint directory '", path.string(),
                "': holds neither model.safetensors.index.json nor model.safetensors"));
        }
        if (path.string().ends_with(".json")) return open_index(path);
        return open_file(path);
    }

    /// A single safetensors file.
    static ModelCheckpoint open_file(const std::filesystem::path& file) {
        ModelCheckpoint c;
        c.directory_ = file.parent_path();
        const SafetensorsHeader header = read_safetensors_header(file);
        c.shard_metadata_.emplace(file.filename().string(), header.metadata);
        for (const auto& [name, info] : header.tensors) c.tensors_.emplace(name, Location{file, info});
        c.shards_.push_back(file.filename().string());
        return c;
    }

    /// Shards listed by an index file.
    static ModelCheckpoint open_index(const std::filesystem::path& index_file) {
        const std::string where = ::vqlib::detail::concat("checkpoint index '", index_file.string(), "'");
        std::ifstream in(index_file, std::ios::binary);
        VQLIB_CHECK(in.good(), io_error, where, ": cannot open the file for reading");
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        VQLIB_CHECK(!in.bad(), io_error, where, ": reading failed");
        ModelCheckpoint c;
        c.index_ = parse_checkpoint_index(text, where);
        c.directory_ = index_file.parent_path();
        std::map<std::string, std::vector<std::string>> by_shard;
        for (const auto& [name, file] : c.index_->weight_map) by_shard[file].push_back(name);
        for (const auto& [file, names] : by_shard) {
            std::error_code ec;
            VQLIB_CHECK(std::filesystem::is_regular_file(c.directory_ / file, ec), io_error, where, ": shard '",
                        file, "' (holding tensor '", names.front(), "') does not exist");
        }
        for (const auto& [file, names] : by_shard) {
            const std::filesystem::path shard = c.directory_ / file;
            std::error_code ec;
            VQLIB_CHECK(std::filesystem::is_regular_file(shard, ec), io_error, where, ": shard '",
                        file, "' (holding tensor '", names.front(), "') does not exist");
            const SafetensorsHeader header = read_safetensors_header(shard);
            for (const auto& name : names) {
                const auto it = header.tensors.find(name);
                VQLIB_CHECK(it != header.tensors.end(), io_error, where, ": tensor '", name,
                            "' is mapped to shard '", file, "' but that file does not hold it");
                c.tensors_.emplace(name, Location{shard, it->second});
            }
            for (const auto& [name, info] : header.tensors) {
                const auto it = c.index_->weight_map.find(name);
                VQLIB_CHECK(it != c.index_->weight_map.end(), io_error, where, ": shard '", file,
                            "' holds tensor '", name, "', which the index does not list");
                VQLIB_CHECK(it->second == file, io_error, where, ": shard '", file, "' holds tensor '",
                            name, "', which the index maps to shard '", it->second, "'");
            }
            c.shard_metadata_.emplace(file, header.metadata);
            c.shards_.push_back(file);
        }
        return c;
    }

    /// Every tensor name, sorted.
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        out.reserve(tensors_.size());
        for (const auto& [name, loc] : tensors_) out.push_back(name);
        return out;
    }
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    std::size_t size() const { return tensors_.size(); }

    /// Where tensor `name` lies. Throws io_error if there is no such tensor.
    const Location& location(const std::string& name) const {
        const auto it = tensors_.find(name);
        VQLIB_CHECK(it != tensors_.end(), io_error, "checkpoint '", directory_.string(),
                    "': no tensor '", name, "'");
        return it->second;
    }
    const TensorInfo& info(const std::string& name) const { return location(name).info; }

    /// Reads tensor `name` as stored. The shard's header is read again and must still describe
    /// the tensor as it did when the checkpoint was opened (io_error otherwise).
    Tensor read(const std::string& name) const {
        const Location& loc = location(name);
        detail::st_file_reader reader(loc.file);
        const auto it = reader.header().tensors.find(name);
        VQLIB_CHECK(it != reader.header().tensors.end() && it->second == loc.info, io_error,
                    "checkpoint shard '", loc.file.string(), "': tensor '", name,
                    "' changed since the checkpoint was opened");
        return reader.read(name, loc.info);
    }

    /// Reads a 2-D F32, F16 or BF16 tensor as a float matrix (exact widening), checking that
    /// every value is finite. Throws io_error naming the tensor otherwise.
    MatrixXf read_matrix(const std::string& name) const {
        const Location& loc = check_weight(name);  // before reading: a 3-D or int tensor is refused unread
        return widen(loc, name, read(name));
    }

    /// The conversion read_matrix applies, for a tensor already read with read(name) (a caller
    /// that also needs the raw bytes reads the file once): checks that `tensor` has the shape and
    /// dtype the checkpoint lists for `name` (2-D, F32/F16/BF16) and finite values.
    MatrixXf to_matrix(const std::string& name, const Tensor& tensor) const {
        const Location& loc = check_weight(name);
        const TensorInfo& info = loc.info;
        VQLIB_CHECK(tensor.dtype == info.dtype && tensor.shape == info.shape, io_error,
                    "tensor given for '", name, "' has dtype ", dtype_name(tensor.dtype), " and shape ",
                    detail::shape_string(tensor.shape), ": expected ", dtype_name(info.dtype), " ",
                    detail::shape_string(info.shape), " as checkpoint shard '", loc.file.string(),
                    "' lists it");
        return widen(loc, name, tensor);
    }

    /// The location of `name` once checked to be a weight read_matrix converts (2-D, F32/F16/BF16).
    const Location& check_weight(const std::string& name) const {
        const Location& loc = location(name);
        const TensorInfo& info = loc.info;
        VQLIB_CHECK(info.shape.size() == 2, io_error, "checkpoint shard '", loc.file.string(),
                    "': tensor '", name, "' has shape ", detail::shape_string(info.shape),
                    ": expected a 2-D weight");
        VQLIB_CHECK(info.dtype == Dtype::F32 || info.dtype == Dtype::F16 || info.dtype == Dtype::BF16,
                    io_error, "checkpoint shard '", loc.file.string(), "': tensor '", name, "' has dtype ",
                    dtype_name(info.dtype), ": expected F32, F16 or BF16");
        return loc;
    }

    /// The directory the checkpoint's files lie in.
    const std::filesystem::path& directory() const { return directory_; }
    /// The shard file names (one for a single file), sorted.
    const std::vector<std::string>& shards() const { return shards_; }
    /// Each shard's __metadata__.
    const std::map<std::string, Metadata>& shard_metadata() const { return shard_metadata_; }
    /// The index, when the checkpoint is sharded.
    const std::optional<CheckpointIndex>& index() const { return index_; }

private:
    /// A checked weight's tensor (the checkpoint's own dtype and shape) as a float matrix, refusing
    /// non-finite values.
    static MatrixXf widen(const Location& loc, const std::string& name, const Tensor& tensor) {
        const TensorInfo& info = loc.info;
        const std::vector<float> values = tensor.to_floats();
        const Index rows = static_cast<Index>(info.shape[0]), cols = static_cast<Index>(info.shape[1]);
        MatrixXf W = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            values.data(), rows, cols);
        VQLIB_CHECK(W.allFinite(), io_error, "checkpoint shard '", loc.file.string(), "': tensor '", name,
                    "' holds non-finite values");
        return W;
    }

    std::filesystem::path directory_;
    std::map<std::string, Location> tensors_;
    std::vector<std::string> shards_;
    std::map<std::string, Metadata> shard_metadata_;
    std::optional<CheckpointIndex> index_;
};

}  // namespace vqlib::io
