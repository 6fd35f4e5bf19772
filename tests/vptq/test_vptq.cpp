// Tests of vqlib/vptq.hpp on the shared fixture layer and on small random layers: the layout
// (outlier columns, groups, padding), exact bits per weight, the result's consistency, residual VQ
// and outlier columns, the normalization's rescaled Hessian, act-order, determinism, and errors.
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/io/npy.hpp>
#include <vqlib/vptq.hpp>

#include <catch2/catch.hpp>

#include "../support/cluster.hpp"
#include "../support/fixtures.hpp"
#include "../support/random.hpp"

#include <algorithm>
#include <cmath>

namespace {

using Catch::Matchers::Contains;
using vqlib::Index;
using vqlib::test::fixture_layer;
using vqlib::test::reference_loss;

/// A random layer with a PSD Hessian of correlated inputs.
struct RandomLayer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

RandomLayer random_layer(Index rows, Index cols, std::uint64_t seed) {
    RandomLayer L{vqlib::test::student_t_matrix(rows, cols, seed, 4), {}};
    const vqlib::MatrixXf X = vqlib::test::normal_matrix(cols, 4 * cols, seed + 1);
    L.H = (2.0 / double(4 * cols)) * (X * X.transpose()).cast<double>();
    return L;
}

}  // namespace

TEST_CASE("vptq on the fixture layer: bits, consistency, and GPTVQ's reference at the same rate",
          "[vptq]") {
    const auto& L = fixture_layer();
    const auto two = vqlib::vptq(L.W, L.H, vqlib::vptq_presets::v4_k256());
    const auto three = vqlib::vptq(L.W, L.H, vqlib::vptq_presets::v4_k256_res16());
    // v4/k256: 8-bit codes per 4 weights (2 bpw) + 256 x 4 fp16 codebook + uint16 perm.
    CHECK(two.bits_per_weight == Approx((256.0 * 512 * 2 + 256 * 4 * 16 + 512 * 16) / (256.0 * 512)));
    // + residual 16: 12-bit merged codes; a row of 512 codes is 192 words exactly.
    CHECK(three.bits_per_weight ==
          Approx((64.0 * 192 * 32 + (256 + 16) * 4 * 16 + 512 * 16) / (256.0 * 512)));
    for (const auto* r : {&two, &three}) {
        CHECK_THAT(vqlib::proxy_loss(L.W, r->Q, L.H), Catch::Matchers::WithinRel(r->proxy_loss, 1e-9));
    }
    INFO("VPTQ v4k256: " << two.proxy_loss << ", +res16: " << three.proxy_loss << " (first pass "
                         << three.proxy_loss_first_pass << ")");
    CHECK(three.proxy_loss < 0.6 * three.proxy_loss_first_pass);
    CHECK(three.proxy_loss_first_pass == Approx(two.proxy_loss).epsilon(1e-9));
    // GPTVQ's reference at 2.125 and 3.125 bpw.
    CHECK(two.proxy_loss < reference_loss("gptvq_2d_2b_gs2048"));
    CHECK(three.proxy_loss < reference_loss("gptvq_2d_3b_gs8192"));
}

TEST_CASE("vptq layout: outlier columns, groups and row padding", "[vptq]") {
    const auto layer = random_layer(50, 96, 3);  // 50 rows: padded to whole vectors
    auto c = vqlib::vptq_presets::make(4, 32, 8, 5.0, 2, 16, 3);
    const auto r = vqlib::vptq(layer.W, layer.H, c);
    const auto& Lo = r.layer.layout;
    // ceil(5% of 96) = 5 outlier columns, raised to 6 so that 90 columns split into 3 groups.
    CHECK(Lo.outlier_size == 6);
    CHECK(Lo.group_size == 30);
    CHECK(Lo.row_blocks() == 13);
    CHECK(Lo.outlier_row_blocks() == 25);
    CHECK(r.layer.indices.size() == 3u * 13 * 30);
    CHECK(r.layer.outlier_indices.size() == 25u * 6);
    CHECK(r.layer.centroids.rows() == 3 * 32);
    CHECK(r.layer.res_centroids.rows() == 3 * 8);
    CHECK(r.Q.rows() == 50);
    CHECK(r.Q.allFinite());
    // Outlier columns are the top columns by Hessian diagonal.
    for (Index p = 0; p < Lo.outlier_size; ++p) {
        const Index j = r.layer.perm[static_cast<std::size_t>(p)];
        Index larger = 0;
        for (Index k = 0; k < 96; ++k) larger += layer.H(k, k) > layer.H(j, j);
        CHECK(larger < Lo.outlier_size);
    }
    // Bits: 4 groups' packed rows (30 codes x 8 bits = 8 words), int16 outlier indices, fp16
    // codebooks, uint16 perm.
    const double bits = 3.0 * 13 * 8 * 32 + 25.0 * 6 * 16 + 16.0 * (3 * (32 + 8) * 4 + 16 * 2) + 96 * 16;
    CHECK(r.bits_per_weight == Approx(bits / (50.0 * 96)));
}

