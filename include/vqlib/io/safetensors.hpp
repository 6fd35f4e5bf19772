#pragma once
// Reading and writing safetensors files (the Hugging Face checkpoint format VPTQ models ship in).
//
// The format: an 8-byte little-endian unsigned header length N, N bytes of JSON, then the data
// buffer. The JSON is an object mapping each tensor name to
//     {"dtype": "F16", "shape": [rows, cols], "data_offsets": [begin, end]}
// where [begin, end) is a byte range of the data buffer (not of the file), plus an optional
// "__metadata__" object of string -> string. Tensor data is raw, little-endian, C order
// (row-major: the last dimension is contiguous).
//
// In memory a file is a SafetensorsFile: a std::map from name to Tensor (dtype, shape and the raw
// bytes in a std::vector<std::uint8_t>), and the metadata. Tensors convert to float (fp16 and
// bf16 widened exactly), to and from Eigen matrices (row-major on disk, our column-major MatrixXf
// in memory, m(i, j) == t[i, j]), and to their raw bits as any same-sized type (an I16 `perm`
// read as uint16, an I32 packed `indices` tensor as uint32 words).
//
// Dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8. Others (BOOL, F8_*, ...) are
// rejected by the reader as unknown.
//
// Reading is strict: every failure throws vqlib::io_error naming the file (or the label given to
// parse_safetensors), the tensor and the offending value:
//   - a file shorter than 8 bytes, or a header length past the end of the file (truncated);
//   - a header length over 100,000,000 bytes (the limit of the reference implementation);
//   - a header that does not start with '{', is not valid JSON (or UTF-8), or is not an object;
//   - duplicate keys anywhere in the header (a duplicate tensor name, or a key twice in an entry);
//   - an entry that is not an object, lacks dtype/shape/data_offsets, or has any other key;
//   - an unknown dtype; a shape that is not an array of non-negative integers; a shape whose
//     element count or byte size overflows (the product of the non-zero dimensions times the
//     element size must fit in int64);
//   - data_offsets that are not [begin, end] non-negative integers with begin <= end, that do
//     not span exactly shape product x element size bytes, or that reach past the data buffer;
//   - tensors that overlap, or leave holes in the data buffer: sorted by offset they must tile
//     it exactly, from byte 0 to its last byte (as the reference implementation requires);
//   - a "__metadata__" that is not an object of strings; an empty tensor name.
// Sizes are checked against the file size before any tensor data is allocated.
//
// Writing (serialize_safetensors, write_safetensors) lays the tensors out contiguously by
// decreasing element size and then by name (byte-wise), so each tensor's offset is a multiple of
// its element size; the header is compact JSON, "__metadata__" first (omitted when empty), then
// the tensors in data order, padded with spaces so that N is a multiple of 8 and the data starts
// 8-byte aligned. Equal inputs give identical bytes. write_safetensors writes a temporary file
// in the target's directory and renames it over the target only once complete, so a failure
// never leaves a partial file or clobbers an existing one (atomic, not durable: no fsync).
// Invalid tensors (data size not matching the shape, an empty or reserved name, strings that are
// not UTF-8) are refused before anything is written, with invalid_argument or shape_error.
//
// Values are stored as they are: NaN and Inf pass through, and conversions to fp16/bf16 round to
// nearest, ties to even, overflowing to Inf.
#include <vqlib/core/error.hpp>
#include <vqlib/core/half.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/io/temporary_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace vqlib::io {

static_assert(std::endian::native == std::endian::little,
              "vqlib: the safetensors reader and writer assume a little-endian host");

// ------------------------------------------------------------------------------------------------
// Dtypes

/// The element types of safetensors tensors that vqlib reads and writes.
enum class Dtype : std::uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 };

/// Every Dtype, in declaration order.
inline constexpr std::array<Dtype, 12> all_dtypes = {
    Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64, Dtype::I32,
    Dtype::I16, Dtype::I8,  Dtype::U64, Dtype::U32,  Dtype::U16, Dtype::U8};

/// The name a safetensors header uses for `dtype`: "F32", "BF16", "I16", ...
inline std::string_view dtype_name(Dtype dtype) {
    switch (dtype) {
        case Dtype::F64: return "F64";
        case Dtype::F32: return "F32";
        case Dtype::F16: return "F16";
        case Dtype::BF16: return "BF16";
        case Dtype::I64: return "I64";
        case Dtype::I32: return "I32";
        case Dtype::I16: return "I16";
        case Dtype::I8: return "I8";
        case Dtype::U64: return "U64";
        case Dtype::U32: return "U32";
        case Dtype::U16: return "U16";
        case Dtype::U8: return "U8";
    }
    return "?";
}

/// The Dtype named `name` (exact, case-sensitive), or nullopt for names vqlib does not handle.
inline std::optional<Dtype> dtype_from_name(std::string_view name) {
    for (Dtype dtype : all_dtypes)
        if (dtype_name(dtype) == name) return dtype;
    return std::nullopt;
}

/// Bytes per element.
inline std::size_t dtype_size(Dtype dtype) {
    switch (dtype) {
        case Dtype::F64:
        case Dtype::I64:
        case Dtype::U64: return 8;
        case Dtype::F32:
        case Dtype::I32:
        case Dtype::U32: return 4;
        case Dtype::F16:
        case Dtype::BF16:
        case Dtype::I16:
        case Dtype::U16: return 2;
        case Dtype::I8:
        case Dtype::U8: return 1;
    }
    return 1;
}

/// True for F64, F32, F16 and BF16.
inline bool is_floating_point(Dtype dtype) {
    return dtype == Dtype::F64 || dtype == Dtype::F32 || dtype == Dtype::F16 ||
           dtype == Dtype::BF16;
}

