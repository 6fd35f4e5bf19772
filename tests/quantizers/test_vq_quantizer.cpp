#include <vqlib/core/rng.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/quantizers/scalar_quantizer.hpp>
#include <vqlib/quantizers/vq_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace {

vqlib::MatrixXf vq_random_weight(vqlib::Index rows, vqlib::Index cols, std::uint64_t seed) {
    return vqlib::test::student_t_matrix(rows, cols, seed, 5);
}

vqlib::MatrixXd random_hessian(vqlib::Index n, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    vqlib::MatrixXf X(n, 2 * n);
    for (vqlib::Index t = 0; t < X.cols(); ++t) {
        const double shared = rng.normal();
        for (vqlib::Index i = 0; i < n; ++i)
            X(i, t) = static_cast<float>(0.5 * shared + rng.normal() * (1 + i % 3));
    }
    vqlib::HessianAccumulator acc(n);
    acc.add(X);
    return acc.finalize();
}

constexpr std::array<float, 4> levels{-1.5f, -0.4f, 0.3f, 1.7f};

/// A fitter that ignores the data and returns fixed codewords (for D = 1: `levels`).
struct FixedFitter {
    vqlib::MatrixXf operator()(vqlib::ConstMatrixRef points, vqlib::ConstMatrixRef,
                               vqlib::Index k) const {
        vqlib::MatrixXf c(k, points.cols());
        for (vqlib::Index i = 0; i < k; ++i)
            c.row(i).setConstant(levels[static_cast<std::size_t>(i) % levels.size()] *
                                 (1.0f + static_cast<float>(i / 4)));
        return c;
    }
};

/// The same four levels as a scalar grid.
struct LevelGrid {
    void fit(vqlib::ConstMatrixRef, std::span<vqlib::GridParams> p) const {
        std::fill(p.begin(), p.end(), vqlib::GridParams{});
    }
    std::uint32_t encode(float v, const vqlib::GridParams&) const {
        std::uint32_t best = 0;
        float best_distance = (v - levels[0]) * (v - levels[0]);
        for (std::uint32_t c = 1; c < levels.size(); ++c) {
            const float distance = (v - levels[c]) * (v - levels[c]);
            if (distance < best_distance) {
                best = c;
                best_distance = distance;
            }
        }
        return best;
    }
    float decode(std::uint32_t code, const vqlib::GridParams& p) const {
        return p.scale * (levels[code] - p.zero);
    }
    int code_bits() const { return 2; }
    int param_bits() const { return 0; }
    std::string name() const { return "levels"; }
};

/// A fitter returning the first k points (deterministic, data-dependent).
struct FirstPoints {
    vqlib::MatrixXf operator()(vqlib::ConstMatrixRef points, vqlib::ConstMatrixRef,
                               vqlib::Index k) const {
        return points.topRows(k);
    }
};

}  // namespace

static_assert(vqlib::ScalarGrid<LevelGrid>);
static_assert(vqlib::QuantizerPolicy<vqlib::VqQuantizer<FixedFitter>>);

TEST_CASE("quantizers/vq_quantizer: D = 1 VQ equals GPTQ with the same non-uniform grid") {
    const vqlib::MatrixXf W = vq_random_weight(24, 128, 31);
    const auto prepared = vqlib::prepare_hessian(random_hessian(128, 32));
    vqlib::VqOptions options;
    options.dim = 1;
    options.k = 4;
    options.weights_per_codebook = 64;
    options.columns_per_group = 64;
    options.lookup = vqlib::LookupMetric::euclidean;
    options.init_weighting = vqlib::InitWeighting::none;
    struct Exact {  // keep the codebook exactly as fitted
        void quantize(vqlib::MatrixRef, vqlib::Index) const {}
        int entry_bits() const { return 32; }
        int scale_bits() const { return 0; }
        vqlib::Index scales_for(vqlib::Index) const { return 0; }
    };
    vqlib::VqQuantizer<FixedFitter, Exact> vq(options, FixedFitter{});
    vqlib::ScalarQuantizer<LevelGrid> scalar(LevelGrid{});
    const auto a = vqlib::BlockSolver<vqlib::DiagonalUpdate>().run(W, prepared, vq);
    const auto b = vqlib::BlockSolver<vqlib::DiagonalUpdate>().run(W, prepared, scalar);
    CHECK(a.Q == b.Q);
    CHECK(a.stats.error_sum == b.stats.error_sum);
    CHECK(vq.layer().dequantize() == a.Q);
}

