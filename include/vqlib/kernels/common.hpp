#pragma once
// Shared pieces of the CPU decode kernels (vqlib::kernels): instruction-set selection, options,
// shape checks, fp16 helpers and the deterministic chunked loop.
//
// Every kernel works on tiles of rows with a fixed size, and the parallel loops hand out fixed
// chunks of tiles (core/threading.hpp): results are bit-identical for any thread count. Within a
// tile, SIMD lanes run over rows (never over a reduction), every product is rounded before it is
// added (no FMA contraction) and every lane adds its terms in the same order as the portable
// code, so the AVX2 and AVX-512 variants give the same bits as the portable one.
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__)
#define VQLIB_KERNELS_X86 1
#endif

namespace vqlib::kernels {

/// Instruction-set variants of the kernels. `automatic` picks the widest the CPU supports.
enum class Isa { automatic, portable, avx2, avx512 };

/// Strategy of the GPTVQ-layout GEMV: a per-call table of codeword . x dot products (`lut`), or
/// gathering codeword coordinates and multiplying (`gather`). `automatic` uses the cost model
/// of VqGemvMatrix::choose_strategy.
enum class VqStrategy { automatic, lut, gather };

struct GemvOptions {
    Isa isa = Isa::automatic;
    VqStrategy strategy = VqStrategy::automatic;
    /// Spread fixed chunks of rows over vqlib's threads (results do not depend on it).
    bool parallel = true;
    /// GPTVQ lut with Isa::avx512 on a CPU with AVX-512 VBMI: look codes up (64 < K <= 256)
    /// with byte permutes in byte planes of the tables, 64 rows per lookup, when every 64 rows
    /// lie in one band (rows_per_codebook a multiple of 64, or one band). The same values as
    /// the other lookups, so the same bits; false keeps the float tables (for comparison).
    bool byte_planes = true;
};

/// The largest batch (columns of x) of the fused GEMV kernels; matmul() goes through
/// dequantize-then-GEMM above it.
inline constexpr Index max_gemv_batch = 8;
/// Rows per tile of the GPTVQ and INT4 kernels (codes are interleaved per tile).
inline constexpr Index tile_rows = 16;

using MatrixXh = Eigen::Matrix<Eigen::half, Eigen::Dynamic, Eigen::Dynamic>;

inline const char* isa_name(Isa isa) {
    switch (isa) {
    case Isa::automatic: return "automatic";
    case Isa::portable: return "portable";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    }
    return "?";
}

inline bool isa_supported(Isa isa) {
    switch (isa) {
    case Isa::automatic:
    case Isa::portable: return true;
#ifdef VQLIB_KERNELS_X86
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    case Isa::avx512: return __builtin_cpu_supports("avx512f");
#else
    case Isa::avx2:
    case Isa::avx512: return false;
#endif
    }
    return false;
}

/// True when the CPU has AVX-512 VBMI byte permutes (and AVX512BW): the AVX-512 variant's lut
/// then looks 8-bit codes up in byte planes of the tables (the same values, so the same bits).
inline bool cpu_has_vbmi() {
#ifdef VQLIB_KERNELS_X86
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vbmi");
    return has;
#else
    return false;
#endif
}

/// The widest variant this CPU supports (chosen once).
inline Isa best_isa() {
    static const Isa best = isa_supported(Isa::avx512) ? Isa::avx512
                            : isa_supported(Isa::avx2) ? Isa::avx2
                                                       : Isa::portable;
    return best;
}

/// `automatic` -> best_isa(); throws invalid_argument for a variant this CPU cannot run.
inline Isa resolve_isa(Isa isa) {
    if (isa == Isa::automatic) return best_isa();
    VQLIB_CHECK(isa_supported(isa), invalid_argument, "isa = ", isa_name(isa),
                ": not supported by this CPU (or this build)");
    return isa;
}

namespace detail {

/// Exact fp16 -> fp32 conversion of raw bits (subnormals, infinities and NaN included).
inline float half_bits_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t exponent = (h >> 10) & 0x1fu;
    std::uint32_t mantissa = h & 0x3ffu;
    std::uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {  // subnormal: normalize
        exponent = 113;
        while ((mantissa & 0x400u) == 0) {
            mantissa <<= 1;
            --exponent;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
    return std::bit_cast<float>(bits);
}

inline std::uint16_t half_bits(Eigen::half h) { return std::bit_cast<std::uint16_t>(h); }

/// True when `value` survives a round trip through fp16 unchanged.
inline bool fp16_exact(float value) {
    return static_cast<float>(Eigen::half(value)) == value;
}

/// Checks x (cols x B, 1 <= B <= max_gemv_batch) and y (rows x B) for a fused GEMV.
inline void check_gemv_shapes(const char* what, Index rows, Index cols, const ConstMatrixRef& x,
                              const Eigen::Ref<MatrixXf>& y) {
    VQLIB_CHECK(x.rows() == cols, shape_error, what, ": x has ", x.rows(), " rows: expected ",
                cols, " (the matrix's columns)");
    VQLIB_CHECK(x.cols() >= 1 && x.cols() <= max_gemv_batch, shape_error, what, ": x has ",
                x.cols(), " columns: expected a batch of 1..", max_gemv_batch,
                " (use matmul() for larger batches)");
    VQLIB_CHECK(y.rows() == rows && y.cols() == x.cols(), shape_error, what, ": y is ", y.rows(),
                "x", y.cols(), ": expected ", rows, "x", x.cols());
}

inline void check_matmul_shapes(const char* what, Index cols, const ConstMatrixRef& x) {
    VQLIB_CHECK(x.rows() == cols, shape_error, what, ": x has ", x.rows(), " rows: expected ",
                cols, " (the matrix's columns)");
}

/// Calls body(begin, end) for the chunks [c*chunk, (c+1)*chunk) of [0, n): in parallel through
/// parallel_for_ranges, or one after the other. The boundaries are the same either way.
template <class Body>
void run_chunks(Index n, Index chunk, bool parallel, Body&& body) {
    if (parallel) {
        parallel_for_ranges(n, chunk, body);
    } else {
        for (Index b = 0; b < n; b += chunk) body(b, std::min(n, b + chunk));
    }
}

/// y = W x for any batch (the prefill path of matmul): Eigen products over fixed 64-column
/// chunks of x, in parallel or one after the other (the same chunks either way).
inline MatrixXf dense_matmul(const MatrixXf& W, const ConstMatrixRef& x, bool parallel) {
    MatrixXf y(W.rows(), x.cols());
    run_chunks(x.cols(), 64, parallel, [&](Index c0, Index c1) {
        y.middleCols(c0, c1 - c0).noalias() = W * x.middleCols(c0, c1 - c0);
    });
    return y;
}

/// Calls f(std::integral_constant<int, B>) for the runtime batch 1..8.
template <class F>
void with_batch(Index batch, F&& f) {
    switch (batch) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default:
        throw invalid_argument(::vqlib::detail::concat("batch = ", batch, ": expected 1..8"));
    }
}

}  // namespace detail
}  // namespace vqlib::kernels
