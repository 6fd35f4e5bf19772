#pragma once
// The gain levels of a shape-gain (PVQ) layer: what a stored gain code decodes to. The designs
// that produce them (Beta Lloyd-Max, quantiles, log-uniform) are in quantizers/gain_quantizer.hpp.
#include <vqlib/core/types.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace vqlib {

/// The levels of a gain quantizer: relative amplitudes a = s / ||row||, ascending and positive.
struct GainCodebook {
    std::vector<float> levels;
    /// Bits of one gain code (levels.size() <= 2^bits).
    int bits = 0;
    /// Bits needed to store the codebook's parameters with the layer (0 when the levels follow
    /// from D, n and the bit width alone, as for the Beta designs).
    std::int64_t parameter_bits = 0;

    Index size() const { return static_cast<Index>(levels.size()); }

    /// The code of the level nearest to `a` (ties to the lower level); a <= 0 gives code 0.
    std::uint32_t nearest(float a) const {
        const auto it = std::lower_bound(levels.begin(), levels.end(), a);
        if (it == levels.begin()) return 0;
        if (it == levels.end()) return static_cast<std::uint32_t>(levels.size() - 1);
        const auto hi = static_cast<std::uint32_t>(it - levels.begin());
        return (*it - a < a - *(it - 1)) ? hi : hi - 1;
    }
};

}  // namespace vqlib
