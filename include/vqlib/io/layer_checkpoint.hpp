#pragma once
// vqlib's own checkpoint of quantized layers: one safetensors file holding any mix of the layer
// formats (formats/), each under its name, reloaded bit for bit.
//
//   io::save_layer_checkpoint("model.vqlib.safetensors", {{"blocks.0.q", result.layer}, ...});
//   auto layers = io::load_layer_checkpoint("model.vqlib.safetensors");   // name -> QuantizedLayer
//
// Layout. The metadata key "vqlib" holds a JSON object
//   {"format": "vqlib-layers", "version": 1, "layers": {"<name>": {"kind": ..., ...}, ...}}
// and the tensors of layer <name> are "<name>.<tensor>", C order:
//   kind "int" / "minifloat" (ScalarLayer<IntGrid> / <MinifloatGrid>): codes U8 (code bits <= 8)
//     or U16 [rows, cols], scales F32 and zeros F32 [groups, rows], g_idx I32 [cols]; fields
//     rows, cols, group_size, stores_g_idx, scale_storage and the grid (bits, symmetric; or
//     exponent_bits, mantissa_bits, bias, specials)
//   kind "vq" (VqLayer): codebooks F32 [codebook_count * k, dim], indices U16 [rows, cols / dim],
//     scales F32 [rows, cols / scale_block] when scale_block > 0; the layout and bit widths
//     (SVD-factored codebooks: basis F32 [codebook_rank, k * dim], fields codebook_rank, basis_bits)
//   kind "vptq" (VptqLayer): centroids F32 [group_num * k, v], indices U32, and res_centroids,
//     res_indices, outlier_centroids, outlier_indices, perm I64, weight_scale, weight_bias F32
//     where the layout has them; the layout fields
//   kind "pvq" (PvqLayer<unsigned __int128>): indices U64 [groups, 2] (low, high word),
//     gain_codes U16, gain_levels F32, row_norms F32, perm I64 when permuted; dim, pulses, the
//     gain codebook's bits, norm storage, packing and the incoherence options (or null)
// Every value is stored at full precision, so a reloaded layer dequantizes to exactly the Q its
// recipe returned. Files are written atomically (a temporary renamed over the target).
//
// Reading validates everything before a layer is returned: the JSON's fields and types, every
// tensor's dtype and shape against them, codes and indices in range, finite values, permutations
// that are permutations, and finite dequantized weights. Any failure is an io_error naming the layer, the field or tensor, the
// value and what was expected; nothing is returned half read.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/minifloat_grid.hpp>
#include <vqlib/formats/pvq_layer.hpp>
#include <vqlib/formats/scalar_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/lattice/counting.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

namespace vqlib::io {

/// Any layer format a vqlib checkpoint holds.
using QuantizedLayer = std::variant<VqLayer, VptqLayer, PvqLayer<unsigned __int128>,
                                    ScalarLayer<IntGrid>, ScalarLayer<MinifloatGrid>>;

/// The metadata key holding the layers' JSON description.
inline constexpr const char* layer_checkpoint_key = "vqlib";
inline constexpr int layer_checkpoint_version = 1;

namespace detail {

using json = nlohmann::json;

inline const char* storage_name(ScaleStorage s) { return s == ScaleStorage::fp16 ? "fp16" : "fp32"; }

inline const char* specials_name(MinifloatSpecials s) {
    switch (s) {
    case MinifloatSpecials::ieee: return "ieee";
    case MinifloatSpecials::finite_with_nan: return "finite_with_nan";
    case MinifloatSpecials::finite: return "finite";
    }
    return "?";
}

/// Where a message points: "vqlib checkpoint: layer 'name'".
inline std::string layer_where(const std::string& name) {
    return ::vqlib::detail::concat("vqlib checkpoint: layer '", name, "'");
}

/// Typed access to the fields of one layer's JSON entry; failures are io_errors naming the field.
class EntryReader {
public:
    EntryReader(const json& entry, std::string where) : entry_(entry), where_(std::move(where)) {
        VQLIB_CHECK(entry.is_object(), io_error, where_, ": entry is ", json_kind(entry),
                    ": expected a JSON object");
    }

