#pragma once
// Shared pieces of the CPU decode kernels (vqlib::kernels): instruction-set selection (the levels
// and detection of core/simd.hpp), options, shape checks, fp16 helpers (core/half.hpp) and the
// deterministic chunked loop.
//
// Every kernel works on tiles of rows with a fixed size, and the parallel loops hand out fixed
// chunks of tiles (core/threading.hpp): results are bit-identical for any thread count. Within a
// tile, SIMD lanes run over rows (never over a reduction), every product is rounded before it is
// added (no FMA contraction) and every lane adds its terms in the same order as the portable
// code, so the AVX2 and AVX-512 variants give the same bits as the portable one.
#include <vqlib/core/error.hpp>
#include <vqlib/core/half.hpp>
#include <vqlib/core/simd.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace vqlib::kernels {

/// Instruction-set variants of the kernels: the levels of core/simd.hpp (SimdLevel), plus
/// `automatic`, the widest the CPU supports (best_simd_level()).
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

/// The level `isa` names (`automatic`: best_simd_level()).
inline SimdLevel simd_level(Isa isa) {
    switch (isa) {
    case Isa::portable: return SimdLevel::portable;
    case Isa::avx2: return SimdLevel::avx2;
    case Isa::avx512: return SimdLevel::avx512;
    case Isa::automatic: break;
    }
    return best_simd_level();
}

inline const char* isa_name(Isa isa) {
    return isa == Isa::automatic ? "automatic" : simd_level_name(simd_level(isa));
}

/// True when this CPU runs `isa` (simd_level_supported; `automatic` and `portable` always).
inline bool isa_supported(Isa isa) {
    return isa == Isa::automatic || simd_level_supported(simd_level(isa));
}

/// True when the CPU runs Isa::avx512 and has AVX-512BW and VBMI byte permutes: the AVX-512
/// variant's lut then looks 8-bit codes up in byte planes of the tables (the same values, so the
/// same bits).
inline bool cpu_has_vbmi() {
    const CpuFeatures& f = cpu_features();
    return simd_level_supported(SimdLevel::avx512) && f.avx512bw && f.avx512vbmi;
}

/// The widest variant this CPU supports: best_simd_level() as an Isa.
inline Isa best_isa() {
    switch (best_simd_level()) {
    case SimdLevel::avx512: return Isa::avx512;
    case SimdLevel::avx2: return Isa::avx2;
    case SimdLevel::portable: break;
    }
    return Isa::portable;
}

/// `automatic` -> best_isa(); throws invalid_argument for a variant this CPU cannot run.
inline Isa resolve_isa(Isa isa) {
    if (isa == Isa::automatic) return best_isa();
    VQLIB_CHECK(isa_supported(isa), invalid_argument, "isa = ", isa_name(isa),
                ": not supported by this CPU (or this build)");
    return isa;
}

namespace detail {

/// True when `value` survives a round trip through fp16 unchanged (then float_to_half(value) and
/// half_to_float, core/half.hpp, convert it exactly).
inline bool fp16_exact(float value) { return round_to_half(value) == value; }

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