TEST_CASE("quantizers/vq_quantizer: layout, lookups and bit accounting") {
    const vqlib::MatrixXf W = vq_random_weight(16, 64, 33);
    const vqlib::MatrixXd H = random_hessian(64, 34);
    const auto prepared = vqlib::prepare_hessian(H);
    vqlib::VqOptions options;
    options.dim = 2;
    options.k = 8;
    options.weights_per_codebook = 128;  // tiles of 4 rows x 32 columns
    options.columns_per_group = 32;
    for (auto metric : {vqlib::LookupMetric::euclidean, vqlib::LookupMetric::inverse_u,
                        vqlib::LookupMetric::inverse_u_squared, vqlib::LookupMetric::exact}) {
        options.lookup = metric;
        vqlib::VqQuantizer<FirstPoints> vq(options, FirstPoints{});
        const auto r = vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, prepared, vq);
        const vqlib::VqLayer& layer = vq.layer();
        CHECK(layer.layout.rows_per_codebook == 4);
        CHECK(layer.layout.codebook_count() == 2 * 4);
        CHECK(layer.dequantize() == r.Q);
        // Every quantized pair is a codeword of its tile's codebook.
        for (vqlib::Index row = 0; row < 16; ++row) {
            for (vqlib::Index v = 0; v < 32; ++v) {
                const auto book = layer.codebook(layer.layout.codebook_of(row, v * 2 / 32));
                const vqlib::Index idx = layer.indices(row, v);
                CHECK(r.Q(row, 2 * v) == book(idx, 0));
                CHECK(r.Q(row, 2 * v + 1) == book(idx, 1));
            }
        }
        // The exact update keeps its invariant whatever the lookup metric.
        vqlib::MatrixXd Hd = H;
        Hd.diagonal().array() += prepared.damp;
        CHECK_THAT(r.stats.error_sum, Catch::Matchers::WithinRel(vqlib::proxy_loss(W, r.Q, Hd), 1e-4));
        // 3-bit indices per pair, 16-bit codebook entries.
        const auto bits = layer.bits();
        CHECK(bits.codes == 16 * 32 * 3);
        CHECK(bits.codebooks == 8 * 8 * 2 * 16);
        CHECK(bits.per_weight() == (16.0 * 32 * 3 + 8 * 8 * 2 * 16) / (16 * 64));
    }
}

TEST_CASE("quantizers/vq_quantizer: bad configurations are rejected") {
    const vqlib::MatrixXf W = vq_random_weight(16, 64, 35);
    const auto prepared = vqlib::prepare_hessian(random_hessian(64, 36));
    vqlib::BlockSolver<vqlib::ExactUpdate> solver;
    auto run = [&](vqlib::VqOptions o) {
        vqlib::VqQuantizer<FirstPoints> vq(o, FirstPoints{});
        return solver.run(W, prepared, vq);
    };
    vqlib::VqOptions o;
    o.columns_per_group = 32;
    o.weights_per_codebook = 128;
    o.k = 8;
    REQUIRE_NOTHROW(run(o));

    auto bad = o;
    bad.k = 65;  // a 4 x 32 tile holds 64 pairs
    CHECK_THROWS_WITH(run(bad), Catch::Contains("k = 65") && Catch::Contains("64"));
    bad = o;
    bad.dim = 3;  // does not divide the 64 columns
    CHECK_THROWS_AS(run(bad), vqlib::shape_error);
    bad = o;
    bad.weights_per_codebook = 96;  // not a multiple of 32 columns
    CHECK_THROWS_AS(run(bad), vqlib::shape_error);
    bad = o;
    bad.weights_per_codebook = 32 * 5;  // 5-row tiles do not divide 16 rows
    CHECK_THROWS_WITH(run(bad), Catch::Contains("5 rows") && Catch::Contains("R = 16"));
    bad = o;
    bad.columns_per_group = 48;  // does not divide 64 columns
    bad.weights_per_codebook = 96;
    CHECK_THROWS_WITH(run(bad), Catch::Contains("columns_per_group = 48"));
    bad = o;
    bad.dim = 0;
    CHECK_THROWS_AS(vqlib::VqQuantizer<FirstPoints>(bad, FirstPoints{}), vqlib::invalid_argument);

    vqlib::MatrixXf nan_w = W;
    nan_w(3, 3) = std::numeric_limits<float>::quiet_NaN();
    vqlib::VqQuantizer<FirstPoints> vq(o, FirstPoints{});
    CHECK_THROWS_AS(solver.run(nan_w, prepared, vq), vqlib::numerical_error);
}
