#pragma once
// Internal kernels of the Hadamard transforms: the in-place butterflies of the fast Walsh-Hadamard
// transform and the dense "mixing" product by a small m x m matrix, each compiled for several
// instruction sets (portable, AVX2+FMA, AVX-512) and chosen once at run time (best_simd_level(),
// core/simd.hpp).
//
// Every variant performs exactly the same floating-point operations in the same order (the
// butterfly stages in increasing distance, a + b and a - b per pair; the mixing sums over k in
// increasing order, in blocks), only on vectors of different widths. Results are therefore
// bit-identical whatever the instruction set, thread count or batch layout (unless the code is
// compiled with -ffast-math / -fassociative-math, which let the compiler reorder the additions).
// The one place where a fused multiply-add could change a rounding, the mixing product by a
// non-+-1 matrix (the Hartley fallback), keeps each product rounded (Clang: on every target; GCC:
// on x86-64 and AArch64).
//
// Layout used throughout ("interleaved"): a batch of `lanes` vectors of P elements is stored with
// element t of vector v at x[t * lanes + v]. With lanes = 1 this is one contiguous vector. A
// butterfly stage at distance h on such a batch is the contiguous stage at distance h * lanes,
// which is what makes one code path serve single vectors and row blocks alike.
#include <vqlib/core/simd.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include <vqlib/core/simd_macros.inc>

// __builtin_shufflevector: Clang, and GCC from version 12. Without it the in-register stages are
// done by the scalar loop (same results, slower). (#undef'd at the end of this header.)
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define VQLIB_TRANSFORM_SHUFFLE 1
#endif

namespace vqlib::transform::detail {

using ::vqlib::detail::keep_rounded;

/// The vector type of W lanes of T (GNU vector extension), or T itself for W = 1.
template <class T, int W>
struct pack;
template <class T>
struct pack<T, 1> {
    using type = T;
};
#ifdef VQLIB_DETAIL_GNU_VECTORS
template <>
struct pack<float, 4> {
    typedef float type __attribute__((vector_size(16)));
};
template <>
struct pack<float, 8> {
    typedef float type __attribute__((vector_size(32)));
};
template <>
struct pack<float, 16> {
    typedef float type __attribute__((vector_size(64)));
};
template <>
struct pack<double, 2> {
    typedef double type __attribute__((vector_size(16)));
};
template <>
struct pack<double, 4> {
    typedef double type __attribute__((vector_size(32)));
};
template <>
struct pack<double, 8> {
    typedef double type __attribute__((vector_size(64)));
};
#endif

/// Bytes of a block whose butterfly stages are all done before moving on (L1-sized).
inline constexpr std::size_t kBlockBytes = 32 * 1024;

/// Terms per partial sum of the mixing product (see Kernels::mix).
inline constexpr std::size_t kMixBlock = 16;

/// The kernels for element type T on vectors of W lanes. All members are force-inlined so that
/// each instruction-set entry point below gets its own copy compiled for its target.
template <class T, int W>
struct Kernels {
    using V = typename pack<T, W>::type;

    VQLIB_DETAIL_ALWAYS_INLINE static void load(V& v, const T* p) {
        std::memcpy(&v, p, sizeof(V));
    }
    VQLIB_DETAIL_ALWAYS_INLINE static void store(T* p, const V& v) {
        std::memcpy(p, &v, sizeof(V));
    }

    /// Butterfly stages h and 2h at once (radix 4) over x[0, len), len a multiple of 4h.
    VQLIB_DETAIL_ALWAYS_INLINE static void radix4(T* x, std::size_t len, std::size_t h) {
        for (std::size_t base = 0; base < len; base += 4 * h) {
            T* p0 = x + base;
            T* p1 = p0 + h;
            T* p2 = p1 + h;
            T* p3 = p2 + h;
            std::size_t j = 0;
            if constexpr (W > 1) {
                for (; j + W <= h; j += W) {
                    V a, b, c, d;
                    load(a, p0 + j);
                    load(b, p1 + j);
                    load(c, p2 + j);
                    load(d, p3 + j);
                    const V s0 = a + b, d0 = a - b, s1 = c + d, d1 = c - d;
                    store(p0 + j, s0 + s1);
                    store(p1 + j, d0 + d1);
                    store(p2 + j, s0 - s1);
                    store(p3 + j, d0 - d1);
                }
            }
            for (; j < h; ++j) {
                const T a = p0[j], b = p1[j], c = p2[j], d = p3[j];
                const T s0 = a + b, d0 = a - b, s1 = c + d, d1 = c - d;
                p0[j] = s0 + s1;
                p1[j] = d0 + d1;
                p2[j] = s0 - s1;
                p3[j] = d0 - d1;
            }
        }
    }

