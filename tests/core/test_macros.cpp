// No vqlib header leaves an internal macro defined for its users: the helpers of one header are
// #undef'd at its end, and the compiler-capability switches shared by the kernels are the
// VQLIB_DETAIL_* of core/simd.hpp (documented there as internal). This translation unit includes
// every umbrella header and lists each internal name vqlib has used that is still defined.
#include <vqlib/cluster.hpp>
#include <vqlib/codebook.hpp>
#include <vqlib/core.hpp>
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/io.hpp>
#include <vqlib/kernels.hpp>
#include <vqlib/lattice.hpp>
#include <vqlib/pvq.hpp>
#include <vqlib/transform.hpp>
#include <vqlib/version.hpp>
#include <vqlib/vptq.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

/// The internal macros that are defined after including everything (should be none).
std::vector<std::string> leaked_macros() {
    std::vector<std::string> leaked;
    // Once cluster/assignment_kernels.hpp's own switches.
#ifdef VQLIB_CLUSTER_GNU_VECTORS
    leaked.emplace_back("VQLIB_CLUSTER_GNU_VECTORS");
#endif
#ifdef VQLIB_CLUSTER_X86_DISPATCH
    leaked.emplace_back("VQLIB_CLUSTER_X86_DISPATCH");
#endif
#ifdef VQLIB_CLUSTER_KERNEL_VARIANT
    leaked.emplace_back("VQLIB_CLUSTER_KERNEL_VARIANT");
#endif
#ifdef VQLIB_ALWAYS_INLINE
    leaked.emplace_back("VQLIB_ALWAYS_INLINE");
#endif
#ifdef VQLIB_UNROLL
    leaked.emplace_back("VQLIB_UNROLL");
#endif
    // Once transform/kernels.hpp's.
#ifdef VQLIB_TRANSFORM_GNU_VECTORS
    leaked.emplace_back("VQLIB_TRANSFORM_GNU_VECTORS");
#endif
#ifdef VQLIB_TRANSFORM_INLINE
    leaked.emplace_back("VQLIB_TRANSFORM_INLINE");
#endif
#ifdef VQLIB_TRANSFORM_UNROLL
    leaked.emplace_back("VQLIB_TRANSFORM_UNROLL");
#endif
#ifdef VQLIB_TRANSFORM_X86_DISPATCH
    leaked.emplace_back("VQLIB_TRANSFORM_X86_DISPATCH");
#endif
#ifdef VQLIB_TRANSFORM_SHUFFLE
    leaked.emplace_back("VQLIB_TRANSFORM_SHUFFLE");
#endif
#ifdef VQLIB_TRANSFORM_VARIANT_FOR
    leaked.emplace_back("VQLIB_TRANSFORM_VARIANT_FOR");
#endif
    // The decode kernels' (kernels/common.hpp, tile_kernels.hpp, tile_kernels.inc).
#ifdef VQLIB_KERNELS_X86
    leaked.emplace_back("VQLIB_KERNELS_X86");
#endif
#ifdef VQLIB_KERNELS_NS
    leaked.emplace_back("VQLIB_KERNELS_NS");
#endif
#ifdef VQLIB_KERNELS_W
    leaked.emplace_back("VQLIB_KERNELS_W");
#endif
#ifdef VQLIB_KERNELS_LEVEL
    leaked.emplace_back("VQLIB_KERNELS_LEVEL");
#endif
#ifdef VQLIB_KERNELS_DISPATCH
    leaked.emplace_back("VQLIB_KERNELS_DISPATCH");
#endif
#ifdef VQLIB_KERNELS_VBMI
    leaked.emplace_back("VQLIB_KERNELS_VBMI");
#endif
    return leaked;
}

}  // namespace

TEST_CASE("core/macros: no internal macro of vqlib's headers is left defined") {
    const std::vector<std::string> leaked = leaked_macros();
    for (const std::string& name : leaked) UNSCOPED_INFO("defined: " << name);
    CHECK(leaked.empty());
}

TEST_CASE("core/macros: the user-facing macros are defined") {
#if !defined(VQLIB_CHECK) || !defined(VQLIB_CHECK_RANGE)
    FAIL("VQLIB_CHECK / VQLIB_CHECK_RANGE (core/error.hpp) missing");
#endif
#if !defined(VQLIB_VERSION_MAJOR) || !defined(VQLIB_VERSION_MINOR) || \
    !defined(VQLIB_VERSION_PATCH) || !defined(VQLIB_VERSION_STRING)
    FAIL("VQLIB_VERSION_* (version.hpp) missing");
#endif
    CHECK(std::string(VQLIB_VERSION_STRING).find('.') != std::string::npos);
}

TEST_CASE("core/macros: the shared capability switches agree with their constants") {
#ifdef VQLIB_DETAIL_GNU_VECTORS
    CHECK(vqlib::detail::has_gnu_vectors);
#else
    CHECK_FALSE(vqlib::detail::has_gnu_vectors);
#endif
#ifdef VQLIB_DETAIL_X86_DISPATCH
    CHECK(vqlib::detail::has_x86_dispatch);
#else
    CHECK_FALSE(vqlib::detail::has_x86_dispatch);
#endif
#if defined(__GNUC__) && defined(__x86_64__)
    CHECK(vqlib::detail::has_x86_dispatch);
#endif
}
