// Conformance of vqlib's GPTVQ with the reference implementation (Qualcomm-AI-research/gptvq) on
// the shared fixture layer: the reference-compatible preset within 2.5% of the reference's proxy
// loss, the best preset clearly below it at no more bits per weight.
#include <vqlib/gptvq.hpp>
#include <vqlib/io/npy.hpp>

#include <catch2/catch.hpp>

#include "../support/fixtures.hpp"

namespace {

struct Case {
    const char* folder;
    vqlib::Index dim;
    double bits_per_dim;
    vqlib::Index weights_per_codebook;
    bool codebook_update;
};

}  // namespace

TEST_CASE("gptvq: conformance with the reference on layer_256x512") {
    const auto dir = vqlib::test::reference_layer_dir();
    const vqlib::MatrixXf W = vqlib::load_npy_matrix(dir / "W.npy");
    const vqlib::MatrixXf H = vqlib::load_npy_matrix(dir / "H.npy");
    const Case c = GENERATE(Case{"gptvq_1d_2b_gs256", 1, 2, 256, true},
                            Case{"gptvq_2d_2b_gs2048", 2, 2, 2048, true},
                            Case{"gptvq_2d_2b_gs2048_nomstep", 2, 2, 2048, false},
                            Case{"gptvq_2d_3b_gs8192", 2, 3, 8192, true},
                            Case{"gptvq_4d_2b_gs65536", 4, 2, 65536, true});
    INFO(c.folder);
    const double reference = vqlib::test::meta_number(dir / c.folder / "meta.json", "proxy_loss");

    auto compatible = vqlib::gptvq_presets::reference_compatible(c.dim, c.bits_per_dim,
                                                                 c.weights_per_codebook);
    if (!c.codebook_update) compatible.codebook_update.method = vqlib::CodebookUpdateMethod::none;
    const auto ours = vqlib::gptvq(W, H, compatible);
    CHECK_THAT(vqlib::proxy_loss(W, ours.Q, H), Catch::Matchers::WithinRel(ours.proxy_loss, 1e-9));
    // Within 2.5%: the k-means behind it is chaotic in float32 rounding, which the instruction
    // set changes (Eigen's reductions are 4 floats wide with SSE2, 16 with AVX-512). Measured
    // ratios, default x86-64 build / -march=native on AVX-512: 1D 1.001 / 1.001, 2D 1.000 /
    // 1.003, 2D 3b 0.979 / 0.979, 4D 0.990 / 1.021.
    CHECK(ours.proxy_loss <= 1.025 * reference);
    // The same storage as the reference's runs: K centroids of D dims, INT8 codebooks.
    CHECK(ours.layer.layout.k == (vqlib::Index{1} << static_cast<int>(c.bits_per_dim * c.dim)));
    CHECK(ours.layer.codebook_bits == 8);

    const auto best = vqlib::gptvq(
        W, H, vqlib::gptvq_presets::best(c.dim, c.bits_per_dim, c.weights_per_codebook));
    CHECK(best.layer.bits_per_weight() <= ours.layer.bits_per_weight());
    CHECK(best.proxy_loss < 0.8 * reference);
    // The least-squares update's losses: float32 products summed in float64.
    CHECK_THAT(vqlib::proxy_loss(W, best.Q, H), Catch::Matchers::WithinRel(best.proxy_loss, 1e-6));
}
