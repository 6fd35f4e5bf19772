#include <vqlib/core/rng.hpp>
#include <vqlib/gptvq.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

namespace {

struct Layer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

Layer make_layer(vqlib::Index rows, vqlib::Index cols, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Layer l{vqlib::MatrixXf(rows, cols), {}};
    for (vqlib::Index j = 0; j < cols; ++j)
        for (vqlib::Index i = 0; i < rows; ++i) l.W(i, j) = static_cast<float>(rng.student_t(4));
    vqlib::MatrixXf X(cols, 2 * cols);
    for (vqlib::Index t = 0; t < X.cols(); ++t) {
        const double shared = rng.normal();
        for (vqlib::Index i = 0; i < cols; ++i)
            X(i, t) = static_cast<float>((0.4 * shared + rng.normal()) * (1 + i % 7));
    }
    vqlib::HessianAccumulator acc(cols);
    acc.add(X);
    l.H = acc.finalize();
    return l;
}

}  // namespace

TEST_CASE("gptvq: presets, bits per weight and the codebook update") {
    const auto l = make_layer(64, 256, 80);
    // 2D, 2 bits per dimension, 2048 weights per codebook: 8 rows x 256 columns per tile.
    const auto config = vqlib::gptvq_presets::best(2, 2, 2048);
    CHECK(config.vq.k == 16);
    const auto r = vqlib::gptvq(l.W, l.H, config);
    CHECK(r.layer.layout.rows_per_codebook == 8);
    CHECK(r.layer.layout.codebook_count() == 8);
    // 4-bit indices per pair, INT8 codebooks, one fp16 scale per codebook.
    const double expected = (64.0 * 128 * 4 + 8 * 16 * 2 * 8 + 8 * 16) / (64.0 * 256);
    CHECK(r.layer.bits_per_weight() == expected);
    CHECK(r.codebook_update.loss_after <= r.codebook_update.loss_before);
    // The least-squares update's losses are float32 products summed in float64.
    CHECK_THAT(vqlib::proxy_loss(l.W, r.Q, l.H),
               Catch::Matchers::WithinRel(r.proxy_loss, 1e-6));

    // Without the codebook update, the decoded layer is the solver's own Q (the quantizer's
    // lookups, as the sweep fed them back), assembled here from the recipe's pieces.
    auto no_update = config;
    no_update.codebook_update.method = vqlib::CodebookUpdateMethod::none;
    const auto plain = vqlib::gptvq(l.W, l.H, no_update);
    const auto policies = vqlib::gptvq_policies(no_update);
    vqlib::VqQuantizer quantizer(no_update.vq, policies.fitter, policies.storage);
    const auto solved = vqlib::solve(no_update.update, no_update.solver, l.W,
                                     vqlib::prepare_hessian(l.H, no_update.hessian), quantizer);
    CHECK(solved.Q == plain.Q);
    CHECK(plain.codebook_update.loss_after == plain.codebook_update.loss_before);
    CHECK(r.proxy_loss <= plain.proxy_loss);

    // The GPTQ-style update beats quantizing without error feedback.
    auto no_feedback = config;
    no_feedback.update = vqlib::ErrorUpdateKind::none;
    no_feedback.codebook_update.method = vqlib::CodebookUpdateMethod::none;
    auto feedback = config;
    feedback.codebook_update.method = vqlib::CodebookUpdateMethod::none;
    CHECK(vqlib::gptvq(l.W, l.H, feedback).proxy_loss < vqlib::gptvq(l.W, l.H, no_feedback).proxy_loss);

    // Paper presets: K and tile from the bpv table.
    const auto p = vqlib::gptvq_presets::paper(4, 2.125);
    CHECK(p.vq.k == 256);
    CHECK(p.vq.weights_per_codebook == 65536);
    CHECK(vqlib::gptvq_presets::paper(1, 3.125).vq.k == 8);
    CHECK_THROWS_AS(vqlib::gptvq_presets::paper(4, 3.125), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::gptvq_presets::best(2, 9, 2048), vqlib::invalid_argument);
}

