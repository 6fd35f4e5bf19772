#pragma once
// Reading and writing NumPy .npy files as Eigen matrices.
//
// Loading accepts the files np.save writes for float arrays:
//   - format versions 1.0, 2.0 and 3.0 (3.0 differs from 2.0 only in the header's text encoding,
//     which does not matter for the ASCII headers of float arrays);
//   - dtype '<f4' (float32) or '<f8' (float64); load_npy_matrix converts to float,
//     load_npy_matrix_d to double (exact for both);
//   - C order (row-major) or Fortran order (column-major);
//   - shape (rows, cols), or (n,): a 1-D array is loaded as an n x 1 column vector, the shape of
//     Eigen's VectorXf, so a vector of scales or a bias comes back as one column.
// The returned matrix is indexed as the NumPy array is: m(i, j) == a[i, j], whatever the order.
//
// Loading is strict, because a weight file that is silently misread poisons everything after it.
// Every failure throws vqlib::io_error naming the file and what is wrong: missing file, bad magic,
// unsupported version, a header that is not a valid dict or lacks a key, an unsupported dtype
// (named, e.g. '<i4' or the big-endian '>f4'), a shape that is not 1-D or 2-D, sizes that overflow,
// and data shorter than the shape needs (expected vs available bytes). Bytes after the data are
// an error too: np.save never writes them, so they mean the shape in the header is not the shape
// of the data. Sizes are checked against the file size before anything is allocated.
//
// Saving writes NPY 1.0, C order, '<f4' for float matrices and '<f8' for double matrices, with
// the 2-D shape of the matrix (a column vector is saved as (n, 1), not (n,)). The file is written
// atomically: the bytes go to a temporary file in the target's directory, which is renamed over
// the target only once complete, so a failure never leaves a partial file and never clobbers an
// existing one; the temporary file is removed on failure. (The rename makes the write atomic, not
// durable: there is no fsync, so a power loss right after saving may lose the new file.)
//
// NaN and Inf are stored and loaded as they are; checking finiteness is the caller's business
// (vqlib::check_finite).
#include <vqlib/core/error.hpp>
#include <vqlib/io/temporary_file.hpp>
#include <vqlib/core/types.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace vqlib {

static_assert(std::endian::native == std::endian::little,
              "vqlib: the NPY reader and writer assume a little-endian host");

