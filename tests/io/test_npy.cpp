// Tests of vqlib/io/npy.hpp: round trips, the reference fixtures, hand-written files in every
// supported variant, one malformed file per error, and the atomicity of save_npy.
#include <vqlib/io/npy.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#if defined(__unix__)
#include <csignal>
#include <sys/resource.h>
#endif

#ifndef VQLIB_FIXTURES_DIR
#error "VQLIB_FIXTURES_DIR (tests/data) must be defined by the build (tests/CMakeLists.txt)"
#endif

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

/// A temporary directory for this file's tests (support/files.hpp).
class temp_dir : public vqlib::test::temp_dir {
public:
    temp_dir() : vqlib::test::temp_dir("vqlib_test_npy_") {}
};

using vqlib::test::read_bytes;
using vqlib::test::write_bytes;

template <class T>
std::string raw_bytes(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

/// An NPY file built by hand, independently of save_npy: magic, version, header length
/// (2 bytes for version 1, 4 otherwise), the dict padded to 64 bytes, then `payload`.
std::string npy_file(const std::string& dict, const std::string& payload, int major = 1) {
    const std::size_t length_size = major == 1 ? 2 : 4;
    std::string header = dict;
    const std::size_t unpadded = 8 + length_size + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';
    std::string bytes = "\x93NUMPY";
    bytes += static_cast<char>(major);
    bytes += '\0';
    for (std::size_t k = 0; k < length_size; ++k)
        bytes += static_cast<char>((header.size() >> (8 * k)) & 0xff);
    return bytes + header + payload;
}

std::string dict_of(const std::string& descr, bool fortran, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
           ", 'shape': " + shape + ", }";
}

vqlib::MatrixXf random_matrix(vqlib::Index rows, vqlib::Index cols, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    vqlib::MatrixXf m(rows, cols);
    for (vqlib::Index k = 0; k < m.size(); ++k) m.data()[k] = normal(rng);
    return m;
}

std::string message_of_load(const fs::path& path) {
    try {
        vqlib::load_npy_matrix(path);
    } catch (const vqlib::io_error& e) {
        return e.what();
    }
    return "(no exception)";
}

}  // namespace

// Asserts that loading `path` throws io_error, with both loaders, and that the message names the
// file and contains `keyword`.
#define CHECK_LOAD_FAILS(path, keyword)                                                     \
    do {                                                                                    \
        CHECK_THROWS_AS(vqlib::load_npy_matrix(path), vqlib::io_error);                     \
        CHECK_THROWS_AS(vqlib::load_npy_matrix_d(path), vqlib::io_error);                   \
        const std::string message_ = message_of_load(path);                                \
        CHECK_THAT(message_, Contains((path).string()) && Contains(keyword));               \
    } while (false)

TEST_CASE("io/npy: save then load round-trips float matrices of any shape", "[io][npy]") {
    temp_dir dir;
    const std::vector<std::pair<vqlib::Index, vqlib::Index>> shapes = {
        {3, 5}, {7, 2}, {1, 9}, {9, 1}, {1, 1}, {0, 4}, {4, 0}, {0, 0}, {600, 700}};
    unsigned seed = 1;
    for (const auto& [rows, cols] : shapes) {
        CAPTURE(rows, cols);
        const vqlib::MatrixXf m = random_matrix(rows, cols, seed++);
        const fs::path path = dir / "m.npy";
        vqlib::save_npy(path, m);
        const vqlib::MatrixXf loaded = vqlib::load_npy_matrix(path);
        REQUIRE(loaded.rows() == rows);
        REQUIRE(loaded.cols() == cols);
        CHECK(loaded == m);
        // The header is padded so that the data starts at a multiple of 64 bytes, as np.save does.
        CHECK((fs::file_size(path) - static_cast<std::uintmax_t>(4 * m.size())) % 64 == 0);
    }
    CHECK(dir.entries() == std::vector<std::string>{"m.npy"});
}

