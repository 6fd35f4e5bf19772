#pragma once
// The inner kernels of the fast decode mode (internal; the API is kernels/int4_fast.hpp and
// kernels/vq_fast.hpp). Activations arrive as int8 blocks of 32 (kernels/int8_activations.hpp);
// weights as 4-bit codes or int8 codewords. Per block and row the kernels form an exact 32-bit
// integer dot product and then add it, scaled, to the row's fp32 sum with one fused multiply-add:
//   y_r += float(acc_r,blk) * (weight scale_r * d_blk)
// so the only float operations are one product and one FMA per (row, block), in block order.
// Every variant (portable C++ with std::fma, AVX2 + FMA, AVX-512 with VNNI) performs exactly these
// operations, and the integer sums are exact, so all give the same bits, for any thread count.
//
// Variants are plain functions with target attributes (no lambdas, no inline asm), compiled into
// every x86-64 build with GCC or Clang and picked at run time:
//   avx512: AVX-512 F/BW/VL + VNNI (vpdpbusd: 64 u8 x s8 products per instruction); the 2-D
//           GPTVQ kernel also looks codewords up with vpermw (32 two-byte entries per register),
//           the 4-D one (with VBMI) in byte planes with vpermt2b, 64 rows per permute, and
//           the VPTQ one (with VBMI) transposes 8 loaded centroids with one vpermb;
//   avx2:   AVX2 + FMA + F16C, INT4 only (vpmaddubsw + vpmaddwd for the dot products).
#include <vqlib/core/half.hpp>
#include <vqlib/core/simd.hpp>
#include <vqlib/core/types.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && defined(__x86_64__)
#define VQLIB_DETAIL_FAST_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace vqlib::kernels::detail {

/// Which variant of the fast kernels runs.
enum class FastIsa { portable, avx2, avx512 };

/// The widest fast variant this CPU runs (avx512 needs AVX-512 F/BW/VL/VNNI, avx2 AVX2/FMA/F16C).
inline FastIsa best_fast_isa() {
#ifdef VQLIB_DETAIL_FAST_X86
    static const FastIsa best = [] {
        __builtin_cpu_init();
        // F16C from CPUID leaf 1 (ECX bit 29): Clang's __builtin_cpu_supports knows no "f16c".
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && ((ecx >> 29) & 1u) != 0;
        const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
        if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
            return FastIsa::avx512;
        return avx2 ? FastIsa::avx2 : FastIsa::portable;
    }();
    return best;
#else
    return FastIsa::portable;
#endif
}

/// True when the CPU runs the avx512 variant and has AVX-512 VBMI (the 4-D GPTVQ kernel's byte
/// permutes).
inline bool fast_has_vbmi() {
#ifdef VQLIB_DETAIL_FAST_X86
    static const bool vbmi = best_fast_isa() == FastIsa::avx512 && __builtin_cpu_supports("avx512vbmi");
    return vbmi;
#else
    return false;
#endif
}

/// The int8 activations as the kernels read them (see Int8Activations).
struct FastActivations {
    const std::int8_t* q = nullptr;  // q(c, b) at q[b * ldq + c]
    Index ldq = 0;
    const float* d = nullptr;         // block scale (k, b) at d[b * blocks + k]
    const std::int32_t* sums = nullptr;
    Index blocks = 0;                 // blocks of 32 inputs per column
};

/// INT4 in the fast layout: per 16-row tile, 64 bytes per 8 columns; byte 4 l + i of the chunk
/// of columns c0..c0+7 holds the code of (row l, column c0 + i) in its low nibble and of
/// (l, c0 + 4 + i) in its high nibble. Scales fp16 and zero points uint8, [tile][group][16].
struct Int4FastTask {
    const std::uint8_t* codes = nullptr;
    Index tile_bytes = 0;
    Index blocks_per_group = 0;
    Index groups = 0;
    const std::uint16_t* scales = nullptr;
    const std::uint8_t* zeros = nullptr;  // null: symmetric, zero 8
    FastActivations x;
    Index rows = 0;
    float* y = nullptr;  // y(r, b) at y[b * ldy + r]
    Index ldy = 0;
    Index tile_begin = 0;
    Index tile_end = 0;
};

/// GPTVQ 2D (K <= 16) in the fast layout: per 16-row tile, 32 bytes per 8 columns (4 vectors
/// v0..v0+3); byte 2 l + h holds the code of (row l, vector v0 + h) in its low nibble and of
/// (l, v0 + 2 + h) in its high one. Codebook cb is 32 bytes at tables + 32 cb: entry k is the two
/// bytes (q_x + 128, q_y + 128) of its int8 codeword, whose value is cb_scales[cb] * q. Each half
/// tile (8 rows) lies in one band. Optional normalization scales: fp32 [tile][block][16] per
/// scale block of blocks_per_scale activation blocks.
struct Vq2FastTask {
    const std::uint8_t* codes = nullptr;
    Index tile_bytes = 0;
    const std::uint8_t* tables = nullptr;
    const float* cb_scales = nullptr;
    Index bands = 0;
    Index rows_per_codebook = 0;
    Index blocks_per_group = 0;  // activation blocks per column group
    Index groups = 0;            // column groups
    const float* norm = nullptr;
    Index blocks_per_scale = 0;
    Index scale_blocks = 0;
    FastActivations x;
    Index rows = 0;
    float* y = nullptr;
    Index ldy = 0;
    Index tile_begin = 0;
    Index tile_end = 0;
};

