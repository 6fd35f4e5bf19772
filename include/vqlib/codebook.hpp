#pragma once
// vqlib codebook: components that operate on sets of codebooks and on weight blocks, knowing
// nothing of GPTQ or the solver.
//   codebook_set.hpp            the stacked (G*K) x D layout shared by all of them
//   integer_codebook.hpp        signed b-bit codebook entries with per-codebook or shared scales
//   svd_codebook.hpp            rank-r SVD compression of 1-D codebooks
//   blockwise_normalization.hpp per-(row, sub-block) scales quantized in the log or linear domain
//   bits.hpp                    bits per value: the paper's formula and the exact count
#include <vqlib/codebook/bits.hpp>
#include <vqlib/codebook/blockwise_normalization.hpp>
#include <vqlib/codebook/codebook_set.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/codebook/integer_codebook.hpp>
#include <vqlib/codebook/svd_codebook.hpp>