TEST_CASE("io/npy: save writes a NumPy 1.0 C-order float32 file", "[io][npy]") {
    temp_dir dir;
    const vqlib::MatrixXf m = random_matrix(3, 4, 7);
    const fs::path path = dir / "m.npy";
    vqlib::save_npy(path, m);

    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() > 10);
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    const std::size_t header_length = static_cast<unsigned char>(bytes[8]) |
                                      static_cast<std::size_t>(static_cast<unsigned char>(bytes[9]))
                                          << 8;
    const std::string header = bytes.substr(10, header_length);
    CHECK_THAT(header, Contains("'descr': '<f4'") && Contains("'fortran_order': False") &&
                           Contains("'shape': (3, 4)"));
    CHECK(header.back() == '\n');
    REQUIRE(bytes.size() == 10 + header_length + 4 * 12);
    for (vqlib::Index i = 0; i < 3; ++i)
        for (vqlib::Index j = 0; j < 4; ++j) {
            float value = 0;
            std::memcpy(&value, bytes.data() + 10 + header_length + 4 * (i * 4 + j), 4);
            CHECK(value == m(i, j));
        }
}

TEST_CASE("io/npy: double matrices round-trip through '<f8' at full precision", "[io][npy]") {
    temp_dir dir;
    const vqlib::MatrixXd m = random_matrix(5, 3, 11).cast<double>() / 3.0;
    const fs::path path = dir / "d.npy";
    vqlib::save_npy(path, m);
    CHECK_THAT(read_bytes(path), Contains("'<f8'"));
    CHECK(vqlib::load_npy_matrix_d(path) == m);
    CHECK(vqlib::load_npy_matrix(path) == m.cast<float>());
}

TEST_CASE("io/npy: save accepts blocks, row-major matrices and expressions", "[io][npy]") {
    temp_dir dir;
    const vqlib::MatrixXf m = random_matrix(6, 8, 3);
    const fs::path path = dir / "b.npy";

    vqlib::save_npy(path, m.block(1, 2, 4, 5));
    CHECK(vqlib::load_npy_matrix(path) == m.block(1, 2, 4, 5));

    const vqlib::RowMajorMatrixXf row_major = m;
    vqlib::save_npy(path, row_major);
    CHECK(vqlib::load_npy_matrix(path) == m);

    vqlib::save_npy(path, m.transpose() * 2.0f);
    CHECK(vqlib::load_npy_matrix(path) == m.transpose() * 2.0f);
}

TEST_CASE("io/npy: loads the reference fixture W.npy with NumPy's indexing", "[io][npy]") {
    const fs::path layer = fs::path(VQLIB_FIXTURES_DIR) / "reference" / "layer_256x512";
    const fs::path path = layer / "W.npy";
    const vqlib::MatrixXf w = vqlib::load_npy_matrix(path);
    REQUIRE(w.rows() == 256);
    REQUIRE(w.cols() == 512);

    // Read the elements from the raw bytes: a C-order float32 array, element (i, j) at
    // data offset + 4 * (i * 512 + j).
    const std::string bytes = read_bytes(path);
    const std::size_t header_length = static_cast<unsigned char>(bytes[8]) |
                                      static_cast<std::size_t>(static_cast<unsigned char>(bytes[9]))
                                          << 8;
    const std::size_t offset = 10 + header_length;
    REQUIRE(bytes.size() == offset + 4 * 256 * 512);
    const std::vector<std::pair<int, int>> spots = {{0, 0},     {0, 1},     {1, 0},  {0, 511},
                                                    {255, 0},   {255, 511}, {17, 300},
                                                    {128, 256}, {200, 3}};
    for (const auto& [i, j] : spots) {
        const std::size_t element = std::size_t(i) * 512 + std::size_t(j);
        float expected = 0;
        std::memcpy(&expected, bytes.data() + offset + 4 * element, 4);
        CAPTURE(i, j);
        CHECK(w(i, j) == expected);
    }
    CHECK(w.allFinite());
    CHECK(vqlib::load_npy_matrix_d(path) == w.cast<double>());

    CHECK(vqlib::load_npy_matrix(layer / "X.npy").rows() == 512);
    CHECK(vqlib::load_npy_matrix(layer / "H.npy").cols() == 512);
    int quantized = 0;
    for (const auto& entry : fs::directory_iterator(layer)) {
        if (!fs::exists(entry.path() / "Q.npy")) continue;
        const vqlib::MatrixXf q = vqlib::load_npy_matrix(entry.path() / "Q.npy");
        CAPTURE(entry.path().string());
        CHECK(q.rows() == 256);
        CHECK(q.cols() == 512);
        ++quantized;
    }
    CHECK(quantized > 0);
}

