#pragma once
// vqlib io: NumPy .npy files as Eigen matrices, zero-copy views between Eigen and xtensor,
// safetensors files, VPTQ's checkpoints (their bit-packed indices: formats/packed_indices.hpp) and
// per-layer quantization config.
#include <vqlib/io/npy.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/io/vptq_checkpoint.hpp>
#include <vqlib/io/vptq_config.hpp>
#include <vqlib/io/xtensor.hpp>