    /// One butterfly stage at distance h over x[0, len), len a multiple of 2h.
    VQLIB_DETAIL_ALWAYS_INLINE static void radix2(T* x, std::size_t len, std::size_t h) {
        for (std::size_t base = 0; base < len; base += 2 * h) {
            T* p0 = x + base;
            T* p1 = p0 + h;
            std::size_t j = 0;
            if constexpr (W > 1) {
                for (; j + W <= h; j += W) {
                    V a, b;
                    load(a, p0 + j);
                    load(b, p1 + j);
                    store(p0 + j, a + b);
                    store(p1 + j, a - b);
                }
            }
            for (; j < h; ++j) {
                const T a = p0[j], b = p1[j];
                p0[j] = a + b;
                p1[j] = a - b;
            }
        }
    }

    /// The stages at distances h, 2h, ... < len, within x[0, len).
    VQLIB_DETAIL_ALWAYS_INLINE static void stages(T* x, std::size_t len, std::size_t h) {
        while (4 * h <= len) {
            radix4(x, len, h);
            h *= 4;
        }
        if (h < len) radix2(x, len, h);
    }

#ifdef VQLIB_TRANSFORM_SHUFFLE
    /// Stage h < W inside one register: lane i takes v[i ^ h] + (+-1) v[i], i.e. v[i] + v[i + h]
    /// for the lower lane of each pair and v[i - h] - v[i] for the upper one (IEEE addition is
    /// commutative and a - b = a + (-b), so these equal the scalar butterflies bit for bit).
    template <int H, int... Is>
    VQLIB_DETAIL_ALWAYS_INLINE static void in_register_stage(V& v,
                                                             std::integer_sequence<int, Is...>) {
        const V sign = {((Is & H) ? T(-1) : T(1))...};
        v = __builtin_shufflevector(v, v, (Is ^ H)...) + sign * v;
    }

    template <int H>
    VQLIB_DETAIL_ALWAYS_INLINE static void in_register_stages(V& v, std::size_t first) {
        if constexpr (H < W) {
            if (static_cast<std::size_t>(H) >= first)
                in_register_stage<H>(v, std::make_integer_sequence<int, W>{});
            in_register_stages<2 * H>(v, first);
        }
    }
#endif

    /// The stages at distances first, 2 first, ..., W/2 of a contiguous x[0, len), len a multiple
    /// of W and `first` a power of two below W. (With `first` = lanes, these are the stages of an
    /// interleaved batch whose pairs lie within one vector.)
    VQLIB_DETAIL_ALWAYS_INLINE static void low_stages(T* x, std::size_t len, std::size_t first) {
#ifdef VQLIB_TRANSFORM_SHUFFLE
        if constexpr (W > 1) {
            for (std::size_t i = 0; i < len; i += W) {
                V v;
                load(v, x + i);
                in_register_stages<1>(v, first);
                store(x + i, v);
            }
        }
#else
        for (std::size_t i = 0; i < len; i += W) stages(x + i, W, first);
#endif
    }

    /// Unnormalized Walsh-Hadamard transform (Sylvester order) of each of the `lanes`
    /// interleaved vectors of P elements in x (P a power of two).
    VQLIB_DETAIL_ALWAYS_INLINE static void fwht(T* x, std::size_t p, std::size_t lanes) {
        if (p < 2 || lanes == 0) return;
        const std::size_t len = p * lanes;
        std::size_t block_p = p;
        while (block_p > 2 && block_p * lanes * sizeof(T) > kBlockBytes) block_p /= 2;
        const std::size_t block = block_p * lanes;
        // Stages whose pairs lie inside one vector are done in registers: possible when lanes is
        // a power of two below W and a block spans whole vectors.
        const bool in_register = W > 1 && lanes < static_cast<std::size_t>(W) &&
                                 (lanes & (lanes - 1)) == 0 && block % W == 0;
        for (std::size_t offset = 0; offset < len; offset += block) {
            std::size_t h = lanes;
            if (in_register) {
                low_stages(x + offset, block, lanes);
                h = W;
            }
            stages(x + offset, block, h);
        }
        stages(x, len, block);
    }