/// GPTVQ 4D (K <= 256) in the fast layout: per 64-row quad, 64 bytes per vector (the 8-bit codes
/// of the quad's 64 rows, row order). Codebook cb is 1024 bytes at tables + 1024 cb: plane p
/// (bytes 256 p .. 256 p + 255) holds coordinate p of the K codewords as q + 128 (padded with
/// 128), value cb_scales[cb] * q. Each quad lies in one band. Rows come out of the byte
/// interleaves in register order: register j (0..3), lane i holds row 16 (i / 4) + 4 j + i % 4 of
/// the quad, so optional normalization scales are kept in that order, [quad][block][16 j + i].
struct Vq4FastTask {
    const std::uint8_t* codes = nullptr;
    Index quad_bytes = 0;
    const std::uint8_t* tables = nullptr;
    const float* cb_scales = nullptr;
    Index bands = 0;
    Index rows_per_codebook = 0;
    Index blocks_per_group = 0;
    Index groups = 0;
    const float* norm = nullptr;
    Index blocks_per_scale = 0;
    Index scale_blocks = 0;
    FastActivations x;
    Index rows = 0;
    float* y = nullptr;
    Index ldy = 0;
    Index quad_begin = 0;
    Index quad_end = 0;
};

/// VPTQ (v = 8) in the fast layout, main columns only (the outlier columns, the permutation and
/// the normalization are applied outside the kernel): rows in pairs of row blocks (16 rows); per
/// pair, 8 uint16 codes per 4 columns c..c+3: those of row block 2 p for c..c+3, then of 2 p + 1.
/// The codebook of group g is k x 8 bytes at tables + 8 k g (centroid i, row t at 8 i + t, as
/// q + 128), value scales[g] * q; the residual codebooks likewise (res_tables null without).
struct VptqFastTask {
    const std::uint16_t* codes = nullptr;
    const std::uint16_t* res_codes = nullptr;
    Index pair_stride = 0;  // codes per pair: 2 * padded main columns
    const std::uint8_t* tables = nullptr;
    const std::uint8_t* res_tables = nullptr;
    Index k = 0;
    Index kr = 0;
    const float* scales = nullptr;
    const float* res_scales = nullptr;
    Index blocks_per_group = 0;
    FastActivations x;  // the main columns of x' (stored order, normalized)
    Index rows = 0;
    float* y = nullptr;
    Index ldy = 0;
    Index pair_begin = 0;
    Index pair_end = 0;
};

/// Position of row l (0..63) of a quad in the 4-D kernel's register order (Vq4FastTask).
constexpr Index vq4_position(Index l) { return 16 * ((l % 16) / 4) + 4 * (l / 16) + l % 4; }

inline Index fast_group_end(Index g, Index per_group, Index blocks) {
    return g * per_group + per_group < blocks ? g * per_group + per_group : blocks;
}

// ---- portable --------------------------------------------------------------------------------

template <int B>
void int4_fast_portable(const Int4FastTask& t) {
    const FastActivations& x = t.x;
    for (Index tile = t.tile_begin; tile < t.tile_end; ++tile) {
        const std::uint8_t* ct = t.codes + tile * t.tile_bytes;
        for (Index l = 0; l < 16; ++l) {
            const Index r = tile * 16 + l;
            if (r >= t.rows) break;
            float yacc[B] = {};
            for (Index g = 0; g < t.groups; ++g) {
                const std::size_t at = static_cast<std::size_t>((tile * t.groups + g) * 16 + l);
                const float ws = half_to_float(t.scales[at]);
                const std::int32_t z = t.zeros ? t.zeros[at] : 8;
                for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                     k < ke; ++k) {
                    std::int32_t acc[B];
                    for (int b = 0; b < B; ++b) acc[b] = -z * x.sums[b * x.blocks + k];
                    for (Index j = 0; j < 4; ++j) {
                        const std::uint8_t* p = ct + (k * 4 + j) * 64 + 4 * l;
                        const Index c0 = k * 32 + j * 8;
                        for (int i = 0; i < 4; ++i) {
                            const std::int32_t lo = p[i] & 15, hi = p[i] >> 4;
                            for (int b = 0; b < B; ++b) {
                                const std::int8_t* q = x.q + b * x.ldq + c0;
                                acc[b] += lo * q[i] + hi * q[4 + i];
                            }
                        }
                    }
                    for (int b = 0; b < B; ++b) {
                        const float s = ws * x.d[b * x.blocks + k];
                        yacc[b] = std::fma(static_cast<float>(acc[b]), s, yacc[b]);
                    }
                }
            }
            for (int b = 0; b < B; ++b) t.y[b * t.ldy + r] = yacc[b];
        }
    }
}

