#pragma once
// Exact storage accounting of quantized layers.
#include <vqlib/core/types.hpp>

namespace vqlib {

/// Storage cost of a quantized layer, in bits, by component.
struct BitsBreakdown {
    double codes = 0.0;       // the per-weight codes at their stored width
    double parameters = 0.0;  // scales and zero points at their stored width
    double indices = 0.0;     // side information such as a group index per column
    double codebooks = 0.0;   // codebooks (VQ methods)
    Index weights = 0;

    double total() const { return codes + parameters + indices + codebooks; }
    double per_weight() const { return weights > 0 ? total() / static_cast<double>(weights) : 0.0; }
};

}  // namespace vqlib