    /// Y[i * ldy + l] = scale * sum_k M[i * m + k] * X[k * ldx + l] for i < m, l < L (M
    /// row-major m x m). The sum over k runs in blocks of kMixBlock terms: each block is summed in
    /// increasing k, then added to the running total, which keeps the float rounding error of
    /// long sums (m = 172) several times smaller than one sequential sum. Rounded = true keeps
    /// every product rounded (needed only when M has entries other than +-1, whose products are
    /// exact anyway).
    template <bool Rounded>
    VQLIB_DETAIL_ALWAYS_INLINE static void mix(const T* X, std::size_t ldx, T* Y, std::size_t ldy,
                                               const T* M, std::size_t m, std::size_t L, T scale) {
        std::size_t l = 0;
        if constexpr (W > 1) {
            constexpr std::size_t strip = 2 * static_cast<std::size_t>(W);
            for (; l + strip <= L; l += strip) {
                std::size_t i = 0;
                for (; i + 4 <= m; i += 4)
                    mix_tile<Rounded, 4, 2, V>(X, ldx, Y, ldy, M, m, i, l, scale);
                for (; i < m; ++i) mix_tile<Rounded, 1, 2, V>(X, ldx, Y, ldy, M, m, i, l, scale);
            }
        }
        for (; l < L; ++l)
            for (std::size_t i = 0; i < m; ++i)
                mix_tile<Rounded, 1, 1, T>(X, ldx, Y, ldy, M, m, i, l, scale);
    }

    /// Rows i .. i+R-1 of the mixing product at columns l .. l + U * lanes(A) - 1.
    template <bool Rounded, int R, int U, class A>
    VQLIB_DETAIL_ALWAYS_INLINE static void mix_tile(const T* X, std::size_t ldx, T* Y,
                                                    std::size_t ldy, const T* M, std::size_t m,
                                                    std::size_t i, std::size_t l, T scale) {
        constexpr std::size_t step = sizeof(A) / sizeof(T);
        A acc[R][U];
        A x[U];
        for (std::size_t k0 = 0; k0 < m; k0 += kMixBlock) {
            const std::size_t k1 = k0 + kMixBlock < m ? k0 + kMixBlock : m;
            VQLIB_DETAIL_UNROLL
            for (int u = 0; u < U; ++u) std::memcpy(&x[u], X + k0 * ldx + l + u * step, sizeof(A));
            VQLIB_DETAIL_UNROLL
            for (int r = 0; r < R; ++r) {
                VQLIB_DETAIL_UNROLL
                for (int u = 0; u < U; ++u) acc[r][u] = M[(i + r) * m + k0] * x[u];
            }
            for (std::size_t k = k0 + 1; k < k1; ++k) {
                VQLIB_DETAIL_UNROLL
                for (int u = 0; u < U; ++u)
                    std::memcpy(&x[u], X + k * ldx + l + u * step, sizeof(A));
                VQLIB_DETAIL_UNROLL
                for (int r = 0; r < R; ++r) {
                    VQLIB_DETAIL_UNROLL
                    for (int u = 0; u < U; ++u)
                        accumulate<Rounded>(acc[r][u], M[(i + r) * m + k], x[u]);
                }
            }
            VQLIB_DETAIL_UNROLL
            for (int r = 0; r < R; ++r) {
                VQLIB_DETAIL_UNROLL
                for (int u = 0; u < U; ++u) {
                    T* y = Y + (i + r) * ldy + l + u * step;
                    A total = acc[r][u];
                    if (k0 > 0) {
                        A previous;
                        std::memcpy(&previous, y, sizeof(A));
                        total = previous + total;
                    }
                    if (k1 == m) total = total * scale;
                    std::memcpy(y, &total, sizeof(A));
                }
            }
        }
    }