template <int B>
void vq2_fast_portable(const Vq2FastTask& t) {
    const FastActivations& x = t.x;
    for (Index tile = t.tile_begin; tile < t.tile_end; ++tile) {
        const std::uint8_t* ct = t.codes + tile * t.tile_bytes;
        for (Index l = 0; l < 16; ++l) {
            const Index r = tile * 16 + l;
            if (r >= t.rows) break;
            const Index band = r / t.rows_per_codebook;
            float yacc[B] = {};
            for (Index g = 0; g < t.groups; ++g) {
                const Index cb = g * t.bands + band;
                const std::uint8_t* tbl = t.tables + 32 * cb;
                const float cs = t.cb_scales[cb];
                for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                     k < ke; ++k) {
                    std::int32_t acc[B];
                    for (int b = 0; b < B; ++b) acc[b] = -128 * x.sums[b * x.blocks + k];
                    for (Index j = 0; j < 4; ++j) {
                        const std::uint8_t* p = ct + (k * 4 + j) * 32 + 2 * l;
                        const Index c0 = k * 32 + j * 8;
                        for (int h = 0; h < 2; ++h) {
                            const std::uint8_t* wa = tbl + 2 * (p[h] & 15);
                            const std::uint8_t* wb = tbl + 2 * (p[h] >> 4);
                            for (int b = 0; b < B; ++b) {
                                const std::int8_t* q = x.q + b * x.ldq + c0 + 2 * h;
                                acc[b] += wa[0] * q[0] + wa[1] * q[1] + wb[0] * q[4] + wb[1] * q[5];
                            }
                        }
                    }
                    float ls = cs;
                    if (t.norm)
                        ls *= t.norm[(tile * t.scale_blocks + k / t.blocks_per_scale) * 16 + l];
                    for (int b = 0; b < B; ++b) {
                        const float s = ls * x.d[b * x.blocks + k];
                        yacc[b] = std::fma(static_cast<float>(acc[b]), s, yacc[b]);
                    }
                }
            }
            for (int b = 0; b < B; ++b) t.y[b * t.ldy + r] = yacc[b];
        }
    }
}

template <int B>
void vq4_fast_portable(const Vq4FastTask& t) {
    const FastActivations& x = t.x;
    for (Index quad = t.quad_begin; quad < t.quad_end; ++quad) {
        const std::uint8_t* ct = t.codes + quad * t.quad_bytes;
        for (Index l = 0; l < 64; ++l) {
            const Index r = quad * 64 + l;
            if (r >= t.rows) break;
            const Index band = (quad * 64) / t.rows_per_codebook;
            float yacc[B] = {};
            for (Index g = 0; g < t.groups; ++g) {
                const Index cb = g * t.bands + band;
                const std::uint8_t* tbl = t.tables + 1024 * cb;
                const float cs = t.cb_scales[cb];
                for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                     k < ke; ++k) {
                    std::int32_t acc[B];
                    for (int b = 0; b < B; ++b) acc[b] = -128 * x.sums[b * x.blocks + k];
                    for (Index v = 0; v < 8; ++v) {
                        const std::uint8_t code = ct[(k * 8 + v) * 64 + l];
                        for (int b = 0; b < B; ++b) {
                            const std::int8_t* q = x.q + b * x.ldq + k * 32 + 4 * v;
                            acc[b] += tbl[code] * q[0] + tbl[256 + code] * q[1] + tbl[512 + code] * q[2] +
                                      tbl[768 + code] * q[3];
                        }
                    }
                    float ls = cs;
                    if (t.norm) ls *= t.norm[(quad * t.scale_blocks + k / t.blocks_per_scale) * 64 + vq4_position(l)];
                    for (int b = 0; b < B; ++b) {
                        const float s = ls * x.d[b * x.blocks + k];
                        yacc[b] = std::fma(static_cast<float>(acc[b]), s, yacc[b]);
                    }
                }
            }
            for (int b = 0; b < B; ++b) t.y[b * t.ldy + r] = yacc[b];
        }
    }
}

template <int B>
void vptq_fast_portable(const VptqFastTask& t) {
    const FastActivations& x = t.x;
    for (Index p = t.pair_begin; p < t.pair_end; ++p) {
        const std::uint16_t* cp = t.codes + p * t.pair_stride;
        const std::uint16_t* rp = t.res_tables ? t.res_codes + p * t.pair_stride : nullptr;
        for (Index l = 0; l < 16; ++l) {
            const Index r = p * 16 + l;
            if (r >= t.rows) break;
            const Index half = l / 8, row = l % 8;
            float yacc[B] = {};
            for (Index k = 0; k < x.blocks; ++k) {
                const Index g = k / t.blocks_per_group;
                const std::uint8_t* tbl = t.tables + 8 * t.k * g;
                std::int32_t acc[B], racc[B];
                for (int b = 0; b < B; ++b) acc[b] = racc[b] = -128 * x.sums[b * x.blocks + k];
                for (Index c = k * 32; c < k * 32 + 32; ++c) {
                    const Index at = (c / 4) * 8 + half * 4 + c % 4;
                    const std::int32_t w = tbl[8 * cp[at] + row];
                    for (int b = 0; b < B; ++b) acc[b] += w * x.q[b * x.ldq + c];
                    if (rp) {
                        const std::int32_t wr = t.res_tables[8 * (t.kr * g + rp[at]) + row];
                        for (int b = 0; b < B; ++b) racc[b] += wr * x.q[b * x.ldq + c];
                    }
                }
                for (int b = 0; b < B; ++b) {
                    const float d = x.d[b * x.blocks + k];
                    yacc[b] = std::fma(static_cast<float>(acc[b]), t.scales[g] * d, yacc[b]);
                    if (rp) yacc[b] = std::fma(static_cast<float>(racc[b]), t.res_scales[g] * d, yacc[b]);
                }
            }
            for (int b = 0; b < B; ++b) t.y[b * t.ldy + r] = yacc[b];
        }
    }
}