// ------------------------------------------------------------------------------------------------
// fp16 and bf16

// The conversions of core/half.hpp (round to nearest even, NaN kept), under their io names.
using ::vqlib::bfloat16_to_float;
using ::vqlib::float_to_bfloat16;
using ::vqlib::float_to_half;
using ::vqlib::half_to_float;

// ------------------------------------------------------------------------------------------------
// Tensors

namespace detail {

inline std::string shape_string(std::span<const std::int64_t> shape) {
    std::string s = "[";
    for (std::size_t k = 0; k < shape.size(); ++k) {
        if (k > 0) s += ", ";
        s += std::to_string(shape[k]);
    }
    return s + "]";
}

/// The largest byte size of a tensor (shape product x element size, ignoring zero dimensions).
inline constexpr std::uint64_t max_tensor_bytes =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// Shape product x element size, or nullopt if a dimension is negative or the product of the
/// non-zero dimensions times the element size exceeds max_tensor_bytes.
inline std::optional<std::uint64_t> checked_byte_size(std::span<const std::int64_t> shape,
                                                      std::size_t item_size) {
    std::uint64_t product = item_size;  // of the non-zero dimensions
    bool zero = false;
    for (const std::int64_t dim : shape) {
        if (dim < 0) return std::nullopt;
        if (dim == 0) {
            zero = true;
            continue;
        }
        const auto d = static_cast<std::uint64_t>(dim);
        if (product > max_tensor_bytes / d) return std::nullopt;
        product *= d;
    }
    return zero ? 0 : product;
}

template <class T>
T load_element(const std::uint8_t* p) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
}

}  // namespace detail

/// One tensor: its dtype, shape and raw little-endian C-order bytes. The data size must equal
/// shape product x dtype_size(dtype) (a 0-d tensor, shape {}, holds one element); the accessors
/// check it and throw shape_error otherwise.
struct Tensor {
    Dtype dtype = Dtype::F32;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> data;

    /// The number of elements (1 for shape {}). Throws shape_error for a negative dimension or
    /// an overflowing size.
    std::int64_t numel() const {
        const auto bytes = detail::checked_byte_size(shape, 1);
        VQLIB_CHECK(bytes.has_value(), shape_error, "tensor shape ", detail::shape_string(shape),
                    " has a negative dimension or overflows");
        return static_cast<std::int64_t>(*bytes);
    }

    /// The byte size the shape and dtype call for. Throws shape_error as numel does.
    std::size_t expected_bytes() const {
        const auto bytes = detail::checked_byte_size(shape, dtype_size(dtype));
        VQLIB_CHECK(bytes.has_value() && *bytes <= std::numeric_limits<std::size_t>::max(),
                    shape_error, "tensor shape ", detail::shape_string(shape), " of ",
                    dtype_name(dtype), " has a negative dimension or overflows");
        return static_cast<std::size_t>(*bytes);
    }

    /// Throws shape_error unless data.size() == expected_bytes().
    void check() const {
        const std::size_t expected = expected_bytes();
        VQLIB_CHECK(data.size() == expected, shape_error, "tensor holds ", data.size(),
                    " bytes but shape ", detail::shape_string(shape), " of ", dtype_name(dtype),
                    " needs ", expected, " bytes");
    }

    /// All elements converted to float, in storage (C) order. fp16/bf16 widen exactly; F64 and
    /// integers round to the nearest float (integers above 2^24 may change).
    std::vector<float> to_floats() const {
        check();
        const std::size_t n = data.size() / dtype_size(dtype);
        std::vector<float> out(n);
        const std::uint8_t* p = data.data();
        const std::size_t step = dtype_size(dtype);
        for (std::size_t k = 0; k < n; ++k, p += step) {
            switch (dtype) {
                case Dtype::F64:
                    out[k] = static_cast<float>(detail::load_element<double>(p));
                    break;
                case Dtype::F32: out[k] = detail::load_element<float>(p); break;
                case Dtype::F16:
                    out[k] = half_to_float(detail::load_element<std::uint16_t>(p));
                    break;
                case Dtype::BF16:
                    out[k] = bfloat16_to_float(detail::load_element<std::uint16_t>(p));
                    break;
                case Dtype::I64:
                    out[k] = static_cast<float>(detail::load_element<std::int64_t>(p));
                    break;
                case Dtype::I32:
                    out[k] = static_cast<float>(detail::load_element<std::int32_t>(p));
                    break;
                case Dtype::I16: out[k] = detail::load_element<std::int16_t>(p); break;
                case Dtype::I8: out[k] = detail::load_element<std::int8_t>(p); break;
                case Dtype::U64:
                    out[k] = static_cast<float>(detail::load_element<std::uint64_t>(p));
                    break;
                case Dtype::U32:
                    out[k] = static_cast<float>(detail::load_element<std::uint32_t>(p));
                    break;
                case Dtype::U16: out[k] = detail::load_element<std::uint16_t>(p); break;
                case Dtype::U8: out[k] = *p; break;
            }
        }
        return out;
    }

    /// A 2-D tensor [rows, cols] as a column-major MatrixXf with m(i, j) == t[i, j]; a 1-D tensor
    /// [n] as an n x 1 column (as load_npy_matrix does). Values convert as to_floats. Throws
    /// shape_error for any other rank.
    MatrixXf to_matrix() const {
        VQLIB_CHECK(shape.size() == 1 || shape.size() == 2, shape_error,
                    "to_matrix: tensor shape ", detail::shape_string(shape), " is ", shape.size(),
                    "-D: expected a 2-D matrix or a 1-D vector");
        const std::vector<float> values = to_floats();
        const Index rows = static_cast<Index>(shape[0]);
        const Index cols = shape.size() == 2 ? static_cast<Index>(shape[1]) : 1;
        MatrixXf m(rows, cols);
        if (m.size() != 0) m = Eigen::Map<const RowMajorMatrixXf>(values.data(), rows, cols);
        return m;
    }