    /// dst[t] = src[t] * f[t] (dst may be src).
    VQLIB_DETAIL_ALWAYS_INLINE static void multiply(T* dst, const T* src, const T* f,
                                                    std::size_t n) {
        std::size_t t = 0;
        if constexpr (W > 1) {
            for (; t + W <= n; t += W) {
                V a, b;
                load(a, src + t);
                load(b, f + t);
                a = a * b;
                store(dst + t, a);
            }
        }
        for (; t < n; ++t) dst[t] = src[t] * f[t];
    }

    /// The narrowest vector used for short runs (16 bytes).
    static constexpr int kMinPack = static_cast<int>(16 / sizeof(T));

    /// dst[t] = src[t] * c for t in [t0, n) (dst may be src), in vectors of U lanes, then of
    /// U/2, ... (short runs such as 8-row slabs stay vectorized), then scalars.
    template <int U>
    VQLIB_DETAIL_ALWAYS_INLINE static void multiply_scalar_from(T* dst, const T* src, T c,
                                                                std::size_t n, std::size_t t0) {
        std::size_t t = t0;
        if constexpr (W > 1 && U >= kMinPack) {
            using P = typename pack<T, U>::type;
            for (; t + U <= n; t += U) {
                P a;
                std::memcpy(&a, src + t, sizeof(P));
                a = a * c;
                std::memcpy(dst + t, &a, sizeof(P));
            }
            multiply_scalar_from<U / 2>(dst, src, c, n, t);
        } else {
            for (; t < n; ++t) dst[t] = src[t] * c;
        }
    }

    /// dst[t] = src[t] for t in [t0, n), like multiply_scalar_from.
    template <int U>
    VQLIB_DETAIL_ALWAYS_INLINE static void copy_from(T* dst, const T* src, std::size_t n,
                                                     std::size_t t0) {
        std::size_t t = t0;
        if constexpr (W > 1 && U >= kMinPack) {
            using P = typename pack<T, U>::type;
            for (; t + U <= n; t += U) {
                P a;
                std::memcpy(&a, src + t, sizeof(P));
                std::memcpy(dst + t, &a, sizeof(P));
            }
            copy_from<U / 2>(dst, src, n, t);
        } else {
            for (; t < n; ++t) dst[t] = src[t];
        }
    }

    /// dst[t] = src[t] * c (dst may be src).
    VQLIB_DETAIL_ALWAYS_INLINE static void multiply_scalar(T* dst, const T* src, T c,
                                                           std::size_t n) {
        multiply_scalar_from<W>(dst, src, c, n, 0);
    }

    /// dst[t] = src[t] for t < n (short runs: cheaper than a memcpy call).
    VQLIB_DETAIL_ALWAYS_INLINE static void copy(T* dst, const T* src, std::size_t n) {
        copy_from<W>(dst, src, n, 0);
    }

    /// Gathers `rows` rows of a column-major matrix (element t of row r at src[t * ld + r],
    /// t < p * groups) into slabs of `slab_lanes` rows (the last one may be shorter). Slab s, of
    /// `lanes` rows, starts at buf + s * slab_stride and is interleaved with padded groups:
    /// element t = g * p + j of its row v sits at g * (p * lanes + pad) + j * lanes + v. Element
    /// t is multiplied by f[t] when f is given. Each column is visited once for all slabs.
    VQLIB_DETAIL_ALWAYS_INLINE static void gather(T* buf, std::size_t slab_stride, std::size_t pad,
                                                  const T* src, std::size_t ld, std::size_t p,
                                                  std::size_t groups, std::size_t rows,
                                                  std::size_t slab_lanes, const T* f) {
        for (std::size_t g = 0; g < groups; ++g)
            for (std::size_t j = 0; j < p; ++j) {
                const std::size_t t = g * p + j;
                const T* column = src + t * ld;
                for (std::size_t r0 = 0, slab = 0; r0 < rows; r0 += slab_lanes, ++slab) {
                    const std::size_t lanes = rows - r0 < slab_lanes ? rows - r0 : slab_lanes;
                    T* dst = buf + slab * slab_stride + g * (p * lanes + pad) + j * lanes;
                    if (f)
                        multiply_scalar(dst, column + r0, f[t], lanes);
                    else
                        copy(dst, column + r0, lanes);
                }
            }
    }