    bool has(const char* key) const { return entry_.find(key) != entry_.end(); }
    const json& at(const char* key) const {
        const auto it = entry_.find(key);
        VQLIB_CHECK(it != entry_.end(), io_error, where_, ": field '", key, "' is missing");
        return *it;
    }
    std::int64_t integer(const char* key, std::int64_t lo, std::int64_t hi) const {
        const json& v = at(key);
        VQLIB_CHECK(v.is_number_integer(), io_error, where_, ": field '", key, "' = ",
                    json_excerpt(v), ": expected an integer");
        const bool is_unsigned = v.is_number_unsigned();
        const auto u = is_unsigned ? v.get<std::uint64_t>() : 0;
        const auto s = is_unsigned ? 0 : v.get<std::int64_t>();
        VQLIB_CHECK(is_unsigned ? u <= static_cast<std::uint64_t>(hi) && (lo <= 0 || u >= static_cast<std::uint64_t>(lo))
                                : s >= lo && s <= hi,
                    io_error, where_, ": field '", key, "' = ", json_excerpt(v),
                    ": expected an integer in [", lo, ", ", hi, "]");
        return is_unsigned ? static_cast<std::int64_t>(u) : s;
    }
    std::uint64_t unsigned64(const char* key) const {
        const json& v = at(key);
        VQLIB_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0),
                    io_error, where_, ": field '", key, "' = ", json_excerpt(v),
                    ": expected an unsigned integer");
        return v.get<std::uint64_t>();
    }
    bool boolean(const char* key) const {
        const json& v = at(key);
        VQLIB_CHECK(v.is_boolean(), io_error, where_, ": field '", key, "' = ", json_excerpt(v),
                    ": expected true or false");
        return v.get<bool>();
    }
    std::string string(const char* key) const {
        const json& v = at(key);
        VQLIB_CHECK(v.is_string(), io_error, where_, ": field '", key, "' = ", json_excerpt(v),
                    ": expected a string");
        return v.get<std::string>();
    }
    template <class Enum, std::size_t N>
    Enum choice(const char* key, const std::pair<const char*, Enum> (&names)[N]) const {
        const std::string value = string(key);
        std::string known;
        for (const auto& [name, e] : names) {
            if (value == name) return e;
            known += (known.empty() ? "" : ", ") + std::string(name);
        }
        throw io_error(::vqlib::detail::concat(where_, ": field '", key, "' = \"", value,
                                               "\": expected one of ", known));
    }
    ScaleStorage storage(const char* key) const {
        static constexpr std::pair<const char*, ScaleStorage> names[] = {
            {"fp32", ScaleStorage::fp32}, {"fp16", ScaleStorage::fp16}};
        return choice(key, names);
    }
    const std::string& where() const { return where_; }

private:
    const json& entry_;
    std::string where_;
};

/// Reads the tensors of one layer, checking each one's dtype and shape.
class TensorReader {
public:
    TensorReader(const TensorMap& tensors, const std::string& name, std::string where)
        : tensors_(tensors), prefix_(name + "."), where_(std::move(where)) {}

    const Tensor& get(const std::string& tensor, Dtype dtype, const std::vector<std::int64_t>& shape) const {
        const auto it = tensors_.find(prefix_ + tensor);
        VQLIB_CHECK(it != tensors_.end(), io_error, where_, ": tensor '", prefix_ + tensor,
                    "' is missing");
        const Tensor& t = it->second;
        VQLIB_CHECK(t.dtype == dtype, io_error, where_, ": tensor '", prefix_ + tensor,
                    "' has dtype ", dtype_name(t.dtype), ": expected ", dtype_name(dtype));
        VQLIB_CHECK(t.shape == shape, io_error, where_, ": tensor '", prefix_ + tensor,
                    "' has shape ", shape_string(t.shape), ": expected ", shape_string(shape));
        return t;
    }
    bool has(const std::string& tensor) const { return tensors_.count(prefix_ + tensor) != 0; }

    /// The length of a 1-D tensor, in [1, max].
    std::int64_t length(const std::string& tensor, std::int64_t max) const {
        const auto it = tensors_.find(prefix_ + tensor);
        VQLIB_CHECK(it != tensors_.end(), io_error, where_, ": tensor '", prefix_ + tensor,
                    "' is missing");
        const auto& shape = it->second.shape;
        VQLIB_CHECK(shape.size() == 1 && shape[0] >= 1 && shape[0] <= max, io_error, where_,
                    ": tensor '", prefix_ + tensor, "' has shape ", shape_string(shape),
                    ": expected [n] with 1 <= n <= ", max);
        return shape[0];
    }

    /// F32 values, each finite.
    std::vector<float> floats(const std::string& tensor, const std::vector<std::int64_t>& shape) const {
        std::vector<float> v = get(tensor, Dtype::F32, shape).bits_as<float>();
        for (std::size_t i = 0; i < v.size(); ++i)
            VQLIB_CHECK(std::isfinite(v[i]), io_error, where_, ": tensor '", prefix_ + tensor,
                        "' element ", i, " = ", v[i], ": expected a finite value");
        return v;
    }
    /// A rows x cols F32 tensor as a column-major matrix.
    MatrixXf matrix(const std::string& tensor, Index rows, Index cols) const {
        const std::vector<float> v = floats(tensor, {rows, cols});
        MatrixXf m(rows, cols);
        if (m.size() != 0) m = Eigen::Map<const RowMajorMatrixXf>(v.data(), rows, cols);
        return m;
    }
    /// Unsigned integers of the element type T, each below `limit`.
    template <class T>
    std::vector<T> below(const std::string& tensor, Dtype dtype, const std::vector<std::int64_t>& shape,
                         std::uint64_t limit) const {
        std::vector<T> v = get(tensor, dtype, shape).template bits_as<T>();
        for (std::size_t i = 0; i < v.size(); ++i)
            VQLIB_CHECK(static_cast<std::uint64_t>(v[i]) < limit, io_error, where_, ": tensor '",
                        prefix_ + tensor, "' element ", i, " = ", static_cast<std::uint64_t>(v[i]),
                        ": expected a value below ", limit);
        return v;
    }
    /// A permutation of 0..n-1 stored as I64.
    Permutation permutation(const std::string& tensor, Index n) const {
        const std::vector<std::int64_t> v = get(tensor, Dtype::I64, {n}).bits_as<std::int64_t>();
        std::vector<bool> seen(static_cast<std::size_t>(n), false);
        Permutation p(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) {
            VQLIB_CHECK(v[i] >= 0 && v[i] < n && !seen[static_cast<std::size_t>(v[i])], io_error,
                        where_, ": tensor '", prefix_ + tensor, "' element ", i, " = ", v[i],
                        ": expected a permutation of 0..", n - 1);
            seen[static_cast<std::size_t>(v[i])] = true;
            p[i] = static_cast<Index>(v[i]);
        }
        return p;
    }

private:
    const TensorMap& tensors_;
    std::string prefix_;
    std::string where_;
};

