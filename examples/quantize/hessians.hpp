#pragma once
// Where vqlib-quantize finds each linear's Hessian, in a directory of files:
//   <prefix>.safetensors / <prefix>.npy, or the same with the tensor's full name
//     (<prefix>.weight.safetensors), where <prefix> is the weight's name without ".weight";
//   a safetensors file whose metadata "input_of" lists the weights it serves, comma-separated
//     (what docs/hessians.py writes: one file for q/k/v, one for gate/up);
//   a sibling's file under the sharing groups: linears of one group (by the last part of the name,
//     under the same parent) read the same input, so one Hessian serves them all. The default
//     groups are Llama's: q_proj,k_proj,v_proj and gate_proj,up_proj.
// A safetensors Hessian holds one 2-D tensor (any name), or several of which one is named "H" or
// "hessian"; float32 or float64, as .npy files may be. Loading checks the shape against the weight,
// finiteness and symmetry, naming the file.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/io/npy.hpp>
#include <vqlib/io/safetensors.hpp>

#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace vqlib::quantize {

class HessianStore {
public:
    using Groups = std::vector<std::vector<std::string>>;
    static Groups default_groups() { return {{"q_proj", "k_proj", "v_proj"}, {"gate_proj", "up_proj"}}; }

    HessianStore() = default;
    /// Indexes `dir` (headers only). Throws io_error for a directory that cannot be read, or a
    /// safetensors file whose header is invalid or whose input_of names a weight another file
    /// also claims.
    HessianStore(std::filesystem::path dir, Groups groups) : dir_(std::move(dir)), groups_(std::move(groups)) {
        namespace fs = std::filesystem;
        std::error_code ec;
        VQLIB_CHECK(fs::is_directory(dir_, ec), io_error, "Hessian directory '", dir_.string(),
                    "': not a directory");
        for (const auto& entry : fs::directory_iterator(dir_, ec)) {
            if (!entry.is_regular_file()) continue;
            const std::string file = entry.path().filename().string();
            if (file.ends_with(".npy")) files_.insert(file);
            if (!file.ends_with(".safetensors")) continue;
            files_.insert(file);
            const io::SafetensorsHeader header = io::read_safetensors_header(entry.path());
            const auto it = header.metadata.find("input_of");
            if (it == header.metadata.end()) continue;
            std::stringstream list(it->second);
            for (std::string weight; std::getline(list, weight, ',');) {
                if (weight.empty()) continue;
                const auto [pos, inserted] = claimed_.emplace(weight, file);
                VQLIB_CHECK(inserted || pos->second == file, io_error, "Hessian directory '", dir_.string(),
                            "': files '", pos->second, "' and '", file, "' both claim weight '", weight,
                            "' in their metadata input_of");
            }
        }
        VQLIB_CHECK(!ec, io_error, "Hessian directory '", dir_.string(), "': cannot list it: ", ec.message());
    }

    const std::filesystem::path& directory() const { return dir_; }

    /// The file holding the Hessian of weight `name`, or nullopt.
    std::optional<std::filesystem::path> find(const std::string& name) const {
        if (auto own = own_file(name)) return own;
        // A sibling of the same sharing group.
        const std::string prefix = strip_weight(name);
        const auto dot = prefix.rfind('.');
        const std::string parent = dot == std::string::npos ? "" : prefix.substr(0, dot + 1);
        const std::string leaf = dot == std::string::npos ? prefix : prefix.substr(dot + 1);
        const std::string suffix = name.substr(prefix.size());
        for (const auto& group : groups_) {
            if (std::find(group.begin(), group.end(), leaf) == group.end()) continue;
            for (const auto& sibling : group)
                if (sibling != leaf)
                    if (auto file = own_file(parent + sibling + suffix)) return file;
        }
        return std::nullopt;
    }

    /// Loads the Hessian in `file` for a weight with `cols` columns. Throws io_error naming the
    /// file for a wrong shape or dtype, non-finite or asymmetric values.
    static MatrixXd load(const std::filesystem::path& file, Index cols, const std::string& weight) {
        MatrixXd H;
        const std::string where = ::vqlib::detail::concat("Hessian '", file.string(), "' (for weight '", weight, "')");
        if (file.extension() == ".npy") {
            H = vqlib::load_npy_matrix_d(file);
        } else {
            // One pass: the header picks the tensor, which is then read from the same open file.
            std::string chosen;
            const io::SafetensorsFile st = io::read_safetensors_chosen(file, [&](const io::SafetensorsHeader& header) {
                if (header.tensors.size() == 1) chosen = header.tensors.begin()->first;
                else if (header.tensors.count("H")) chosen = "H";
                else if (header.tensors.count("hessian")) chosen = "hessian";
                VQLIB_CHECK(!chosen.empty(), io_error, where, ": holds ", header.tensors.size(),
                            " tensors and none named 'H' or 'hessian'");
                const io::TensorInfo& info = header.tensors.at(chosen);
                VQLIB_CHECK(info.dtype == io::Dtype::F32 || info.dtype == io::Dtype::F64, io_error, where,
                            ": tensor '", chosen, "' has dtype ", io::dtype_name(info.dtype), ": expected F32 or F64");
                VQLIB_CHECK(info.shape.size() == 2, io_error, where, ": tensor '", chosen, "' has shape ",
                            io::detail::shape_string(info.shape), ": expected a square matrix");
                return std::vector<std::string>{chosen};
            });
            const io::Tensor& t = st.tensors.at(chosen);
            const Index r = static_cast<Index>(t.shape[0]), c = static_cast<Index>(t.shape[1]);
            H.resize(r, c);
            if (t.dtype == io::Dtype::F64) {
                const auto v = t.bits_as<double>();
                for (Index i = 0; i < r; ++i)
                    for (Index j = 0; j < c; ++j) H(i, j) = v[static_cast<std::size_t>(i * c + j)];
            } else {
                const auto v = t.bits_as<float>();
                for (Index i = 0; i < r; ++i)
                    for (Index j = 0; j < c; ++j) H(i, j) = v[static_cast<std::size_t>(i * c + j)];
            }
        }
        VQLIB_CHECK(H.rows() == cols && H.cols() == cols, io_error, where, ": it is ", H.rows(), "x", H.cols(),
                    ": expected ", cols, "x", cols, " (the weight's columns)");
        VQLIB_CHECK(H.allFinite(), io_error, where, ": holds non-finite values");
        const double scale = H.cwiseAbs().maxCoeff();
        const double asym = (H - H.transpose()).cwiseAbs().maxCoeff();
        VQLIB_CHECK(asym <= 1e-5 * scale, io_error, where, ": is not symmetric (max |H - H^T| = ", asym,
                    ", max |H| = ", scale, ")");
        return H;
    }

private:
    static std::string strip_weight(const std::string& name) {
        return name.ends_with(".weight") ? name.substr(0, name.size() - 7) : name;
    }

    std::optional<std::filesystem::path> own_file(const std::string& name) const {
        const std::string prefix = strip_weight(name);
        for (const std::string& stem : {prefix, name})
            for (const char* ext : {".safetensors", ".npy"})
                if (files_.count(stem + ext)) return dir_ / (stem + ext);
        if (const auto it = claimed_.find(name); it != claimed_.end()) return dir_ / it->second;
        return std::nullopt;
    }

    std::filesystem::path dir_;
    Groups groups_;
    std::set<std::string> files_;
    std::map<std::string, std::string> claimed_;
};

}  // namespace vqlib::quantize
