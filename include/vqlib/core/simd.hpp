#pragma once
// The one SIMD dispatch scheme of vqlib: instruction-set levels, what this CPU supports (detected
// once), and the compiler capabilities the kernels are written against. The kernel families
// (cluster/assignment_kernels.hpp, transform/kernels.hpp, kernels/tile_kernels.hpp) each compile
// their own variants and keep their own tables, but ask here which level to run.
//
// Levels. `portable` is the code compiled with the user's own flags; `avx2` and `avx512` are
// compiled into every x86-64 build with GCC or Clang (target attributes or `#pragma GCC target`)
// and picked at run time, so -march=native is never needed for them. A level is supported when
// the CPU has everything each family's variant of that level is compiled for:
//   avx2:   AVX2 + FMA + F16C (cluster needs AVX2, transform AVX2 + FMA, the decode kernels
//           AVX2 + F16C; every CPU with AVX2 has FMA and F16C);
//   avx512: the avx2 level + AVX-512F.
// Every family's variants give bit-identical results (products pinned, same order of additions),
// so which level runs changes the speed only, never a bit.
//
// Compiler capabilities. Where C++ can say it, as constants (detail::has_gnu_vectors,
// detail::has_x86_dispatch); where only the preprocessor can (vector_size typedefs, target
// attributes and pragmas, __builtin_cpu_supports), as macros named VQLIB_DETAIL_*, internal to
// vqlib and defined only between the two .inc files below:
//   VQLIB_DETAIL_GNU_VECTORS    defined (1) with the GNU vector extension (GCC, Clang)
//   VQLIB_DETAIL_X86_DISPATCH   defined (1) on x86-64 with GCC (not Clang): avx2/avx512 variants
//   VQLIB_DETAIL_ALWAYS_INLINE  `[[gnu::always_inline]] inline`, or `inline`
//   VQLIB_DETAIL_UNROLL         `#pragma GCC unroll 16` for the next loop, or nothing
// A header that uses them includes core/simd_macros.inc after its own #include lines and
// core/simd_macros_end.inc at its end (which #undefs them), as this header does: no VQLIB_DETAIL_
// macro is left defined for the code that includes a vqlib header.
#include <cstdint>

#include <vqlib/core/simd_macros.inc>

#ifdef VQLIB_DETAIL_X86_DISPATCH
#include <cpuid.h>
#endif

namespace vqlib {

namespace detail {

#ifdef VQLIB_DETAIL_GNU_VECTORS
inline constexpr bool has_gnu_vectors = true;
#else
inline constexpr bool has_gnu_vectors = false;
#endif

#ifdef VQLIB_DETAIL_X86_DISPATCH
inline constexpr bool has_x86_dispatch = true;
#else
inline constexpr bool has_x86_dispatch = false;
#endif

/// Keeps `v` as computed: the compiler may not fuse the operation that produced it (a product)
/// into the addition that consumes it (no FMA contraction), whatever -ffp-contract says. The
/// kernels pass every product that feeds an addition through it, which is what makes their
/// variants agree bit for bit. (GCC and Clang on x86 and AArch64; elsewhere a no-op.)
template <class T>
VQLIB_DETAIL_ALWAYS_INLINE void keep_rounded(T& v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    asm("" : "+v"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
    asm("" : "+w"(v));
#else
    (void)v;
#endif
}

}  // namespace detail

/// The instruction-set levels of vqlib's kernels (see the top of this header).
enum class SimdLevel { portable, avx2, avx512 };

inline const char* simd_level_name(SimdLevel level) {
    switch (level) {
    case SimdLevel::portable: return "portable";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::avx512: return "avx512";
    }
    return "?";
}

/// The CPU features the kernels use, detected once (all false where there is no run-time
/// dispatch: not x86-64, or not GCC/Clang).
struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vbmi = false;
};

inline const CpuFeatures& cpu_features() {
    static const CpuFeatures features = [] {
        CpuFeatures f;
#ifdef VQLIB_DETAIL_X86_DISPATCH
        f.avx2 = __builtin_cpu_supports("avx2");
        f.fma = __builtin_cpu_supports("fma");
        // F16C from CPUID leaf 1 (ECX bit 29): Clang's __builtin_cpu_supports knows no "f16c".
        // (Usable only with the OS's AVX state, which the avx2 check includes.)
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        f.f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && ((ecx >> 29) & 1u) != 0;
        f.avx512f = __builtin_cpu_supports("avx512f");
        f.avx512bw = __builtin_cpu_supports("avx512bw");
        f.avx512vbmi = __builtin_cpu_supports("avx512vbmi");
#endif
        return f;
    }();
    return features;
}

/// True when this CPU (and this build) runs `level`; `portable` always.
inline bool simd_level_supported(SimdLevel level) {
    const CpuFeatures& f = cpu_features();
    const bool avx2 = detail::has_x86_dispatch && f.avx2 && f.fma && f.f16c;
    switch (level) {
    case SimdLevel::portable: return true;
    case SimdLevel::avx2: return avx2;
    case SimdLevel::avx512: return avx2 && f.avx512f;
    }
    return false;
}

/// The widest level this CPU supports, chosen once per process.
inline SimdLevel best_simd_level() {
    static const SimdLevel best = simd_level_supported(SimdLevel::avx512) ? SimdLevel::avx512
                                  : simd_level_supported(SimdLevel::avx2) ? SimdLevel::avx2
                                                                          : SimdLevel::portable;
    return best;
}

}  // namespace vqlib

#include <vqlib/core/simd_macros_end.inc>
