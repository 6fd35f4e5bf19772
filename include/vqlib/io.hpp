#pragma once
// vqlib io: NumPy .npy files as Eigen matrices, zero-copy views between Eigen and xtensor,
// safetensors files, VPTQ's bit-packed index format and its per-layer quantization config.
#include <vqlib/io/npy.hpp>
#include <vqlib/io/packed_indices.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/io/vptq_config.hpp>
#include <vqlib/io/xtensor.hpp>