    /// The raw elements reinterpreted as T, which must be trivially copyable and the size of an
    /// element: bits_as<std::uint16_t>() reads an I16 or F16 tensor's bits,
    /// bits_as<std::uint32_t>() an I32 tensor's. Throws invalid_argument if the sizes differ.
    template <class T>
    std::vector<T> bits_as() const {
        static_assert(std::is_trivially_copyable_v<T>, "bits_as: T must be trivially copyable");
        VQLIB_CHECK(sizeof(T) == dtype_size(dtype), invalid_argument, "bits_as: a ", sizeof(T),
                    "-byte type cannot view the ", dtype_size(dtype), "-byte elements of a ",
                    dtype_name(dtype), " tensor");
        check();
        std::vector<T> out(data.size() / sizeof(T));
        if (!out.empty()) std::memcpy(out.data(), data.data(), data.size());
        return out;
    }

    /// A tensor of `dtype` and `shape` holding the bits of `values` (C order); sizeof(T) must be
    /// the element size and values.size() the shape product. Throws invalid_argument or
    /// shape_error otherwise.
    template <class T>
    static Tensor from_bits(Dtype dtype, std::vector<std::int64_t> shape,
                            std::span<const T> values) {
        static_assert(std::is_trivially_copyable_v<T>, "from_bits: T must be trivially copyable");
        VQLIB_CHECK(sizeof(T) == dtype_size(dtype), invalid_argument, "from_bits: ", sizeof(T),
                    "-byte values cannot be stored as ", dtype_name(dtype), " (",
                    dtype_size(dtype), "-byte elements)");
        Tensor t{dtype, std::move(shape), {}};
        const std::size_t bytes = t.expected_bytes();
        VQLIB_CHECK(values.size() * sizeof(T) == bytes, shape_error, "from_bits: ",
                    values.size(), " values for shape ", detail::shape_string(t.shape),
                    ": expected ", bytes / sizeof(T));
        t.data.resize(bytes);
        if (bytes != 0) std::memcpy(t.data.data(), values.data(), bytes);
        return t;
    }

    /// As from_bits, taking the values from any contiguous range (a std::vector, ...).
    template <class Range>
    static Tensor from_bits(Dtype dtype, std::vector<std::int64_t> shape, const Range& values)
        requires requires { std::span(values); }
    {
        using T = std::remove_cv_t<typename decltype(std::span(values))::element_type>;
        return from_bits<T>(dtype, std::move(shape), std::span<const T>(values));
    }

    /// A tensor of the floating-point `dtype` (F64, F32, F16 or BF16) and `shape` from float
    /// values in C order, rounding to nearest even for F16/BF16. Throws invalid_argument for an
    /// integer dtype, shape_error if values.size() is not the shape product.
    static Tensor from_floats(Dtype dtype, std::vector<std::int64_t> shape,
                              std::span<const float> values) {
        VQLIB_CHECK(is_floating_point(dtype), invalid_argument, "from_floats: dtype ",
                    dtype_name(dtype), " is not a floating-point dtype (F64, F32, F16, BF16)");
        Tensor t{dtype, std::move(shape), {}};
        const std::size_t bytes = t.expected_bytes();
        const std::size_t step = dtype_size(dtype);
        VQLIB_CHECK(values.size() * step == bytes, shape_error, "from_floats: ", values.size(),
                    " values for shape ", detail::shape_string(t.shape), ": expected ",
                    bytes / step);
        t.data.resize(bytes);
        std::uint8_t* p = t.data.data();
        for (std::size_t k = 0; k < values.size(); ++k, p += step) {
            switch (dtype) {
                case Dtype::F64: {
                    const double v = values[k];
                    std::memcpy(p, &v, 8);
                    break;
                }
                case Dtype::F32: std::memcpy(p, &values[k], 4); break;
                case Dtype::F16: {
                    const std::uint16_t v = float_to_half(values[k]);
                    std::memcpy(p, &v, 2);
                    break;
                }
                default: {  // BF16
                    const std::uint16_t v = float_to_bfloat16(values[k]);
                    std::memcpy(p, &v, 2);
                    break;
                }
            }
        }
        return t;
    }

    /// A 2-D tensor [rows, cols] of the floating-point `dtype` holding m in row-major order
    /// (t[i, j] == m(i, j), rounded to nearest even for F16/BF16).
    static Tensor from_matrix(const Eigen::Ref<const MatrixXf>& m, Dtype dtype = Dtype::F32) {
        const RowMajorMatrixXf row_major = m;
        return from_floats(dtype, {static_cast<std::int64_t>(m.rows()),
                                   static_cast<std::int64_t>(m.cols())},
                           std::span<const float>(row_major.data(),
                                                  static_cast<std::size_t>(row_major.size())));
    }

    /// A 1-D tensor [n] of the floating-point `dtype` holding v.
    static Tensor from_vector(const Eigen::Ref<const VectorXf>& v, Dtype dtype = Dtype::F32) {
        const VectorXf copy = v;
        return from_floats(
            dtype, {static_cast<std::int64_t>(v.size())},
            std::span<const float>(copy.data(), static_cast<std::size_t>(copy.size())));
    }

    friend bool operator==(const Tensor&, const Tensor&) = default;
};

