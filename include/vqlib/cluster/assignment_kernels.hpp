#pragma once
// The inner kernels of nearest-centroid assignment (internal; the API is cluster/assignment.hpp).
//
// Lanes run over points: a column-major N x D matrix keeps each coordinate contiguous over points,
// so a SIMD register holds one coordinate of W consecutive points, and each centroid coordinate is
// broadcast. Every lane keeps its running minimum and its index; a centroid replaces them only
// when strictly closer, and centroids are visited in increasing order, so ties go to the lowest
// index without any horizontal reduction.
//
// Arithmetic of the direct kernel, per point and centroid, in float32:
//   t_j = (x_j - c_j) * (x_j - c_j)            [* omega_j]
//   dist = ((t_0 + t_1) + t_2) + ... + t_{D-1}
// i.e. the reference's ((x - c)**2 * omega).sum(-1). The product t_j is never fused with the
// following addition (detail::keep_rounded of core/simd.hpp pins it), so the
// portable kernel, the AVX2 kernel and the AVX-512 kernel compute bit-identical distances, and
// direct_distance() below reproduces them one point at a time.
//
// Kernels are templated on the dimension D = 1..16 (coordinates held in registers, loops fully
// unrolled) with a runtime loop for any other D, on the lane count W, and on the weight form.
// With GCC or Clang on x86-64, AVX2 and AVX-512 variants are compiled with target attributes and
// the one of best_simd_level() (core/simd.hpp) is picked once at run time; the portable variant
// uses the vector width of the user's own flags (4 lanes for plain x86-64).
#include <vqlib/core/simd.hpp>
#include <vqlib/core/types.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include <vqlib/core/simd_macros.inc>

