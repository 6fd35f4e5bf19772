#pragma once
// VPTQ's bit-packed index format: merged (main, residual) codes packed into rows of 32-bit words.
//
// The format (docs/vptq.md). A layer's indices tensor has the shape
// [groups G, rows R, words W] and dtype int32, each element holding the 32 bits of one uint32
// word. For every vector the main index `idx` (b = index_bits bits) and the residual index
// `res` (b_r = residual_bits bits, 0 without a residual codebook) are merged into one code of
// T = b + b_r bits, the residual above the main index:
//
//     code = res << b | idx            idx = code & (2^b - 1),  res = code >> b
//
// Each row [g, r, :] holds codes_per_row codes (VPTQ's group_size) and is packed on its own as a
// little-endian bitstream: code j occupies stream bits [j*T, (j+1)*T), least significant bit
// first, and stream bit s is bit s % 32 of word s / 32, so a code may straddle two words. Each
// row is zero-padded to a whole number of words, W = ceil(codes_per_row * T / 32); rows never
// share a word. T may be anything from 1 to 32.
//
// Example, T = 13: code 0 is bits 0..12 of word 0, code 1 bits 13..25, code 2 bits 26..31 of
// word 0 (its low 6 bits) and bits 0..6 of word 1 (its high 7 bits), and so on.
//
// Where this differs from the released VPTQ code (vptq/utils/pack.py, VQuantLinear):
//   - The residual is recovered as code >> b, all b_r bits of it. Some released versions of
//     unpack_index_tensor mask it with 2^b - 1 (the main index's width) instead of 2^b_r - 1,
//     which silently truncates residual indices when b_r > b (e.g. k = 256 with k_res = 4096).
//   - The released unpacker derives the row padding as (W * 32) mod (codes_per_row * T). That
//     equals the true padding, W * 32 - codes_per_row * T, only when the codes fill more bits
//     than the padding, which fails for rows of at most 16 bits (a single 13-bit code: 32 mod 13
//     = 6, not 19; a single 16-bit code: 0, so two codes come back). Here it is computed.
//   - pack_index merges indices without checking them: an idx >= 2^b spills into the residual
//     bits. pack_codes rejects codes that do not fit (and codes past a codebook's size).
//   - Unpacking checks what the released code assumes: the word count against the layout
//     (issue #101 was a group_size / in_features mix-up), the padding bits (zero when written
//     by either packer; non-zero padding means the layout does not match the data), and, when
//     the layout names the codebook sizes, each index against them.
//   - pack_index views indices as uint16 (so b, b_r <= 16) and the CUDA kernels are
//     instantiated for a fixed set of widths (b in {4, 8, 10, 12..16}, b_r in {0, 2..12, 15,
//     16}); here any 1 <= b, 0 <= b_r, b + b_r <= 32 is accepted, T = 32 included.
//
// Content problems in packed data (non-zero padding, an index past the codebook) throw
// vqlib::io_error; a word count that does not match the layout throws shape_error; a layout
// that is not valid throws invalid_argument. Messages name the group, row and column.
#include <vqlib/core/error.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace vqlib::io {

static_assert(std::endian::native == std::endian::little,
              "vqlib: the packed index format assumes a little-endian host");

/// The widest merged code: b + b_r <= 32.
inline constexpr int max_code_bits = 32;

/// The shape of a packed indices tensor [groups, rows, words_per_row] and how its codes are
/// built. For a VPTQ layer: groups = group_num, rows = ceil(out_features / v),
/// codes_per_row = group_size, index_bits = log2(k), residual_bits = log2(k_res) or 0.
struct PackedLayout {
    std::int64_t groups = 1;          ///< G: codebooks (VPTQ's group_num)
    std::int64_t rows = 0;            ///< R: row blocks per group (ceil(M / v))
    std::int64_t codes_per_row = 0;   ///< codes in each row (VPTQ's group_size)
    int index_bits = 0;               ///< b: bits of the main index, 1..32
    int residual_bits = 0;            ///< b_r: bits of the residual index, 0 (none)..32 - b
    /// Codebook sizes for range checks: indices must be < num_centroids and residual indices
    /// < num_res_centroids. 0 means "the full 2^bits" (no check beyond the width).
    std::uint64_t num_centroids = 0;
    std::uint64_t num_res_centroids = 0;