namespace detail {

/// The element types the NPY reader understands.
enum class npy_dtype { float32, float64 };

/// What a validated NPY header says about the array that follows it.
struct npy_header {
    npy_dtype dtype = npy_dtype::float32;
    bool fortran_order = false;
    std::vector<std::uint64_t> shape;  // as written in the file: 1 or 2 dimensions
    Index rows = 0;                    // the matrix shape: (n,) is read as n x 1
    Index cols = 0;
    std::uint64_t data_offset = 0;     // bytes before the first element
    std::uint64_t data_bytes = 0;      // rows * cols * item size
};

inline constexpr char npy_magic[] = "\x93NUMPY";
inline constexpr std::size_t npy_magic_size = 6;
// np.load refuses headers over 10000 bytes by default; a megabyte leaves room for any hand-made
// file while keeping a corrupt length field from allocating gigabytes.
inline constexpr std::uint64_t npy_max_header_bytes = std::uint64_t{1} << 20;
// Data is converted or transposed through a buffer of about this many bytes.
inline constexpr std::size_t npy_chunk_bytes = std::size_t{1} << 20;

inline std::size_t npy_item_size(npy_dtype dtype) {
    return dtype == npy_dtype::float32 ? sizeof(float) : sizeof(double);
}

inline std::string npy_shape_string(const std::vector<std::uint64_t>& shape) {
    std::string s = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) {
        if (k > 0) s += ", ";
        s += std::to_string(shape[k]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
}

template <class... Parts>
[[noreturn]] void throw_npy_load_error(const std::filesystem::path& path, const Parts&... parts) {
    throw io_error(concat("cannot load NPY file '", path.string(), "': ", parts...));
}

/// Parses the Python dict literal of an NPY header, e.g.
///   {'descr': '<f4', 'fortran_order': False, 'shape': (256, 512), }
/// accepting exactly the grammar np.save produces (either quote style, any whitespace, an optional
/// trailing comma, Python 2's 'L' suffix on integers) and nothing else.
class npy_header_parser {
public:
    struct fields {
        std::string descr;
        bool fortran_order = false;
        std::vector<std::uint64_t> shape;
    };

    npy_header_parser(std::string_view text, const std::filesystem::path& path)
        : text_(text), path_(path) {}

    fields parse() {
        std::optional<std::string> descr;
        std::optional<bool> fortran_order;
        std::optional<std::vector<std::uint64_t>> shape;

        skip_space();
        expect('{');
        skip_space();
        while (peek() != '}') {
            const std::string key = parse_string("a key");
            skip_space();
            expect(':');
            skip_space();
            if (key == "descr") {
                check_unique(descr.has_value(), key);
                if (peek() == '[')
                    fail_dtype("a structured dtype (a list of fields); expected '<f4' (float32) "
                               "or '<f8' (float64)");
                descr = parse_string("the value of 'descr'");
            } else if (key == "fortran_order") {
                check_unique(fortran_order.has_value(), key);
                fortran_order = parse_bool(key);
            } else if (key == "shape") {
                check_unique(shape.has_value(), key);
                shape = parse_shape();
            } else {
                fail("unexpected key '", key, "': expected only 'descr', 'fortran_order' and "
                     "'shape'");
            }
            skip_space();
            if (peek() == ',') {
                ++pos_;
                skip_space();
            } else if (peek() != '}') {
                fail("expected ',' or '}' after the value of '", key, "'");
            }
        }
        ++pos_;  // the closing brace
        skip_space();
        if (pos_ != text_.size()) fail("unexpected text after the closing '}'");

        if (!descr) missing_key("descr");
        if (!fortran_order) missing_key("fortran_order");
        if (!shape) missing_key("shape");
        return fields{std::move(*descr), *fortran_order, std::move(*shape)};
    }

private:
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw_npy_load_error(path_, "header is not a valid dict: ", parts..., " (at offset ", pos_,
                             " of header ", quoted_header(), ")");
    }

    [[noreturn]] void fail_dtype(std::string_view what) const {
        throw_npy_load_error(path_, "unsupported dtype: ", what);
    }

    [[noreturn]] void missing_key(std::string_view key) const {
        throw_npy_load_error(path_, "header is missing the key '", key, "' (header ",
                             quoted_header(), ")");
    }

    // The header for a message: quoted, and cut short if a corrupt file made it long.
    std::string quoted_header() const {
        constexpr std::size_t shown = 160;
        if (text_.size() <= shown) return concat("'", text_, "'");
        return concat("'", text_.substr(0, shown), "'... (", text_.size(), " bytes)");
    }

    void check_unique(bool seen, const std::string& key) const {
        if (seen) fail("duplicate key '", key, "'");
    }

    char peek() const {
        if (pos_ >= text_.size()) fail("unexpected end of header");
        return text_[pos_];
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                       text_[pos_] == '\t' || text_[pos_] == '\r'))
            ++pos_;
    }

    void expect(char c) {
        if (peek() != c) fail("expected '", c, "'");
        ++pos_;
    }

    std::string parse_string(std::string_view what) {
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail("expected a quoted string as ", what);
        const std::size_t begin = ++pos_;
        const std::size_t end = text_.find(quote, begin);
        if (end == std::string_view::npos) fail("unterminated string");
        pos_ = end + 1;
        return std::string(text_.substr(begin, end - begin));
    }

    bool parse_bool(const std::string& key) {
        for (const auto& [word, value] : {std::pair{std::string_view("True"), true},
                                          std::pair{std::string_view("False"), false}}) {
            if (text_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                return value;
            }
        }
        fail("expected True or False as the value of '", key, "'");
    }

    std::vector<std::uint64_t> parse_shape() {
        std::vector<std::uint64_t> shape;
        expect('(');
        skip_space();
        bool trailing_comma = false;
        while (peek() != ')') {
            shape.push_back(parse_dimension());
            skip_space();
            trailing_comma = false;
            if (peek() == ',') {
                ++pos_;
                trailing_comma = true;
                skip_space();
            } else if (peek() != ')') {
                fail("expected ',' or ')' in 'shape'");
            }
        }
        ++pos_;
        // In Python "(5)" is the integer 5, not a tuple: np.load rejects it, and so do we.
        if (shape.size() == 1 && !trailing_comma) fail("'shape' is not a tuple");
        return shape;
    }

    std::uint64_t parse_dimension() {
        if (peek() == '-') fail("negative dimension in 'shape'");
        if (peek() < '0' || peek() > '9') fail("expected an integer in 'shape'");
        std::uint64_t value = 0;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
            const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
            if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
                throw_npy_load_error(path_, "shape dimension overflows 64 bits (header ",
                                     quoted_header(), ")");
            value = value * 10 + digit;
            ++pos_;
        }
        if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2's long integers
        return value;
    }

    std::string_view text_;
    const std::filesystem::path& path_;
    std::size_t pos_ = 0;
};

