// libFuzzer target: arbitrary bytes parsed as a safetensors file.
//
// A parse either fails with a vqlib::error or yields a file that must survive every accessor,
// serialize without complaint, and re-parse to the same tensors and metadata, with
// serialization deterministic. Anything else (a crash, a sanitizer report, another exception,
// a mismatch) is a bug.
//
// Every input is parsed as it is. An input that starts with '{' is also framed, so that
// mutations of the JSON need not keep the length field in step: the bytes up to the first NUL
// become the header, those after it the data buffer, and the 8-byte length is prepended.
//
// Build and run (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I include
//           -I /usr/include/eigen3 tests/fuzz/fuzz_safetensors.cpp -o /tmp/fzs
//   /tmp/fzs -max_total_time=30
//
// Built with -DVQLIB_FUZZ_STANDALONE instead of -fsanitize=fuzzer, it gets a main that runs
// each file named on the command line through the target once (for replaying a corpus).
#include <vqlib/io/safetensors.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_safetensors: %s\n", what);
        std::abort();
    }
}

void check_one(std::span<const std::uint8_t> input) {
    vqlib::io::SafetensorsFile file;
    try {
        file = vqlib::io::parse_safetensors(input, "fuzz");
    } catch (const vqlib::error&) {
        return;  // rejected: fine, as long as it was a vqlib error
    }

    for (const auto& [name, tensor] : file.tensors) {
        require(!name.empty() && name != "__metadata__", "invalid tensor name accepted");
        tensor.check();
        const std::vector<float> values = tensor.to_floats();
        require(values.size() == static_cast<std::size_t>(tensor.numel()), "element count");
        if (tensor.shape.size() == 1 || tensor.shape.size() == 2) {
            const vqlib::MatrixXf m = tensor.to_matrix();
            require(static_cast<std::size_t>(m.size()) == values.size(), "matrix size");
        }
        if (vqlib::io::dtype_size(tensor.dtype) == 2)
            require(tensor.bits_as<std::uint16_t>().size() == values.size(), "bits_as size");
    }

    const std::vector<std::uint8_t> bytes = vqlib::io::serialize_safetensors(file);
    const vqlib::io::SafetensorsFile again = vqlib::io::parse_safetensors(bytes, "reserialized");
    require(again == file, "re-parsed file differs");
    require(vqlib::io::serialize_safetensors(again) == bytes, "serialization not deterministic");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check_one(std::span<const std::uint8_t>(data, size));
    if (size > 0 && data[0] == '{') {
        const std::uint8_t* nul = std::find(data, data + size, std::uint8_t{0});
        const auto header = static_cast<std::uint64_t>(nul - data);
        std::vector<std::uint8_t> framed(8);
        for (std::size_t k = 0; k < 8; ++k)
            framed[k] = static_cast<std::uint8_t>(header >> (8 * k));
        framed.insert(framed.end(), data, nul);
        if (nul != data + size) framed.insert(framed.end(), nul + 1, data + size);
        check_one(framed);
    }
    return 0;
}

#include "standalone_main.hpp"