/// Tensors by name, in byte-wise name order.
using TensorMap = std::map<std::string, Tensor>;

/// The "__metadata__" of a safetensors file.
using Metadata = std::map<std::string, std::string>;

/// A whole safetensors file in memory.
struct SafetensorsFile {
    TensorMap tensors;
    Metadata metadata;

    friend bool operator==(const SafetensorsFile&, const SafetensorsFile&) = default;
};

/// One header entry: dtype, shape and byte range [begin, end) within the data buffer.
struct TensorInfo {
    Dtype dtype = Dtype::F32;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;

    friend bool operator==(const TensorInfo&, const TensorInfo&) = default;
};

/// A validated header: the entries, the metadata, and where the data buffer lies in the file.
struct SafetensorsHeader {
    std::map<std::string, TensorInfo> tensors;
    Metadata metadata;
    std::uint64_t header_size = 0;  ///< N, the JSON's length in bytes (padding included)
    std::uint64_t data_size = 0;    ///< the data buffer's length in bytes

    /// The file offset of the data buffer: 8 + N.
    std::uint64_t data_start() const { return 8 + header_size; }
};

/// Headers longer than this are refused (the reference implementation's limit).
inline constexpr std::uint64_t safetensors_max_header_size = 100'000'000;

// ------------------------------------------------------------------------------------------------
// Reading

namespace detail {

template <class... Parts>
[[noreturn]] void st_load_error(std::string_view where, const Parts&... parts) {
    throw io_error(::vqlib::detail::concat("cannot load safetensors ", where, ": ", parts...));
}

/// A JSON value for a message: dumped, and cut short when long.
inline std::string json_excerpt(const nlohmann::json& value) {
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    constexpr std::size_t shown = 80;
    if (text.size() > shown) text = text.substr(0, shown) + "...";
    return text;
}

/// The JSON type of a value, for messages: "an object", "a string", ...
inline std::string json_kind(const nlohmann::json& value) {
    if (value.is_number_integer()) return "an integer";
    if (value.is_number_float()) return "a number";
    const std::string name = value.type_name();
    const bool vowel =
        !name.empty() && std::string_view("aeiou").find(name[0]) != std::string_view::npos;
    return (vowel ? "an " : "a ") + name;
}

/// Records the first duplicate key of any JSON object while nlohmann::json parses (the parsed
/// value keeps only the last of duplicate keys, so they must be caught during the parse).
class duplicate_key_finder {
public:
    bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using event_t = nlohmann::json::parse_event_t;
        if (event == event_t::object_start) {
            objects_.emplace_back();
        } else if (event == event_t::object_end) {
            if (!objects_.empty()) objects_.pop_back();
        } else if (event == event_t::key && !objects_.empty()) {
            const std::string& key = parsed.get_ref<const std::string&>();
            auto& object = objects_.back();
            if (!object.keys.insert(key).second && !duplicate_) {
                duplicate_ = objects_.size() == 1
                                 ? ::vqlib::detail::concat("duplicate tensor name '", key, "'")
                                 : ::vqlib::detail::concat("duplicate key '", key,
                                                           "' in the entry of '",
                                                           objects_.front().last_key, "'");
            }
            object.last_key = key;
        }
        return true;
    }

    const std::optional<std::string>& duplicate() const { return duplicate_; }

private:
    struct object_state {
        std::set<std::string> keys;
        std::string last_key;
    };
    std::vector<object_state> objects_;
    std::optional<std::string> duplicate_;
};

/// A non-negative JSON integer, or nullopt.
inline std::optional<std::uint64_t> json_unsigned(const nlohmann::json& value) {
    if (value.is_number_unsigned()) return value.get<std::uint64_t>();
    if (value.is_number_integer() && value.get<std::int64_t>() >= 0)
        return static_cast<std::uint64_t>(value.get<std::int64_t>());
    return std::nullopt;
}