    /// T = b + b_r, the width of a merged code.
    int total_bits() const { return index_bits + residual_bits; }

    /// W = ceil(codes_per_row * T / 32): words per packed row.
    std::int64_t words_per_row() const {
        const auto bits = static_cast<std::uint64_t>(codes_per_row) *
                          static_cast<std::uint64_t>(total_bits());
        return static_cast<std::int64_t>((bits + 31) / 32);
    }

    /// G * R * W: the number of words of the whole tensor.
    std::int64_t total_words() const { return groups * rows * words_per_row(); }

    /// G * R * codes_per_row: the number of codes of the whole tensor.
    std::int64_t total_codes() const { return groups * rows * codes_per_row; }

    /// The packed tensor's shape, {G, R, W}.
    std::array<std::int64_t, 3> shape() const { return {groups, rows, words_per_row()}; }

    /// The effective bound on main indices: num_centroids, or 2^b when it is 0.
    std::uint64_t index_limit() const {
        return num_centroids != 0 ? num_centroids : std::uint64_t{1} << index_bits;
    }

    /// The effective bound on residual indices: num_res_centroids, or 2^b_r when it is 0
    /// (1 without a residual: every residual index is 0).
    std::uint64_t residual_limit() const {
        return num_res_centroids != 0 ? num_res_centroids : std::uint64_t{1} << residual_bits;
    }

    /// Throws invalid_argument unless the layout is valid: non-negative sizes, 1 <= b,
    /// 0 <= b_r, b + b_r <= 32, codebook sizes within their widths (num_res_centroids 0 when
    /// b_r = 0), and word and code counts that fit in 62 bits.
    void validate() const {
        VQLIB_CHECK(groups >= 0 && rows >= 0 && codes_per_row >= 0, invalid_argument,
                    "packed layout: groups = ", groups, ", rows = ", rows,
                    ", codes_per_row = ", codes_per_row, ": expected non-negative sizes");
        VQLIB_CHECK(index_bits >= 1 && index_bits <= max_code_bits, invalid_argument,
                    "packed layout: index_bits = ", index_bits, ": expected a value in [1, 32]");
        VQLIB_CHECK(residual_bits >= 0 && residual_bits <= max_code_bits - index_bits,
                    invalid_argument, "packed layout: residual_bits = ", residual_bits,
                    " with index_bits = ", index_bits,
                    ": expected index_bits + residual_bits <= 32 and residual_bits >= 0");
        VQLIB_CHECK(num_centroids <= (std::uint64_t{1} << index_bits), invalid_argument,
                    "packed layout: num_centroids = ", num_centroids, " does not fit in ",
                    index_bits, " index bits");
        VQLIB_CHECK(residual_bits > 0 || num_res_centroids == 0, invalid_argument,
                    "packed layout: num_res_centroids = ", num_res_centroids,
                    " with residual_bits = 0: expected 0 (no residual codebook)");
        VQLIB_CHECK(num_res_centroids <= (std::uint64_t{1} << residual_bits), invalid_argument,
                    "packed layout: num_res_centroids = ", num_res_centroids,
                    " does not fit in ", residual_bits, " residual bits");
        // Keep every count (and count * 32 bits, count * 8 bytes) well inside int64.
        constexpr std::uint64_t limit = std::uint64_t{1} << 56;
        const auto g = static_cast<std::uint64_t>(groups);
        const auto r = static_cast<std::uint64_t>(rows);
        const auto c = static_cast<std::uint64_t>(codes_per_row);
        const bool fits = c <= limit && g <= limit && r <= limit && (g == 0 || r <= limit / g) &&
                          (g * r == 0 || c <= limit / (g * r));
        VQLIB_CHECK(fits, invalid_argument, "packed layout: ", groups, " x ", rows, " x ",
                    codes_per_row, " codes: too many (the limit is 2^56)");
    }
};