/// An open NPY file whose header has been read and validated against the file size; read_into
/// then reads the data into a matrix of the header's shape.
class npy_reader {
public:
    explicit npy_reader(const std::filesystem::path& path) : path_(path) {
        std::error_code ec;
        const auto status = std::filesystem::status(path, ec);
        if (status.type() == std::filesystem::file_type::not_found)
            throw_npy_load_error(path, "no such file");
        if (status.type() == std::filesystem::file_type::none)
            throw_npy_load_error(path, "cannot access the file: ", ec.message());
        if (!std::filesystem::is_regular_file(status))
            throw_npy_load_error(path, "not a regular file");
        in_.open(path, std::ios::binary);
        if (!in_) throw_npy_load_error(path, "cannot open the file for reading");
        in_.seekg(0, std::ios::end);
        const auto end = static_cast<std::streamoff>(in_.tellg());
        in_.seekg(0, std::ios::beg);
        if (end < 0 || !in_) throw_npy_load_error(path, "cannot determine the file size");
        file_size_ = static_cast<std::uint64_t>(end);
        read_header();
    }

    const npy_header& header() const { return header_; }

    /// Reads the data into `dst`, which must already have the header's rows x cols.
    template <class Scalar, int Options>
    void read_into(Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Options>> dst) {
        VQLIB_CHECK(dst.rows() == header_.rows && dst.cols() == header_.cols, shape_error,
                    "npy_reader::read_into: destination is ", dst.rows(), "x", dst.cols(),
                    ", expected ", header_.rows, "x", header_.cols);
        in_.seekg(static_cast<std::streamoff>(header_.data_offset), std::ios::beg);
        if (header_.dtype == npy_dtype::float32)
            read_converted<float>(dst);
        else
            read_converted<double>(dst);
    }

private:
    // A read of `count` bytes at the current position, failing with a message about `what`.
    void read_exactly(char* dst, std::uint64_t count, std::string_view what) {
        in_.read(dst, static_cast<std::streamsize>(count));
        const auto got = static_cast<std::uint64_t>(in_.gcount());
        if (got != count)
            throw_npy_load_error(path_, "truncated ", what, ": expected ", count,
                                 " bytes, read ", got);
    }

    void read_header() {
        if (file_size_ < npy_magic_size)
            throw_npy_load_error(path_, "bad magic: the file is ", file_size_,
                                 " bytes long, too short to be an NPY file");
        std::array<char, 8> prefix{};
        const std::uint64_t prefix_size = std::min<std::uint64_t>(file_size_, prefix.size());
        read_exactly(prefix.data(), prefix_size, "header");
        if (std::string_view(prefix.data(), npy_magic_size) !=
            std::string_view(npy_magic, npy_magic_size))
            throw_npy_load_error(path_, "bad magic: the file does not start with \\x93NUMPY, "
                                        "it is not an NPY file");
        if (prefix_size < prefix.size())
            throw_npy_load_error(path_, "truncated header: the file ends after ", file_size_,
                                 " bytes, inside the format version");

        const int major = static_cast<unsigned char>(prefix[6]);
        const int minor = static_cast<unsigned char>(prefix[7]);
        if ((major != 1 && major != 2 && major != 3) || minor != 0)
            throw_npy_load_error(path_, "unsupported NPY format version ", major, ".", minor,
                                 ": expected 1.0, 2.0 or 3.0");

        // Version 1.0 has a 2-byte header length, 2.0 and 3.0 a 4-byte one, little-endian.
        const std::uint64_t length_size = major == 1 ? 2 : 4;
        if (file_size_ < prefix.size() + length_size)
            throw_npy_load_error(path_, "truncated header: the file ends after ", file_size_,
                                 " bytes, inside the header length");
        std::array<unsigned char, 4> length_bytes{};
        read_exactly(reinterpret_cast<char*>(length_bytes.data()), length_size, "header");
        std::uint64_t header_length = 0;
        for (std::uint64_t k = length_size; k-- > 0;)
            header_length = header_length << 8 | length_bytes[k];

        const std::uint64_t header_offset = prefix.size() + length_size;
        if (header_length > npy_max_header_bytes)
            throw_npy_load_error(path_, "header length ", header_length,
                                 " bytes exceeds the limit of ", npy_max_header_bytes, " bytes");
        if (header_length > file_size_ - header_offset)
            throw_npy_load_error(path_, "truncated header: the header length is ", header_length,
                                 " bytes but only ", file_size_ - header_offset,
                                 " bytes follow");
        std::string text(static_cast<std::size_t>(header_length), '\0');
        read_exactly(text.data(), header_length, "header");

        auto fields = npy_header_parser(text, path_).parse();
        header_.data_offset = header_offset + header_length;
        header_.fortran_order = fields.fortran_order;
        header_.dtype = parse_dtype(fields.descr);
        header_.shape = std::move(fields.shape);
        check_shape_and_size();
    }