TEST_CASE("io/npy: loads Fortran-order files", "[io][npy]") {
    temp_dir dir;
    const fs::path path = dir / "f.npy";
    // The 2 x 3 array [[1, 2, 3], [4, 5, 6]] stored column by column.
    write_bytes(path, npy_file(dict_of("<f4", true, "(2, 3)"),
                               raw_bytes(std::vector<float>{1, 4, 2, 5, 3, 6})));
    vqlib::MatrixXf expected(2, 3);
    expected << 1, 2, 3, 4, 5, 6;
    CHECK(vqlib::load_npy_matrix(path) == expected);
    CHECK(vqlib::load_npy_matrix_d(path) == expected.cast<double>());

    write_bytes(path, npy_file(dict_of("<f8", true, "(2, 3)"),
                               raw_bytes(std::vector<double>{1, 4, 2, 5, 3, 6})));
    CHECK(vqlib::load_npy_matrix(path) == expected);
    CHECK(vqlib::load_npy_matrix_d(path) == expected.cast<double>());

    // Large enough to be read in several chunks.
    const vqlib::MatrixXf big = random_matrix(700, 600, 5);
    write_bytes(path, npy_file(dict_of("<f4", true, "(700, 600)"),
                               std::string(reinterpret_cast<const char*>(big.data()),
                                           4 * static_cast<std::size_t>(big.size()))));
    CHECK(vqlib::load_npy_matrix(path) == big);
}

TEST_CASE("io/npy: '<f8' files load as float and, exactly, as double", "[io][npy]") {
    temp_dir dir;
    const fs::path path = dir / "d.npy";
    const std::vector<double> values = {0.1, -2.5, 1e-30, 3.0 + 1e-12, 7, 1.0 / 3.0};
    write_bytes(path, npy_file(dict_of("<f8", false, "(2, 3)"), raw_bytes(values)));
    const vqlib::MatrixXd d = vqlib::load_npy_matrix_d(path);
    const vqlib::MatrixXf f = vqlib::load_npy_matrix(path);
    REQUIRE(d.rows() == 2);
    REQUIRE(d.cols() == 3);
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) {
            CHECK(d(i, j) == values[std::size_t(i * 3 + j)]);
            CHECK(f(i, j) == static_cast<float>(values[std::size_t(i * 3 + j)]));
        }
}

TEST_CASE("io/npy: format versions 2.0 and 3.0 are read", "[io][npy]") {
    temp_dir dir;
    const fs::path path = dir / "v.npy";
    vqlib::MatrixXf expected(2, 2);
    expected << 1, 2, 3, 4;
    for (int major : {2, 3}) {
        CAPTURE(major);
        write_bytes(path, npy_file(dict_of("<f4", false, "(2, 2)"),
                                   raw_bytes(std::vector<float>{1, 2, 3, 4}), major));
        CHECK(vqlib::load_npy_matrix(path) == expected);
    }
}

