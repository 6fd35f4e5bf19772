#pragma once
// Test support for the lattice tests: the PVQ tables of tests/data/pvq and uniform random indices
// in any index type.
#include <vqlib/core/error.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/lattice/index_types.hpp>

#include "fixtures.hpp"

#include <fstream>
#include <string>
#include <vector>

namespace vqlib::test {

/// The lines of tests/data/pvq/<name>.
inline std::vector<std::string> pvq_fixture_lines(const std::string& name) {
    const auto path = fixtures_dir() / "pvq" / name;
    std::ifstream in(path);
    if (!in) throw io_error("cannot open " + path.string());
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

/// Uniform in [0, bound), by rejection from whole 32-bit draws.
template <lattice::PvqIndex Idx>
Idx random_below(Rng& rng, const Idx& bound) {
    const int bits = lattice::bit_length(bound);
    for (;;) {
        Idx r = Idx(0);
        for (int b = 0; b < bits; b += 32) {
            if constexpr (lattice::index_bits<Idx> > 32) r = static_cast<Idx>(r << 32);
            r = static_cast<Idx>(r | Idx(rng.next() & 0xffffffffu));
        }
        r = static_cast<Idx>(r >> (((bits + 31) / 32) * 32 - bits));
        if (r < bound) return r;
    }
}

}  // namespace vqlib::test