namespace vqlib::detail {

/// The weight forms the kernels know. Per-point weights do not change which centroid is nearest,
/// so the drivers run them as `none` and scale the reported distance afterwards.
enum class KernelWeights { none, per_coordinate, elementwise };

/// Work of one direct-kernel call: points [0, n) against centroids [k_begin, k_end).
struct DirectTask {
    const float* points = nullptr;  // coordinate j of point i at points[j * point_stride + i]
    Index point_stride = 0;
    const float* weights = nullptr;  // per_coordinate: weights[j]; elementwise: like points
    Index weight_stride = 0;
    const float* centroids = nullptr;  // row-major: coordinate j of centroid k at [k * d + j]
    Index d = 0;
    Index k_begin = 0;
    Index k_end = 0;
    Index n = 0;                    // a multiple of kLaneBlock
    float* best = nullptr;          // running minimum per point (read and updated)
    std::int32_t* index = nullptr;  // its centroid (read and updated)
    /// Top-2 kernels only: the running second smallest distance per point (read and updated):
    /// after the call, the smallest distance over every centroid seen except `index` (a tie with
    /// the minimum counts, so it equals `best` then).
    float* second = nullptr;
};

/// Work of one scan call (the GEMM path): pick the smallest precomputed score per point.
struct ScanTask {
    const float* scores = nullptr;  // score of point i, centroid k_begin + t at [t * stride + i]
    Index score_stride = 0;
    Index k_begin = 0;
    Index k_end = 0;
    Index n = 0;  // a multiple of kLaneBlock
    float* best = nullptr;
    std::int32_t* index = nullptr;
};

/// Task sizes are multiples of the widest lane count.
inline constexpr Index kLaneBlock = 16;
/// Dimensions with a compiled kernel; others use the runtime-D kernel (table entry 0).
inline constexpr int kMaxCompiledDim = 16;

// ---- lane types ---------------------------------------------------------------------------------

template <int W>
struct lanes;
template <>
struct lanes<1> {
    using f = float;
    using i = std::int32_t;
};
#ifdef VQLIB_DETAIL_GNU_VECTORS
template <>
struct lanes<4> {
    typedef float f __attribute__((vector_size(16)));
    typedef std::int32_t i __attribute__((vector_size(16)));
};
template <>
struct lanes<8> {
    typedef float f __attribute__((vector_size(32)));
    typedef std::int32_t i __attribute__((vector_size(32)));
};
template <>
struct lanes<16> {
    typedef float f __attribute__((vector_size(64)));
    typedef std::int32_t i __attribute__((vector_size(64)));
};
#endif

template <class V, class S>
VQLIB_DETAIL_ALWAYS_INLINE void load_lanes(V& v, const S* p) {
    std::memcpy(&v, p, sizeof(V));
}
template <class V, class S>
VQLIB_DETAIL_ALWAYS_INLINE void store_lanes(S* p, const V& v) {
    std::memcpy(p, &v, sizeof(V));
}

/// Point blocks processed together: enough independent minimum chains to hide the compare/select
/// latency, few enough that the coordinates stay in registers. Up to 4 blocks; 8 when a block is
/// one coordinate, where the chain latency dominates the arithmetic (measured on AVX-512).
template <int W, int D, KernelWeights M, bool Top2 = false>
constexpr int direct_unroll() {
    const int registers = W == 16 ? 32 : 16;
    const int per_block = D * (M == KernelWeights::elementwise ? 2 : 1) + 2 + (Top2 ? 1 : 0);
    const int most = per_block <= 3 ? 8 : 4;
    const int u = (registers - 4) / per_block;
    return u < 1 ? 1 : (u > most ? most : u);
}

// ---- direct kernel ------------------------------------------------------------------------------

/// Compile-time D: blocks of U*W points from i_begin while they fit below i_end. Top2 also keeps
/// the second smallest distance (t.second).
template <int W, int D, int U, KernelWeights M, bool Top2>
VQLIB_DETAIL_ALWAYS_INLINE Index direct_blocks(const DirectTask& t, Index i_begin, Index i_end) {
    using F = typename lanes<W>::f;
    using I = typename lanes<W>::i;
    constexpr int DW = M == KernelWeights::elementwise ? D : 1;
    Index i = i_begin;
    for (; i + U * W <= i_end; i += U * W) {
        F x[U][D];
        F w[U][DW];
        F best[U];
        F second[Top2 ? U : 1];
        I idx[U];
        VQLIB_DETAIL_UNROLL
        for (int u = 0; u < U; ++u) {
            if constexpr (Top2) load_lanes(second[u], t.second + i + u * W);
            VQLIB_DETAIL_UNROLL
            for (int j = 0; j < D; ++j) {
                load_lanes(x[u][j], t.points + j * t.point_stride + i + u * W);
                if constexpr (M == KernelWeights::elementwise)
                    load_lanes(w[u][j], t.weights + j * t.weight_stride + i + u * W);
            }
            load_lanes(best[u], t.best + i + u * W);
            load_lanes(idx[u], t.index + i + u * W);
        }
        for (Index k = t.k_begin; k < t.k_end; ++k) {
            const float* c = t.centroids + k * D;
            const I kv = I{} + static_cast<std::int32_t>(k);
            VQLIB_DETAIL_UNROLL
            for (int u = 0; u < U; ++u) {
                F acc = x[u][0] - c[0];
                acc = acc * acc;
                if constexpr (M == KernelWeights::per_coordinate) acc = acc * t.weights[0];
                if constexpr (M == KernelWeights::elementwise) acc = acc * w[u][0];
                if constexpr (D > 1) keep_rounded(acc);
                VQLIB_DETAIL_UNROLL
                for (int j = 1; j < D; ++j) {
                    const F diff = x[u][j] - c[j];
                    F term = diff * diff;
                    if constexpr (M == KernelWeights::per_coordinate) term = term * t.weights[j];
                    if constexpr (M == KernelWeights::elementwise) term = term * w[u][j];
                    keep_rounded(term);
                    acc = acc + term;
                }
                const auto closer = acc < best[u];
                if constexpr (Top2) {
                    const F other = acc < second[u] ? acc : second[u];
                    second[u] = closer ? best[u] : other;
                }
                best[u] = closer ? acc : best[u];
                idx[u] = closer ? kv : idx[u];
            }
        }
        VQLIB_DETAIL_UNROLL
        for (int u = 0; u < U; ++u) {
            store_lanes(t.best + i + u * W, best[u]);
            store_lanes(t.index + i + u * W, idx[u]);
            if constexpr (Top2) store_lanes(t.second + i + u * W, second[u]);
        }
    }
    return i;
}

/// Runtime D (any dimension): coordinates are re-read from memory (L1) for every centroid.
template <int W, KernelWeights M, bool Top2>
VQLIB_DETAIL_ALWAYS_INLINE void direct_blocks_any_dim(const DirectTask& t) {
    using F = typename lanes<W>::f;
    using I = typename lanes<W>::i;
    const Index d = t.d;
    for (Index i = 0; i + W <= t.n; i += W) {
        F best;
        F second{};
        I idx;
        load_lanes(best, t.best + i);
        load_lanes(idx, t.index + i);
        if constexpr (Top2) load_lanes(second, t.second + i);
        for (Index k = t.k_begin; k < t.k_end; ++k) {
            const float* c = t.centroids + k * d;
            const I kv = I{} + static_cast<std::int32_t>(k);
            F acc{};
            for (Index j = 0; j < d; ++j) {
                F xj;
                load_lanes(xj, t.points + j * t.point_stride + i);
                const F diff = xj - c[j];
                F term = diff * diff;
                if constexpr (M == KernelWeights::per_coordinate) term = term * t.weights[j];
                if constexpr (M == KernelWeights::elementwise) {
                    F wj;
                    load_lanes(wj, t.weights + j * t.weight_stride + i);
                    term = term * wj;
                }
                keep_rounded(term);
                acc = j == 0 ? term : acc + term;
            }
            const auto closer = acc < best;
            if constexpr (Top2) {
                const F other = acc < second ? acc : second;
                second = closer ? best : other;
            }
            best = closer ? acc : best;
            idx = closer ? kv : idx;
        }
        store_lanes(t.best + i, best);
        store_lanes(t.index + i, idx);
        if constexpr (Top2) store_lanes(t.second + i, second);
    }
}

template <int W, int D, KernelWeights M, bool Top2 = false>
VQLIB_DETAIL_ALWAYS_INLINE void direct_kernel(const DirectTask& t) {
    if constexpr (D == 0) {
        direct_blocks_any_dim<W, M, Top2>(t);
    } else {
        constexpr int U = direct_unroll<W, D, M, Top2>();
        Index i = direct_blocks<W, D, U, M, Top2>(t, 0, t.n);
        if constexpr (U > 1) direct_blocks<W, D, 1, M, Top2>(t, i, t.n);
    }
}

// ---- scan kernel (GEMM path) --------------------------------------------------------------------

template <int W, int U>
VQLIB_DETAIL_ALWAYS_INLINE Index scan_blocks(const ScanTask& t, Index i_begin, Index i_end) {
    using F = typename lanes<W>::f;
    using I = typename lanes<W>::i;
    Index i = i_begin;
    for (; i + U * W <= i_end; i += U * W) {
        F best[U];
        I idx[U];
        VQLIB_DETAIL_UNROLL
        for (int u = 0; u < U; ++u) {
            load_lanes(best[u], t.best + i + u * W);
            load_lanes(idx[u], t.index + i + u * W);
        }
        for (Index k = t.k_begin; k < t.k_end; ++k) {
            const float* s = t.scores + (k - t.k_begin) * t.score_stride + i;
            const I kv = I{} + static_cast<std::int32_t>(k);
            VQLIB_DETAIL_UNROLL
            for (int u = 0; u < U; ++u) {
                F v;
                load_lanes(v, s + u * W);
                const auto closer = v < best[u];
                best[u] = closer ? v : best[u];
                idx[u] = closer ? kv : idx[u];
            }
        }
        VQLIB_DETAIL_UNROLL
        for (int u = 0; u < U; ++u) {
            store_lanes(t.best + i + u * W, best[u]);
            store_lanes(t.index + i + u * W, idx[u]);
        }
    }
    return i;
}

template <int W>
VQLIB_DETAIL_ALWAYS_INLINE void scan_kernel(const ScanTask& t) {
    const Index i = scan_blocks<W, 4>(t, 0, t.n);
    scan_blocks<W, 1>(t, i, t.n);
}

// ---- one point at a time ------------------------------------------------------------------------

/// The direct kernel's distance for one point (coordinate j at x[j * x_stride]) and one centroid
/// (row-major, c[j]), bit-identical to what the SIMD kernels compute. `w` as in DirectTask, with
/// elementwise weights at w[j * w_stride].
inline float direct_distance(const float* x, Index x_stride, const float* c, Index d,
                             KernelWeights mode, const float* w, Index w_stride) {
    float acc = 0.0f;
    for (Index j = 0; j < d; ++j) {
        const float diff = x[j * x_stride] - c[j];
        float term = diff * diff;
        if (mode == KernelWeights::per_coordinate) term = term * w[j];
        if (mode == KernelWeights::elementwise) term = term * w[j * w_stride];
        keep_rounded(term);
        acc = j == 0 ? term : acc + term;
    }
    return acc;
}

// ---- instantiation and dispatch -----------------------------------------------------------------

using DirectKernelFn = void (*)(const DirectTask&);
using ScanKernelFn = void (*)(const ScanTask&);

/// One instruction-set variant: direct kernels by [weight form][D] (D = 0: any dimension), the
/// same keeping the second smallest distance too (top2), and the scan kernel.
struct AssignmentKernels {
    const char* name;
    int lanes;
    std::array<std::array<DirectKernelFn, kMaxCompiledDim + 1>, 3> direct;
    std::array<std::array<DirectKernelFn, kMaxCompiledDim + 1>, 3> top2;
    ScanKernelFn scan;