inline TensorInfo parse_tensor_entry(std::string_view where, const std::string& name,
                                     const nlohmann::json& entry, std::uint64_t data_size) {
    if (!entry.is_object())
        st_load_error(where, "tensor '", name, "': the entry is ", json_kind(entry),
                      ", not a JSON object: ", json_excerpt(entry));
    for (const auto& item : entry.items())
        if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
            st_load_error(where, "tensor '", name, "': unexpected key '", item.key(),
                          "' (expected only 'dtype', 'shape' and 'data_offsets')");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!entry.contains(key))
            st_load_error(where, "tensor '", name, "': missing key '", key, "'");

    TensorInfo info;
    const nlohmann::json& dtype = entry.at("dtype");
    if (!dtype.is_string())
        st_load_error(where, "tensor '", name, "': 'dtype' is ", json_kind(dtype),
                      ", not a string: ", json_excerpt(dtype));
    const auto parsed_dtype = dtype_from_name(dtype.get_ref<const std::string&>());
    if (!parsed_dtype)
        st_load_error(where, "tensor '", name, "': unknown dtype ", json_excerpt(dtype),
                      " (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8)");
    info.dtype = *parsed_dtype;

    const nlohmann::json& shape = entry.at("shape");
    if (!shape.is_array())
        st_load_error(where, "tensor '", name, "': 'shape' is ", json_kind(shape),
                      ", not an array: ", json_excerpt(shape));
    for (std::size_t k = 0; k < shape.size(); ++k) {
        const nlohmann::json& dim = shape[k];
        if (dim.is_number_integer() && !dim.is_number_unsigned() && dim.get<std::int64_t>() < 0)
            st_load_error(where, "tensor '", name, "': shape[", k, "] = ", json_excerpt(dim),
                          " is negative (shape ", json_excerpt(shape), ")");
        const auto value = json_unsigned(dim);
        if (!value)
            st_load_error(where, "tensor '", name, "': shape[", k, "] = ", json_excerpt(dim),
                          " is not a non-negative integer (shape ", json_excerpt(shape), ")");
        if (*value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            st_load_error(where, "tensor '", name, "': shape ", json_excerpt(shape),
                          " overflows: shape[", k, "] = ", *value, " exceeds 2^63 - 1");
        info.shape.push_back(static_cast<std::int64_t>(*value));
    }
    const auto bytes = checked_byte_size(info.shape, dtype_size(info.dtype));
    if (!bytes)
        st_load_error(where, "tensor '", name, "': shape ", shape_string(info.shape), " of ",
                      dtype_name(info.dtype), " overflows: its size in bytes exceeds 2^63 - 1");

    const nlohmann::json& offsets = entry.at("data_offsets");
    const auto begin = offsets.is_array() && offsets.size() == 2 ? json_unsigned(offsets[0])
                                                                 : std::nullopt;
    const auto end = offsets.is_array() && offsets.size() == 2 ? json_unsigned(offsets[1])
                                                               : std::nullopt;
    if (!begin || !end)
        st_load_error(where, "tensor '", name, "': data_offsets ", json_excerpt(offsets),
                      " is not an array [begin, end] of two non-negative integers");
    if (*begin > *end)
        st_load_error(where, "tensor '", name, "': data_offsets [", *begin, ", ", *end,
                      "] have begin > end");
    if (*end - *begin != *bytes)
        st_load_error(where, "tensor '", name, "': shape ", shape_string(info.shape), " of ",
                      dtype_name(info.dtype), " needs ", *bytes, " bytes but data_offsets [",
                      *begin, ", ", *end, "] span ", *end - *begin, " bytes");
    if (*end > data_size)
        st_load_error(where, "tensor '", name, "': data_offsets [", *begin, ", ", *end,
                      "] reach past the end of the data buffer, which holds ", data_size,
                      " bytes (truncated file?)");
    info.begin = *begin;
    info.end = *end;
    return info;
}

/// Parses and validates a header's JSON text against a data buffer of `data_size` bytes.
inline SafetensorsHeader parse_header(std::string_view text, std::uint64_t data_size,
                                      std::string_view where) {
    if (text.empty() || text.front() != '{')
        st_load_error(where, "the header does not start with '{' (",
                      text.empty() ? std::string("it is empty")
                                   : ::vqlib::detail::concat("first byte 0x", std::hex,
                                                             static_cast<int>(static_cast<
                                                                 unsigned char>(text.front()))),
                      "): it is not a JSON object");
    // nlohmann::json stops at a NUL byte as if the input ended there; JSON text never holds
    // one (not even inside strings), so anything after it would go unchecked.
    if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos)
        st_load_error(where, "the header is not valid JSON: a NUL byte at offset ", nul);
    duplicate_key_finder finder;
    nlohmann::json root;
    try {
        root = nlohmann::json::parse(
            text.begin(), text.end(),
            [&finder](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
                return finder(depth, event, parsed);
            });
    } catch (const nlohmann::json::exception& e) {
        st_load_error(where, "the header is not valid JSON: ", e.what());
    }
    if (!root.is_object())
        st_load_error(where, "the header is ", json_kind(root), ", not a JSON object");
    if (finder.duplicate()) st_load_error(where, "invalid header: ", *finder.duplicate());

    SafetensorsHeader header;
    header.header_size = text.size();
    header.data_size = data_size;
    for (const auto& item : root.items()) {
        const std::string& name = item.key();
        const nlohmann::json& value = item.value();
        if (name == "__metadata__") {
            if (!value.is_object())
                st_load_error(where, "'__metadata__' is ", json_kind(value),
                              ", not an object of strings: ", json_excerpt(value));
            for (const auto& entry : value.items()) {
                if (!entry.value().is_string())
                    st_load_error(where, "'__metadata__' value of key '", entry.key(), "' is ",
                                  json_kind(entry.value()), ", not a string: ",
                                  json_excerpt(entry.value()));
                header.metadata.emplace(entry.key(), entry.value().get<std::string>());
            }
            continue;
        }
        if (name.empty()) st_load_error(where, "a tensor has an empty name");
        header.tensors.emplace(name, parse_tensor_entry(where, name, value, data_size));
    }

    // Sorted by offsets, the tensors must tile the data buffer: no overlap, no hole.
    std::vector<std::pair<const std::string*, const TensorInfo*>> order;
    order.reserve(header.tensors.size());
    for (const auto& [name, info] : header.tensors) order.emplace_back(&name, &info);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        return std::tie(a.second->begin, a.second->end, *a.first) <
               std::tie(b.second->begin, b.second->end, *b.first);
    });
    std::uint64_t covered = 0;
    const std::string* previous = nullptr;
    for (const auto& [name, info] : order) {
        if (info->begin < covered)
            st_load_error(where, "tensor '", *name, "': data_offsets [", info->begin, ", ",
                          info->end, "] overlap tensor '", *previous, "', which ends at byte ",
                          covered);
        if (info->begin > covered)
            st_load_error(where, "hole in the data buffer: bytes [", covered, ", ", info->begin,
                          ") before tensor '", *name, "' belong to no tensor");
        covered = info->end;
        previous = name;
    }
    if (covered != data_size)
        st_load_error(where, "hole in the data buffer: its last ", data_size - covered,
                      " bytes (from byte ", covered, " of ", data_size,
                      ") belong to no tensor");
    return header;
}

