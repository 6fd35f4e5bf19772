#pragma once
// The dequantization role of a backend: decode a grouped scalar layer (formats/grouped_scalar.hpp)
// column range by column range. The decode backends of backend/decode.hpp cover the VQ formats.
#include <vqlib/core/types.hpp>
#include <vqlib/formats/grouped_scalar.hpp>

#include <concepts>

namespace vqlib {

template <class B>
concept DequantizeBackend = requires(const GroupedScalarView& layer, Index column_begin,
                                     MatrixRef out) {
    { B::name() } -> std::convertible_to<const char*>;
    // out = the columns [column_begin, column_begin + out.cols()) of the dequantized layer.
    { B::dequantize(layer, column_begin, out) } -> std::same_as<void>;
};

}  // namespace vqlib
