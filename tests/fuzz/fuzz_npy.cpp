// libFuzzer target: the .npy reader (io/npy.hpp), which vqlib-quantize uses for Hessians.
//
// The input is used two ways:
//  1. as a whole file;
//  2. as edits to a valid file (a small float32 or float64 matrix, C or Fortran order, NPY 1.0 or
//     2.0, chosen by the first byte): each edit overwrites one byte of the header or the data, or
//     truncates or extends the file.
// Either way both loaders (float and double) must fail with a vqlib::io_error, or return a matrix
// that saves and loads back to the same values, with the double loader's values rounding to the
// float loader's. Anything else (a crash, a sanitizer report, another exception) is a bug.
//
// The reader works on files: each input is written to one temporary file of this process.
#include <vqlib/io/npy.hpp>

#include "edit_input.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using vqlib::fuzz::EditInput;

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_npy: %s\n", what);
        std::abort();
    }
}

const std::filesystem::path& scratch(const char* stem) {
    static const std::filesystem::path dir = std::filesystem::temp_directory_path();
    static std::map<std::string, std::filesystem::path> paths;
    auto& p = paths[stem];
    if (p.empty()) p = dir / (std::string("vqlib_fuzz_npy_") + stem + "_" + std::to_string(getpid()) + ".npy");
    return p;
}

void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// Same values, NaN equal to NaN.
template <class A, class B>
bool same_values(const A& a, const B& b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
    for (vqlib::Index j = 0; j < a.cols(); ++j)
        for (vqlib::Index i = 0; i < a.rows(); ++i) {
            const double x = static_cast<double>(a(i, j)), y = static_cast<double>(b(i, j));
            if (!(x == y || (std::isnan(x) && std::isnan(y)))) return false;
        }
    return true;
}

void check_file(std::span<const std::uint8_t> bytes) {
    const auto& path = scratch("input");
    write_file(path, bytes);
    vqlib::MatrixXf f;
    vqlib::MatrixXd d;
    bool f_ok = true, d_ok = true;
    try {
        f = vqlib::load_npy_matrix(path);
    } catch (const vqlib::io_error&) {
        f_ok = false;
    }
    try {
        d = vqlib::load_npy_matrix_d(path);
    } catch (const vqlib::io_error&) {
        d_ok = false;
    }
    require(f_ok == d_ok, "the float and double loaders disagree on whether the file is valid");
    if (!f_ok) return;
    require(same_values(f, vqlib::MatrixXf(d.cast<float>())), "the double loader's values do not round to the float loader's");
    const auto& again = scratch("again");
    vqlib::save_npy(again, d);
    require(same_values(vqlib::load_npy_matrix_d(again), d), "a loaded matrix does not save and load back the same");
}

/// A valid file chosen by `choice`, then edited by the rest of the input.
std::vector<std::uint8_t> edited(std::span<const std::uint8_t> input) {
    EditInput in(input);
    const std::uint8_t choice = in.byte();
    const bool f8 = choice & 1, fortran = choice & 2, v2 = choice & 4, vector = choice & 8;
    const std::size_t rows = 1 + (choice >> 4) % 4, cols = vector ? 0 : 1 + (choice >> 6);
    std::string header = std::string("{'descr': '<") + (f8 ? "f8" : "f4") + "', 'fortran_order': " +
                         (fortran ? "True" : "False") + ", 'shape': (" + std::to_string(rows) +
                         (vector ? ",), }" : ", " + std::to_string(cols) + "), }");
    const std::size_t prefix = v2 ? 12 : 10;
    while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::vector<std::uint8_t> file = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(v2 ? 2 : 1), 0};
    const std::uint32_t length = static_cast<std::uint32_t>(header.size());
    for (int k = 0; k < (v2 ? 4 : 2); ++k) file.push_back(static_cast<std::uint8_t>(length >> (8 * k)));
    file.insert(file.end(), header.begin(), header.end());
    const std::size_t values = rows * (vector ? 1 : cols), item = f8 ? 8 : 4;
    for (std::size_t k = 0; k < values * item; ++k) file.push_back(static_cast<std::uint8_t>(k * 37 % 61));
    while (in.has(3)) {
        const std::uint8_t op = in.byte() % 4;
        const std::size_t where = (static_cast<std::size_t>(in.byte()) << 8 | in.byte());
        if (op <= 1 && !file.empty()) file[where % file.size()] = in.byte();
        else if (op == 2) file.resize(where % (file.size() + 1));
        else file.insert(file.end(), where % 16, in.byte());
    }
    return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    check_file(input);
    check_file(edited(input));
    return 0;
}

#include "standalone_main.hpp"