/// Reads the 8-byte little-endian header length.
inline std::uint64_t read_u64_le(const std::uint8_t* p) {
    std::uint64_t value = 0;
    for (int k = 7; k >= 0; --k) value = value << 8 | p[k];
    return value;
}

/// Checks the header length against the limit and the bytes that follow it.
inline void check_header_length(std::uint64_t length, std::uint64_t total_size,
                                std::string_view where) {
    if (length > safetensors_max_header_size)
        st_load_error(where, "header length ", length, " bytes is absurd: it exceeds the limit of ",
                      safetensors_max_header_size, " bytes");
    if (length > total_size - 8)
        st_load_error(where, "truncated file: the header length is ", length,
                      " bytes but only ", total_size - 8, " bytes follow the length field");
}

inline std::string file_description(const std::filesystem::path& path) {
    return ::vqlib::detail::concat("file '", path.string(), "'");
}

/// An open safetensors file with a validated header.
class st_file_reader {
public:
    explicit st_file_reader(const std::filesystem::path& path)
        : where_(file_description(path)) {
        std::error_code ec;
        const auto status = std::filesystem::status(path, ec);
        if (status.type() == std::filesystem::file_type::not_found)
            st_load_error(where_, "no such file");
        if (status.type() == std::filesystem::file_type::none)
            st_load_error(where_, "cannot access the file: ", ec.message());
        if (!std::filesystem::is_regular_file(status)) st_load_error(where_, "not a regular file");
        in_.open(path, std::ios::binary);
        if (!in_) st_load_error(where_, "cannot open the file for reading");
        in_.seekg(0, std::ios::end);
        const auto end = static_cast<std::streamoff>(in_.tellg());
        in_.seekg(0, std::ios::beg);
        if (end < 0 || !in_) st_load_error(where_, "cannot determine the file size");
        file_size_ = static_cast<std::uint64_t>(end);

        if (file_size_ < 8)
            st_load_error(where_, "truncated file: it is ", file_size_,
                          " bytes long, too short for the 8-byte header length");
        std::array<std::uint8_t, 8> prefix{};
        read_exactly(prefix.data(), 8, "the header length");
        const std::uint64_t length = read_u64_le(prefix.data());
        check_header_length(length, file_size_, where_);
        std::string text(static_cast<std::size_t>(length), '\0');
        read_exactly(reinterpret_cast<std::uint8_t*>(text.data()), length, "the header");
        header_ = parse_header(text, file_size_ - 8 - length, where_);
    }

    const SafetensorsHeader& header() const { return header_; }

    /// Reads tensor `name` (an entry of the header) into a Tensor.
    Tensor read(const std::string& name, const TensorInfo& info) {
        Tensor t{info.dtype, info.shape, std::vector<std::uint8_t>(
                                             static_cast<std::size_t>(info.end - info.begin))};
        in_.seekg(static_cast<std::streamoff>(header_.data_start() + info.begin), std::ios::beg);
        read_exactly(t.data.data(), t.data.size(),
                     ::vqlib::detail::concat("the data of tensor '", name, "'"));
        return t;
    }

private:
    void read_exactly(std::uint8_t* dst, std::uint64_t count, std::string_view what) {
        if (count == 0) return;
        in_.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(count));
        const auto got = static_cast<std::uint64_t>(in_.gcount());
        if (got != count)
            st_load_error(where_, "reading ", what, " failed: expected ", count, " bytes, read ",
                          got, " (was the file truncated while reading?)");
    }

    std::string where_;
    std::ifstream in_;
    std::uint64_t file_size_ = 0;
    SafetensorsHeader header_;
};

}  // namespace detail

/// Parses and validates a whole safetensors file held in memory (see the top of this header for
/// what is checked). `label` names the data in error messages. Throws io_error.
inline SafetensorsFile parse_safetensors(std::span<const std::uint8_t> bytes,
                                         std::string_view label = "in-memory buffer") {
    const std::string where = ::vqlib::detail::concat("data '", label, "'");
    if (bytes.size() < 8)
        detail::st_load_error(where, "truncated file: it is ", bytes.size(),
                              " bytes long, too short for the 8-byte header length");
    const std::uint64_t length = detail::read_u64_le(bytes.data());
    detail::check_header_length(length, bytes.size(), where);
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8),
                                static_cast<std::size_t>(length));
    const SafetensorsHeader header = detail::parse_header(text, bytes.size() - 8 - length, where);
    SafetensorsFile file;
    file.metadata = header.metadata;
    const std::uint8_t* data = bytes.data() + header.data_start();
    for (const auto& [name, info] : header.tensors)
        file.tensors.emplace(name, Tensor{info.dtype, info.shape,
                                          std::vector<std::uint8_t>(data + info.begin,
                                                                    data + info.end)});
    return file;
}

/// Reads and validates only the header of a safetensors file: the entries, metadata and data
/// layout, without reading tensor data (the data buffer's size is still checked against the
/// file's). Throws io_error.
inline SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
    return detail::st_file_reader(path).header();
}

/// Reads and validates a safetensors file's header, then the tensors that choose(header) names
/// (entries of the header; an unknown name throws io_error naming it): the file is opened and
/// its header parsed once, for readers that pick tensors by what the header says (dtype, shape,
/// how many there are). Throws io_error.
inline SafetensorsFile read_safetensors_chosen(
    const std::filesystem::path& path,
    const std::function<std::vector<std::string>(const SafetensorsHeader&)>& choose) {
    detail::st_file_reader reader(path);
    SafetensorsFile file;
    file.metadata = reader.header().metadata;
    for (const std::string& name : choose(reader.header())) {
        const auto it = reader.header().tensors.find(name);
        if (it == reader.header().tensors.end())
            detail::st_load_error(detail::file_description(path), "no tensor named '", name, "'");
        file.tensors.emplace(name, reader.read(name, it->second));
    }
    return file;
}