TEST_CASE("gptvq: bit-identical with 1 and 2 threads") {
    const auto l = make_layer(32, 256, 81);
    auto config = vqlib::gptvq_presets::best(2, 2, 1024);
    vqlib::set_num_threads(1);
    const auto one = vqlib::gptvq(l.W, l.H, config);
    vqlib::set_num_threads(2);
    const auto two = vqlib::gptvq(l.W, l.H, config);
    vqlib::set_num_threads(0);
    CHECK(one.Q == two.Q);
    CHECK(one.layer.indices == two.layer.indices);
    CHECK(one.proxy_loss == two.proxy_loss);
}

TEST_CASE("gptvq: one prepared Hessian serves several linears with the same input") {
    // q/k/v read the same input: one preparation, three weights.
    const auto l = make_layer(32, 256, 82);
    const auto other = make_layer(48, 256, 83);
    const auto config = vqlib::gptvq_presets::best(2, 2, 1024);
    const auto prepared = vqlib::prepare_hessian(l.H, config.hessian);
    for (const vqlib::MatrixXf* W : {&l.W, &other.W}) {
        const auto alone = vqlib::gptvq(*W, l.H, config);
        const auto shared = vqlib::gptvq(*W, l.H, prepared, config);
        CHECK(shared.Q == alone.Q);
        CHECK(shared.layer.indices == alone.layer.indices);
        CHECK(shared.proxy_loss == alone.proxy_loss);
    }
    const auto narrow = vqlib::prepare_hessian(l.H.topLeftCorner(128, 128), config.hessian);
    CHECK_THROWS_WITH(vqlib::gptvq(l.W, l.H, narrow, config),
                      Catch::Contains("128 columns") && Catch::Contains("256"));
}

TEST_CASE("gptvq: bad input is rejected with a clear error") {
    using Catch::Contains;
    const auto l = make_layer(16, 256, 82);
    // K larger than the vectors of a tile: 1 row x 256 columns holds 128 pairs.
    auto config = vqlib::gptvq_presets::reference_compatible(2, 4, 256);
    CHECK_THROWS_WITH(vqlib::gptvq(l.W, l.H, config), Contains("k = 256") && Contains("128"));
    // D not dividing the columns of a group.
    config = vqlib::gptvq_presets::reference_compatible(3, 2, 768);
    CHECK_THROWS_AS(vqlib::gptvq(l.W, l.H, config), vqlib::shape_error);
    // Tiles that do not divide the layer: 3 rows x 256 columns, 16 rows.
    config = vqlib::gptvq_presets::reference_compatible(2, 2, 768);
    CHECK_THROWS_WITH(vqlib::gptvq(l.W, l.H, config), Contains("R = 16"));
    // Columns not a multiple of the 256-column group.
    const auto narrow = make_layer(16, 192, 83);
    config = vqlib::gptvq_presets::reference_compatible(2, 2, 512);
    CHECK_THROWS_WITH(vqlib::gptvq(narrow.W, narrow.H, config), Contains("C = 192"));
    // NaN weights and a NaN Hessian.
    config = vqlib::gptvq_presets::reference_compatible(2, 2, 512);
    vqlib::MatrixXf W = l.W;
    W(5, 17) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(vqlib::gptvq(W, l.H, config), Contains("W(5, 17) = nan"));
    vqlib::MatrixXd H = l.H;
    H(3, 3) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(vqlib::gptvq(l.W, H, config), vqlib::numerical_error);
    // Act-order needs a preparation that keeps the vectors whole (gptvq_prepare_hessian).
    config.hessian.act_order = true;
    const auto split = vqlib::prepare_hessian(l.H, config.hessian);
    CHECK_THROWS_WITH(vqlib::gptvq(l.W, l.H, split, config), Contains("act_order_unit = 2"));
}

