// Tests of vqlib/pvq.hpp on the shared fixture layer and on small random layers: exact bits per
// weight of the presets, the result's consistency (Q = dequantize(), the reported proxy loss),
// the ranking of rates and of the reconstructed alternatives, PVQ next to GPTVQ's reference at
// about the same rate, determinism across thread counts, the packed index stream, and errors.
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/io/npy.hpp>
#include <vqlib/pvq.hpp>

#include <catch2/catch.hpp>

#include "../support/cluster.hpp"
#include "../support/fixtures.hpp"
#include "../support/random.hpp"

#include <cmath>

namespace {

using Catch::Matchers::Contains;
using vqlib::Index;
using vqlib::test::fixture_layer;
using vqlib::test::reference_loss;

/// Shape index bits + gain bits per group, fp16 row norms and the 64-bit rotation seed.
double expected_bpw(Index rows, Index cols, Index dim, int index_bits, int gain_bits) {
    const double groups = double(rows) * double(cols / dim);
    return (groups * (index_bits + gain_bits) + 16.0 * double(rows) + 64.0) / double(rows * cols);
}

}  // namespace

TEST_CASE("pvq presets: exact bits per weight and a consistent result on the fixture layer",
          "[pvq]") {
    const auto& L = fixture_layer();
    const auto [bpw, pulses, index_bits] =
        GENERATE(std::tuple{2.25, 22, 64}, std::tuple{3.25, 50, 96}, std::tuple{4.25, 105, 128});
    INFO("bpw = " << bpw);
    const auto config = vqlib::pvq_presets::best(bpw);
    CHECK(config.pvq.dim == 32);
    CHECK(config.pvq.pulses == pulses);
    const auto r = vqlib::pvq(L.W, L.H, config);
    CHECK(r.layer.codec().index_bits() == index_bits);
    CHECK(r.bits_per_weight == Approx(expected_bpw(256, 512, 32, index_bits, 8)).epsilon(1e-12));
    // The loss comes from the solver's error sum in the rotated basis (LossEvaluation::solver):
    // float32 rounding away from the product with the restored Q (measured: 1e-7 relative).
    CHECK(r.stats.error_sum_is_loss);
    CHECK_THAT(vqlib::proxy_loss(L.W, r.Q, L.H), Catch::Matchers::WithinRel(r.proxy_loss, 1e-6));
    if (pulses == 22) {  // at one rate (each run takes seconds)
        auto exact_config = config;
        exact_config.loss = vqlib::LossEvaluation::exact;
        const auto exact = vqlib::pvq(L.W, L.H, exact_config);
        CHECK(exact.Q == r.Q);
        CHECK(exact.proxy_loss == vqlib::proxy_loss(L.W, r.Q, L.H));
        // A shared preparation (pvq_prepare_hessian) gives the same layer.
        const auto hessian = vqlib::pvq_prepare_hessian(L.H, config);
        const auto shared = vqlib::pvq(L.W, L.H, hessian, config);
        CHECK(shared.Q == r.Q);
        CHECK(shared.proxy_loss == r.proxy_loss);
    }
    // Every stored shape is a point of the pyramid P(32, K).
    const auto codec = r.layer.codec();
    std::vector<std::int32_t> y(32);
    for (std::size_t i = 0; i < r.layer.indices.size(); i += 97) {
        codec.decode(r.layer.indices[i], y);
        int l1 = 0;
        for (auto v : y) l1 += std::abs(v);
        CHECK(l1 == pulses);
    }
}

TEST_CASE("pvq on the fixture layer: rates, alternatives, and GPTVQ's reference", "[pvq]") {
    const auto& L = fixture_layer();
    const double gptvq_3b = reference_loss("gptvq_2d_3b_gs8192");   // 3.125 bpw
    const double gptvq_2b = reference_loss("gptvq_2d_2b_gs2048");   // 2.125 bpw
    const auto best2 = vqlib::pvq(L.W, L.H, vqlib::pvq_presets::best(2.25));
    const auto best3 = vqlib::pvq(L.W, L.H, vqlib::pvq_presets::best(3.25));
    const auto best4 = vqlib::pvq(L.W, L.H, vqlib::pvq_presets::best(4.25));
    const auto paper3 = vqlib::pvq(L.W, L.H, vqlib::pvq_presets::paper(3.25));
    INFO("PVQ best 2.25/3.25/4.25: " << best2.proxy_loss << " " << best3.proxy_loss << " "
                                     << best4.proxy_loss << "; paper 3.25: " << paper3.proxy_loss
                                     << "; GPTVQ ref 2.125: " << gptvq_2b << ", 3.125: " << gptvq_3b);
    CHECK(best3.proxy_loss < best2.proxy_loss);
    CHECK(best4.proxy_loss < best3.proxy_loss);
    CHECK(best3.proxy_loss < paper3.proxy_loss);
    CHECK(best3.proxy_loss < gptvq_3b);
    CHECK(best2.proxy_loss < gptvq_2b);

    // Without the rotation the heavy rows and outlier channels cost more.
    auto unrotated = vqlib::pvq_presets::best(3.25);
    unrotated.incoherence.reset();
    const auto plain = vqlib::pvq(L.W, L.H, unrotated);
    INFO("unrotated: " << plain.proxy_loss);
    CHECK(plain.proxy_loss > best3.proxy_loss);
    CHECK(plain.bits_per_weight == Approx(best3.bits_per_weight - 64.0 / (256.0 * 512.0)));
}

