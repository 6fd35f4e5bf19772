#pragma once
// Hadamard incoherence transforms: the fast Walsh-Hadamard transform, Hadamard matrices of
// non-power-of-two orders, the normalized transform of length m * 2^k, its randomized (random
// signs) form and the incoherence processing of a layer's weights and Hessian.
#include <vqlib/transform/fwht.hpp>
#include <vqlib/transform/hadamard_matrix.hpp>
#include <vqlib/transform/hadamard_transform.hpp>
#include <vqlib/transform/incoherence.hpp>
#include <vqlib/transform/incoherent_recipe.hpp>
#include <vqlib/transform/kernels.hpp>
#include <vqlib/transform/randomized_hadamard.hpp>
