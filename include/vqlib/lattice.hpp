#pragma once
// vqlib lattice: Pyramid Vector Quantization (PVQ) codewords, their enumeration and packing.
//   lattice/big_uint.hpp      BigUint<Limbs>, fixed-width multi-limb unsigned integers
//   lattice/index_types.hpp   the PvqIndex concept, index_bits<Idx>, to_string / parse_index
//   lattice/counting.hpp      V(N, K), U(N, K), log2 V, index bits, max_pulses_fitting
//   lattice/pvq_codec.hpp     PvqCodec<Idx>: codeword <-> index (Opus/CELT and Fischer orders)
//   lattice/pulse_search.hpp  pvq_search (Opus greedy + optional refinement), pvq_search_exact
//   lattice/packing.hpp       mixed-radix packing of index streams at the fractional rate
// (lattice/natural.hpp holds the internal arbitrary-precision arithmetic.)
#include <vqlib/lattice/big_uint.hpp>
#include <vqlib/lattice/counting.hpp>
#include <vqlib/lattice/index_types.hpp>
#include <vqlib/lattice/packing.hpp>
#include <vqlib/lattice/pulse_search.hpp>
#include <vqlib/lattice/pvq_codec.hpp>
