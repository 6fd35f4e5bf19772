#pragma once
// The decode rule of a grouped scalar format (GPTQ's INT grids, FP8/FP4 minifloats): value =
// scale * (lut[code] - zero) per (row, group), the group of each column given by g_idx. The
// layer type (formats/scalar_layer.hpp) decodes through it, and so do the dequantization
// backends (backend/dequantize.hpp), so every path computes the same floats.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <cstdint>
#include <span>

namespace vqlib {

/// Per-(row, group) parameters of a grouped scalar format, for dequantization: value =
/// scale * (lut[code] - zero). Integer grids have lut[c] = c; minifloat grids have zero = 0.
struct GroupedScalarView {
    const CodeMatrix& codes;              // rows x columns
    std::span<const float> lut;           // value of each code at scale 1, zero 0
    std::span<const float> scales;        // [group * rows + row]
    std::span<const float> zeros;         // [group * rows + row]
    std::span<const std::int32_t> g_idx;  // group of each column
};

/// Checks that `out` (at `column_begin`) is a column range of the layer (shape_error).
inline void check_column_range(const GroupedScalarView& layer, Index column_begin,
                               const MatrixRef& out) {
    VQLIB_CHECK(out.rows() == layer.codes.rows() && column_begin >= 0 &&
                    column_begin + out.cols() <= layer.codes.cols(),
                shape_error, "out is ", out.rows(), "x", out.cols(), " at column ", column_begin,
                ": expected ", layer.codes.rows(), " rows within ", layer.codes.cols(), " columns");
}

/// out = the columns [column_begin, column_begin + out.cols()) of the decoded layer.
inline void dequantize_columns(const GroupedScalarView& layer, Index column_begin, MatrixRef out) {
    check_column_range(layer, column_begin, out);
    const Index rows = layer.codes.rows();
    for (Index j = 0; j < out.cols(); ++j) {
        const Index g = layer.g_idx[static_cast<std::size_t>(column_begin + j)];
        const float* scale = layer.scales.data() + g * rows;
        const float* zero = layer.zeros.data() + g * rows;
        for (Index r = 0; r < rows; ++r)
            out(r, j) = scale[r] * (layer.lut[layer.codes(r, column_begin + j)] - zero[r]);
    }
}

}  // namespace vqlib
