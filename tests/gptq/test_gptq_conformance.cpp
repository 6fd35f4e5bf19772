// Conformance of vqlib's GPTQ with the reference implementation (IST-DASLab/gptq) on the shared
// fixture layer: the same Q up to float summation order, and the same proxy loss.
#include <vqlib/gptq.hpp>
#include <vqlib/io/npy.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "../support/fixtures.hpp"

namespace {

struct Case {
    const char* folder;
    int bits;
    bool symmetric;
    vqlib::Index group_size;
    bool act_order;
    bool static_groups;
};

}  // namespace

TEST_CASE("gptq: conformance with the reference on layer_256x512") {
    const auto dir = vqlib::test::reference_layer_dir();
    const vqlib::MatrixXf W = vqlib::load_npy_matrix(dir / "W.npy");
    const vqlib::MatrixXf H = vqlib::load_npy_matrix(dir / "H.npy");

    const Case c = GENERATE(Case{"gptq_w4_g128", 4, false, 128, false, false},
                            Case{"gptq_w3_row", 3, false, 0, false, false},
                            Case{"gptq_w2_g64_sym", 2, true, 64, false, false},
                            Case{"gptq_w2_g128", 2, false, 128, false, false},
                            Case{"gptq_w4_g128_act_static", 4, false, 128, true, true});
    INFO(c.folder);
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(c.bits, c.symmetric)};
    config.groups = {c.group_size, c.static_groups};
    config.hessian.act_order = c.act_order;
    const auto result = vqlib::gptq(W, H, config);
    const vqlib::MatrixXf Q_ref = vqlib::load_npy_matrix(dir / c.folder / "Q.npy");
    REQUIRE(result.Q.rows() == Q_ref.rows());
    REQUIRE(result.Q.cols() == Q_ref.cols());
    CHECK(result.layer.dequantize() == result.Q);
    CHECK(result.cholesky_attempts == 1);

    // Elements that differ by a grid step (more than 1% of their group's scale): at most 0.1%,
    // and none by more than one step.
    vqlib::Index off_by_one = 0;
    for (vqlib::Index j = 0; j < W.cols(); ++j) {
        const auto g = result.layer.g_idx[static_cast<std::size_t>(j)];
        for (vqlib::Index i = 0; i < W.rows(); ++i) {
            const float step = result.layer.param(i, g).scale;
            const float diff = std::abs(result.Q(i, j) - Q_ref(i, j));
            if (diff > 0.01f * step) {
                ++off_by_one;
                CHECK(diff <= 1.01f * step);
            }
        }
    }
    CHECK(off_by_one <= W.size() / 1000);

    const double reference_loss = vqlib::test::meta_number(dir / c.folder / "meta.json", "proxy_loss");
    CHECK_THAT(result.proxy_loss, Catch::Matchers::WithinRel(reference_loss, 1e-3));
    // Our proxy loss of the reference's Q agrees with meta.json (same formula).
    CHECK_THAT(vqlib::proxy_loss(W, Q_ref, H), Catch::Matchers::WithinRel(reference_loss, 1e-6));
}

TEST_CASE("gptq: bit-identical with 1 and 2 threads on the fixture layer") {
    const auto dir = vqlib::test::reference_layer_dir();
    const vqlib::MatrixXf W = vqlib::load_npy_matrix(dir / "W.npy");
    const vqlib::MatrixXf H = vqlib::load_npy_matrix(dir / "H.npy");
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(3, false)};
    config.groups.size = 128;
    config.hessian.act_order = true;
    vqlib::set_num_threads(1);
    const auto one = vqlib::gptq(W, H, config);
    vqlib::set_num_threads(2);
    const auto two = vqlib::gptq(W, H, config);
    vqlib::set_num_threads(0);
    CHECK(one.Q == two.Q);
    CHECK(one.layer.codes == two.layer.codes);
    CHECK(one.proxy_loss == two.proxy_loss);
    CHECK(one.layer.stores_g_idx);  // act-order with dynamic groups needs a g_idx
}

TEST_CASE("gptq: the loss from the solver's error sum agrees with the float64 product") {
    const auto dir = vqlib::test::reference_layer_dir();
    const vqlib::MatrixXf W = vqlib::load_npy_matrix(dir / "W.npy");
    vqlib::MatrixXf H = vqlib::load_npy_matrix(dir / "H.npy");
    const bool dead = GENERATE(false, true);
    const bool act_order = GENERATE(false, true);
    const int bits = GENERATE(2, 4);
    if (dead) {  // a column without calibration signal: its Q is not zero, H's row and column are
        H.row(7).setZero();
        H.col(7).setZero();
    }
    INFO("bits " << bits << " act-order " << act_order << " dead column " << dead);
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(bits, false)};
    config.groups.size = 128;
    config.hessian.act_order = act_order;
    REQUIRE(config.loss == vqlib::LossEvaluation::solver);
    const auto fast = vqlib::gptq(W, H, config);
    config.loss = vqlib::LossEvaluation::exact;
    const auto exact = vqlib::gptq(W, H, config);
    CHECK(fast.Q == exact.Q);
    CHECK(fast.stats.error_sum_is_loss);
    CHECK(exact.proxy_loss == vqlib::proxy_loss(W, exact.Q, H));
    // Measured: within 1e-7 relative; the damping term removed is 15-40% of the error sum.
    CHECK_THAT(fast.proxy_loss, Catch::Matchers::WithinRel(exact.proxy_loss, 1e-6));
    CHECK(fast.proxy_loss < 0.9 * fast.stats.error_sum);
    config.loss = vqlib::LossEvaluation::none;
    CHECK(std::isnan(vqlib::gptq(W, H, config).proxy_loss));

    // The same figure from a shared preparation, where the undamped H is not at hand.
    config.loss = vqlib::LossEvaluation::solver;
    const auto prepared = vqlib::prepare_hessian(H, config.hessian);
    const auto shared = vqlib::gptq(W, prepared, config);
    CHECK(shared.Q == fast.Q);
    CHECK(shared.proxy_loss == fast.proxy_loss);

    // Round-to-nearest's error sum is not the loss: the product is used.
    const auto rtn = vqlib::rtn(W, H, config);
    CHECK_FALSE(rtn.stats.error_sum_is_loss);
    CHECK(rtn.proxy_loss == vqlib::proxy_loss(W, rtn.Q, H));
}