    npy_dtype parse_dtype(const std::string& descr) const {
        if (descr == "<f4") return npy_dtype::float32;
        if (descr == "<f8") return npy_dtype::float64;
        if (!descr.empty() && descr[0] == '>')
            throw_npy_load_error(path_, "unsupported dtype '", descr,
                                 "': big-endian data is not supported; expected '<f4' (float32) "
                                 "or '<f8' (float64)");
        throw_npy_load_error(path_, "unsupported dtype '", descr,
                             "': expected '<f4' (float32) or '<f8' (float64)");
    }

    void check_shape_and_size() {
        const auto& shape = header_.shape;
        const std::string shape_text = npy_shape_string(shape);
        if (shape.size() != 1 && shape.size() != 2)
            throw_npy_load_error(path_, "shape ", shape_text, " is ", shape.size(),
                                 "-D: expected a 2-D matrix or a 1-D vector");

        constexpr auto index_max = static_cast<std::uint64_t>(std::numeric_limits<Index>::max());
        const std::uint64_t rows = shape[0];
        const std::uint64_t cols = shape.size() == 2 ? shape[1] : 1;
        const std::uint64_t item = npy_item_size(header_.dtype);
        // Every count must fit an Eigen index and a std::size_t, and the byte count a stream
        // offset; index_max is the smallest of those limits on the platforms we build for.
        constexpr std::uint64_t limit =
            std::min<std::uint64_t>(index_max, std::numeric_limits<std::size_t>::max());
        const bool overflow = rows > limit || cols > limit ||
                              (rows != 0 && cols > limit / rows) ||
                              (rows * cols > limit / item);
        if (overflow)
            throw_npy_load_error(path_, "shape ", shape_text, " overflows: its size in bytes "
                                 "exceeds the largest supported size, ", limit);

        header_.rows = static_cast<Index>(rows);
        header_.cols = static_cast<Index>(cols);
        header_.data_bytes = rows * cols * item;
        const std::uint64_t available = file_size_ - header_.data_offset;
        const char* dtype_name = header_.dtype == npy_dtype::float32 ? "<f4" : "<f8";
        if (available < header_.data_bytes)
            throw_npy_load_error(path_, "truncated data: shape ", shape_text, " of ", dtype_name,
                                 " needs ", header_.data_bytes, " bytes but only ", available,
                                 " bytes follow the header");
        if (available > header_.data_bytes)
            throw_npy_load_error(path_, "trailing bytes: shape ", shape_text, " of ", dtype_name,
                                 " needs ", header_.data_bytes, " bytes but ", available,
                                 " bytes follow the header (", available - header_.data_bytes,
                                 " extra)");
    }