#ifdef VQLIB_DETAIL_FAST_X86

// GCC 12 at -O1 reports the intrinsics' deliberately undefined pass-through operands
// (_mm512_undefined_*) as maybe-uninitialized once they are inlined here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// ---- AVX2 ------------------------------------------------------------------------------------

/// yacc[b] += acc[b] * (scale * d_b of block k): one product and one FMA, as every variant.
template <int B>
__attribute__((target("avx2,fma,f16c"))) inline void avx2_scale_block(__m256 (&yacc)[B], const __m256i (&acc)[B],
                                                                     __m256 scale, const FastActivations& x, Index k) {
    for (int b = 0; b < B; ++b) {
        const __m256 s = _mm256_mul_ps(scale, _mm256_set1_ps(x.d[b * x.blocks + k]));
        yacc[b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[b]), s, yacc[b]);
    }
}

/// Rows r0 .. r0 + 7 (those below `rows`) of y's B columns from yacc.
template <int B>
__attribute__((target("avx2,fma,f16c"))) inline void avx2_store_rows(const __m256 (&yacc)[B], Index rows, Index r0,
                                                                    float* y, Index ldy) {
    const Index n = rows - r0 < 8 ? rows - r0 : 8;
    for (int b = 0; b < B; ++b) {
        if (n == 8) {
            _mm256_storeu_ps(y + b * ldy + r0, yacc[b]);
        } else {
            alignas(32) float tmp[8];
            _mm256_store_ps(tmp, yacc[b]);
            std::memcpy(y + b * ldy + r0, tmp, static_cast<std::size_t>(n) * 4);
        }
    }
}

template <int B>
__attribute__((target("avx2,fma,f16c"))) void int4_fast_avx2(const Int4FastTask& t) {
    const FastActivations& x = t.x;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    for (Index tile = t.tile_begin; tile < t.tile_end; ++tile) {
        const std::uint8_t* ct = t.codes + tile * t.tile_bytes;
        for (Index half = 0; half < 2; ++half) {
            const Index r0 = tile * 16 + half * 8;
            if (r0 >= t.rows) break;
            __m256 yacc[B];
            for (int b = 0; b < B; ++b) yacc[b] = _mm256_setzero_ps();
            for (Index g = 0; g < t.groups; ++g) {
                const std::size_t at = static_cast<std::size_t>((tile * t.groups + g) * 16 + half * 8);
                const __m256 ws = _mm256_cvtph_ps(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.scales + at)));
                __m256i z = _mm256_set1_epi32(8);
                if (t.zeros) {
                    std::int64_t zz;
                    std::memcpy(&zz, t.zeros + at, 8);
                    z = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(zz));
                }
                for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                     k < ke; ++k) {
                    __m256i acc[B];
                    for (int b = 0; b < B; ++b)
                        acc[b] = _mm256_mullo_epi32(z, _mm256_set1_epi32(-x.sums[b * x.blocks + k]));
                    for (Index j = 0; j < 4; ++j) {
                        const __m256i v = _mm256_loadu_si256(
                            reinterpret_cast<const __m256i*>(ct + (k * 4 + j) * 64 + half * 32));
                        const __m256i lo = _mm256_and_si256(v, m4);
                        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                        const Index c0 = k * 32 + j * 8;
                        for (int b = 0; b < B; ++b) {
                            std::int32_t xa, xb;
                            std::memcpy(&xa, x.q + b * x.ldq + c0, 4);
                            std::memcpy(&xb, x.q + b * x.ldq + c0 + 4, 4);
                            const __m256i pa = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(xa));
                            const __m256i pb = _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xb));
                            acc[b] = _mm256_add_epi32(
                                acc[b], _mm256_madd_epi16(_mm256_add_epi16(pa, pb), ones));
                        }
                    }
                    avx2_scale_block<B>(yacc, acc, ws, x, k);
                }
            }
            avx2_store_rows<B>(yacc, t.rows, r0, t.y, t.ldy);
        }
    }
}

