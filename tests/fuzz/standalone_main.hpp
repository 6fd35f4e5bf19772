#pragma once
// Included at the end of each fuzz target. Built with -DVQLIB_FUZZ_STANDALONE instead of
// -fsanitize=fuzzer, the target gets a main that runs each file named on the command line
// through LLVMFuzzerTestOneInput once (to replay a crash or a corpus without libFuzzer).
#if defined(VQLIB_FUZZ_STANDALONE)
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
    for (int k = 1; k < argc; ++k) {
        std::ifstream in(argv[k], std::ios::binary);
        const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    return 0;
}
#endif