/// Writes the tensors of one layer under "<name>.".
class TensorWriter {
public:
    TensorWriter(TensorMap& tensors, const std::string& name) : tensors_(tensors), prefix_(name + ".") {}

    void put(const std::string& tensor, Tensor t) {
        VQLIB_CHECK(!tensors_.count(prefix_ + tensor), invalid_argument, "save_layer_checkpoint: tensor '",
                    prefix_ + tensor, "' already exists (a layer name is a prefix of another's tensors)");
        tensors_.emplace(prefix_ + tensor, std::move(t));
    }
    void floats(const std::string& tensor, std::vector<std::int64_t> shape, const std::vector<float>& v) {
        put(tensor, Tensor::from_bits(Dtype::F32, std::move(shape), v));
    }
    void matrix(const std::string& tensor, const MatrixXf& m) {
        put(tensor, Tensor::from_matrix(m, Dtype::F32));
    }
    void permutation(const std::string& tensor, const Permutation& p) {
        std::vector<std::int64_t> v(p.begin(), p.end());
        put(tensor, Tensor::from_bits(Dtype::I64, {static_cast<std::int64_t>(p.size())}, v));
    }

private:
    TensorMap& tensors_;
    std::string prefix_;
};

/// Codes (rows x cols, column-major) in C order, at the narrowest width that holds `bits`.
inline Tensor code_tensor(const CodeMatrix& codes, int bits) {
    const Eigen::Matrix<std::uint16_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = codes;
    const std::vector<std::int64_t> shape{codes.rows(), codes.cols()};
    if (bits <= 8) {
        std::vector<std::uint8_t> v(rm.data(), rm.data() + rm.size());
        return Tensor::from_bits(Dtype::U8, shape, v);
    }
    std::vector<std::uint16_t> v(rm.data(), rm.data() + rm.size());
    return Tensor::from_bits(Dtype::U16, shape, v);
}

inline CodeMatrix read_codes(const TensorReader& in, const std::string& tensor, Index rows, Index cols,
                             int bits) {
    const std::uint64_t limit = std::uint64_t{1} << bits;
    // The tensor is checked against rows x cols before anything of that size is allocated.
    auto fill = [&](const auto& v) {
        CodeMatrix codes(rows, cols);
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c) codes(r, c) = v[static_cast<std::size_t>(r * cols + c)];
        return codes;
    };
    if (bits <= 8) return fill(in.below<std::uint8_t>(tensor, Dtype::U8, {rows, cols}, limit));
    return fill(in.below<std::uint16_t>(tensor, Dtype::U16, {rows, cols}, limit));
}

/// Rows and columns of any layer: the first checks of every kind.
inline std::pair<Index, Index> read_shape(const EntryReader& e) {
    constexpr std::int64_t max_side = std::int64_t{1} << 24;
    return {static_cast<Index>(e.integer("rows", 1, max_side)),
            static_cast<Index>(e.integer("cols", 1, max_side))};
}

// ---- scalar layers ------------------------------------------------------------------------------

inline json grid_entry(const IntGrid& g, ScaleStorage storage) {
    return {{"kind", "int"}, {"bits", g.bits()}, {"symmetric", g.symmetric()},
            {"scale_storage", storage_name(storage)}};
}
inline json grid_entry(const MinifloatGrid& g, ScaleStorage storage) {
    const MinifloatFormat& f = g.format();
    return {{"kind", "minifloat"},          {"exponent_bits", f.exponent_bits()},
            {"mantissa_bits", f.mantissa_bits()}, {"bias", f.bias()},
            {"specials", specials_name(f.specials())}, {"scale_storage", storage_name(storage)}};
}

