#pragma once
// Writing a file all or nothing: the writers of io/ (NPY, safetensors, VPTQ checkpoints) write to
// a temporary file beside the target and rename it over the target once complete, so a failure
// never leaves a half-written file behind.
#include <vqlib/core/error.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <ios>
#include <random>
#include <string>
#include <system_error>
#include <utility>

namespace vqlib::io::detail {

/// A temporary file beside the target, removed on destruction unless committed by renaming it
/// over the target. Errors throw io_error("cannot save <format> file '<target>': ...").
class temporary_file {
public:
    temporary_file(std::filesystem::path target, std::string format)
        : target_(std::move(target)), format_(std::move(format)) {
        if (target_.filename().empty() || target_.filename() == "." || target_.filename() == "..")
            fail("the path does not name a file");
        std::random_device entropy;
        std::mt19937_64 rng((std::uint64_t{entropy()} << 32) ^ entropy());
        // "x" (C11) creates exclusively, so two writers never share a temporary file.
        for (int attempt = 0; attempt < 16 && file_ == nullptr; ++attempt) {
            path_ = target_.parent_path() /
                    ::vqlib::detail::concat(".", target_.filename().string(), ".tmp", std::hex,
                                            rng());
            errno = 0;
            file_ = std::fopen(path_.c_str(), "wbx");
            if (file_ == nullptr && errno != EEXIST) break;
        }
        if (file_ == nullptr)
            fail("cannot create the temporary file '", path_.string(), "': ",
                 std::generic_category().message(errno));
    }

    temporary_file(const temporary_file&) = delete;
    temporary_file& operator=(const temporary_file&) = delete;

    ~temporary_file() {
        if (file_ != nullptr) std::fclose(file_);
        if (!committed_) {
            std::error_code ignored;
            std::filesystem::remove(path_, ignored);
        }
    }

    void write(const void* data, std::size_t bytes) {
        if (bytes != 0 && std::fwrite(data, 1, bytes, file_) != bytes)
            fail("writing the temporary file '", path_.string(), "' failed: ",
                 std::generic_category().message(errno));
    }

    void commit() {
        const int flushed = std::fflush(file_);
        const int closed = std::fclose(file_);
        file_ = nullptr;
        if (flushed != 0 || closed != 0)
            fail("writing the temporary file '", path_.string(), "' failed: ",
                 std::generic_category().message(errno));
        std::error_code ec;
        std::filesystem::rename(path_, target_, ec);
        if (ec) fail("cannot rename the temporary file '", path_.string(), "' over it: ", ec.message());
        committed_ = true;
    }

private:
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw io_error(::vqlib::detail::concat("cannot save ", format_, " file '", target_.string(),
                                               "': ", parts...));
    }

    std::filesystem::path target_;
    std::string format_;
    std::filesystem::path path_;
    std::FILE* file_ = nullptr;
    bool committed_ = false;
};

}  // namespace vqlib::io::detail
