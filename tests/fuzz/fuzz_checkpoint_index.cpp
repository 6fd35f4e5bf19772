// libFuzzer target: arbitrary bytes parsed as a model.safetensors.index.json.
//
// A parse either fails with a vqlib::io_error or yields an index whose every shard name is a
// plain .safetensors file name (no directory part: a hostile index must not reach outside its
// directory) and whose weight map is not empty. Anything else (a crash, a sanitizer report,
// another exception) is a bug.
//
// Built with -DVQLIB_FUZZ_STANDALONE instead of -fsanitize=fuzzer, it gets a main that runs
// each file named on the command line through the target once (for replaying a corpus).
#include <vqlib/io/model_checkpoint.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const vqlib::io::CheckpointIndex index = vqlib::io::parse_checkpoint_index(text, "fuzz input");
        if (index.weight_map.empty()) std::abort();
        for (const auto& [name, file] : index.weight_map) {
            if (name.empty() || file.find('/') != std::string::npos || file == "." || file == ".." ||
                !file.ends_with(".safetensors"))
                std::abort();
        }
    } catch (const vqlib::io_error&) {
    }
    return 0;
}

#include "standalone_main.hpp"