template <ScalarGrid G>
json write_scalar(TensorWriter& out, const ScalarLayer<G>& layer) {
    const Index rows = layer.rows(), cols = layer.cols(), groups = layer.groups();
    VQLIB_CHECK(layer.params.size() == static_cast<std::size_t>(groups * rows) &&
                    layer.g_idx.size() == static_cast<std::size_t>(cols),
                shape_error, "save_layer_checkpoint: scalar layer ", rows, "x", cols, " has ",
                layer.params.size(), " parameters and ", layer.g_idx.size(), " group indices");
    // The grid does not say how its scales were rounded: fp16 when every scale is an fp16 value.
    ScaleStorage storage = ScaleStorage::fp16;
    std::vector<float> scales(layer.params.size()), zeros(layer.params.size());
    for (std::size_t k = 0; k < layer.params.size(); ++k) {
        scales[k] = layer.params[k].scale;
        zeros[k] = layer.params[k].zero;
        if (round_scale(scales[k], ScaleStorage::fp16) != scales[k]) storage = ScaleStorage::fp32;
    }
    json entry = grid_entry(layer.grid, storage);
    entry["rows"] = rows;
    entry["cols"] = cols;
    entry["group_size"] = layer.group_size;
    entry["groups"] = groups;
    entry["stores_g_idx"] = layer.stores_g_idx;
    out.put("codes", code_tensor(layer.codes, layer.grid.code_bits()));
    out.floats("scales", {groups, rows}, scales);
    out.floats("zeros", {groups, rows}, zeros);
    out.put("g_idx", Tensor::from_bits(Dtype::I32, {cols}, layer.g_idx));
    return entry;
}

template <ScalarGrid G>
ScalarLayer<G> read_scalar(G grid, const EntryReader& e, const TensorReader& in) {
    const auto [rows, cols] = read_shape(e);
    ScalarLayer<G> layer{std::move(grid), 0, {}, {}, {}, false};
    const int bits = layer.grid.code_bits();
    layer.group_size = static_cast<Index>(e.integer("group_size", 0, cols));
    const Index groups = static_cast<Index>(e.integer("groups", 1, cols));
    const Index expected_groups = layer.group_size > 0 ? cols / layer.group_size : 1;
    VQLIB_CHECK(groups == expected_groups, io_error, e.where(), ": field 'groups' = ", groups,
                ": expected ", expected_groups, " for cols = ", cols, " and group_size = ",
                layer.group_size);
    layer.stores_g_idx = e.boolean("stores_g_idx");
    layer.codes = read_codes(in, "codes", rows, cols, bits);
    const std::vector<float> scales = in.floats("scales", {groups, rows});
    const std::vector<float> zeros = in.floats("zeros", {groups, rows});
    const ScaleStorage storage = e.storage("scale_storage");
    layer.params.resize(scales.size());
    for (std::size_t k = 0; k < scales.size(); ++k) {
        VQLIB_CHECK(scales[k] > 0 && round_scale(scales[k], storage) == scales[k], io_error,
                    e.where(), ": scales element ", k, " = ", scales[k], ": expected a positive ",
                    storage_name(storage), " value");
        layer.params[k] = GridParams{scales[k], zeros[k]};
    }
    const auto g_idx = in.below<std::int32_t>("g_idx", Dtype::I32, {cols}, static_cast<std::uint64_t>(groups));
    for (std::size_t j = 0; j < g_idx.size(); ++j)
        VQLIB_CHECK(g_idx[j] >= 0, io_error, e.where(), ": g_idx element ", j, " = ", g_idx[j],
                    ": expected a group in [0, ", groups, ")");
    layer.g_idx = g_idx;
    // Every code that occurs must decode to a finite value (a minifloat's NaN/Inf codes do not).
    std::vector<bool> finite(static_cast<std::size_t>(1) << bits);
    for (std::uint32_t c = 0; c < finite.size(); ++c)
        finite[c] = std::isfinite(layer.grid.decode(c, GridParams{1.0f, 0.0f}));
    for (Index j = 0; j < cols; ++j)
        for (Index r = 0; r < rows; ++r)
            VQLIB_CHECK(finite[layer.codes(r, j)], io_error, e.where(), ": code ", layer.codes(r, j),
                        " at (", r, ", ", j, ") decodes to a non-finite value");
    return layer;
}

inline ScalarLayer<IntGrid> read_int(const EntryReader& e, const TensorReader& in) {
    const int bits = static_cast<int>(e.integer("bits", 1, 16));
    return read_scalar(IntGrid(bits, e.boolean("symmetric"), {}, e.storage("scale_storage")), e, in);
}

inline ScalarLayer<MinifloatGrid> read_minifloat(const EntryReader& e, const TensorReader& in) {
    static constexpr std::pair<const char*, MinifloatSpecials> names[] = {
        {"ieee", MinifloatSpecials::ieee},
        {"finite_with_nan", MinifloatSpecials::finite_with_nan},
        {"finite", MinifloatSpecials::finite}};
    const int exponent_bits = static_cast<int>(e.integer("exponent_bits", 1, 8));
    const int mantissa_bits = static_cast<int>(e.integer("mantissa_bits", 0, 15));
    const int bias = static_cast<int>(e.integer("bias", -1024, 1024));
    const MinifloatSpecials specials = e.choice("specials", names);
    std::optional<MinifloatFormat> format;
    try {
        format.emplace(exponent_bits, mantissa_bits, specials, bias);
    } catch (const ::vqlib::error& err) {
        throw io_error(::vqlib::detail::concat(e.where(), ": the minifloat format is invalid: ", err.what()));
    }
    return read_scalar(MinifloatGrid(*format, {}, e.storage("scale_storage")), e, in);
}

// ---- GPTVQ layers -------------------------------------------------------------------------------