/// GPTVQ 2D (K <= 16) with AVX2: per half tile (8 rows, one codebook), vpshufb looks up the
/// 16 codes' x and y bytes in the codebook's two 16-byte planes, byte unpacks give each row's 4
/// weights per dword, and vpmaddubsw multiplies them with the activations as |x| times
/// sign(x) * q (|q|, |x| <= 127: the int16 pair sums cannot saturate), vpmaddwd widens. The integer
/// sums are those of the other variants (sum q x, without the +128 offset), so the same bits.
template <int B>
__attribute__((target("avx2,fma,f16c"))) void vq2_fast_avx2(const Vq2FastTask& t) {
    const FastActivations& x = t.x;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
    const __m128i deinterleave = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i ones = _mm256_set1_epi16(1);
    for (Index tile = t.tile_begin; tile < t.tile_end; ++tile) {
        const std::uint8_t* ct = t.codes + tile * t.tile_bytes;
        for (Index half = 0; half < 2; ++half) {
            const Index r0 = tile * 16 + half * 8;
            if (r0 >= t.rows) break;
            const Index band = r0 / t.rows_per_codebook;
            __m256 yacc[B];
            for (int b = 0; b < B; ++b) yacc[b] = _mm256_setzero_ps();
            for (Index g = 0; g < t.groups; ++g) {
                const Index cb = g * t.bands + band;
                // Planes of signed q: entry k's bytes (q_x + 128, q_y + 128) at 2 k, 2 k + 1.
                const std::uint8_t* tbl = t.tables + 32 * cb;
                const __m128i e0 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tbl)), deinterleave);
                const __m128i e1 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tbl + 16)), deinterleave);
                const __m128i px = _mm_xor_si128(_mm_unpacklo_epi64(e0, e1), flip);
                const __m128i py = _mm_xor_si128(_mm_unpackhi_epi64(e0, e1), flip);
                const __m256 cs = _mm256_set1_ps(t.cb_scales[cb]);
                for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                     k < ke; ++k) {
                    __m256i acc[B];
                    for (int b = 0; b < B; ++b) acc[b] = _mm256_setzero_si256();
                    const std::uint8_t* p = ct + k * 128 + 16 * half;
                    for (Index j = 0; j < 4; ++j) {
                        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + j * 32));
                        const __m128i lo = _mm_and_si128(v, m4);
                        const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
                        // Byte 2 l + h of a lookup: vector h of row l; unpacking x and y bytes
                        // puts row l's 4 weights in dword l.
                        const __m128i xa = _mm_shuffle_epi8(px, lo), ya = _mm_shuffle_epi8(py, lo);
                        const __m128i xb = _mm_shuffle_epi8(px, hi), yb = _mm_shuffle_epi8(py, hi);
                        const __m256i wa = _mm256_set_m128i(_mm_unpackhi_epi8(xa, ya), _mm_unpacklo_epi8(xa, ya));
                        const __m256i wb = _mm256_set_m128i(_mm_unpackhi_epi8(xb, yb), _mm_unpacklo_epi8(xb, yb));
                        const Index c0 = k * 32 + j * 8;
                        for (int b = 0; b < B; ++b) {
                            std::int32_t va, vb;
                            std::memcpy(&va, x.q + b * x.ldq + c0, 4);
                            std::memcpy(&vb, x.q + b * x.ldq + c0 + 4, 4);
                            const __m256i sa = _mm256_set1_epi32(va), sb = _mm256_set1_epi32(vb);
                            const __m256i pa = _mm256_maddubs_epi16(_mm256_abs_epi8(sa), _mm256_sign_epi8(wa, sa));
                            const __m256i pb = _mm256_maddubs_epi16(_mm256_abs_epi8(sb), _mm256_sign_epi8(wb, sb));
                            acc[b] = _mm256_add_epi32(acc[b], _mm256_add_epi32(_mm256_madd_epi16(pa, ones),
                                                                               _mm256_madd_epi16(pb, ones)));
                        }
                    }
                    __m256 ls = cs;
                    if (t.norm)
                        ls = _mm256_mul_ps(ls, _mm256_loadu_ps(t.norm + (tile * t.scale_blocks + k / t.blocks_per_scale) * 16 + 8 * half));
                    avx2_scale_block<B>(yacc, acc, ls, x, k);
                }
            }
            avx2_store_rows<B>(yacc, t.rows, r0, t.y, t.ldy);
        }
    }
}

// ---- AVX-512 VNNI ----------------------------------------------------------------------------

#define VQLIB_DETAIL_FAST_AVX512 "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"