/// Reads and validates a safetensors file, keeping only the tensors for which `select(name)` is
/// true (the header is validated whole; unselected tensors are not read). Throws io_error.
inline SafetensorsFile read_safetensors(const std::filesystem::path& path,
                                        const std::function<bool(const std::string&)>& select) {
    return read_safetensors_chosen(path, [&](const SafetensorsHeader& header) {
        std::vector<std::string> names;
        for (const auto& [name, info] : header.tensors)
            if (!select || select(name)) names.push_back(name);
        return names;
    });
}

/// Reads and validates a whole safetensors file. Throws io_error.
inline SafetensorsFile read_safetensors(const std::filesystem::path& path) {
    return read_safetensors(path, nullptr);
}

// ------------------------------------------------------------------------------------------------
// Writing

namespace detail {

/// A string for a message about invalid UTF-8: printable ASCII kept, other bytes as \xNN.
inline std::string escaped(std::string_view text) {
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7f) {
            out += c;
        } else {
            constexpr char digits[] = "0123456789abcdef";
            out += "\\x";
            out += digits[byte >> 4];
            out += digits[byte & 15];
        }
    }
    return out;
}

inline bool valid_utf8(const std::string& text) {
    try {
        (void)nlohmann::json(text).dump();
        return true;
    } catch (const nlohmann::json::type_error&) {
        return false;
    }
}

/// One tensor as a file plan sees it: name, dtype, shape and byte size.
struct st_entry {
    const std::string* name;
    Dtype dtype;
    const std::vector<std::int64_t>* shape;
    std::uint64_t bytes;
};

/// A file plan: the header bytes (padded) and the tensors in data order (indices into the
/// entries the plan was made from).
struct st_plan {
    std::string header;  // padded JSON
    std::vector<std::size_t> order;
    std::uint64_t data_size = 0;
};

template <class Exception, class... Parts>
[[noreturn]] void st_refuse(std::string_view where, const Parts&... parts) {
    throw Exception(::vqlib::detail::concat("cannot save safetensors ", where, ": ", parts...));
}

/// The plan of a file holding `entries` (sorted by name, unique) and `metadata`.
inline st_plan plan_entries(const std::vector<st_entry>& entries, const Metadata& metadata,
                            std::string_view where) {
    st_plan plan;
    for (std::size_t k = 0; k < entries.size(); ++k) {
        const std::string& name = *entries[k].name;
        if (name.empty()) st_refuse<invalid_argument>(where, "a tensor has an empty name");
        if (name == "__metadata__")
            st_refuse<invalid_argument>(where,
                                        "'__metadata__' is reserved and cannot name a tensor");
        if (!valid_utf8(name))
            st_refuse<invalid_argument>(where, "tensor name '", escaped(name),
                                        "' is not valid UTF-8");
        if (k > 0 && !(*entries[k - 1].name < name))
            st_refuse<invalid_argument>(where, "tensor '", escaped(name),
                                        "' is listed twice or out of order");
        plan.order.push_back(k);
    }
    for (const auto& [key, value] : metadata) {
        if (!valid_utf8(key))
            st_refuse<invalid_argument>(where, "metadata key '", escaped(key),
                                        "' is not valid UTF-8");
        if (!valid_utf8(value))
            st_refuse<invalid_argument>(where, "metadata value of key '", escaped(key),
                                        "' is not valid UTF-8");
    }
    // Larger elements first, then by name: every offset is a multiple of its element size.
    std::stable_sort(plan.order.begin(), plan.order.end(), [&](std::size_t a, std::size_t b) {
        return dtype_size(entries[a].dtype) > dtype_size(entries[b].dtype);
    });

    nlohmann::ordered_json json = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json object = nlohmann::ordered_json::object();
        for (const auto& [key, value] : metadata) object[key] = value;
        json["__metadata__"] = std::move(object);
    }
    std::uint64_t offset = 0;
    for (const std::size_t k : plan.order) {
        const std::uint64_t end = offset + entries[k].bytes;
        nlohmann::ordered_json entry = nlohmann::ordered_json::object();
        entry["dtype"] = std::string(dtype_name(entries[k].dtype));
        entry["shape"] = *entries[k].shape;
        entry["data_offsets"] = {offset, end};
        json[*entries[k].name] = std::move(entry);
        offset = end;
    }
    plan.data_size = offset;
    plan.header = json.dump();
    plan.header.append((8 - plan.header.size() % 8) % 8, ' ');
    return plan;
}

/// The entries of `tensors`, each checked against its shape and dtype.
inline std::vector<st_entry> tensor_entries(const TensorMap& tensors, std::string_view where) {
    std::vector<st_entry> entries;
    entries.reserve(tensors.size());
    for (const auto& [name, tensor] : tensors) {
        const auto bytes = checked_byte_size(tensor.shape, dtype_size(tensor.dtype));
        if (!bytes)
            st_refuse<shape_error>(where, "tensor '", name, "': shape ",
                                   shape_string(tensor.shape),
                                   " has a negative dimension or overflows");
        if (tensor.data.size() != *bytes)
            st_refuse<shape_error>(where, "tensor '", name, "' holds ", tensor.data.size(),
                                   " bytes but shape ", shape_string(tensor.shape), " of ",
                                   dtype_name(tensor.dtype), " needs ", *bytes, " bytes");
        entries.push_back({&name, tensor.dtype, &tensor.shape, *bytes});
    }
    return entries;
}

