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
#include <numeric>
#include <vector>

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

/// A fitter that depends on the set of points, not their order: the points sorted
/// lexicographically, k of them evenly spaced.
struct SortedPoints {
    vqlib::MatrixXf operator()(vqlib::ConstMatrixRef points, vqlib::ConstMatrixRef,
                               vqlib::Index k) const {
        std::vector<vqlib::Index> order(static_cast<std::size_t>(points.rows()));
        std::iota(order.begin(), order.end(), vqlib::Index{0});
        std::sort(order.begin(), order.end(), [&](vqlib::Index a, vqlib::Index b) {
            for (vqlib::Index j = 0; j < points.cols(); ++j)
                if (points(a, j) != points(b, j)) return points(a, j) < points(b, j);
            return false;
        });
        vqlib::MatrixXf c(k, points.cols());
        for (vqlib::Index i = 0; i < k; ++i)
            c.row(i) = points.row(order[static_cast<std::size_t>(i * points.rows() / k)]);
        return c;
    }
};

/// Checks that every vector of `r.Q` is its tile's codeword (times its normalization scale), that
/// the layer decodes to the solver's Q, and that the exact update's error sum is the damped loss.
void check_layer(const vqlib::VqLayer& layer, const vqlib::SolveResult& r, const vqlib::MatrixXf& W,
                 const vqlib::MatrixXd& H, double damp) {
    const vqlib::VqLayout& L = layer.layout;
    CHECK(layer.dequantize() == r.Q);
    int mismatches = 0;
    for (vqlib::Index row = 0; row < L.rows; ++row)
        for (vqlib::Index v = 0; v < L.vectors_per_row(); ++v) {
            const auto book = layer.codebook(L.codebook_of(row, v * L.dim / L.columns_per_group));
            for (vqlib::Index j = 0; j < L.dim; ++j) {
                const vqlib::Index col = v * L.dim + j;
                const float s = layer.scale_block > 0 ? layer.scales(row, col / layer.scale_block) : 1.0f;
                if (r.Q(row, col) != book(layer.indices(row, v), j) * s) ++mismatches;
            }
        }
    CHECK(mismatches == 0);
    vqlib::MatrixXd Hd = H;
    Hd.diagonal().array() += damp;
    CHECK_THAT(r.stats.error_sum, Catch::Matchers::WithinRel(vqlib::proxy_loss(W, r.Q, Hd), 1e-4));
}

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
        // Every quantized pair is a codeword of its tile's codebook, and the exact update keeps its
        // invariant whatever the lookup metric.
        check_layer(layer, r, W, H, prepared.damp);
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

TEST_CASE("quantizers/vq_quantizer: act-order visits whole vectors; the result is the pre-permuted layer's") {
    const vqlib::MatrixXf W = vq_random_weight(16, 64, 41);
    vqlib::MatrixXd H = random_hessian(64, 42);
    for (vqlib::Index j = 0; j < 64; ++j) H.row(j) *= 1.0 + (j * 37 % 11), H.col(j) *= 1.0 + (j * 37 % 11);
    vqlib::HessianOptions hopts;
    hopts.act_order = true;
    hopts.act_order_unit = 2;
    const auto prepared = vqlib::prepare_hessian(H, hopts);
    REQUIRE(prepared.permuted());
    // The same problem with its columns permuted beforehand, solved in the identity order.
    vqlib::MatrixXf Wp(16, 64);
    vqlib::MatrixXd Hp(64, 64);
    for (vqlib::Index a = 0; a < 64; ++a) {
        Wp.col(a) = W.col(prepared.perm[a]);
        for (vqlib::Index b = 0; b < 64; ++b) Hp(a, b) = H(prepared.perm[a], prepared.perm[b]);
    }
    const auto prepared_p = vqlib::prepare_hessian(Hp);
    REQUIRE(prepared_p.U == prepared.U);
    vqlib::VqOptions options;
    options.dim = 2;
    options.k = 8;
    options.columns_per_group = 64;  // one group, so both problems fit it from the same vectors
    options.weights_per_codebook = 256;
    for (auto metric : {vqlib::LookupMetric::inverse_u, vqlib::LookupMetric::exact}) {
        options.lookup = metric;
        vqlib::VqQuantizer<SortedPoints> vq(options, SortedPoints{});
        const auto r = vqlib::BlockSolver<vqlib::ExactUpdate>({.block_size = 16}).run(W, prepared, vq);
        vqlib::VqQuantizer<SortedPoints> vq_p(options, SortedPoints{});
        const auto rp = vqlib::BlockSolver<vqlib::ExactUpdate>({.block_size = 16}).run(Wp, prepared_p, vq_p);
        int differ = 0;
        for (vqlib::Index a = 0; a < 64; ++a) differ += (r.Q.col(prepared.perm[a]) != rp.Q.col(a));
        CHECK(differ == 0);
        for (vqlib::Index v = 0; v < 32; ++v)
            CHECK(vq.layer().indices.col(prepared.perm[2 * v] / 2) == vq_p.layer().indices.col(v));
        CHECK(vq.layer().codebooks == vq_p.layer().codebooks);
        check_layer(vq.layer(), r, W, H, prepared.damp);
    }
    // Several column groups, each fitted when the sweep first reaches one of its vectors.
    options.columns_per_group = 16;
    options.weights_per_codebook = 64;
    options.lookup = vqlib::LookupMetric::exact;
    vqlib::VqQuantizer<FirstPoints> vq(options, FirstPoints{});
    const auto r = vqlib::BlockSolver<vqlib::ExactUpdate>({.block_size = 8}).run(W, prepared, vq);
    check_layer(vq.layer(), r, W, H, prepared.damp);
    // A preparation that splits vectors is refused, naming the option.
    hopts.act_order_unit = 1;
    const auto split = vqlib::prepare_hessian(H, hopts);
    vqlib::VqQuantizer<FirstPoints> vq_split(options, FirstPoints{});
    CHECK_THROWS_WITH(vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, split, vq_split),
                      Catch::Contains("act_order_unit = 2"));
}