template <int B>
__attribute__((target(VQLIB_DETAIL_FAST_AVX512))) void int4_fast_avx512(const Int4FastTask& t) {
    const FastActivations& x = t.x;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (Index tile = t.tile_begin; tile < t.tile_end; ++tile) {
        const std::uint8_t* ct = t.codes + tile * t.tile_bytes;
        __m512 yacc[B];
        for (int b = 0; b < B; ++b) yacc[b] = _mm512_setzero_ps();
        for (Index g = 0; g < t.groups; ++g) {
            const std::size_t at = static_cast<std::size_t>((tile * t.groups + g) * 16);
            const __m512 ws = _mm512_cvtph_ps(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.scales + at)));
            const __m512i z = t.zeros ? _mm512_cvtepu8_epi32(_mm_loadu_si128(
                                            reinterpret_cast<const __m128i*>(t.zeros + at)))
                                      : _mm512_set1_epi32(8);
            for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                 k < ke; ++k) {
                __m512i acc[B];
                for (int b = 0; b < B; ++b)
                    acc[b] = t.zeros ? _mm512_mullo_epi32(z, _mm512_set1_epi32(-x.sums[b * x.blocks + k]))
                                     : _mm512_set1_epi32(-8 * x.sums[b * x.blocks + k]);
                const std::uint8_t* p = ct + k * 256;
                for (Index j = 0; j < 4; ++j) {
                    const __m512i v = _mm512_loadu_si512(p + j * 64);
                    const __m512i lo = _mm512_and_si512(v, m4);
                    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                    const Index c0 = k * 32 + j * 8;
                    for (int b = 0; b < B; ++b) {
                        std::int32_t xa, xb;
                        std::memcpy(&xa, x.q + b * x.ldq + c0, 4);
                        std::memcpy(&xb, x.q + b * x.ldq + c0 + 4, 4);
                        acc[b] = _mm512_dpbusd_epi32(acc[b], lo, _mm512_set1_epi32(xa));
                        acc[b] = _mm512_dpbusd_epi32(acc[b], hi, _mm512_set1_epi32(xb));
                    }
                }
                for (int b = 0; b < B; ++b) {
                    const __m512 s = _mm512_mul_ps(ws, _mm512_set1_ps(x.d[b * x.blocks + k]));
                    yacc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[b]), s, yacc[b]);
                }
            }
        }
        const Index r0 = tile * 16;
        const Index n = t.rows - r0 < 16 ? t.rows - r0 : 16;
        const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1u);
        for (int b = 0; b < B; ++b) _mm512_mask_storeu_ps(t.y + b * t.ldy + r0, mask, yacc[b]);
    }
}

template <int B>
__attribute__((target(VQLIB_DETAIL_FAST_AVX512))) void vq2_fast_avx512(const Vq2FastTask& t) {
    const FastActivations& x = t.x;
    const __m512i m4 = _mm512_set1_epi16(0x0F);
    // Words 16..31 (rows 8..15 of the tile) look up the second codebook: entries 16..31.
    const __m512i upper = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(16), 1);
    for (Index tile = t.tile_begin; tile < t.tile_end; ++tile) {
        const std::uint8_t* ct = t.codes + tile * t.tile_bytes;
        const Index r0 = tile * 16;
        const Index rb = r0 + 8 < t.rows ? r0 + 8 : t.rows - 1;
        const Index band_a = r0 / t.rows_per_codebook, band_b = rb / t.rows_per_codebook;
        __m512 yacc[B];
        for (int b = 0; b < B; ++b) yacc[b] = _mm512_setzero_ps();
        for (Index g = 0; g < t.groups; ++g) {
            const Index cba = g * t.bands + band_a, cbb = g * t.bands + band_b;
            const __m512i tbl = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.tables + 32 * cba))),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.tables + 32 * cbb)), 1);
            const __m512 cs = _mm512_castpd_ps(_mm512_insertf64x4(
                _mm512_castps_pd(_mm512_set1_ps(t.cb_scales[cba])),
                _mm256_castps_pd(_mm256_set1_ps(t.cb_scales[cbb])), 1));
            for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                 k < ke; ++k) {
                __m512i acc[B];
                for (int b = 0; b < B; ++b) acc[b] = _mm512_set1_epi32(-128 * x.sums[b * x.blocks + k]);
                const std::uint8_t* p = ct + k * 128;
                for (Index j = 0; j < 4; ++j) {
                    const __m512i w = _mm512_cvtepu8_epi16(
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j * 32)));
                    const __m512i ia = _mm512_or_si512(_mm512_and_si512(w, m4), upper);
                    const __m512i ib = _mm512_or_si512(_mm512_srli_epi16(w, 4), upper);
                    const __m512i wa = _mm512_permutexvar_epi16(ia, tbl);
                    const __m512i wb = _mm512_permutexvar_epi16(ib, tbl);
                    const Index c0 = k * 32 + j * 8;
                    for (int b = 0; b < B; ++b) {
                        std::int32_t xa, xb;
                        std::memcpy(&xa, x.q + b * x.ldq + c0, 4);
                        std::memcpy(&xb, x.q + b * x.ldq + c0 + 4, 4);
                        acc[b] = _mm512_dpbusd_epi32(acc[b], wa, _mm512_set1_epi32(xa));
                        acc[b] = _mm512_dpbusd_epi32(acc[b], wb, _mm512_set1_epi32(xb));
                    }
                }
                __m512 ls = cs;
                if (t.norm)
                    ls = _mm512_mul_ps(ls, _mm512_loadu_ps(t.norm + (tile * t.scale_blocks + k / t.blocks_per_scale) * 16));
                for (int b = 0; b < B; ++b) {
                    const __m512 s = _mm512_mul_ps(ls, _mm512_set1_ps(x.d[b * x.blocks + k]));
                    yacc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[b]), s, yacc[b]);
                }
            }
        }
        const Index n = t.rows - r0 < 16 ? t.rows - r0 : 16;
        const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1u);
        for (int b = 0; b < B; ++b) _mm512_mask_storeu_ps(t.y + b * t.ldy + r0, mask, yacc[b]);
    }
}

