#pragma once
// vqlib io: NumPy .npy files as Eigen matrices, and zero-copy views between Eigen and xtensor.
#include <vqlib/io/npy.hpp>
#include <vqlib/io/xtensor.hpp>