inline void store_u64_le(std::uint64_t value, std::uint8_t* out) {
    for (int k = 0; k < 8; ++k) out[k] = static_cast<std::uint8_t>(value >> (8 * k));
}

}  // namespace detail

/// The bytes of a safetensors file holding `tensors` and `metadata` (layout: see the top of this
/// header). Throws invalid_argument for an empty, reserved or non-UTF-8 name or metadata string,
/// shape_error for a tensor whose data size does not match its shape and dtype.
inline std::vector<std::uint8_t> serialize_safetensors(const TensorMap& tensors,
                                                       const Metadata& metadata = {}) {
    const auto entries = detail::tensor_entries(tensors, "data");
    const detail::st_plan plan = detail::plan_entries(entries, metadata, "data");
    std::vector<std::uint8_t> bytes(8 + plan.header.size() + plan.data_size);
    detail::store_u64_le(plan.header.size(), bytes.data());
    std::memcpy(bytes.data() + 8, plan.header.data(), plan.header.size());
    std::uint8_t* out = bytes.data() + 8 + plan.header.size();
    std::vector<const Tensor*> by_index;
    for (const auto& [name, tensor] : tensors) by_index.push_back(&tensor);
    for (const std::size_t k : plan.order) {
        const Tensor& tensor = *by_index[k];
        if (!tensor.data.empty()) std::memcpy(out, tensor.data.data(), tensor.data.size());
        out += tensor.data.size();
    }
    return bytes;
}

/// As serialize_safetensors(file.tensors, file.metadata).
inline std::vector<std::uint8_t> serialize_safetensors(const SafetensorsFile& file) {
    return serialize_safetensors(file.tensors, file.metadata);
}

/// Writes `tensors` and `metadata` to `path` as serialize_safetensors lays them out, atomically
/// (a temporary file renamed over the target). Throws io_error if writing fails;
/// invalid_argument or shape_error, before creating anything, for invalid tensors or metadata.
inline void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                              const Metadata& metadata = {}) {
    const std::string where = detail::file_description(path);
    const auto entries = detail::tensor_entries(tensors, where);
    const detail::st_plan plan = detail::plan_entries(entries, metadata, where);
    std::vector<const Tensor*> by_index;
    for (const auto& [name, tensor] : tensors) by_index.push_back(&tensor);
    detail::temporary_file out(path, "safetensors");
    std::array<std::uint8_t, 8> length{};
    detail::store_u64_le(plan.header.size(), length.data());
    out.write(length.data(), length.size());
    out.write(plan.header.data(), plan.header.size());
    for (const std::size_t k : plan.order)
        out.write(by_index[k]->data.data(), by_index[k]->data.size());
    out.commit();
}

/// As write_safetensors(path, file.tensors, file.metadata).
inline void write_safetensors(const std::filesystem::path& path, const SafetensorsFile& file) {
    write_safetensors(path, file.tensors, file.metadata);
}

/// A tensor of a file written by write_safetensors_streamed: its name, dtype and shape up front,
/// its data produced by `load` only when the writer reaches it.
struct TensorSource {
    std::string name;
    Dtype dtype = Dtype::F32;
    std::vector<std::int64_t> shape;
    std::function<Tensor()> load;
};

/// Writes the same file as write_safetensors would for the tensors the sources load, holding
/// one tensor in memory at a time (the data of a model larger than memory). Atomic as
/// write_safetensors. Throws invalid_argument (before creating anything) for a duplicate,
/// empty, reserved or non-UTF-8 name, shape_error for an overflowing shape, and invalid_argument
/// if a source loads a tensor whose dtype or shape differ from the ones it declared (nothing is
/// left behind then either).
inline void write_safetensors_streamed(const std::filesystem::path& path,
                                       std::vector<TensorSource> sources,
                                       const Metadata& metadata = {}) {
    const std::string where = detail::file_description(path);
    std::sort(sources.begin(), sources.end(),
              [](const TensorSource& a, const TensorSource& b) { return a.name < b.name; });
    std::vector<detail::st_entry> entries;
    entries.reserve(sources.size());
    for (const TensorSource& s : sources) {
        const auto bytes = detail::checked_byte_size(s.shape, dtype_size(s.dtype));
        if (!bytes)
            detail::st_refuse<shape_error>(where, "tensor '", s.name, "': shape ",
                                           detail::shape_string(s.shape),
                                           " has a negative dimension or overflows");
        if (!s.load) detail::st_refuse<invalid_argument>(where, "tensor '", s.name, "' has no source");
        entries.push_back({&s.name, s.dtype, &s.shape, *bytes});
    }
    const detail::st_plan plan = detail::plan_entries(entries, metadata, where);
    detail::temporary_file out(path, "safetensors");
    std::array<std::uint8_t, 8> length{};
    detail::store_u64_le(plan.header.size(), length.data());
    out.write(length.data(), length.size());
    out.write(plan.header.data(), plan.header.size());
    for (const std::size_t k : plan.order) {
        const TensorSource& s = sources[k];
        const Tensor t = s.load();
        if (t.dtype != s.dtype || t.shape != s.shape || t.data.size() != entries[k].bytes)
            detail::st_refuse<invalid_argument>(
                where, "tensor '", s.name, "' was declared ", dtype_name(s.dtype), " ",
                detail::shape_string(s.shape), " but its source gave ", dtype_name(t.dtype), " ",
                detail::shape_string(t.shape), " with ", t.data.size(), " bytes");
        out.write(t.data.data(), t.data.size());
    }
    out.commit();
}

}  // namespace vqlib::io