TEST_CASE("quantizers/vq_quantizer: blockwise normalization inside the solve") {
    vqlib::MatrixXf W = vq_random_weight(16, 64, 43);
    vqlib::Rng rng(44);
    for (vqlib::Index r = 0; r < 16; ++r) W.row(r) *= static_cast<float>(std::exp(1.5 * rng.normal()));
    const vqlib::MatrixXd H = random_hessian(64, 45);
    const auto prepared = vqlib::prepare_hessian(H);
    vqlib::VqOptions options;
    options.dim = 2;
    options.k = 8;
    options.columns_per_group = 64;
    options.weights_per_codebook = 256;
    options.lookup = vqlib::LookupMetric::exact;
    options.normalization = vqlib::BlockwiseNormalizationOptions{.block_size = 16, .bits = 4,
                                                                 .offset_storage = vqlib::ScaleStorage::fp16};
    vqlib::VqQuantizer<SortedPoints> vq(options, SortedPoints{});
    const auto r = vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, prepared, vq);
    const vqlib::VqLayer& layer = vq.layer();
    // One block and one group: the scales are those of the layer's own weights.
    REQUIRE(layer.scale_block == 16);
    const auto normalized = vqlib::BlockwiseNormalizer(*options.normalization).normalize(W);
    CHECK(layer.scales == normalized.scales.scales);
    check_layer(layer, r, W, H, prepared.damp);
    // 3-bit indices, 16-bit entries, 4-bit scale codes per row and 16 columns, an fp16 offset and
    // step per 16-column block.
    CHECK(layer.bits().per_weight() ==
          (16.0 * 32 * 3 + 4 * 8 * 2 * 16 + 16 * 4 * 4 + 2 * 16 * 4) / (16 * 64));
    // The codebooks live in the normalized domain: on rows of very different magnitude the loss is
    // below the unnormalized quantizer's with the same fitter (0.72x here).
    auto plain_options = options;
    plain_options.normalization.reset();
    vqlib::VqQuantizer<SortedPoints> plain(plain_options, SortedPoints{});
    const auto rplain = vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, prepared, plain);
    CHECK(r.stats.error_sum < 0.8 * rplain.stats.error_sum);

    auto bad = options;
    bad.normalization->block_size = 24;  // does not divide the 64-column group
    vqlib::VqQuantizer<SortedPoints> q1(bad, SortedPoints{});
    CHECK_THROWS_WITH(vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, prepared, q1),
                      Catch::Contains("normalization.block_size = 24"));
    bad = options;
    bad.normalization->offset_storage = vqlib::ScaleStorage::fp32;
    vqlib::VqQuantizer<SortedPoints> q2(bad, SortedPoints{});
    CHECK_THROWS_WITH(vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, prepared, q2),
                      Catch::Contains("offset_storage = fp32"));
    bad = options;
    bad.normalization->bits = 0;
    vqlib::VqQuantizer<SortedPoints> q3(bad, SortedPoints{});
    CHECK_THROWS_WITH(vqlib::BlockSolver<vqlib::ExactUpdate>().run(W, prepared, q3),
                      Catch::Contains("bits"));
}
