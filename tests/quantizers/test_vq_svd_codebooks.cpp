// Tests of vqlib/quantizers/vq_svd_codebooks.hpp: SVD-factored 1-D GPTVQ codebooks.
#include <vqlib/gptvq.hpp>
#include <vqlib/quantizers/vq_svd_codebooks.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

namespace {

struct SvdProblem {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

SvdProblem svd_problem(std::uint64_t seed) {
    SvdProblem p{vqlib::test::student_t_matrix(32, 256, seed, 4), {}};
    vqlib::Rng rng(seed + 1);
    vqlib::MatrixXf X(256, 1024);
    for (vqlib::Index t = 0; t < X.cols(); ++t) {
        const double shared = rng.normal();
        for (vqlib::Index i = 0; i < 256; ++i) X(i, t) = static_cast<float>((0.4 * shared + rng.normal()) * (1 + i % 5));
    }
    vqlib::HessianAccumulator acc(256);
    acc.add(X);
    p.H = acc.finalize();
    return p;
}

/// Largest distance of a codebook from the basis' row space, relative to its largest entry.
double off_basis(const vqlib::VqLayer& layer) {
    const vqlib::MatrixXd B = layer.basis.cast<double>();
    const vqlib::MatrixXd projector = B.transpose() * (B * B.transpose()).inverse() * B;
    double worst = 0.0;
    for (vqlib::Index g = 0; g < layer.layout.codebook_count(); ++g) {
        const vqlib::VectorXd c = layer.codebook(g).col(0).cast<double>();
        worst = std::max(worst, (c - projector * c).cwiseAbs().maxCoeff() / c.cwiseAbs().maxCoeff());
    }
    return worst;
}

}  // namespace

TEST_CASE("quantizers/vq_svd_codebooks: full rank is exact, indices follow the sorted entries") {
    const SvdProblem p = svd_problem(3);
    auto config = vqlib::gptvq_presets::best(1, 2, 128);  // K = 4, 1 x 128 tiles: 64 codebooks
    config.codebooks.integer.reset();                        // fp16 entries
    const auto r = vqlib::gptvq(p.W, p.H, config);
    vqlib::VqLayer layer = r.layer;
    vqlib::SvdCodebookOptions full;
    full.rank_fraction = 1.0;  // r = K: nothing is truncated
    vqlib::factor_codebooks_svd(layer, full);
    REQUIRE(layer.codebook_rank() == 4);
    // Each codebook is sorted now, and the layer decodes to the same weights up to float32.
    for (vqlib::Index g = 0; g < layer.layout.codebook_count(); ++g)
        for (vqlib::Index j = 1; j < 4; ++j) CHECK(layer.codebook(g)(j - 1, 0) <= layer.codebook(g)(j, 0) + 1e-6f);
    CHECK((layer.dequantize() - r.Q).cwiseAbs().maxCoeff() < 1e-5 * r.Q.cwiseAbs().maxCoeff());
    // Bits: 64 x 4 coefficients and a 4 x 4 basis at 32 bits, in place of 64 x 4 fp16 entries.
    CHECK(layer.bits().codebooks == 64.0 * 4 * 32 + 16 * 32);
}

TEST_CASE("quantizers/vq_svd_codebooks: the GPTVQ recipe with rank K/2 codebooks") {
    const SvdProblem p = svd_problem(5);
    const auto config = vqlib::gptvq_presets::paper_svd(2.125);
    REQUIRE(config.vq.weights_per_codebook == 128);
    const auto r = vqlib::gptvq(p.W, p.H, config);
    const vqlib::VqLayer& layer = r.layer;
    REQUIRE(layer.codebook_rank() == 2);
    CHECK(layer.basis.cols() == 4);
    CHECK(r.Q == layer.dequantize());
    // The update's losses are float32 products summed in float64.
    CHECK_THAT(vqlib::proxy_loss(p.W, r.Q, p.H), Catch::Matchers::WithinRel(r.proxy_loss, 1e-6));
    // The codebook update solved for the coefficients: the codebooks stay in the basis' span.
    CHECK(r.codebook_update.kept);
    CHECK(r.codebook_update.loss_after < r.codebook_update.loss_before);
    CHECK(off_basis(layer) < 1e-5);
    // 2-bit codes; 64 codebooks x 2 INT8 coefficients with one fp16 scale; a 2 x 4 fp16 basis.
    CHECK(layer.bits().per_weight() == (32.0 * 256 * 2 + 64 * 2 * 8 + 16 + 2 * 4 * 16) / (32 * 256));
    // The same rate as the INT8 preset's codebooks, at twice the codebooks.
    const auto int8 = vqlib::gptvq(p.W, p.H, vqlib::gptvq_presets::paper(1, 2.125));
    CHECK(int8.layer.layout.codebook_count() * 2 == layer.layout.codebook_count());
    // Requantizing a factored layer leaves it as it is.
    vqlib::VqLayer again = layer;
    vqlib::SvdFactoredStorage{*config.svd}(again);
    CHECK((again.codebooks - layer.codebooks).cwiseAbs().maxCoeff() <= 1e-6f * layer.codebooks.cwiseAbs().maxCoeff());
}

TEST_CASE("quantizers/vq_svd_codebooks: bad input is refused by name") {
    const SvdProblem p = svd_problem(7);
    auto config = vqlib::gptvq_presets::paper(2, 2.125);
    config.svd = vqlib::SvdCodebookOptions{};
    CHECK_THROWS_WITH(vqlib::gptvq(p.W, p.H, config), Catch::Contains("dim = 2"));
    config = vqlib::gptvq_presets::paper_svd(2.125);
    config.svd->rank_fraction = 0.2;  // int(4 * 0.2) = 0
    CHECK_THROWS_WITH(vqlib::gptvq(p.W, p.H, config), Catch::Contains("rank_fraction = 0.2"));
    vqlib::VqLayer plain = vqlib::gptvq(p.W, p.H, vqlib::gptvq_presets::paper(1, 2.125)).layer;
    CHECK_THROWS_WITH(vqlib::SvdFactoredStorage{}(plain), Catch::Contains("basis is 0x0"));
}