    DirectKernelFn direct_for(KernelWeights mode, Index d) const {
        return direct[static_cast<std::size_t>(mode)]
                     [static_cast<std::size_t>(d <= kMaxCompiledDim ? d : 0)];
    }
    DirectKernelFn top2_for(KernelWeights mode, Index d) const {
        return top2[static_cast<std::size_t>(mode)]
                   [static_cast<std::size_t>(d <= kMaxCompiledDim ? d : 0)];
    }
};

/// The kernels of one weight form by D (one pack expansion per row: nvcc's front end rejects
/// a pack expanded inside nested braces).
template <template <int, KernelWeights> class Entry, KernelWeights M, int... Ds>
constexpr std::array<DirectKernelFn, kMaxCompiledDim + 1> direct_row(
    std::integer_sequence<int, Ds...>) {
    return {Entry<Ds, M>::pointer()...};
}

template <template <int, KernelWeights> class Entry, class Sequence>
constexpr std::array<std::array<DirectKernelFn, kMaxCompiledDim + 1>, 3> direct_table(Sequence s) {
    return {direct_row<Entry, KernelWeights::none>(s),
            direct_row<Entry, KernelWeights::per_coordinate>(s),
            direct_row<Entry, KernelWeights::elementwise>(s)};
}

// Each variant: the kernels above inlined into functions compiled for one instruction set.
#define VQLIB_CLUSTER_KERNEL_VARIANT(NAME, W, ATTRIBUTES)                                       \
    template <int D, KernelWeights M>                                                           \
    struct NAME##_direct_entry {                                                                \
        ATTRIBUTES static void run(const DirectTask& t) { direct_kernel<W, D, M>(t); }          \
        static constexpr DirectKernelFn pointer() { return &run; }                              \
    };                                                                                          \
    template <int D, KernelWeights M>                                                           \
    struct NAME##_top2_entry {                                                                  \
        ATTRIBUTES static void run(const DirectTask& t) { direct_kernel<W, D, M, true>(t); }    \
        static constexpr DirectKernelFn pointer() { return &run; }                              \
    };                                                                                          \
    ATTRIBUTES inline void NAME##_scan_entry(const ScanTask& t) { scan_kernel<W>(t); }          \
    inline const AssignmentKernels& NAME##_assignment_kernels() {                               \
        static const AssignmentKernels kernels{                                                 \
            #NAME, W,                                                                           \
            direct_table<NAME##_direct_entry>(std::make_integer_sequence<int, kMaxCompiledDim + 1>{}), \
            direct_table<NAME##_top2_entry>(std::make_integer_sequence<int, kMaxCompiledDim + 1>{}), \
            &NAME##_scan_entry};                                                                \
        return kernels;                                                                         \
    }