inline json write_vq(TensorWriter& out, const VqLayer& layer) {
    const VqLayout& L = layer.layout;
    json entry = {{"kind", "vq"},
                  {"rows", L.rows},
                  {"cols", L.cols},
                  {"dim", L.dim},
                  {"k", L.k},
                  {"rows_per_codebook", L.rows_per_codebook},
                  {"columns_per_group", L.columns_per_group},
                  {"scale_block", layer.scale_block},
                  {"codebook_bits", layer.codebook_bits},
                  {"codebook_scale_bits", layer.codebook_scale_bits},
                  {"codebook_scale_count", layer.codebook_scale_count},
                  {"normalization_bits", layer.normalization_bits}};
    if (layer.codebook_rank() > 0) {
        entry["codebook_rank"] = layer.codebook_rank();
        entry["basis_bits"] = layer.basis_bits;
        out.matrix("basis", layer.basis);
    }
    out.matrix("codebooks", layer.codebooks);
    out.put("indices", code_tensor(layer.indices, 16));
    if (layer.scale_block > 0) out.matrix("scales", layer.scales);
    return entry;
}

inline VqLayer read_vq(const EntryReader& e, const TensorReader& in) {
    VqLayer layer;
    VqLayout& L = layer.layout;
    std::tie(L.rows, L.cols) = read_shape(e);
    L.dim = static_cast<Index>(e.integer("dim", 1, L.cols));
    L.k = static_cast<Index>(e.integer("k", 1, 65536));
    L.rows_per_codebook = static_cast<Index>(e.integer("rows_per_codebook", 1, L.rows));
    L.columns_per_group = static_cast<Index>(e.integer("columns_per_group", 1, L.cols));
    VQLIB_CHECK(L.cols % L.dim == 0 && L.columns_per_group % L.dim == 0 &&
                    L.cols % L.columns_per_group == 0 && L.rows % L.rows_per_codebook == 0,
                io_error, e.where(), ": layout ", L.rows, "x", L.cols, " with dim = ", L.dim,
                ", columns_per_group = ", L.columns_per_group, ", rows_per_codebook = ",
                L.rows_per_codebook, ": expected dim | columns_per_group | cols and "
                "rows_per_codebook | rows");
    VQLIB_CHECK(L.codebook_count() <= (Index{1} << 40) / L.k, io_error, e.where(), ": ",
                L.codebook_count(), " codebooks of k = ", L.k, " entries: too many to address");
    layer.scale_block = static_cast<Index>(e.integer("scale_block", 0, L.cols));
    VQLIB_CHECK(layer.scale_block == 0 || (L.cols % layer.scale_block == 0 && layer.scale_block % L.dim == 0),
                io_error, e.where(), ": field 'scale_block' = ", layer.scale_block,
                ": expected 0 or a multiple of dim = ", L.dim, " dividing cols = ", L.cols);
    layer.codebook_bits = static_cast<int>(e.integer("codebook_bits", 1, 32));
    layer.codebook_scale_bits = static_cast<int>(e.integer("codebook_scale_bits", 0, 32));
    layer.codebook_scale_count = static_cast<Index>(e.integer("codebook_scale_count", 0, std::int64_t{1} << 40));
    layer.normalization_bits = static_cast<int>(e.integer("normalization_bits", 0, 32));
    if (e.has("codebook_rank")) {  // SVD-factored codebooks (absent: full codebooks)
        const auto rank = static_cast<Index>(e.integer("codebook_rank", 1, L.k));
        layer.basis_bits = static_cast<int>(e.integer("basis_bits", 1, 32));
        layer.basis = in.matrix("basis", rank, L.k * L.dim);
    }
    layer.codebooks = in.matrix("codebooks", L.codebook_count() * L.k, L.dim);
    layer.indices = read_codes(in, "indices", L.rows, L.vectors_per_row(), 16);
    for (Index v = 0; v < layer.indices.cols(); ++v)
        for (Index r = 0; r < L.rows; ++r)
            VQLIB_CHECK(layer.indices(r, v) < L.k, io_error, e.where(), ": index ",
                        layer.indices(r, v), " at (", r, ", ", v, "): expected a value below k = ", L.k);
    if (layer.scale_block > 0) layer.scales = in.matrix("scales", L.rows, L.cols / layer.scale_block);
    return layer;
}

// ---- VPTQ layers --------------------------------------------------------------------------------

inline json write_vptq(TensorWriter& out, const VptqLayer& layer) {
    layer.check_consistent();
    const VptqLayout& L = layer.layout;
    json entry = {{"kind", "vptq"},
                  {"rows", L.out_features},
                  {"cols", L.in_features},
                  {"vector_len", L.vector_len},
                  {"num_centroids", L.num_centroids},
                  {"num_res_centroids", L.num_res_centroids},
                  {"outlier_vector_len", L.outlier_vector_len},
                  {"outlier_centroids", L.outlier_centroids},
                  {"outlier_size", L.outlier_size},
                  {"group_num", L.group_num},
                  {"group_size", L.group_size},
                  {"enable_norm", L.enable_norm},
                  {"enable_perm", L.enable_perm},
                  {"permuted", !layer.perm.empty()}};
    auto words = [&](const char* name, const std::vector<std::uint32_t>& v) {
        out.put(name, Tensor::from_bits(Dtype::U32, {static_cast<std::int64_t>(v.size())}, v));
    };
    out.matrix("centroids", layer.centroids);
    words("indices", layer.indices);
    if (L.has_residual()) {
        out.matrix("res_centroids", layer.res_centroids);
        words("res_indices", layer.res_indices);
    }
    if (L.has_outliers()) {
        out.matrix("outlier_centroids", layer.outlier_centroids);
        words("outlier_indices", layer.outlier_indices);
    }
    if (!layer.perm.empty()) out.permutation("perm", layer.perm);
    if (L.enable_norm) {
        out.put("weight_scale", Tensor::from_vector(layer.weight_scale, Dtype::F32));
        out.put("weight_bias", Tensor::from_vector(layer.weight_bias, Dtype::F32));
    }
    return entry;
}

