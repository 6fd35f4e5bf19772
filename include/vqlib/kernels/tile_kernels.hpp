#pragma once
// The inner kernels of the fused GEMVs (internal; the API is vq_gemv.hpp, vptq_gemv.hpp and
// int4_gemv.hpp), compiled three times from tile_kernels.inc: `portable` with the user's flags
// (4 lanes), `avx2` (8 lanes) and `avx512` (16 lanes) under `#pragma GCC target` with GCC/Clang
// on x86-64. Lanes run over rows; each lane performs the same float operations in the same order
// in every variant, and products are pinned (no FMA contraction), so the variants agree bit for
// bit. Only the gathers and fp16 loads use intrinsics.
#include <vqlib/kernels/common.hpp>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include <vqlib/core/simd_macros.inc>

#ifdef VQLIB_DETAIL_X86_DISPATCH
#include <immintrin.h>
#endif

namespace vqlib::kernels::detail {

/// One call of the GPTVQ-layout kernel: tiles [tile_begin, tile_end).
struct VqTileTask {
    const std::uint8_t* codes = nullptr;  // tile t at codes + t * tile_bytes
    Index tile_bytes = 0;
    int code_bits = 8;                    // 4 (two vectors per byte), 8 or 16
    Index vectors = 0;                    // V = cols / D
    Index vectors_per_group = 0;          // columns_per_group / D
    Index dim = 0;                        // D
    Index k = 0;                          // K
    Index bands = 0;                      // rows / rows_per_codebook
    Index rows_per_codebook = 0;
    Index rows = 0;
    // lut: entry (cb, vl, b, code) at table[((cb * VG + vl) * B + b) * K + code];
    // gather: codebooks row-major, coordinate j of centroid (cb, code) at [(cb * K + code) * D + j].
    const float* table = nullptr;
    // The codebooks transposed ([(cb * D + j) * K + k], 16 floats of padding at the end), for
    // the gather strategy's register lookups (AVX-512, K <= 16, D <= 8); null: always gather.
    const float* codebooks_t = nullptr;
    // lut with byte planes (AVX-512 VBMI, 8-bit codes, every 4 tiles of 64 rows in one band):
    // entry (cb, vl, b, code) is the 4 bytes planes[((cb * VG + vl) * B + b) * 4 * plane_k +
    // p * plane_k + code], p = 0..3 (byte p of the float, little-endian); null: `table`.
    const std::uint8_t* planes = nullptr;
    Index plane_k = 0;  // 128 or 256
    const float* x = nullptr;  // gather strategy: x(c, b) at x[b * ldx + c]
    Index ldx = 0;
    const float* scales = nullptr;  // normalization, [tile][block][16]; null without
    Index vectors_per_block = 0;
    Index scale_blocks = 0;
    float* y = nullptr;  // y(r, b) at y[b * ldy + r]
    Index ldy = 0;
    Index tile_begin = 0;
    Index tile_end = 0;
};

/// Lookup tables of codebooks [cb_begin, cb_end) for the GPTVQ lut strategy:
/// table[((cb * VG + vl) * B + b) * K + k] = sum_j C[cb][k][j] * x(cg * cpg + vl * D + j, b),
/// j ascending, with the codebooks transposed (ct[(cb * D + j) * K + k] = C[cb][k][j]).
struct VqTableTask {
    const float* ct = nullptr;
    Index k = 0;
    Index dim = 0;
    Index vectors_per_group = 0;
    Index columns_per_group = 0;
    Index bands = 0;
    Index batch = 0;
    const float* x = nullptr;  // x(c, b) at x[b * ldx + c]
    Index ldx = 0;
    float* table = nullptr;
    // Byte planes instead of floats (vq_plane_tables, AVX-512 VBMI): see VqTileTask::planes.
    std::uint8_t* planes = nullptr;
    Index plane_k = 0;
    Index cb_begin = 0;
    Index cb_end = 0;
};

/// One call of the INT4 kernel: tiles [tile_begin, tile_end).
struct Int4TileTask {
    const std::uint8_t* codes = nullptr;  // tile t at codes + t * tile_bytes; 16 bytes per column pair
    Index tile_bytes = 0;
    Index pairs = 0;                      // ceil(cols / 2)
    Index pairs_per_group = 0;
    Index groups = 0;
    const std::uint16_t* scales = nullptr;  // fp16 bits, [tile][group][16]
    const std::uint8_t* zeros = nullptr;    // [tile][group][16]; null: symmetric (zero 8)
    const float* x = nullptr;               // padded to 2 * pairs rows: x(c, b) at x[b * ldx + c]
    Index ldx = 0;
    const float* xsum = nullptr;            // [group * B + b]: sum of x over the group
    Index rows = 0;
    float* y = nullptr;
    Index ldy = 0;
    Index tile_begin = 0;
    Index tile_end = 0;
};

/// One call of the VPTQ kernel: row blocks [block_begin, block_end), main (non-outlier) columns.
/// y must hold the starting values (outlier contributions) of the rows; they are added to.
struct VptqTask {
    const std::uint32_t* words = nullptr;  // [group][row block][words_per_row]
    Index words_per_row = 0;
    Index row_blocks = 0;
    Index groups = 0;
    Index group_size = 0;
    int index_bits = 0;
    int total_bits = 0;
    const float* centroids = nullptr;  // row-major [group * k + i][v]
    Index k = 0;
    const float* res = nullptr;  // row-major [group * kr + j][v]; null without a residual
    Index kr = 0;
    // fp16 copies of centroids and res (bits), or null: used by the AVX2 / AVX-512 variants
    // when v % 8 == 0 (exact, as every value is an fp16 value).
    const std::uint16_t* centroids_h = nullptr;
    const std::uint16_t* res_h = nullptr;
    Index v = 0;
    Index rows = 0;
    const float* x = nullptr;  // x' in stored column order: x'(p, b) at x[b * ldx + p]
    Index ldx = 0;
    Index outlier_size = 0;
    float* y = nullptr;
    Index ldy = 0;
    Index block_begin = 0;
    Index block_end = 0;
};

}  // namespace vqlib::kernels::detail

