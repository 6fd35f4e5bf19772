#include <vqlib/core/rng.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/quantizers/vq_codebook_update.hpp>

#include <catch2/catch.hpp>

#include <limits>

namespace {

struct Problem {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
    vqlib::VqLayer layer;
};

Problem make_problem(vqlib::Index rows_per_codebook, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Problem p;
    p.W.resize(12, 32);
    for (vqlib::Index j = 0; j < 32; ++j)
        for (vqlib::Index i = 0; i < 12; ++i) p.W(i, j) = static_cast<float>(rng.normal());
    vqlib::MatrixXf X(32, 96);
    for (vqlib::Index t = 0; t < 96; ++t)
        for (vqlib::Index i = 0; i < 32; ++i) X(i, t) = static_cast<float>(rng.normal() * (1 + i % 4));
    vqlib::HessianAccumulator acc(32);
    acc.add(X);
    p.H = acc.finalize();
    vqlib::VqLayout& L = p.layer.layout;
    L.rows = 12;
    L.cols = 32;
    L.dim = 2;
    L.k = 4;
    L.rows_per_codebook = rows_per_codebook;
    L.columns_per_group = 16;
    p.layer.codebooks.resize(L.codebook_count() * L.k, 2);
    for (vqlib::Index i = 0; i < p.layer.codebooks.size(); ++i)
        p.layer.codebooks.data()[i] = static_cast<float>(rng.normal() * 0.5);
    p.layer.indices.resize(12, 16);
    for (vqlib::Index i = 0; i < p.layer.indices.size(); ++i)
        p.layer.indices.data()[i] = static_cast<std::uint16_t>(rng.below(4));
    return p;
}

auto no_requantize = [](vqlib::VqLayer&) {};

}  // namespace

TEST_CASE("quantizers/vq_codebook_update: least squares is the exact minimizer") {
    for (vqlib::Index rpc : {1, 3, 12}) {
        auto p = make_problem(rpc, 40 + static_cast<std::uint64_t>(rpc));
        vqlib::CodebookUpdateOptions options;
        options.method = vqlib::CodebookUpdateMethod::least_squares;
        // Each sweep is exact per column group; more sweeps never raise the loss and converge to
        // the joint minimizer.
        double previous = std::numeric_limits<double>::infinity();
        for (int sweeps : {1, 2, 4}) {
            auto fresh = make_problem(rpc, 40 + static_cast<std::uint64_t>(rpc));
            options.sweeps = sweeps;
            const double loss =
                vqlib::update_codebooks(fresh.layer, fresh.W, fresh.H, options, no_requantize).loss_after;
            // (The losses are float32 products summed in float64.)
            CHECK(loss <= previous * (1 + 1e-6));
            previous = loss;
        }
        options.sweeps = 200;
        const auto stats = vqlib::update_codebooks(p.layer, p.W, p.H, options, no_requantize);
        CHECK(stats.kept);
        CHECK(stats.loss_after < stats.loss_before);
        // The reported losses agree with the float64 product before and after.
        auto start = make_problem(rpc, 40 + static_cast<std::uint64_t>(rpc));
        CHECK_THAT(vqlib::proxy_loss(start.W, start.layer.dequantize(), start.H),
                   Catch::Matchers::WithinRel(stats.loss_before, 1e-6));
        CHECK_THAT(vqlib::proxy_loss(p.W, p.layer.dequantize(), p.H),
                   Catch::Matchers::WithinRel(stats.loss_after, 1e-6));
        // Optimality: the gradient vanishes and no random perturbation lowers the loss.
        const vqlib::MatrixXd residual = p.W.cast<double>() - p.layer.dequantize().cast<double>();
        const vqlib::MatrixXd grad = vqlib::detail::codebook_gradient(p.layer, residual * p.H);
        CHECK(grad.cwiseAbs().maxCoeff() < 1e-3 * (residual * p.H).cwiseAbs().maxCoeff());
        vqlib::Rng rng(7);
        for (int trial = 0; trial < 5; ++trial) {
            vqlib::VqLayer moved = p.layer;
            for (vqlib::Index i = 0; i < moved.codebooks.size(); ++i)
                moved.codebooks.data()[i] += static_cast<float>(1e-2 * rng.normal());
            CHECK(vqlib::proxy_loss(p.W, moved.dequantize(), p.H) > stats.loss_after);
        }
        // Adam from the same start improves, but not beyond the exact solution.
        auto q = make_problem(rpc, 40 + static_cast<std::uint64_t>(rpc));
        options.method = vqlib::CodebookUpdateMethod::adam;
        options.sweeps = 2;
        options.learning_rate = 1e-2;
        options.steps = 200;
        const auto adam = vqlib::update_codebooks(q.layer, q.W, q.H, options, no_requantize);
        CHECK(adam.loss_after < adam.loss_before);
        CHECK(adam.loss_after >= stats.loss_after * (1 - 1e-6));
    }
}