inline VptqLayer read_vptq(const EntryReader& e, const TensorReader& in) {
    VptqLayer layer;
    VptqLayout& L = layer.layout;
    std::tie(L.out_features, L.in_features) = read_shape(e);
    L.vector_len = static_cast<Index>(e.integer("vector_len", 1, 64));
    L.num_centroids = static_cast<Index>(e.integer("num_centroids", 2, std::int64_t{1} << 24));
    L.num_res_centroids = static_cast<Index>(e.integer("num_res_centroids", 0, std::int64_t{1} << 24));
    L.outlier_vector_len = static_cast<Index>(e.integer("outlier_vector_len", 0, 64));
    L.outlier_centroids = static_cast<Index>(e.integer("outlier_centroids", 0, 65536));
    L.outlier_size = static_cast<Index>(e.integer("outlier_size", 0, L.in_features));
    L.group_num = static_cast<Index>(e.integer("group_num", 1, L.in_features));
    L.group_size = static_cast<Index>(e.integer("group_size", 0, L.in_features));
    L.enable_norm = e.boolean("enable_norm");
    L.enable_perm = e.boolean("enable_perm");
    const bool permuted = e.boolean("permuted");
    try {
        L.validate();
    } catch (const ::vqlib::error& err) {
        throw io_error(::vqlib::detail::concat(e.where(), ": invalid layout: ", err.what()));
    }
    const Index R = L.row_blocks();
    const std::int64_t n = L.group_num * R * L.group_size;
    layer.centroids = in.matrix("centroids", L.group_num * L.num_centroids, L.vector_len);
    layer.indices = in.below<std::uint32_t>("indices", Dtype::U32, {n}, static_cast<std::uint64_t>(L.num_centroids));
    if (L.has_residual()) {
        layer.res_centroids = in.matrix("res_centroids", L.group_num * L.num_res_centroids, L.vector_len);
        layer.res_indices = in.below<std::uint32_t>("res_indices", Dtype::U32, {n},
                                                    static_cast<std::uint64_t>(L.num_res_centroids));
    }
    if (L.has_outliers()) {
        layer.outlier_centroids = in.matrix("outlier_centroids", L.outlier_centroids, L.outlier_vector_len);
        layer.outlier_indices = in.below<std::uint32_t>(
            "outlier_indices", Dtype::U32, {L.outlier_row_blocks() * L.outlier_size},
            static_cast<std::uint64_t>(L.outlier_centroids));
    }
    if (permuted) layer.perm = in.permutation("perm", L.in_features);
    if (L.enable_norm) {
        const auto scale = in.floats("weight_scale", {L.in_features});
        const auto bias = in.floats("weight_bias", {L.in_features});
        layer.weight_scale = Eigen::Map<const VectorXf>(scale.data(), L.in_features);
        layer.weight_bias = Eigen::Map<const VectorXf>(bias.data(), L.in_features);
    }
    try {
        layer.check_consistent();
    } catch (const ::vqlib::error& err) {
        throw io_error(::vqlib::detail::concat(e.where(), ": ", err.what()));
    }
    return layer;
}

// ---- PVQ layers ---------------------------------------------------------------------------------

using PvqLayer128 = PvqLayer<unsigned __int128>;

inline json write_pvq(TensorWriter& out, const PvqLayer128& layer) {
    layer.check_consistent();
    json entry = {{"kind", "pvq"},
                  {"rows", layer.rows},
                  {"cols", layer.cols},
                  {"dim", layer.dim},
                  {"pulses", layer.pulses},
                  {"gain_bits", layer.gains.bits},
                  {"gain_parameter_bits", layer.gains.parameter_bits},
                  {"norm_storage", storage_name(layer.norm_storage)},
                  {"packing", layer.packing == PvqIndexPacking::fixed_width ? "fixed_width" : "mixed_radix"},
                  {"groups_per_chunk", layer.groups_per_chunk},
                  {"incoherence", nullptr}};
    if (layer.incoherence) {
        const auto& o = *layer.incoherence;
        entry["incoherence"] = {
            {"seed", o.seed},
            {"rotate_inputs", o.rotate_inputs},
            {"rotate_outputs", o.rotate_outputs},
            {"odd_factor", o.odd_factor == transform::OddFactorPolicy::hadamard_only ? "hadamard_only"
                                                                                     : "hartley_fallback"}};
    }
    const auto n = static_cast<std::int64_t>(layer.indices.size());
    std::vector<std::uint64_t> words(2 * layer.indices.size());
    for (std::size_t i = 0; i < layer.indices.size(); ++i) {
        words[2 * i] = static_cast<std::uint64_t>(layer.indices[i]);
        words[2 * i + 1] = static_cast<std::uint64_t>(layer.indices[i] >> 64);
    }
    out.put("indices", Tensor::from_bits(Dtype::U64, {n, 2}, words));
    out.put("gain_codes", Tensor::from_bits(Dtype::U16, {n}, layer.gain_codes));
    out.floats("gain_levels", {layer.gains.size()}, layer.gains.levels);
    out.floats("row_norms", {layer.rows}, layer.row_norms);
    if (!layer.perm.empty()) out.permutation("perm", layer.perm);
    return entry;
}

