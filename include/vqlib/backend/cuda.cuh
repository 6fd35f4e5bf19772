#pragma once
// vqlib's CUDA backend, all of it: compile with nvcc only (a .cu translation unit; see
// vqlib/backend/cuda/common.cuh for the flags). Host-only code uses vqlib/backend/cpu.hpp.
//   cuda/common.cuh      VQLIB_CUDA_CHECK, device_available(), DeviceBuffer<T>
//   cuda/assignment.cuh  nearest_centroid (bit-identical to CpuBackend)
//   cuda/dequantize.cuh  grouped scalar, GPTVQ (DeviceVqLayer), VPTQ packed (DeviceVptqLayer)
//   cuda/gemv.cuh        fused dequant-GEMV, batch 1..8, for both layer types
//   cuda/backend.cuh     vqlib::CudaBackend (the Backend trait)
//   cuda/decode.cuh      vqlib::CudaDecodeBackend (the DecodeBackend trait, backend/decode.hpp)
#if !defined(__CUDACC__)
#error "vqlib/backend/cuda.cuh is a CUDA header: compile this translation unit with nvcc (a .cu file)"
#else
#include <vqlib/backend/cuda/assignment.cuh>
#include <vqlib/backend/cuda/backend.cuh>
#include <vqlib/backend/cuda/common.cuh>
#include <vqlib/backend/cuda/decode.cuh>
#include <vqlib/backend/cuda/dequantize.cuh>
#include <vqlib/backend/cuda/gemv.cuh>
#endif
