#pragma once
// Shared by the edit-based fuzz targets: their input read as the operands of edits.
#include <cstddef>
#include <cstdint>
#include <span>

namespace vqlib::fuzz {

/// A fuzz input read as the operands of edits: bytes, and words (4 bytes, big-endian, as a
/// signed 32-bit value); zeros past the end.
class EditInput {
public:
    explicit EditInput(std::span<const std::uint8_t> input) : input_(input) {}
    std::uint8_t byte() { return at_ < input_.size() ? input_[at_++] : 0; }
    std::int64_t word() {
        std::int64_t v = 0;
        for (int k = 0; k < 4; ++k) v = (v << 8) | byte();
        return v - (std::int64_t{1} << 31);
    }
    /// Whether at least `n` bytes are left.
    bool has(std::size_t n) const { return at_ + n <= input_.size(); }

private:
    std::span<const std::uint8_t> input_;
    std::size_t at_ = 0;
};

}  // namespace vqlib::fuzz
