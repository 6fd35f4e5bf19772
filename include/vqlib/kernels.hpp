#pragma once
// CPU decode kernels (the reference backend's dequantization and fused GEMV): decode-friendly
// formats built from GPTVQ, VPTQ and INT4 layers, dequantize() / dequantize_half(), gemv() for
// batches of 1..8 and matmul() for any batch; the fast mode's formats (int8 activations and
// integer dot products: int4_fast.hpp, vq_fast.hpp, vptq_fast.hpp, backend/cpu_fast_decode.hpp).
#include <vqlib/kernels/common.hpp>
#include <vqlib/kernels/int4_fast.hpp>
#include <vqlib/kernels/int4_gemv.hpp>
#include <vqlib/kernels/int8_activations.hpp>
#include <vqlib/kernels/vptq_fast.hpp>
#include <vqlib/kernels/vptq_gemv.hpp>
#include <vqlib/kernels/vq_fast.hpp>
#include <vqlib/kernels/vq_gemv.hpp>