/// Merges a main index and a residual index into one code: res << b | idx. Neither is checked.
inline std::uint32_t merge_code(std::uint32_t index, std::uint32_t residual, int index_bits) {
    return static_cast<std::uint32_t>(std::uint64_t{residual} << index_bits | index);
}

/// The main index of a merged code: code & (2^b - 1).
inline std::uint32_t code_index(std::uint32_t code, int index_bits) {
    return static_cast<std::uint32_t>(code & ((std::uint64_t{1} << index_bits) - 1));
}

/// The residual index of a merged code: code >> b (all the bits above the main index).
inline std::uint32_t code_residual(std::uint32_t code, int index_bits) {
    return static_cast<std::uint32_t>(std::uint64_t{code} >> index_bits);
}

/// Reads code j (T = total_bits bits) from one packed row. Throws invalid_argument if T is
/// not in [1, 32] or the code does not lie within the row's words.
inline std::uint32_t read_code(std::span<const std::uint32_t> row, std::int64_t j,
                               int total_bits) {
    VQLIB_CHECK(total_bits >= 1 && total_bits <= max_code_bits, invalid_argument,
                "read_code: total_bits = ", total_bits, ": expected a value in [1, 32]");
    const auto bits = static_cast<std::uint64_t>(total_bits);
    VQLIB_CHECK(j >= 0 && static_cast<std::uint64_t>(j) < row.size() * 32ull / bits,
                invalid_argument, "read_code: code ", j, " of ", total_bits,
                " bits lies outside a row of ", row.size(), " words");
    const std::uint64_t start = static_cast<std::uint64_t>(j) * bits;
    const std::size_t word = static_cast<std::size_t>(start / 32);
    const unsigned offset = static_cast<unsigned>(start % 32);
    std::uint64_t window = row[word];
    if (offset + bits > 32) window |= std::uint64_t{row[word + 1]} << 32;
    return static_cast<std::uint32_t>((window >> offset) & ((std::uint64_t{1} << bits) - 1));
}

/// Writes code j (T = total_bits bits, code < 2^T) into one packed row, replacing the bits
/// that were there. Throws invalid_argument as read_code does, or if the code does not fit.
inline void write_code(std::span<std::uint32_t> row, std::int64_t j, int total_bits,
                       std::uint32_t code) {
    VQLIB_CHECK(total_bits >= 1 && total_bits <= max_code_bits, invalid_argument,
                "write_code: total_bits = ", total_bits, ": expected a value in [1, 32]");
    const auto bits = static_cast<std::uint64_t>(total_bits);
    const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
    VQLIB_CHECK(code <= mask, invalid_argument, "write_code: code ", code, " does not fit in ",
                total_bits, " bits");
    VQLIB_CHECK(j >= 0 && static_cast<std::uint64_t>(j) < row.size() * 32ull / bits,
                invalid_argument, "write_code: code ", j, " of ", total_bits,
                " bits lies outside a row of ", row.size(), " words");
    const std::uint64_t start = static_cast<std::uint64_t>(j) * bits;
    const std::size_t word = static_cast<std::size_t>(start / 32);
    const unsigned offset = static_cast<unsigned>(start % 32);
    const std::uint64_t clear = ~(mask << offset);
    const std::uint64_t set = std::uint64_t{code} << offset;
    row[word] = static_cast<std::uint32_t>((row[word] & clear) | set);
    if (offset + bits > 32)
        row[word + 1] = static_cast<std::uint32_t>(
            (row[word + 1] & (clear >> 32)) | (set >> 32));
}

