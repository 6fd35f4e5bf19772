#pragma once
// The CPU dequantization role: the grouped scalar decode rule of formats/grouped_scalar.hpp.
#include <vqlib/backend/dequantize.hpp>
#include <vqlib/formats/grouped_scalar.hpp>

namespace vqlib {

struct CpuDequantize {
    static const char* name() { return "cpu"; }

    static void dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out) {
        dequantize_columns(layer, column_begin, out);
    }
};

static_assert(DequantizeBackend<CpuDequantize>);

}  // namespace vqlib