TEST_CASE("gptvq: act-order and blockwise normalization inside the solve") {
    // An LLM-like layer: channel scales over two decades (act-order has an order to find) and
    // rows of very different magnitude (normalization has something to take out).
    auto l = make_layer(64, 512, 84);
    vqlib::Rng rng(85);
    for (vqlib::Index j = 0; j < 512; ++j) {
        const double s = std::exp(1.2 * rng.normal());
        l.H.row(j) *= s;
        l.H.col(j) *= s;
    }
    for (vqlib::Index r = 0; r < 64; ++r) l.W.row(r) *= static_cast<float>(std::exp(0.8 * rng.normal()));
    auto base = vqlib::gptvq_presets::best(2, 2, 2048);
    base.codebook_update.method = vqlib::CodebookUpdateMethod::none;
    const auto plain = vqlib::gptvq(l.W, l.H, base);

    auto act = base;
    act.hessian.act_order = true;
    const auto with_act = vqlib::gptvq(l.W, l.H, act);
    CHECK(vqlib::gptvq_prepare_hessian(l.H, act).permuted());
    CHECK(with_act.layer.layout.codebook_count() == plain.layer.layout.codebook_count());
    CHECK(with_act.Q == with_act.layer.dequantize());
    CHECK_THAT(vqlib::proxy_loss(l.W, with_act.Q, l.H), Catch::Matchers::WithinRel(with_act.proxy_loss, 1e-6));
    CHECK(with_act.proxy_loss < plain.proxy_loss);
    CHECK(with_act.bits_per_weight == plain.bits_per_weight);  // the storage does not change

    // The paper's scaled configuration at the same rate: 64-column scales, tiles twice as large.
    auto scaled = vqlib::gptvq_presets::paper_scaled(2, 2.125);
    scaled.codebook_update.method = vqlib::CodebookUpdateMethod::none;
    const auto with_scales = vqlib::gptvq(l.W, l.H, scaled);
    CHECK(with_scales.layer.scale_block == 64);
    CHECK(with_scales.layer.layout.rows_per_codebook == 16);
    CHECK(with_scales.Q == with_scales.layer.dequantize());
    CHECK_THAT(vqlib::proxy_loss(l.W, with_scales.Q, l.H), Catch::Matchers::WithinRel(with_scales.proxy_loss, 1e-6));
    CHECK(with_scales.proxy_loss < plain.proxy_loss);
    // 64 x 512: 2-bit codes; 8 INT8 codebooks of 16 pairs with an fp16 scale each; a 4-bit code
    // per row and 64 columns, an fp16 offset and step per 64 columns.
    CHECK(with_scales.bits_per_weight ==
          (64.0 * 512 * 2 + 8 * 16 * 2 * 8 + 8 * 16 + 64 * 8 * 4 + 8 * 2 * 16) / (64 * 512));

    // Both, with the exact codebook update (which keeps the scales fixed), on 1 and 2 threads.
    auto both = vqlib::gptvq_presets::paper_scaled(2, 2.125);
    both.hessian.act_order = true;
    vqlib::set_num_threads(1);
    const auto one = vqlib::gptvq(l.W, l.H, both);
    vqlib::set_num_threads(2);
    const auto two = vqlib::gptvq(l.W, l.H, both);
    vqlib::set_num_threads(0);
    CHECK(one.Q == two.Q);
    CHECK(one.layer.scales == two.layer.scales);
    CHECK(one.codebook_update.loss_after <= one.codebook_update.loss_before);
    CHECK_THAT(vqlib::proxy_loss(l.W, one.Q, l.H), Catch::Matchers::WithinRel(one.proxy_loss, 1e-6));
    // A shared preparation for act-order comes from gptvq_prepare_hessian.
    const auto prepared = vqlib::gptvq_prepare_hessian(l.H, both);
    CHECK(vqlib::gptvq(l.W, l.H, prepared, both).Q == one.Q);
}