    /// The inverse of gather, multiplying element t by f[t] if f is given, else by c (c = 1: a
    /// plain copy).
    VQLIB_DETAIL_ALWAYS_INLINE static void scatter(T* dst, std::size_t ld, const T* buf,
                                                   std::size_t slab_stride, std::size_t pad,
                                                   std::size_t p, std::size_t groups,
                                                   std::size_t rows, std::size_t slab_lanes,
                                                   const T* f, T c) {
        for (std::size_t g = 0; g < groups; ++g)
            for (std::size_t j = 0; j < p; ++j) {
                const std::size_t t = g * p + j;
                T* column = dst + t * ld;
                for (std::size_t r0 = 0, slab = 0; r0 < rows; r0 += slab_lanes, ++slab) {
                    const std::size_t lanes = rows - r0 < slab_lanes ? rows - r0 : slab_lanes;
                    const T* src = buf + slab * slab_stride + g * (p * lanes + pad) + j * lanes;
                    if (f)
                        multiply_scalar(column + r0, src, f[t], lanes);
                    else if (c != T(1))
                        multiply_scalar(column + r0, src, c, lanes);
                    else
                        copy(column + r0, src, lanes);
                }
            }
    }

    /// acc <- acc + coefficient * x; with Rounded, the product is rounded before the add (no
    /// fused multiply-add), so that every instruction set gives the same result. GCC pins the
    /// product with keep_rounded (core/simd.hpp); Clang checks that asm constraint outside the
    /// target, so it turns contraction off instead.
    template <bool Rounded, class A>
    VQLIB_DETAIL_ALWAYS_INLINE static void accumulate(A& acc, T coefficient, const A& x) {
        if constexpr (Rounded) {
#if defined(__clang__)
#pragma clang fp contract(off)
            acc = acc + coefficient * x;
#else
            A product = coefficient * x;
            keep_rounded(product);
            acc = acc + product;
#endif
        } else {
            acc = acc + coefficient * x;
        }
    }
};

// ---- instruction-set variants and dispatch ------------------------------------------------------

/// Entry points of one variant for element type T.
template <class T>
struct KernelTable {
    using MixFn = void (*)(const T* X, std::size_t ldx, T* Y, std::size_t ldy, const T* M,
                           std::size_t m, std::size_t L, T scale);
    const char* name;
    int lanes;
    void (*fwht)(T* x, std::size_t p, std::size_t lanes);
    MixFn mix_exact;
    MixFn mix_rounded;
    void (*multiply)(T* dst, const T* src, const T* f, std::size_t n);
    void (*multiply_scalar)(T* dst, const T* src, T c, std::size_t n);
    void (*gather)(T* buf, std::size_t slab_stride, std::size_t pad, const T* src, std::size_t ld,
                   std::size_t p, std::size_t groups, std::size_t rows, std::size_t slab_lanes,
                   const T* f);
    void (*scatter)(T* dst, std::size_t ld, const T* buf, std::size_t slab_stride, std::size_t pad,
                    std::size_t p, std::size_t groups, std::size_t rows, std::size_t slab_lanes,
                    const T* f, T c);
};

#define VQLIB_TRANSFORM_VARIANT_FOR(NAME, T, W, ATTRIBUTES)                                        \
    ATTRIBUTES inline void NAME##_fwht(T* x, std::size_t p, std::size_t lanes) {                   \
        Kernels<T, W>::fwht(x, p, lanes);                                                          \
    }                                                                                              \
    ATTRIBUTES inline void NAME##_mix_exact(const T* X, std::size_t ldx, T* Y, std::size_t ldy,    \
                                            const T* M, std::size_t m, std::size_t L, T scale) {   \
        Kernels<T, W>::template mix<false>(X, ldx, Y, ldy, M, m, L, scale);                        \
    }                                                                                              \
    ATTRIBUTES inline void NAME##_mix_rounded(const T* X, std::size_t ldx, T* Y, std::size_t ldy,  \
                                              const T* M, std::size_t m, std::size_t L, T scale) { \
        Kernels<T, W>::template mix<true>(X, ldx, Y, ldy, M, m, L, scale);                         \
    }                                                                                              \
    ATTRIBUTES inline void NAME##_multiply(T* dst, const T* src, const T* f, std::size_t n) {      \
        Kernels<T, W>::multiply(dst, src, f, n);                                                   \
    }                                                                                              \
    ATTRIBUTES inline void NAME##_multiply_scalar(T* dst, const T* src, T c, std::size_t n) {      \
        Kernels<T, W>::multiply_scalar(dst, src, c, n);                                            \
    }                                                                                              \
    ATTRIBUTES inline void NAME##_gather(                                                          \
        T* buf, std::size_t slab_stride, std::size_t pad, const T* src, std::size_t ld,            \
        std::size_t p, std::size_t groups, std::size_t rows, std::size_t slab_lanes, const T* f) { \
        Kernels<T, W>::gather(buf, slab_stride, pad, src, ld, p, groups, rows, slab_lanes, f);     \
    }                                                                                              \
    ATTRIBUTES inline void NAME##_scatter(T* dst, std::size_t ld, const T* buf,                    \
                                          std::size_t slab_stride, std::size_t pad, std::size_t p, \
                                          std::size_t groups, std::size_t rows,                    \
                                          std::size_t slab_lanes, const T* f, T c) {               \
        Kernels<T, W>::scatter(dst, ld, buf, slab_stride, pad, p, groups, rows, slab_lanes, f, c); \
    }                                                                                              \
    inline const KernelTable<T>& NAME##_table(T) {                                                 \
        static const KernelTable<T> table{#NAME,                                                   \
                                          W,                                                       \
                                          &NAME##_fwht,                                            \
                                          &NAME##_mix_exact,                                       \
                                          &NAME##_mix_rounded,                                     \
                                          &NAME##_multiply,                                        \
                                          &NAME##_multiply_scalar,                                 \
                                          &NAME##_gather,                                          \
                                          &NAME##_scatter};                                        \
        return table;                                                                              \
    }

