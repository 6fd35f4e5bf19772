// core/simd.hpp, the one SIMD dispatch scheme: levels, the once-detected CPU features, and the
// kernel families (cluster, transform, decode kernels) all running at best_simd_level().
#include <vqlib/cluster/assignment_kernels.hpp>
#include <vqlib/core/simd.hpp>
#include <vqlib/kernels/common.hpp>
#include <vqlib/transform/kernels.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace {

using vqlib::SimdLevel;

constexpr SimdLevel all_levels[] = {SimdLevel::portable, SimdLevel::avx2, SimdLevel::avx512};

}  // namespace

TEST_CASE("core/simd: portable always runs, and the best level is supported and the widest") {
    CHECK(vqlib::simd_level_supported(SimdLevel::portable));
    const SimdLevel best = vqlib::best_simd_level();
    INFO("best level: " << vqlib::simd_level_name(best));
    CHECK(vqlib::simd_level_supported(best));
    CHECK(vqlib::best_simd_level() == best);  // chosen once
    for (SimdLevel level : all_levels)
        if (vqlib::simd_level_supported(level))
            CHECK(static_cast<int>(level) <= static_cast<int>(best));
    // The levels nest: avx512 includes avx2.
    if (vqlib::simd_level_supported(SimdLevel::avx512))
        CHECK(vqlib::simd_level_supported(SimdLevel::avx2));
}

TEST_CASE("core/simd: the levels are defined by the detected features") {
    const vqlib::CpuFeatures& f = vqlib::cpu_features();
    CHECK(&vqlib::cpu_features() == &f);  // detected once
    INFO("avx2 " << f.avx2 << " fma " << f.fma << " f16c " << f.f16c << " avx512f " << f.avx512f
                 << " avx512bw " << f.avx512bw << " avx512vbmi " << f.avx512vbmi);
    const bool avx2 = vqlib::detail::has_x86_dispatch && f.avx2 && f.fma && f.f16c;
    CHECK(vqlib::simd_level_supported(SimdLevel::avx2) == avx2);
    CHECK(vqlib::simd_level_supported(SimdLevel::avx512) == (avx2 && f.avx512f));
    if (!vqlib::detail::has_x86_dispatch) {
        CHECK_FALSE(f.avx2);
        CHECK(vqlib::best_simd_level() == SimdLevel::portable);
    }
    // Every CPU with AVX2 has FMA and F16C, which is why the avx2 level asks for all three.
    if (f.avx2) {
        CHECK(f.fma);
        CHECK(f.f16c);
    }
}

TEST_CASE("core/simd: level names") {
    CHECK(std::string(vqlib::simd_level_name(SimdLevel::portable)) == "portable");
    CHECK(std::string(vqlib::simd_level_name(SimdLevel::avx2)) == "avx2");
    CHECK(std::string(vqlib::simd_level_name(SimdLevel::avx512)) == "avx512");
}

TEST_CASE("core/simd: every kernel family runs at best_simd_level()") {
    const SimdLevel best = vqlib::best_simd_level();
    // Cluster assignment.
    CHECK(&vqlib::detail::assignment_kernels() == &vqlib::detail::assignment_kernels(best));
    // Hadamard transforms.
    using vqlib::transform::detail::kernel_table;
    CHECK(&kernel_table<float>() == &kernel_table<float>(best));
    CHECK(&kernel_table<double>() == &kernel_table<double>(best));
    CHECK(std::string(kernel_table<float>().name) == vqlib::simd_level_name(best));
    CHECK(std::string(vqlib::detail::assignment_kernels().name) == vqlib::simd_level_name(best));
    // Decode kernels: kernels::Isa maps onto the levels.
    namespace kn = vqlib::kernels;
    CHECK(kn::simd_level(kn::best_isa()) == best);
    CHECK(kn::simd_level(kn::Isa::automatic) == best);
    CHECK(kn::resolve_isa(kn::Isa::automatic) == kn::best_isa());
    CHECK(kn::isa_supported(kn::Isa::automatic));
    const kn::Isa isas[] = {kn::Isa::portable, kn::Isa::avx2, kn::Isa::avx512};
    for (int i = 0; i < 3; ++i) {
        CHECK(kn::simd_level(isas[i]) == all_levels[i]);
        CHECK(kn::isa_supported(isas[i]) == vqlib::simd_level_supported(all_levels[i]));
        CHECK(std::string(kn::isa_name(isas[i])) == vqlib::simd_level_name(all_levels[i]));
        if (!kn::isa_supported(isas[i]))
            CHECK_THROWS_AS(kn::resolve_isa(isas[i]), vqlib::invalid_argument);
    }
    CHECK(std::string(kn::isa_name(kn::Isa::automatic)) == "automatic");
    const vqlib::CpuFeatures& f = vqlib::cpu_features();
    CHECK(kn::cpu_has_vbmi() ==
          (vqlib::simd_level_supported(SimdLevel::avx512) && f.avx512bw && f.avx512vbmi));
}