TEST_CASE("vptq normalization rescales the Hessian to the normalized weights", "[vptq]") {
    const auto layer = random_layer(64, 64, 8);
    auto c = vqlib::vptq_presets::make(4, 64);
    c.enable_norm = true;
    const auto r = vqlib::vptq(layer.W, layer.H, c);
    REQUIRE(r.layer.weight_scale.size() == 64);
    // The loss in the normalized, permuted domain with S H S equals the loss of the layer.
    const auto& perm = r.layer.perm;
    vqlib::MatrixXf Wn(64, 64);
    vqlib::MatrixXd Hn(64, 64);
    for (Index p = 0; p < 64; ++p) {
        const Index j = perm[static_cast<std::size_t>(p)];
        Wn.col(p) = ((layer.W.col(j).array() - r.layer.weight_bias[j]) / r.layer.weight_scale[j]).matrix();
        for (Index q = 0; q < 64; ++q) {
            const Index i = perm[static_cast<std::size_t>(q)];
            Hn(q, p) = layer.H(i, j) * r.layer.weight_scale[i] * r.layer.weight_scale[j];
        }
    }
    CHECK_THAT(vqlib::proxy_loss(Wn, r.layer.dequantize_stored(), Hn),
               Catch::Matchers::WithinRel(r.proxy_loss, 1e-4));
    // The stored columns are normalized to [0, 1].
    CHECK(Wn.minCoeff() >= -1e-3f);
    CHECK(Wn.maxCoeff() <= 1.001f);
}

TEST_CASE("vptq is deterministic across thread counts", "[vptq]") {
    const auto layer = random_layer(64, 128, 4);
    const auto c = vqlib::vptq_presets::make(4, 64, 16);
    vqlib::MatrixXf Q1, Q2;
    {
        vqlib::test::ThreadCountScope threads(1);
        Q1 = vqlib::vptq(layer.W, layer.H, c).Q;
    }
    {
        vqlib::test::ThreadCountScope threads(2);
        Q2 = vqlib::vptq(layer.W, layer.H, c).Q;
    }
    CHECK(Q1 == Q2);
}

TEST_CASE("vptq: one prepared Hessian side serves several linears with the same input", "[vptq]") {
    const auto layer = random_layer(64, 128, 5);
    const auto other = random_layer(32, 128, 6);  // another weight reading the same input
    auto c = vqlib::vptq_presets::make(4, 64, 16);
    c.enable_perm = GENERATE(false, true);
    INFO("enable_perm " << c.enable_perm);
    const auto hessian = vqlib::vptq_prepare_hessian(layer.H, c);
    CHECK(hessian.perm.size() == (c.enable_perm ? 128u : 0u));
    for (const vqlib::MatrixXf* W : {&layer.W, &other.W}) {
        const auto alone = vqlib::vptq(*W, layer.H, c);
        const auto shared = vqlib::vptq(*W, layer.H, hessian, c);
        CHECK(shared.Q == alone.Q);
        CHECK(shared.layer.perm == alone.layer.perm);
        CHECK(shared.proxy_loss == alone.proxy_loss);
        CHECK(shared.proxy_loss_first_pass == alone.proxy_loss_first_pass);
    }
    auto normalized = c;
    normalized.enable_norm = true;
    CHECK_THROWS_WITH(vqlib::vptq_prepare_hessian(layer.H, normalized), Contains("enable_norm"));
    CHECK_THROWS_WITH(vqlib::vptq(layer.W, layer.H, hessian, normalized), Contains("enable_norm"));
    c.loss = vqlib::LossEvaluation::none;
    const auto silent = vqlib::vptq(layer.W, layer.H, hessian, c);
    CHECK(std::isnan(silent.proxy_loss));
    CHECK(std::isnan(silent.proxy_loss_first_pass));
}