template <int B>
__attribute__((target(VQLIB_DETAIL_FAST_AVX512 ",avx512vbmi"))) void vq4_fast_avx512(const Vq4FastTask& t) {
    const FastActivations& x = t.x;
    for (Index quad = t.quad_begin; quad < t.quad_end; ++quad) {
        const std::uint8_t* ct = t.codes + quad * t.quad_bytes;
        const Index band = (quad * 64) / t.rows_per_codebook;
        __m512 yacc[4][B];
        for (int j = 0; j < 4; ++j)
            for (int b = 0; b < B; ++b) yacc[j][b] = _mm512_setzero_ps();
        for (Index g = 0; g < t.groups; ++g) {
            const Index cb = g * t.bands + band;
            const std::uint8_t* tbl = t.tables + 1024 * cb;
            __m512i T[16];
            for (int i = 0; i < 16; ++i) T[i] = _mm512_loadu_si512(tbl + 64 * i);
            const __m512 cs = _mm512_set1_ps(t.cb_scales[cb]);
            for (Index k = g * t.blocks_per_group, ke = fast_group_end(g, t.blocks_per_group, x.blocks);
                 k < ke; ++k) {
                __m512i acc[4][B];
                for (int b = 0; b < B; ++b) {
                    const __m512i init = _mm512_set1_epi32(-128 * x.sums[b * x.blocks + k]);
                    for (int j = 0; j < 4; ++j) acc[j][b] = init;
                }
                for (Index v = 0; v < 8; ++v) {
                    const __m512i c = _mm512_loadu_si512(ct + (k * 8 + v) * 64);
                    const __mmask64 high = _mm512_movepi8_mask(c);
                    __m512i w[4];
                    for (int p = 0; p < 4; ++p)
                        w[p] = _mm512_mask_blend_epi8(high, _mm512_permutex2var_epi8(T[4 * p], c, T[4 * p + 1]),
                                                      _mm512_permutex2var_epi8(T[4 * p + 2], c, T[4 * p + 3]));
                    const __m512i a = _mm512_unpacklo_epi8(w[0], w[1]), bb = _mm512_unpackhi_epi8(w[0], w[1]);
                    const __m512i cc = _mm512_unpacklo_epi8(w[2], w[3]), d = _mm512_unpackhi_epi8(w[2], w[3]);
                    const __m512i R[4] = {_mm512_unpacklo_epi16(a, cc), _mm512_unpackhi_epi16(a, cc),
                                          _mm512_unpacklo_epi16(bb, d), _mm512_unpackhi_epi16(bb, d)};
                    for (int b = 0; b < B; ++b) {
                        std::int32_t xv;
                        std::memcpy(&xv, x.q + b * x.ldq + k * 32 + 4 * v, 4);
                        const __m512i xb = _mm512_set1_epi32(xv);
                        for (int j = 0; j < 4; ++j) acc[j][b] = _mm512_dpbusd_epi32(acc[j][b], R[j], xb);
                    }
                }
                for (int j = 0; j < 4; ++j) {
                    __m512 ls = cs;
                    if (t.norm)
                        ls = _mm512_mul_ps(ls, _mm512_loadu_ps(t.norm + (quad * t.scale_blocks + k / t.blocks_per_scale) * 64 + 16 * j));
                    for (int b = 0; b < B; ++b) {
                        const __m512 s = _mm512_mul_ps(ls, _mm512_set1_ps(x.d[b * x.blocks + k]));
                        yacc[j][b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[j][b]), s, yacc[j][b]);
                    }
                }
            }
        }
        for (int b = 0; b < B; ++b) {
            alignas(64) float out[64];
            for (int j = 0; j < 4; ++j) _mm512_store_ps(out + 16 * j, yacc[j][b]);
            for (Index l = 0; l < 64 && quad * 64 + l < t.rows; ++l) t.y[b * t.ldy + quad * 64 + l] = out[vq4_position(l)];
        }
    }
}

/// The 8 centroids (8 bytes each) of codes[0..7] in one register, then each row's 4 columns in
/// one dword (the byte transpose `transpose`). The codes are read as two 64-bit words and split
/// by shifts (fewer loads and instructions than 8 separate 16-bit loads: the kernel is bound by
/// issue and load slots, about one cycle per centroid).
__attribute__((target(VQLIB_DETAIL_FAST_AVX512 ",avx512vbmi"))) inline __m512i vptq_fast_weights(
    const std::uint16_t* codes, const std::uint8_t* table, __m512i transpose) {
    std::uint64_t lo, hi;
    std::memcpy(&lo, codes, 8);
    std::memcpy(&hi, codes + 4, 8);
    auto at = [table](std::uint64_t word, int e) {
        return table + 8 * static_cast<std::size_t>((word >> (16 * e)) & 0xFFFFu);
    };
    auto pair = [&](std::uint64_t word, int e) {
        const __m128i l = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(at(word, e)));
        return _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(l), reinterpret_cast<const double*>(at(word, e + 1))));
    };
    const __m128i g0 = pair(lo, 0), g1 = pair(lo, 2), g2 = pair(hi, 0), g3 = pair(hi, 2);
    const __m512i g = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(g0), g1, 1)),
        _mm256_inserti128_si256(_mm256_castsi128_si256(g2), g3, 1), 1);
    return _mm512_permutexvar_epi8(transpose, g);
}

