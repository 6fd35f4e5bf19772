#pragma once
// Test support: paths to the test data (tests/data) and the values the conformance tests read there.
#include <vqlib/core/error.hpp>
#include <vqlib/io/npy.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#ifndef VQLIB_FIXTURES_DIR
#error "VQLIB_FIXTURES_DIR (tests/data) must be defined by the build (tests/CMakeLists.txt)"
#endif

namespace vqlib::test {

inline std::filesystem::path fixtures_dir() { return std::filesystem::path(VQLIB_FIXTURES_DIR); }

inline std::filesystem::path reference_layer_dir() {
    return fixtures_dir() / "reference" / "layer_256x512";
}

/// Reads a numeric field of a flat meta.json ("key": number).
inline double meta_number(const std::filesystem::path& meta, const std::string& key) {
    std::ifstream in(meta);
    if (!in) throw io_error("cannot open " + meta.string());
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const std::regex pattern("\"" + key + "\"\\s*:\\s*(-?[0-9.eE+-]+)");
    std::smatch m;
    if (!std::regex_search(s, m, pattern)) throw io_error(meta.string() + " has no number " + key);
    return std::stod(m[1].str());
}

/// The reference layer's W and H (W.npy, H.npy), loaded once per test executable.
struct FixtureLayer {
    MatrixXf W;
    MatrixXf H;
};

inline const FixtureLayer& fixture_layer() {
    static const FixtureLayer layer{load_npy_matrix(reference_layer_dir() / "W.npy"),
                                    load_npy_matrix(reference_layer_dir() / "H.npy")};
    return layer;
}

/// The reference's proxy loss of a configuration folder of the reference layer.
inline double reference_loss(const std::string& folder) {
    return meta_number(reference_layer_dir() / folder / "meta.json", "proxy_loss");
}

}  // namespace vqlib::test