TEST_CASE("io/npy: 1-D arrays load as column vectors", "[io][npy]") {
    temp_dir dir;
    const fs::path path = dir / "v.npy";
    write_bytes(path, npy_file(dict_of("<f4", false, "(4,)"),
                               raw_bytes(std::vector<float>{1, 2, 3, 4})));
    const vqlib::MatrixXf v = vqlib::load_npy_matrix(path);
    REQUIRE(v.rows() == 4);
    REQUIRE(v.cols() == 1);
    CHECK(v == vqlib::VectorXf::LinSpaced(4, 1, 4));

    write_bytes(path, npy_file(dict_of("<f8", false, "(0,)"), ""));
    const vqlib::MatrixXd empty = vqlib::load_npy_matrix_d(path);
    CHECK(empty.rows() == 0);
    CHECK(empty.cols() == 1);
}

TEST_CASE("io/npy: header spellings that np.save and np.load accept", "[io][npy]") {
    temp_dir dir;
    const fs::path path = dir / "h.npy";
    const std::string payload = raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6});
    vqlib::MatrixXf expected(2, 3);
    expected << 1, 2, 3, 4, 5, 6;
    const std::vector<std::string> dicts = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}",
        "{'shape': (2,3), 'fortran_order': False, 'descr': '<f4',}",
        "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
    };
    for (const auto& dict : dicts) {
        CAPTURE(dict);
        write_bytes(path, npy_file(dict, payload));
        CHECK(vqlib::load_npy_matrix(path) == expected);
    }
}

TEST_CASE("io/npy: missing, empty and non-NPY files are io_errors", "[io][npy][errors]") {
    temp_dir dir;
    CHECK_LOAD_FAILS(dir / "missing.npy", "no such file");
    CHECK_LOAD_FAILS(dir.path(), "not a regular file");

    write_bytes(dir / "empty.npy", "");
    CHECK_LOAD_FAILS(dir / "empty.npy", "bad magic");

    std::string wrong = npy_file(dict_of("<f4", false, "(1, 1)"), raw_bytes(std::vector<float>{1}));
    wrong[5] = 'Z';
    write_bytes(dir / "magic.npy", wrong);
    CHECK_LOAD_FAILS(dir / "magic.npy", "bad magic");

    write_bytes(dir / "text.npy", "hello, this is not an array\n");
    CHECK_LOAD_FAILS(dir / "text.npy", "bad magic");
}

TEST_CASE("io/npy: unsupported format versions are io_errors", "[io][npy][errors]") {
    temp_dir dir;
    const fs::path path = dir / "version.npy";
    for (const auto& [major, minor] : std::vector<std::pair<char, char>>{{4, 0}, {1, 1}, {0, 0}}) {
        std::string bytes =
            npy_file(dict_of("<f4", false, "(1, 1)"), raw_bytes(std::vector<float>{1}));
        bytes[6] = major;
        bytes[7] = minor;
        write_bytes(path, bytes);
        CHECK_LOAD_FAILS(path, "unsupported NPY format version " + std::to_string(major) + "." +
                                   std::to_string(minor));
    }
}

TEST_CASE("io/npy: truncated headers are io_errors", "[io][npy][errors]") {
    temp_dir dir;
    const fs::path path = dir / "cut.npy";
    const std::string whole =
        npy_file(dict_of("<f4", false, "(2, 2)"), raw_bytes(std::vector<float>{1, 2, 3, 4}));
    for (std::size_t size : {std::size_t{7}, std::size_t{9}, std::size_t{40}, std::size_t{127}}) {
        CAPTURE(size);
        write_bytes(path, whole.substr(0, size));
        CHECK_LOAD_FAILS(path, "truncated header");
    }
}