/// A packed indices tensor: `words` holds layout.shape() = [G, R, W] words in row-major order,
/// each the uint32 bits of one int32 element of VPTQ's `indices` tensor.
struct PackedIndices {
    PackedLayout layout;
    std::vector<std::uint32_t> words;

    /// {G, R, W}.
    std::array<std::int64_t, 3> shape() const { return layout.shape(); }

    /// The W words of row [g, r].
    std::span<const std::uint32_t> row(std::int64_t g, std::int64_t r) const {
        VQLIB_CHECK(g >= 0 && g < layout.groups && r >= 0 && r < layout.rows, invalid_argument,
                    "PackedIndices::row(", g, ", ", r, "): outside ", layout.groups, " x ",
                    layout.rows);
        const std::int64_t w = layout.words_per_row();
        return std::span<const std::uint32_t>(words).subspan(
            static_cast<std::size_t>((g * layout.rows + r) * w), static_cast<std::size_t>(w));
    }
};

/// Unpacked codes, in row-major [G, R, codes_per_row] order: element (g, r, c) is at
/// (g * R + r) * codes_per_row + c. `residuals` is empty when the layout has no residual.
struct UnpackedCodes {
    PackedLayout layout;
    std::vector<std::uint32_t> indices;
    std::vector<std::uint32_t> residuals;
};

namespace detail {

inline void check_codes_span(const PackedLayout& layout, std::size_t size, const char* what) {
    VQLIB_CHECK(size == static_cast<std::uint64_t>(layout.total_codes()), shape_error,
                "pack_codes: ", what, " holds ", size, " codes: expected G * R * codes_per_row = ",
                layout.groups, " * ", layout.rows, " * ", layout.codes_per_row, " = ",
                layout.total_codes());
}

}  // namespace detail

/// Packs main indices (and residual indices, when layout.residual_bits > 0) given in row-major
/// [G, R, codes_per_row] order. `residuals` must be empty without a residual and hold as many
/// codes as `indices` with one. Throws invalid_argument for an invalid layout or an index that
/// does not fit its width or codebook size (naming its position), shape_error for wrong counts.
inline PackedIndices pack_codes(const PackedLayout& layout,
                                std::span<const std::uint32_t> indices,
                                std::span<const std::uint32_t> residuals = {}) {
    layout.validate();
    detail::check_codes_span(layout, indices.size(), "indices");
    if (layout.residual_bits > 0)
        detail::check_codes_span(layout, residuals.size(), "residuals");
    else
        VQLIB_CHECK(residuals.empty(), shape_error, "pack_codes: ", residuals.size(),
                    " residual indices given for a layout without a residual (residual_bits = 0)");

    PackedIndices packed{layout, std::vector<std::uint32_t>(
                                     static_cast<std::size_t>(layout.total_words()), 0u)};
    const auto bits = static_cast<unsigned>(layout.total_bits());
    const std::int64_t per_row = layout.codes_per_row;
    const std::int64_t words_per_row = layout.words_per_row();
    const std::uint64_t index_limit = layout.index_limit();
    const std::uint64_t residual_limit = layout.residual_limit();
    for (std::int64_t g = 0; g < layout.groups; ++g)
        for (std::int64_t r = 0; r < layout.rows; ++r) {
            const std::int64_t row_index = g * layout.rows + r;
            std::uint32_t* row = packed.words.data() + row_index * words_per_row;
            for (std::int64_t c = 0; c < per_row; ++c) {
                const auto k = static_cast<std::size_t>(row_index * per_row + c);
                const std::uint32_t index = indices[k];
                const std::uint32_t residual = layout.residual_bits > 0 ? residuals[k] : 0u;
                VQLIB_CHECK(index < index_limit, invalid_argument, "pack_codes: index ", index,
                            " at (group ", g, ", row ", r, ", column ", c,
                            ") is out of range: expected < ", index_limit, " (", layout.index_bits,
                            " index bits)");
                VQLIB_CHECK(residual < residual_limit, invalid_argument,
                            "pack_codes: residual index ", residual, " at (group ", g, ", row ", r,
                            ", column ", c, ") is out of range: expected < ", residual_limit, " (",
                            layout.residual_bits, " residual bits)");
                // The row starts zeroed, so OR-ing each code in is enough.
                const std::uint64_t code = merge_code(index, residual, layout.index_bits);
                const std::uint64_t start = static_cast<std::uint64_t>(c) * bits;
                const std::size_t word = static_cast<std::size_t>(start / 32);
                const unsigned offset = static_cast<unsigned>(start % 32);
                row[word] |= static_cast<std::uint32_t>(code << offset);
                if (offset + bits > 32)
                    row[word + 1] |= static_cast<std::uint32_t>(code >> (32 - offset));
            }
        }
    return packed;
}