TEST_CASE("vptq rejects bad configurations with clear errors", "[vptq]") {
    const auto layer = random_layer(32, 64, 5);
    CHECK_THROWS_WITH(vqlib::vptq(layer.W, layer.H, vqlib::vptq_presets::make(8, 4096)),
                      Contains("4096 centroids for only 256 vectors"));
    CHECK_THROWS_WITH(vqlib::vptq(layer.W, layer.H, vqlib::vptq_presets::make(4, 16, 0, 0.0, 4, 16, 3)),
                      Contains("group_num = 3"));
    CHECK_THROWS_WITH(vqlib::vptq(layer.W, layer.H, vqlib::vptq_presets::make(4, 16, 0, 120.0)),
                      Contains("outlier_percent = 120"));
    CHECK_THROWS_WITH(vqlib::vptq(layer.W, layer.H, vqlib::vptq_presets::make(4, 1 << 20, 1 << 14)),
                      Contains("at most 32"));
    CHECK_THROWS_AS(vqlib::vptq(layer.W, vqlib::MatrixXd::Identity(32, 32), vqlib::vptq_presets::make(4, 16)),
                    vqlib::shape_error);
    vqlib::MatrixXf bad = layer.W;
    bad(1, 1) = INFINITY;
    CHECK_THROWS_WITH(vqlib::vptq(bad, layer.H, vqlib::vptq_presets::make(4, 16)), Contains("W"));
}

TEST_CASE("vptq: the decoded layer is the final sweep's own output, in original column order",
          "[vptq]") {
    // The recipe's steps run by hand (act-order on, normalization off, rows whole vectors): the
    // solver's Q of the last sweep, un-permuted, must be what the stored layer decodes to.
    const auto layer = random_layer(32, 64, 5);
    const bool residual = GENERATE(false, true);
    INFO("residual " << residual);
    const auto config = residual ? vqlib::vptq_presets::make(4, 32, 8) : vqlib::vptq_presets::make(4, 32);
    const auto r = vqlib::vptq(layer.W, layer.H, config);

    vqlib::VptqLayer stored;
    stored.layout = vqlib::vptq_steps::layout(config, 32, 64);
    const auto problem = vqlib::vptq_steps::act_order(
        vqlib::vptq_steps::normalize({layer.W, layer.H.cast<double>()}, stored), stored);
    CHECK(stored.perm == r.layer.perm);
    vqlib::HessianOptions hopts = config.hessian;
    hopts.act_order = false;
    const auto prepared = vqlib::prepare_hessian(problem.H, hopts);
    const auto policies = vqlib::vptq_policies(config);
    vqlib::vptq_steps::fit_main_codebooks(policies.fitter, problem.W, problem.H, stored);
    vqlib::VptqQuantizer<> first(stored, false, residual);
    auto solved = vqlib::solve(vqlib::ErrorUpdateKind::exact, config.solver, problem.W, prepared, first);
    if (residual) {
        vqlib::vptq_steps::fit_residual_codebooks(policies.fitter, first.error(), problem.H, stored);
        vqlib::VptqQuantizer<> second(stored, true);
        solved = vqlib::solve(vqlib::ErrorUpdateKind::exact, config.solver, problem.W, prepared, second);
    }
    for (Index q = 0; q < 64; ++q)
        CHECK(solved.Q.col(q) == r.Q.col(r.layer.perm[static_cast<std::size_t>(q)]));
    CHECK(stored.dequantize() == r.Q);
}

TEST_CASE("vptq presets: (v, index bits per weight, residual bits per weight)", "[vptq]") {
    const auto a = vqlib::vptq_presets::rate(8, 2.0);
    const auto b = vqlib::vptq_presets::v8_k65536();
    CHECK(a.vector_len == b.vector_len);
    CHECK(a.num_centroids == b.num_centroids);
    CHECK(a.num_res_centroids == 0);
    const auto c = vqlib::vptq_presets::rate(4, 2.0, 1.0);
    CHECK(c.num_centroids == 256);
    CHECK(c.num_res_centroids == 16);
    CHECK(c.name == vqlib::vptq_presets::v4_k256_res16().name);
    CHECK(vqlib::vptq_presets::rate(6, 2.0).num_centroids == 4096);
    CHECK_THROWS_WITH(vqlib::vptq_presets::rate(3, 2.5), Contains("bits_per_weight = 2.5"));
    CHECK_THROWS_WITH(vqlib::vptq_presets::rate(8, 4.0), Contains("[1, 24]"));
}