TEST_CASE("io/npy: headers that are not a valid dict are io_errors", "[io][npy][errors]") {
    temp_dir dir;
    const fs::path path = dir / "dict.npy";
    const std::string payload = raw_bytes(std::vector<float>{1, 2});
    const std::vector<std::string> dicts = {
        "[1, 2]",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), ",
        "{'descr': '<f4, 'fortran_order': False, 'shape': (1, 2)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (1, 2)}",
        "{'descr': '<f4', 'fortran_order': false, 'shape': (1, 2)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [1, 2]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -2)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2)} junk",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1, 2)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), 'extra': 1}",
    };
    for (const auto& dict : dicts) {
        CAPTURE(dict);
        write_bytes(path, npy_file(dict, payload));
        CHECK_LOAD_FAILS(path, "header is not a valid dict");
    }

    write_bytes(path, npy_file("{'descr': '<f4', 'fortran_order': False}", payload));
    CHECK_LOAD_FAILS(path, "missing the key 'shape'");
    write_bytes(path, npy_file("{'fortran_order': False, 'shape': (1, 2)}", payload));
    CHECK_LOAD_FAILS(path, "missing the key 'descr'");
    write_bytes(path, npy_file("{'descr': '<f4', 'shape': (1, 2)}", payload));
    CHECK_LOAD_FAILS(path, "missing the key 'fortran_order'");
}

TEST_CASE("io/npy: unsupported dtypes are io_errors that name the dtype", "[io][npy][errors]") {
    temp_dir dir;
    const fs::path path = dir / "dtype.npy";
    const std::string payload = raw_bytes(std::vector<float>{1, 2});

    write_bytes(path, npy_file(dict_of("<i4", false, "(1, 2)"), payload));
    CHECK_LOAD_FAILS(path, "unsupported dtype '<i4'");
    write_bytes(path, npy_file(dict_of(">f4", false, "(1, 2)"), payload));
    CHECK_LOAD_FAILS(path, "unsupported dtype '>f4': big-endian");
    write_bytes(path, npy_file(dict_of(">f8", false, "(1, 1)"), payload));
    CHECK_LOAD_FAILS(path, "big-endian");
    write_bytes(path, npy_file(dict_of("<f2", false, "(1, 2)"), payload));
    CHECK_LOAD_FAILS(path, "unsupported dtype '<f2'");
    write_bytes(path, npy_file("{'descr': [('x', '<f4')], 'fortran_order': False, "
                               "'shape': (2,)}",
                               payload));
    CHECK_LOAD_FAILS(path, "structured dtype");
}

TEST_CASE("io/npy: shapes that are not 1-D or 2-D, or that overflow, are io_errors",
          "[io][npy][errors]") {
    temp_dir dir;
    const fs::path path = dir / "shape.npy";
    const std::string payload = raw_bytes(std::vector<float>(24, 1.0f));

    write_bytes(path, npy_file(dict_of("<f4", false, "(2, 3, 4)"), payload));
    CHECK_LOAD_FAILS(path, "shape (2, 3, 4) is 3-D");
    write_bytes(path, npy_file(dict_of("<f4", false, "()"), raw_bytes(std::vector<float>{1})));
    CHECK_LOAD_FAILS(path, "is 0-D");
    write_bytes(path, npy_file(dict_of("<f4", false, "(4294967296, 4294967296)"), payload));
    CHECK_LOAD_FAILS(path, "overflows");
    write_bytes(path, npy_file(dict_of("<f8", false, "(9223372036854775807,)"), payload));
    CHECK_LOAD_FAILS(path, "overflows");
    write_bytes(path, npy_file(dict_of("<f4", false, "(1, 99999999999999999999)"), payload));
    CHECK_LOAD_FAILS(path, "overflows");
}

TEST_CASE("io/npy: data shorter or longer than the shape are io_errors", "[io][npy][errors]") {
    temp_dir dir;
    const fs::path path = dir / "data.npy";

    // A shape that claims far more than the file holds fails before anything is allocated.
    write_bytes(path, npy_file(dict_of("<f4", false, "(100000, 100000)"),
                               raw_bytes(std::vector<float>{1, 2})));
    CHECK_LOAD_FAILS(path, "truncated data");
    CHECK_LOAD_FAILS(path, "needs 40000000000 bytes but only 8 bytes follow");

    // A valid file missing its last bytes.
    vqlib::save_npy(path, random_matrix(8, 8, 2));
    const std::string whole = read_bytes(path);
    write_bytes(path, whole.substr(0, whole.size() - 3));
    CHECK_LOAD_FAILS(path, "truncated data");
    CHECK_LOAD_FAILS(path, "needs 256 bytes but only 253 bytes follow");

    write_bytes(path, whole + "xyz");
    CHECK_LOAD_FAILS(path, "trailing bytes");
    CHECK_LOAD_FAILS(path, "(3 extra)");
}