TEST_CASE("pvq: every alternative runs and feedback helps", "[pvq]") {
    const vqlib::MatrixXf W = vqlib::test::student_t_matrix(64, 128, 5, 4);
    const vqlib::MatrixXf X = vqlib::test::normal_matrix(128, 512, 6);
    const vqlib::MatrixXd H = (2.0 / 512.0) * (X * X.transpose()).cast<double>();
    auto base = vqlib::pvq_presets::make(16, 3.0, 6);
    double rtn_loss = 0;
    {
        auto c = base;
        c.update = vqlib::ErrorUpdateKind::none;
        rtn_loss = vqlib::pvq(W, H, c).proxy_loss;
    }
    for (auto search : {vqlib::ShapeSearch::greedy, vqlib::ShapeSearch::greedy_swap,
                        vqlib::ShapeSearch::metric_swap}) {
        for (auto metric : {vqlib::GainMetric::euclidean, vqlib::GainMetric::hessian,
                            vqlib::GainMetric::conditional}) {
            for (int design = 0; design < 3; ++design) {
                auto c = base;
                c.pvq.search = search;
                c.pvq.gain_metric = metric;
                if (design == 1) c.gain = vqlib::BetaQuantileGain{6};
                if (design == 2) c.gain = vqlib::LogUniformGain{6};
                INFO("search " << int(search) << ", metric " << int(metric) << ", design " << design);
                const auto r = vqlib::pvq(W, H, c);
                CHECK(std::isfinite(r.proxy_loss));
                CHECK(r.proxy_loss < rtn_loss);
            }
        }
    }
    auto act = base;
    act.hessian.act_order = true;
    const auto r = vqlib::pvq(W, H, act);
    CHECK(r.layer.perm.size() == 128);
    CHECK(r.layer.bits().indices == 32.0 * 128);
}

TEST_CASE("pvq is deterministic across thread counts", "[pvq]") {
    const auto& L = fixture_layer();
    const auto config = vqlib::pvq_presets::best(3.25);
    vqlib::MatrixXf Q1, Q2;
    {
        vqlib::test::ThreadCountScope threads(1);
        Q1 = vqlib::pvq(L.W, L.H, config).Q;
    }
    {
        vqlib::test::ThreadCountScope threads(2);
        Q2 = vqlib::pvq(L.W, L.H, config).Q;
    }
    CHECK(Q1 == Q2);
}

TEST_CASE("pvq: the packed shape indices round trip at fixed and fractional widths", "[pvq]") {
    const vqlib::MatrixXf W = vqlib::test::student_t_matrix(32, 256, 9, 4);
    const vqlib::MatrixXd H = vqlib::MatrixXd::Identity(256, 256);
    for (auto packing : {vqlib::PvqIndexPacking::fixed_width, vqlib::PvqIndexPacking::mixed_radix}) {
        auto c = vqlib::pvq_presets::make(32, 3.25, 8);
        c.packing = packing;
        const auto r = vqlib::pvq(W, H, c);
        const auto bytes = r.layer.packed_indices();
        const auto layout = r.layer.index_layout();
        const auto back = vqlib::lattice::unpack_indices<unsigned __int128>(
            std::span<const std::uint8_t>(bytes), r.layer.indices.size(), layout);
        CHECK(back == r.layer.indices);
        const double shape_bits = r.layer.bits().codes - 8.0 * double(r.layer.indices.size());
        CHECK(double(bytes.size()) * 8.0 >= shape_bits);
        CHECK(double(bytes.size()) * 8.0 < shape_bits + 8.0);
        if (packing == vqlib::PvqIndexPacking::mixed_radix)
            CHECK(shape_bits / double(r.layer.indices.size()) < 96.0);
    }
}