    // Reads elements stored as FileScalar into dst, converting and transposing as needed. When the
    // file already holds dst's exact bytes the data is read in place; otherwise it goes through a
    // bounded buffer, whole rows (C order) or whole columns (Fortran order) at a time.
    template <class FileScalar, class Scalar, int Options>
    void read_converted(
        Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Options>>& dst) {
        const Index rows = dst.rows();
        const Index cols = dst.cols();
        if (rows == 0 || cols == 0) return;

        // A single row or column is laid out the same in both orders.
        const bool file_row_major = !header_.fortran_order || rows == 1;
        const bool dst_row_major = (Options & Eigen::RowMajor) != 0 || rows == 1;
        if (std::is_same_v<FileScalar, Scalar> && (file_row_major == dst_row_major || cols == 1)) {
            read_exactly(reinterpret_cast<char*>(dst.data()), header_.data_bytes, "data");
            return;
        }

        using file_rows =
            Eigen::Matrix<FileScalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        using file_cols = Eigen::Matrix<FileScalar, Eigen::Dynamic, Eigen::Dynamic>;
        const Index line = file_row_major ? cols : rows;   // elements per stored line
        const Index lines = file_row_major ? rows : cols;  // stored lines
        const Index per_chunk = std::max<Index>(
            1, static_cast<Index>(npy_chunk_bytes / sizeof(FileScalar)) / line);
        std::vector<FileScalar> buffer(static_cast<std::size_t>(std::min(per_chunk, lines) * line));
        for (Index first = 0; first < lines; first += per_chunk) {
            const Index count = std::min(per_chunk, lines - first);
            read_exactly(reinterpret_cast<char*>(buffer.data()),
                         static_cast<std::uint64_t>(count * line) * sizeof(FileScalar), "data");
            if (file_row_major)
                dst.middleRows(first, count) =
                    Eigen::Map<const file_rows>(buffer.data(), count, cols).template cast<Scalar>();
            else
                dst.middleCols(first, count) =
                    Eigen::Map<const file_cols>(buffer.data(), rows, count).template cast<Scalar>();
        }
    }

    const std::filesystem::path& path_;
    std::ifstream in_;
    std::uint64_t file_size_ = 0;
    npy_header header_;
};

template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> load_npy(const std::filesystem::path& path) {
    npy_reader reader(path);
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> m(reader.header().rows,
                                                             reader.header().cols);
    reader.read_into(Eigen::Map<decltype(m)>(m.data(), m.rows(), m.cols()));
    return m;
}

/// The NPY 1.0 header for a C-order matrix: magic, version, length, and the dict padded with
/// spaces and a newline so the data starts at a multiple of 64 bytes, as np.save does.
inline std::string npy_header_bytes(std::string_view descr, Index rows, Index cols) {
    std::string dict = concat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", rows,
                              ", ", cols, "), }");
    const std::size_t prefix = npy_magic_size + 2 + 2;
    const std::size_t unpadded = prefix + dict.size() + 1;  // + the final newline
    dict.append((64 - unpadded % 64) % 64, ' ');
    dict += '\n';
    std::string bytes(npy_magic, npy_magic_size);
    bytes += '\x01';
    bytes += '\x00';
    bytes += static_cast<char>(dict.size() & 0xff);
    bytes += static_cast<char>(dict.size() >> 8);
    return bytes + dict;
}

template <class Scalar>
void save_npy(const std::filesystem::path& path,
              const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& m) {
    const std::string header =
        npy_header_bytes(std::is_same_v<Scalar, float> ? "<f4" : "<f8", m.rows(), m.cols());
    ::vqlib::io::detail::temporary_file file(path, "NPY");
    file.write(header.data(), header.size());
    if (m.size() != 0) {
        // C order: the column-major matrix goes out row by row, a bounded block at a time.
        using row_block = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        const Index per_chunk =
            std::max<Index>(1, static_cast<Index>(npy_chunk_bytes / sizeof(Scalar)) / m.cols());
        row_block block;
        for (Index first = 0; first < m.rows(); first += per_chunk) {
            block = m.middleRows(first, std::min(per_chunk, m.rows() - first));
            file.write(block.data(), static_cast<std::size_t>(block.size()) * sizeof(Scalar));
        }
    }
    file.commit();
}

}  // namespace detail

/// Loads a 2-D (or 1-D, as one column) '<f4' or '<f8' array as a float matrix with NumPy's
/// indexing: m(i, j) == a[i, j]. float64 data is rounded to float. Throws io_error.
inline MatrixXf load_npy_matrix(const std::filesystem::path& path) {
    return detail::load_npy<float>(path);
}

/// As load_npy_matrix, keeping double precision (float32 data converts exactly).
inline MatrixXd load_npy_matrix_d(const std::filesystem::path& path) {
    return detail::load_npy<double>(path);
}

/// Saves `m` as NPY 1.0, C order, dtype '<f4', shape (rows, cols); atomically (see above).
inline void save_npy(const std::filesystem::path& path, const Eigen::Ref<const MatrixXf>& m) {
    detail::save_npy<float>(path, m);
}

/// Saves `m` as NPY 1.0, C order, dtype '<f8', shape (rows, cols); atomically (see above).
inline void save_npy(const std::filesystem::path& path, const Eigen::Ref<const MatrixXd>& m) {
    detail::save_npy<double>(path, m);
}

}  // namespace vqlib
