#pragma once
// The backend trait: the hot operations of the algorithms, behind one interface.
//
// Algorithms are templated on a backend type and call only what the Backend concept names, so a
// new backend (the CUDA one, or a SIMD-specialized CPU one) drops in without touching them. The
// reference CPU backend (cpu.hpp) is the default everywhere.
#include <vqlib/core/types.hpp>

#include <concepts>
#include <cstdint>
#include <span>

namespace vqlib {

/// Integer codes of a layer, rows x columns (column-major, like the weights).
using CodeMatrix = Eigen::Matrix<std::uint16_t, Eigen::Dynamic, Eigen::Dynamic>;

/// Per-(row, group) parameters of a grouped scalar format, for dequantization: value =
/// scale * (lut[code] - zero). Integer grids have lut[c] = c; minifloat grids have zero = 0.
struct GroupedScalarView {
    const CodeMatrix& codes;              // rows x columns
    std::span<const float> lut;           // value of each code at scale 1, zero 0
    std::span<const float> scales;        // [group * rows + row]
    std::span<const float> zeros;         // [group * rows + row]
    std::span<const std::int32_t> g_idx;  // group of each column
};

template <class B>
concept Backend = requires(MatrixRef c, ConstMatrixRef a, ConstMatrixRef b, ConstMatrixRef points,
                           ConstMatrixRef centroids, std::span<std::int32_t> out,
                           std::span<const float> weights, const GroupedScalarView& layer,
                           Index column_begin) {
    { B::name() } -> std::convertible_to<const char*>;
    // c -= a * b: the solver's intra-block and lazy block updates.
    { B::subtract_product(c, a, b) } -> std::same_as<void>;
    // out[i] = argmin_k sum_j weights[j] * (points(i, j) - centroids(k, j))^2 (weights may be
    // empty: unweighted); ties go to the lowest index.
    { B::nearest_centroid(points, centroids, weights, out) } -> std::same_as<void>;
    // c = the columns [column_begin, column_begin + c.cols()) of the dequantized layer.
    { B::dequantize(layer, column_begin, c) } -> std::same_as<void>;
};

}  // namespace vqlib