TEST_CASE("pvq rejects bad input with clear errors", "[pvq]") {
    const vqlib::MatrixXf W = vqlib::test::student_t_matrix(16, 64, 3, 4);
    const vqlib::MatrixXd H = vqlib::MatrixXd::Identity(64, 64);
    const auto c = vqlib::pvq_presets::make(16, 3.0, 6);
    CHECK_THROWS_AS(vqlib::pvq(W, vqlib::MatrixXd::Identity(32, 32), c), vqlib::shape_error);
    vqlib::MatrixXf bad = W;
    bad(3, 5) = std::nanf("");
    CHECK_THROWS_WITH(vqlib::pvq(bad, H, c), Contains("W"));
    auto wide = c;
    wide.pvq.dim = 48;
    wide.incoherence.reset();
    CHECK_THROWS_WITH(vqlib::pvq(W, H, wide), Contains("48"));
    auto too_many = c;
    too_many.pvq.dim = 32;
    too_many.pvq.pulses = 200;  // V(32, 200) needs more than 128 bits
    CHECK_THROWS_AS(vqlib::pvq(W, H, too_many), vqlib::invalid_argument);
    CHECK_THROWS_WITH(vqlib::pvq_presets::make(32, 0.2, 8), Contains("bits_per_weight = 0.2"));
}

TEST_CASE("pvq with multi-limb indices: D = 64 beyond 128 bits", "[pvq]") {
    const vqlib::MatrixXf W = vqlib::test::student_t_matrix(16, 256, 12, 4);
    const vqlib::MatrixXf X = vqlib::test::normal_matrix(256, 512, 13);
    const vqlib::MatrixXd H = (2.0 / 512.0) * (X * X.transpose()).cast<double>();
    const auto c = vqlib::pvq_presets::make(64, 3.25, 8);  // 200 index bits
    CHECK_THROWS_WITH(vqlib::pvq(W, H, c), Contains("128"));
    const auto r = vqlib::pvq<vqlib::lattice::BigUint<4>>(W, H, c);
    CHECK(r.layer.codec().index_bits() > 128);
    CHECK(r.layer.codec().index_bits() <= 200);
    CHECK(std::isfinite(r.proxy_loss));
    const auto packed = r.layer.packed_indices();
    const auto back = vqlib::lattice::unpack_indices<vqlib::lattice::BigUint<4>>(
        std::span<const std::uint8_t>(packed), r.layer.indices.size(), r.layer.index_layout());
    CHECK(back == r.layer.indices);
}

TEST_CASE("pvq: the decoded layer is the solver's own output, rotated back", "[pvq]") {
    // The recipe's pieces run by hand: rotate W and H, prepare, sweep with the PVQ quantizer.
    // The solver's Q is in the rotated domain; the layer's decode rotates back, so rotating the
    // recipe's Q again must give the solver's Q (up to the rotations' float rounding).
    const vqlib::MatrixXf W = vqlib::test::student_t_matrix(32, 128, 21, 4);
    const vqlib::MatrixXf X = vqlib::test::normal_matrix(128, 512, 22);
    const vqlib::MatrixXd H = (2.0 / 512.0) * (X * X.transpose()).cast<double>();
    const bool rotate = GENERATE(false, true);
    INFO("incoherence " << rotate);
    auto config = vqlib::pvq_presets::make(16, 3.25, 6);
    if (!rotate) config.incoherence.reset();
    const auto r = vqlib::pvq<std::uint64_t>(W, H, config);

    vqlib::MatrixXf Wt = W, Qt = r.Q;
    vqlib::MatrixXd Ht = H;
    if (rotate) {
        const vqlib::transform::IncoherenceTransform rotation(32, 128, *config.incoherence);
        rotation.transform_weights(Wt);
        rotation.transform_weights(Qt);
        rotation.transform_hessian(Ht);
    }
    vqlib::PvqQuantizer<std::uint64_t> quantizer(config.pvq, vqlib::pvq_gain_codebook(config, 128));
    const auto solved = vqlib::solve(config.update, config.solver, Wt,
                                     vqlib::prepare_hessian(Ht, config.hessian), quantizer);
    if (rotate) {
        CHECK((solved.Q - Qt).cwiseAbs().maxCoeff() <= 1e-5f * solved.Q.cwiseAbs().maxCoeff());
    } else {
        CHECK(solved.Q == r.Q);
    }
    CHECK(quantizer.layer().indices == r.layer.indices);
}

TEST_CASE("pvq presets: (dim, bits per weight), D = 32 by default", "[pvq]") {
    CHECK(vqlib::pvq_presets::best(32, 3.25).pvq.pulses == vqlib::pvq_presets::best(3.25).pvq.pulses);
    CHECK(vqlib::pvq_presets::paper(32, 2.25).pvq.pulses == vqlib::pvq_presets::paper(2.25).pvq.pulses);
    const auto c = vqlib::pvq_presets::best(16, 3.25);
    CHECK(c.pvq.dim == 16);
    // 16 * 3.25 - 8 gain bits = 44 bits of shape index.
    CHECK(c.pvq.pulses == vqlib::lattice::max_pulses_fitting(16, 44));
    CHECK(c.pvq.search == vqlib::ShapeSearch::metric_swap);
}