#ifdef VQLIB_DETAIL_GNU_VECTORS
#if defined(__AVX512F__)
inline constexpr int kPortableBytes = 64;
#elif defined(__AVX__)
inline constexpr int kPortableBytes = 32;
#else
inline constexpr int kPortableBytes = 16;
#endif
#else
inline constexpr int kPortableBytes = 0;
#endif
inline constexpr int kPortableFloatLanes = kPortableBytes ? kPortableBytes / 4 : 1;
inline constexpr int kPortableDoubleLanes = kPortableBytes ? kPortableBytes / 8 : 1;

VQLIB_TRANSFORM_VARIANT_FOR(portable, float, kPortableFloatLanes, )
VQLIB_TRANSFORM_VARIANT_FOR(portable, double, kPortableDoubleLanes, )
#ifdef VQLIB_DETAIL_X86_DISPATCH
VQLIB_TRANSFORM_VARIANT_FOR(avx2, float, 8, __attribute__((target("avx2,fma"))))
VQLIB_TRANSFORM_VARIANT_FOR(avx2, double, 4, __attribute__((target("avx2,fma"))))
VQLIB_TRANSFORM_VARIANT_FOR(avx512, float, 16, __attribute__((target("avx512f"))))
VQLIB_TRANSFORM_VARIANT_FOR(avx512, double, 8, __attribute__((target("avx512f"))))
#endif

#undef VQLIB_TRANSFORM_VARIANT_FOR

/// The kernels of one level (core/simd.hpp; it must be supported by this CPU): `portable` is
/// compiled with the user's flags; `avx2` (with FMA) and `avx512` exist with GCC/Clang on x86-64.
/// All give bit-identical results.
template <class T>
const KernelTable<T>& kernel_table(SimdLevel level) {
#ifdef VQLIB_DETAIL_X86_DISPATCH
    if (level == SimdLevel::avx512) return avx512_table(T{});
    if (level == SimdLevel::avx2) return avx2_table(T{});
#endif
    (void)level;
    return portable_table(T{});
}

/// The kernels of the widest level this CPU supports (best_simd_level()), chosen once.
template <class T>
const KernelTable<T>& kernel_table() {
    static const KernelTable<T>& best = kernel_table<T>(best_simd_level());
    return best;
}

}  // namespace vqlib::transform::detail

#undef VQLIB_TRANSFORM_SHUFFLE

#include <vqlib/core/simd_macros_end.inc>