/// Packs merged codes (res << b | idx, each < 2^T) given in row-major [G, R, codes_per_row]
/// order; the same checks as pack_codes, applied to the index and residual of each code.
inline PackedIndices pack_merged_codes(const PackedLayout& layout,
                                       std::span<const std::uint32_t> codes) {
    layout.validate();
    detail::check_codes_span(layout, codes.size(), "codes");
    std::vector<std::uint32_t> indices(codes.size());
    std::vector<std::uint32_t> residuals(layout.residual_bits > 0 ? codes.size() : 0);
    const std::uint64_t code_limit = std::uint64_t{1} << layout.total_bits();
    for (std::size_t k = 0; k < codes.size(); ++k) {
        VQLIB_CHECK(codes[k] < code_limit, invalid_argument, "pack_merged_codes: code ",
                    codes[k], " at position ", k, " does not fit in ", layout.total_bits(),
                    " bits");
        indices[k] = code_index(codes[k], layout.index_bits);
        if (layout.residual_bits > 0) residuals[k] = code_residual(codes[k], layout.index_bits);
    }
    return pack_codes(layout, indices, residuals);
}

/// Throws shape_error unless `shape` is the packed tensor's shape {G, R, W} for `layout`
/// (for checking a tensor read from a file before unpacking it).
inline void check_packed_shape(const PackedLayout& layout, std::span<const std::int64_t> shape) {
    layout.validate();
    const auto expected = layout.shape();
    const bool same = shape.size() == 3 && shape[0] == expected[0] && shape[1] == expected[1] &&
                      shape[2] == expected[2];
    if (same) return;
    std::string got = "[";
    for (std::size_t k = 0; k < shape.size(); ++k)
        got += (k > 0 ? ", " : "") + std::to_string(shape[k]);
    got += "]";
    throw shape_error(::vqlib::detail::concat(
        "packed indices have shape ", got, ": expected [G, R, ceil(codes_per_row * T / 32)] = [",
        expected[0], ", ", expected[1], ", ", expected[2], "] (codes_per_row = ",
        layout.codes_per_row, ", T = ", layout.index_bits, " + ", layout.residual_bits, ")"));
}