#ifdef VQLIB_DETAIL_GNU_VECTORS
#if defined(__AVX512F__)
inline constexpr int kPortableLanes = 16;
#elif defined(__AVX2__)
inline constexpr int kPortableLanes = 8;
#else
inline constexpr int kPortableLanes = 4;
#endif
#else
inline constexpr int kPortableLanes = 1;
#endif

VQLIB_CLUSTER_KERNEL_VARIANT(portable, kPortableLanes, )
#ifdef VQLIB_DETAIL_X86_DISPATCH
VQLIB_CLUSTER_KERNEL_VARIANT(avx2, 8, __attribute__((target("avx2"))))
VQLIB_CLUSTER_KERNEL_VARIANT(avx512, 16, __attribute__((target("avx512f"))))
#endif

#undef VQLIB_CLUSTER_KERNEL_VARIANT

/// The kernels of one level (core/simd.hpp; it must be supported by this CPU): `portable` is
/// compiled with the user's flags; `avx2` and `avx512` exist with GCC/Clang on x86-64. All give
/// bit-identical results.
inline const AssignmentKernels& assignment_kernels(SimdLevel level) {
#ifdef VQLIB_DETAIL_X86_DISPATCH
    if (level == SimdLevel::avx512) return avx512_assignment_kernels();
    if (level == SimdLevel::avx2) return avx2_assignment_kernels();
#endif
    (void)level;
    return portable_assignment_kernels();
}

/// The kernels of the widest level this CPU supports (best_simd_level()), chosen once.
inline const AssignmentKernels& assignment_kernels() {
    static const AssignmentKernels& best = assignment_kernels(best_simd_level());
    return best;
}

}  // namespace vqlib::detail

#include <vqlib/core/simd_macros_end.inc>