// ---- the three variants -------------------------------------------------------------------------

#define VQLIB_KERNELS_NS portable
#define VQLIB_KERNELS_W 4
#define VQLIB_KERNELS_LEVEL 0
#include <vqlib/kernels/tile_kernels.inc>
#undef VQLIB_KERNELS_NS
#undef VQLIB_KERNELS_W
#undef VQLIB_KERNELS_LEVEL

#ifdef VQLIB_DETAIL_X86_DISPATCH
#pragma GCC push_options
#pragma GCC target("avx2,f16c")
#define VQLIB_KERNELS_NS avx2
#define VQLIB_KERNELS_W 8
#define VQLIB_KERNELS_LEVEL 1
#include <vqlib/kernels/tile_kernels.inc>
#undef VQLIB_KERNELS_NS
#undef VQLIB_KERNELS_W
#undef VQLIB_KERNELS_LEVEL
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,f16c,avx512f")
#define VQLIB_KERNELS_NS avx512
#define VQLIB_KERNELS_W 16
#define VQLIB_KERNELS_LEVEL 2
#include <vqlib/kernels/tile_kernels.inc>
#undef VQLIB_KERNELS_NS
#undef VQLIB_KERNELS_W
#undef VQLIB_KERNELS_LEVEL
#pragma GCC pop_options
#endif

namespace vqlib::kernels::detail {

#ifdef VQLIB_DETAIL_X86_DISPATCH
#define VQLIB_KERNELS_DISPATCH(isa, call)             \
    do {                                              \
        if ((isa) == Isa::avx512) {                   \
            avx512::call;                             \
        } else if ((isa) == Isa::avx2) {              \
            avx2::call;                               \
        } else {                                      \
            portable::call;                           \
        }                                             \
    } while (false)
#else
#define VQLIB_KERNELS_DISPATCH(isa, call) \
    do {                                  \
        (void)(isa);                      \
        portable::call;                   \
    } while (false)
#endif

/// Runs the GPTVQ-layout kernel, B = 1..8, with `isa` (resolved, supported).
template <int B>
void vq_tiles(Isa isa, bool lut, const VqTileTask& t) {
    if (lut)
        VQLIB_KERNELS_DISPATCH(isa, vq_lut_tiles<B>(t));
    else
        VQLIB_KERNELS_DISPATCH(isa, vq_gather_tiles<B>(t));
}

inline void vq_tables(Isa isa, const VqTableTask& t) {
#ifdef VQLIB_DETAIL_X86_DISPATCH
    if (t.planes != nullptr) return avx512::vq_plane_tables(t);
#endif
    VQLIB_KERNELS_DISPATCH(isa, vq_tables(t));
}

template <int B>
void int4_tiles(Isa isa, const Int4TileTask& t) {
    VQLIB_KERNELS_DISPATCH(isa, int4_tiles<B>(t));
}

template <int B>
void vptq_blocks(Isa isa, const VptqTask& t) {
    VQLIB_KERNELS_DISPATCH(isa, vptq_blocks<B>(t));
}

#undef VQLIB_KERNELS_DISPATCH

}  // namespace vqlib::kernels::detail

#include <vqlib/core/simd_macros_end.inc>