template <int B>
__attribute__((target(VQLIB_DETAIL_FAST_AVX512 ",avx512vbmi"))) void vptq_fast_avx512(const VptqFastTask& t) {
    const FastActivations& x = t.x;
    // Byte 4 (8 h + i) + c of the result <- byte 8 (4 h + c) + i of the 8 centroids: row i of
    // row block h, column c.
    alignas(64) std::uint8_t order[64];
    for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 8; ++i)
            for (int c = 0; c < 4; ++c) order[4 * (8 * h + i) + c] = static_cast<std::uint8_t>(8 * (4 * h + c) + i);
    const __m512i transpose = _mm512_load_si512(order);
    for (Index p = t.pair_begin; p < t.pair_end; ++p) {
        const std::uint16_t* cp = t.codes + p * t.pair_stride;
        const std::uint16_t* rp = t.res_tables ? t.res_codes + p * t.pair_stride : nullptr;
        __m512 yacc[B];
        for (int b = 0; b < B; ++b) yacc[b] = _mm512_setzero_ps();
        for (Index k = 0; k < x.blocks; ++k) {
            const Index g = k / t.blocks_per_group;
            const std::uint8_t* tbl = t.tables + 8 * t.k * g;
            const std::uint8_t* rtbl = rp ? t.res_tables + 8 * t.kr * g : nullptr;
            // The code stream 16 blocks (4 KiB) ahead: without it, a cold call waits on DRAM.
            _mm_prefetch(reinterpret_cast<const char*>(cp + 64 * k + 1024), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(cp + 64 * k + 1056), _MM_HINT_T0);
            if (rp) {
                _mm_prefetch(reinterpret_cast<const char*>(rp + 64 * k + 1024), _MM_HINT_T0);
                _mm_prefetch(reinterpret_cast<const char*>(rp + 64 * k + 1056), _MM_HINT_T0);
            }
            __m512i acc[B], racc[B];
            for (int b = 0; b < B; ++b) acc[b] = racc[b] = _mm512_set1_epi32(-128 * x.sums[b * x.blocks + k]);
            for (Index j = 0; j < 8; ++j) {
                const Index c0 = k * 32 + 4 * j;
                const __m512i w = vptq_fast_weights(cp + 2 * c0, tbl, transpose);
                for (int b = 0; b < B; ++b) {
                    std::int32_t xv;
                    std::memcpy(&xv, x.q + b * x.ldq + c0, 4);
                    acc[b] = _mm512_dpbusd_epi32(acc[b], w, _mm512_set1_epi32(xv));
                }
                if (rp) {
                    const __m512i wr = vptq_fast_weights(rp + 2 * c0, rtbl, transpose);
                    for (int b = 0; b < B; ++b) {
                        std::int32_t xv;
                        std::memcpy(&xv, x.q + b * x.ldq + c0, 4);
                        racc[b] = _mm512_dpbusd_epi32(racc[b], wr, _mm512_set1_epi32(xv));
                    }
                }
            }
            for (int b = 0; b < B; ++b) {
                const float d = x.d[b * x.blocks + k];
                yacc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[b]), _mm512_set1_ps(t.scales[g] * d), yacc[b]);
                if (rp)
                    yacc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(racc[b]), _mm512_set1_ps(t.res_scales[g] * d), yacc[b]);
            }
        }
        const Index r0 = p * 16;
        const Index n = t.rows - r0 < 16 ? t.rows - r0 : 16;
        const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1u);
        for (int b = 0; b < B; ++b) _mm512_mask_storeu_ps(t.y + b * t.ldy + r0, mask, yacc[b]);
    }
}

#undef VQLIB_DETAIL_FAST_AVX512
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // VQLIB_DETAIL_FAST_X86

template <int B>
void int4_fast_tiles(FastIsa isa, const Int4FastTask& t) {
#ifdef VQLIB_DETAIL_FAST_X86
    if (isa == FastIsa::avx512) return int4_fast_avx512<B>(t);
    if (isa == FastIsa::avx2) return int4_fast_avx2<B>(t);
#endif
    (void)isa;
    int4_fast_portable<B>(t);
}

template <int B>
void vq2_fast_tiles(FastIsa isa, const Vq2FastTask& t) {
#ifdef VQLIB_DETAIL_FAST_X86
    if (isa == FastIsa::avx512) return vq2_fast_avx512<B>(t);
    if (isa == FastIsa::avx2) return vq2_fast_avx2<B>(t);
#endif
    (void)isa;
    vq2_fast_portable<B>(t);
}

template <int B>
void vq4_fast_tiles(FastIsa isa, const Vq4FastTask& t) {
#ifdef VQLIB_DETAIL_FAST_X86
    if (isa == FastIsa::avx512 && fast_has_vbmi()) return vq4_fast_avx512<B>(t);
#endif
    (void)isa;
    vq4_fast_portable<B>(t);
}

template <int B>
void vptq_fast_tiles(FastIsa isa, const VptqFastTask& t) {
#ifdef VQLIB_DETAIL_FAST_X86
    if (isa == FastIsa::avx512 && fast_has_vbmi()) return vptq_fast_avx512<B>(t);
#endif
    (void)isa;
    vptq_fast_portable<B>(t);
}

}  // namespace vqlib::kernels::detail

#undef VQLIB_DETAIL_FAST_X86