TEST_CASE("io/npy: saving into a missing directory throws and creates nothing", "[io][npy]") {
    temp_dir dir;
    const fs::path path = dir / "no_such_dir" / "m.npy";
    const vqlib::MatrixXf m = random_matrix(2, 2, 1);
    CHECK_THROWS_AS(vqlib::save_npy(path, m), vqlib::io_error);
    try {
        vqlib::save_npy(path, m);
    } catch (const vqlib::io_error& e) {
        CHECK_THAT(std::string(e.what()), Contains(path.string()) && Contains("temporary file"));
    }
    CHECK_FALSE(fs::exists(path.parent_path()));
    CHECK(dir.entries().empty());

    CHECK_THROWS_AS(vqlib::save_npy("", m), vqlib::io_error);
}

TEST_CASE("io/npy: a failed save leaves the existing target and no temporary file",
          "[io][npy]") {
    temp_dir dir;
    const vqlib::MatrixXf m = random_matrix(4, 3, 9);

    SECTION("the target is a directory") {
        const fs::path path = dir / "target.npy";
        fs::create_directory(path);
        write_bytes(path / "inside.txt", "keep me");
        CHECK_THROWS_AS(vqlib::save_npy(path, m), vqlib::io_error);
        try {
            vqlib::save_npy(path, m);
        } catch (const vqlib::io_error& e) {
            CHECK_THAT(std::string(e.what()), Contains(path.string()) && Contains("rename"));
        }
        CHECK(fs::is_directory(path));
        CHECK(read_bytes(path / "inside.txt") == "keep me");
        CHECK(dir.entries() == std::vector<std::string>{"target.npy"});
    }

    SECTION("overwriting a file replaces it whole") {
        const fs::path path = dir / "target.npy";
        vqlib::save_npy(path, m);
        const vqlib::MatrixXf other = random_matrix(5, 6, 10);
        vqlib::save_npy(path, other);
        CHECK(vqlib::load_npy_matrix(path) == other);
        CHECK(dir.entries() == std::vector<std::string>{"target.npy"});
    }

#if defined(__unix__)
    SECTION("a write that fails half way does not clobber the existing file") {
        const fs::path path = dir / "target.npy";
        vqlib::save_npy(path, m);
        const std::string before = read_bytes(path);

        // Limit the size of the files this process may write, so the write of a large matrix
        // fails part way with EFBIG (SIGXFSZ ignored, so the write returns an error instead).
        struct file_size_limit {
            rlimit saved{};
            void (*saved_handler)(int) = nullptr;
            explicit file_size_limit(rlim_t bytes) {
                saved_handler = std::signal(SIGXFSZ, SIG_IGN);
                getrlimit(RLIMIT_FSIZE, &saved);
                rlimit limited = saved;
                limited.rlim_cur = bytes;
                setrlimit(RLIMIT_FSIZE, &limited);
            }
            ~file_size_limit() {
                setrlimit(RLIMIT_FSIZE, &saved);
                std::signal(SIGXFSZ, saved_handler);
            }
        };
        {
            const file_size_limit limit(64 * 1024);
            const vqlib::MatrixXf big = random_matrix(300, 300, 4);
            CHECK_THROWS_AS(vqlib::save_npy(path, big), vqlib::io_error);
            try {
                vqlib::save_npy(path, big);
            } catch (const vqlib::io_error& e) {
                CHECK_THAT(std::string(e.what()), Contains(path.string()) && Contains("failed"));
            }
        }
        CHECK(read_bytes(path) == before);
        CHECK(vqlib::load_npy_matrix(path) == m);
        CHECK(dir.entries() == std::vector<std::string>{"target.npy"});
    }
#endif
}