inline PvqLayer128 read_pvq(const EntryReader& e, const TensorReader& in) {
    PvqLayer128 layer;
    std::tie(layer.rows, layer.cols) = read_shape(e);
    layer.dim = static_cast<Index>(e.integer("dim", 2, 256));
    VQLIB_CHECK(layer.cols % layer.dim == 0, io_error, e.where(), ": field 'dim' = ", layer.dim,
                ": expected a divisor of cols = ", layer.cols);
    // Pulses whose codebook size fits the 128-bit indices (bounds the codec's tables too).
    const int max_pulses = lattice::max_pulses_fitting(static_cast<int>(layer.dim), 128);
    layer.pulses = static_cast<int>(e.integer("pulses", 1, max_pulses));
    layer.gains.bits = static_cast<int>(e.integer("gain_bits", 1, 16));
    layer.gains.parameter_bits = e.integer("gain_parameter_bits", 0, std::int64_t{1} << 40);
    layer.norm_storage = e.storage("norm_storage");
    static constexpr std::pair<const char*, PvqIndexPacking> packings[] = {
        {"fixed_width", PvqIndexPacking::fixed_width}, {"mixed_radix", PvqIndexPacking::mixed_radix}};
    layer.packing = e.choice("packing", packings);
    layer.groups_per_chunk = static_cast<Index>(e.integer("groups_per_chunk", 1, 4096));
    const json& inc = e.at("incoherence");
    if (!inc.is_null()) {
        const EntryReader o(inc, e.where() + " incoherence");
        static constexpr std::pair<const char*, transform::OddFactorPolicy> policies[] = {
            {"hadamard_only", transform::OddFactorPolicy::hadamard_only},
            {"hartley_fallback", transform::OddFactorPolicy::hartley_fallback}};
        transform::IncoherenceOptions options;
        options.seed = o.unsigned64("seed");
        options.rotate_inputs = o.boolean("rotate_inputs");
        options.rotate_outputs = o.boolean("rotate_outputs");
        options.odd_factor = o.choice("odd_factor", policies);
        layer.incoherence = options;
    }
    const std::int64_t n = layer.rows * layer.groups();
    const auto words = in.get("indices", Dtype::U64, {n, 2}).bits_as<std::uint64_t>();
    const unsigned __int128 size = layer.codec().size();
    layer.indices.resize(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < layer.indices.size(); ++i) {
        const unsigned __int128 v = (static_cast<unsigned __int128>(words[2 * i + 1]) << 64) | words[2 * i];
        VQLIB_CHECK(v < size, io_error, e.where(), ": indices element ", i,
                    " is not below the number of PVQ codewords V(", layer.dim, ", ", layer.pulses, ")");
        layer.indices[i] = v;
    }
    const std::int64_t levels = in.length("gain_levels", std::int64_t{1} << layer.gains.bits);
    layer.gains.levels = in.floats("gain_levels", {levels});
    for (std::size_t i = 0; i < layer.gains.levels.size(); ++i)
        VQLIB_CHECK(layer.gains.levels[i] > 0 && (i == 0 || layer.gains.levels[i] > layer.gains.levels[i - 1]),
                    io_error, e.where(), ": gain_levels element ", i, " = ", layer.gains.levels[i],
                    ": expected positive, increasing levels");
    layer.gain_codes = in.below<std::uint16_t>("gain_codes", Dtype::U16, {n}, static_cast<std::uint64_t>(levels));
    layer.row_norms = in.floats("row_norms", {layer.rows});
    for (std::size_t r = 0; r < layer.row_norms.size(); ++r)
        VQLIB_CHECK(layer.row_norms[r] >= 0, io_error, e.where(), ": row_norms element ", r, " = ",
                    layer.row_norms[r], ": expected a norm >= 0");
    if (in.has("perm")) layer.perm = in.permutation("perm", layer.cols);
    if (layer.incoherence) {
        try {  // the sizes (bounded by the tensors checked above) must have such a rotation
            transform::IncoherenceTransform(layer.rows, layer.cols, *layer.incoherence);
        } catch (const ::vqlib::error& err) {
            throw io_error(::vqlib::detail::concat(e.where(), ": incoherence: ", err.what()));
        }
    }
    layer.check_consistent();
    return layer;
}