/// Unpacks a packed tensor's words (row-major [G, R, W], each word the uint32 bits of an int32
/// element). Throws invalid_argument for an invalid layout, shape_error unless there are
/// exactly G * R * W words, and io_error for non-zero padding bits at the end of a row or an
/// index past the layout's codebook size, naming the group, row and column.
inline UnpackedCodes unpack_codes(const PackedLayout& layout,
                                  std::span<const std::uint32_t> words) {
    layout.validate();
    VQLIB_CHECK(words.size() == static_cast<std::uint64_t>(layout.total_words()), shape_error,
                "unpack_codes: ", words.size(), " words: expected G * R * W = ", layout.groups,
                " * ", layout.rows, " * ", layout.words_per_row(), " = ", layout.total_words(),
                " (codes_per_row = ", layout.codes_per_row, ", T = ", layout.total_bits(), ")");
    UnpackedCodes out{layout, std::vector<std::uint32_t>(
                                  static_cast<std::size_t>(layout.total_codes())), {}};
    if (layout.residual_bits > 0) out.residuals.resize(out.indices.size());

    const auto bits = static_cast<unsigned>(layout.total_bits());
    const std::uint64_t code_mask = (std::uint64_t{1} << bits) - 1;
    const std::int64_t per_row = layout.codes_per_row;
    const std::int64_t words_per_row = layout.words_per_row();
    // Bits of the last word of a row past its last code: they must be zero.
    const std::uint64_t used_bits = static_cast<std::uint64_t>(per_row) * bits;
    const unsigned tail_bits = static_cast<unsigned>(used_bits % 32);
    const std::uint32_t padding_mask = tail_bits == 0 ? 0u : ~0u << tail_bits;
    const std::uint64_t index_limit = layout.index_limit();
    const std::uint64_t residual_limit = layout.residual_limit();

    for (std::int64_t g = 0; g < layout.groups; ++g)
        for (std::int64_t r = 0; r < layout.rows; ++r) {
            const std::int64_t row_index = g * layout.rows + r;
            const std::uint32_t* row = words.data() + row_index * words_per_row;
            if (words_per_row > 0 && (row[words_per_row - 1] & padding_mask) != 0)
                throw io_error(::vqlib::detail::concat(
                    "packed indices: row (group ", g, ", row ", r, ") has non-zero padding bits ",
                    "in its last word (", std::hex, "0x", row[words_per_row - 1], std::dec,
                    ", bits ", tail_bits, "..31 should be 0): the layout (codes_per_row = ",
                    per_row, ", T = ", bits, ") does not match the data"));
            for (std::int64_t c = 0; c < per_row; ++c) {
                const std::uint64_t start = static_cast<std::uint64_t>(c) * bits;
                const auto word = static_cast<std::int64_t>(start / 32);
                const unsigned offset = static_cast<unsigned>(start % 32);
                std::uint64_t window = row[word];
                if (offset + bits > 32) window |= std::uint64_t{row[word + 1]} << 32;
                const auto code = static_cast<std::uint32_t>((window >> offset) & code_mask);
                const std::uint32_t index = code_index(code, layout.index_bits);
                const std::uint32_t residual = code_residual(code, layout.index_bits);
                if (index >= index_limit || residual >= residual_limit)
                    throw io_error(::vqlib::detail::concat(
                        "packed indices: code ", code, " at (group ", g, ", row ", r, ", column ",
                        c, ") has ", index >= index_limit ? "index " : "residual index ",
                        index >= index_limit ? index : residual, ", past the codebook size ",
                        index >= index_limit ? index_limit : residual_limit));
                const auto k = static_cast<std::size_t>(row_index * per_row + c);
                out.indices[k] = index;
                if (layout.residual_bits > 0) out.residuals[k] = residual;
            }
        }
    return out;
}

/// As unpack_codes, for words held as int32 (the dtype of VPTQ's `indices` tensor): the bits
/// are reinterpreted, never sign-extended.
inline UnpackedCodes unpack_codes(const PackedLayout& layout,
                                  std::span<const std::int32_t> words) {
    std::vector<std::uint32_t> bits(words.size());
    for (std::size_t k = 0; k < words.size(); ++k) bits[k] = std::bit_cast<std::uint32_t>(words[k]);
    return unpack_codes(layout, std::span<const std::uint32_t>(bits));
}

/// The words of a packed tensor as int32 values with the same bits (for storing as dtype I32).
inline std::vector<std::int32_t> as_int32_words(std::span<const std::uint32_t> words) {
    std::vector<std::int32_t> out(words.size());
    for (std::size_t k = 0; k < words.size(); ++k) out[k] = std::bit_cast<std::int32_t>(words[k]);
    return out;
}

}  // namespace vqlib::io