TEST_CASE("quantizers/vq_codebook_update: a worse update is rolled back unless asked to keep it") {
    auto p = make_problem(3, 50);
    const vqlib::MatrixXf before = p.layer.codebooks;
    // A "requantization" that wrecks the codebooks makes every update worse.
    auto wreck = [](vqlib::VqLayer& layer) { layer.codebooks.array() += 10.0f; };
    vqlib::CodebookUpdateOptions options;
    auto stats = vqlib::update_codebooks(p.layer, p.W, p.H, options, wreck);
    CHECK_FALSE(stats.kept);
    CHECK(p.layer.codebooks == before);
    CHECK(stats.loss_after == stats.loss_before);
    options.keep_if_worse = true;
    stats = vqlib::update_codebooks(p.layer, p.W, p.H, options, wreck);
    CHECK(stats.kept);
    CHECK(stats.loss_after > stats.loss_before);
}

TEST_CASE("quantizers/vq_codebook_update: Adam restarts with a smaller rate when the loss rises") {
    auto p = make_problem(3, 60);
    vqlib::CodebookUpdateOptions options;
    options.method = vqlib::CodebookUpdateMethod::adam;
    options.learning_rate = 100.0;  // diverges at once
    const auto stats = vqlib::update_codebooks(p.layer, p.W, p.H, options, no_requantize);
    CHECK(stats.restarts >= 1);
    CHECK(stats.loss_after <= stats.loss_before);
}

TEST_CASE("quantizers/vq_codebook_update: shape errors") {
    auto p = make_problem(3, 70);
    vqlib::CodebookUpdateOptions options;
    CHECK_THROWS_AS(vqlib::update_codebooks(p.layer, p.W.leftCols(30), p.H, options, no_requantize),
                    vqlib::shape_error);
    CHECK_THROWS_AS(vqlib::update_codebooks(p.layer, p.W, vqlib::MatrixXd(p.H.topLeftCorner(16, 16)),
                                            options, no_requantize),
                    vqlib::shape_error);
}

TEST_CASE("quantizers/vq_codebook_update: loss changes by row chunks") {
    // L(Q) - L(Q0) from (W - Q0) H, by 128-row chunks, against the float64 losses.
    vqlib::Rng rng(80);
    const vqlib::Index rows = 300, cols = 160;
    vqlib::MatrixXf W(rows, cols), Q0(rows, cols), Q(rows, cols), X(cols, 400);
    for (vqlib::Index i = 0; i < W.size(); ++i) {
        W.data()[i] = static_cast<float>(rng.normal());
        Q0.data()[i] = W.data()[i] + static_cast<float>(0.3 * rng.normal());
        Q.data()[i] = Q0.data()[i] + static_cast<float>(0.05 * rng.normal());
    }
    for (vqlib::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<float>(rng.normal() * (1 + i % 3));
    vqlib::HessianAccumulator acc(cols);
    acc.add(X);
    const vqlib::MatrixXd H = acc.finalize();
    const vqlib::MatrixXf Hf = H.cast<float>();
    const vqlib::MatrixXf EH0 = vqlib::detail::times_hessian<float>(vqlib::MatrixXf(W - Q0), Hf);
    const auto all = vqlib::detail::loss_changes(Q, Q0, EH0, Hf);
    REQUIRE(all.size() == 3);
    for (vqlib::Index c = 0; c < 3; ++c) {
        const vqlib::Index r0 = c * 128, n = std::min<vqlib::Index>(128, rows - r0);
        const double expected = vqlib::proxy_loss(W.middleRows(r0, n), Q.middleRows(r0, n), H) -
                                vqlib::proxy_loss(W.middleRows(r0, n), Q0.middleRows(r0, n), H);
        CHECK(std::abs(all[static_cast<std::size_t>(c)] - expected) < 1e-4 * std::abs(expected));
    }
    const auto some = vqlib::detail::loss_changes(Q, Q0, EH0, Hf, {0, 1, 0});
    CHECK(some[0] == 0.0);
    CHECK(some[1] == all[1]);
    CHECK(some[2] == 0.0);
}