inline QuantizedLayer read_layer(const TensorMap& tensors, const std::string& name, const json& entry) {
    const std::string where = layer_where(name);
    const EntryReader e(entry, where);
    const TensorReader in(tensors, name, where);
    static constexpr std::pair<const char*, int> kinds[] = {
        {"int", 0}, {"minifloat", 1}, {"vq", 2}, {"vptq", 3}, {"pvq", 4}};
    switch (e.choice("kind", kinds)) {
    case 0: return read_int(e, in);
    case 1: return read_minifloat(e, in);
    case 2: return read_vq(e, in);
    case 3: return read_vptq(e, in);
    default: return read_pvq(e, in);
    }
}

}  // namespace detail

/// The checkpoint of `layers` in memory: the tensors and the "vqlib" metadata entry (plus
/// `metadata`, which must not use that key). Throws invalid_argument for an inconsistent layer or
/// a name whose tensors collide with another's.
inline SafetensorsFile layer_checkpoint(const std::map<std::string, QuantizedLayer>& layers,
                                        const Metadata& metadata = {}) {
    VQLIB_CHECK(!metadata.count(layer_checkpoint_key), invalid_argument,
                "layer_checkpoint: metadata key '", layer_checkpoint_key, "' is reserved");
    SafetensorsFile file;
    file.metadata = metadata;
    detail::json entries = detail::json::object();
    for (const auto& [name, layer] : layers) {
        VQLIB_CHECK(!name.empty(), invalid_argument, "layer_checkpoint: a layer name is empty");
        detail::TensorWriter out(file.tensors, name);
        entries[name] = std::visit(
            [&](const auto& l) -> detail::json {
                using L = std::decay_t<decltype(l)>;
                if constexpr (std::is_same_v<L, VqLayer>) return detail::write_vq(out, l);
                else if constexpr (std::is_same_v<L, VptqLayer>) return detail::write_vptq(out, l);
                else if constexpr (std::is_same_v<L, detail::PvqLayer128>) return detail::write_pvq(out, l);
                else return detail::write_scalar(out, l);
            },
            layer);
    }
    const detail::json doc = {{"format", "vqlib-layers"},
                              {"version", layer_checkpoint_version},
                              {"layers", entries}};
    file.metadata[layer_checkpoint_key] = doc.dump();
    return file;
}

/// The layers of a checkpoint file already parsed (read_safetensors or parse_safetensors).
/// Throws io_error, naming the layer and the field or tensor, for anything inconsistent.
inline std::map<std::string, QuantizedLayer> layers_from_checkpoint(const SafetensorsFile& file) {
    const auto it = file.metadata.find(layer_checkpoint_key);
    VQLIB_CHECK(it != file.metadata.end(), io_error, "vqlib checkpoint: metadata key '",
                layer_checkpoint_key, "' is missing (not a vqlib layer checkpoint)");
    detail::json doc;
    try {
        doc = detail::json::parse(it->second);
    } catch (const detail::json::exception& e) {
        throw io_error(::vqlib::detail::concat("vqlib checkpoint: metadata '", layer_checkpoint_key,
                                               "' is not valid JSON: ", e.what()));
    }
    const detail::EntryReader top(doc, "vqlib checkpoint");
    VQLIB_CHECK(top.string("format") == "vqlib-layers", io_error, "vqlib checkpoint: format \"",
                top.string("format"), "\": expected \"vqlib-layers\"");
    const auto version = top.integer("version", 0, 1 << 20);
    VQLIB_CHECK(version == layer_checkpoint_version, io_error, "vqlib checkpoint: version ",
                version, ": this build reads version ", layer_checkpoint_version);
    const detail::json& entries = top.at("layers");
    VQLIB_CHECK(entries.is_object(), io_error, "vqlib checkpoint: field 'layers' is ",
                detail::json_kind(entries), ": expected a JSON object");
    std::map<std::string, QuantizedLayer> out;
    for (const auto& [name, entry] : entries.items()) {
        try {
            QuantizedLayer layer = detail::read_layer(file.tensors, name, entry);
            // Each part is finite, but their products may not be (a scale of 1e38 times a code
            // of 6): the layer must decode to finite weights.
            const bool finite = std::visit([](const auto& l) { return l.dequantize().allFinite(); }, layer);
            VQLIB_CHECK(finite, io_error, detail::layer_where(name),
                        ": dequantizes to non-finite weights (its scales and values overflow float)");
            out.emplace(name, std::move(layer));
        } catch (const io_error&) {
            throw;
        } catch (const ::vqlib::error& e) {  // a layer's own consistency check
            throw io_error(::vqlib::detail::concat(detail::layer_where(name), ": ", e.what()));
        }
    }
    return out;
}

/// Writes `layers` as one safetensors file at `path`, atomically.
inline void save_layer_checkpoint(const std::filesystem::path& path,
                                  const std::map<std::string, QuantizedLayer>& layers,
                                  const Metadata& metadata = {}) {
    const SafetensorsFile file = layer_checkpoint(layers, metadata);
    write_safetensors(path, file.tensors, file.metadata);
}

/// Reads a file written by save_layer_checkpoint: every layer, by name.
inline std::map<std::string, QuantizedLayer> load_layer_checkpoint(const std::filesystem::path& path) {
    return layers_from_checkpoint(read_safetensors(path));
}

}  // namespace vqlib::io
