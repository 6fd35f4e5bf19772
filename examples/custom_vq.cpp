// vqlib example: GPTVQ with a codebook fitter written here, swapped into the stock recipe.
//
// vqlib::gptvq() is a recipe over policy slots (the codebook fitter, the codebook storage, the
// assignment backend of the lookups); gptvq_policies(config) gives the stock ones and
// with_fitter() replaces one. Here the fitter is k-means++ seeding with empty clusters split
// from the heaviest, on 3-D vectors with K = 256 (an 8-bit index per 3 weights) and INT8
// codebooks; everything else (the exact joint lookup metric, the exact 3-column update, the
// least-squares codebook update) is the `best` preset's.
//
// It prints both fitters' results and exits with 1 unless: the swapped fitter fitted every
// codebook tile (and only it did); the codebooks stay on their INT8 grid after the codebook
// update; the reported proxy loss is the loss of the returned Q; the codebook update did not
// raise the loss; 3-D VQ at ~2.7 bits beats GPTQ INT2 g128 at ~2.25 bits.
#include <vqlib/core.hpp>
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>

namespace {

using vqlib::Index;

/// The fitter: K centroids for the N x D points of one tile with the per-coordinate weights the
/// quantizer passes (N x D, or empty). Tiles are fitted concurrently: no mutable state but the
/// (atomic) call counter this example checks.
struct KMeansPlusPlusFitter {
    int iterations = 50;
    std::uint64_t seed = 7;
    std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);

    vqlib::MatrixXf operator()(vqlib::ConstMatrixRef points, vqlib::ConstMatrixRef weights,
                               Index k) const {
        ++*calls;
        vqlib::KMeansParameters p;
        p.k = k;
        p.seeding = vqlib::KMeansPlusPlusSeeding{};
        p.max_iterations = iterations;
        p.empty_clusters = vqlib::EmptyClusterPolicy::split_heaviest;
        p.seed = seed;
        const vqlib::Weights w =
            weights.size() == 0 ? vqlib::Weights{} : vqlib::Weights::elementwise(weights);
        return vqlib::kmeans(points, w, p).centroids;
    }
};
static_assert(vqlib::CodebookFitter<KMeansPlusPlusFitter>);

/// A deterministic LLM-like layer: heavy-tailed weights with per-row scales; inputs with
/// correlated channels of unequal scale.
struct Layer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

Layer make_layer(Index rows, Index cols, Index tokens, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Layer layer{vqlib::MatrixXf(rows, cols), vqlib::MatrixXd()};
    for (Index i = 0; i < rows; ++i) {
        const double row_scale = 0.02 * std::exp(0.3 * rng.normal());
        for (Index j = 0; j < cols; ++j)
            layer.W(i, j) = static_cast<float>(row_scale * rng.student_t(4));
    }
    constexpr Index factors = 16;
    vqlib::MatrixXf mixing(cols, factors);
    for (Index f = 0; f < factors; ++f)
        for (Index j = 0; j < cols; ++j) mixing(j, f) = static_cast<float>(rng.normal());
    vqlib::VectorXf channel_scale(cols);
    for (Index j = 0; j < cols; ++j)
        channel_scale[j] = static_cast<float>(std::exp(0.5 * rng.normal()));
    vqlib::HessianAccumulator accumulator(cols);
    vqlib::MatrixXf latent(factors, tokens);
    for (Index t = 0; t < tokens; ++t)
        for (Index f = 0; f < factors; ++f) latent(f, t) = static_cast<float>(rng.normal());
    vqlib::MatrixXf X = 0.4f * mixing * latent;
    for (Index t = 0; t < tokens; ++t)
        for (Index j = 0; j < cols; ++j)
            X(j, t) = (X(j, t) + static_cast<float>(rng.normal())) * channel_scale[j];
    accumulator.add(X);
    layer.H = accumulator.finalize();
    return layer;
}

}  // namespace

int main() {
    constexpr Index rows = 256, cols = 384;
    const Layer layer = make_layer(rows, cols, 2048, 11);

    // 3-D vectors, K = 256, one codebook per 128 x 192 tile, INT8 entries: the best preset's
    // choices otherwise.
    vqlib::GptvqConfig config = vqlib::gptvq_presets::best(/*dim=*/3, /*bits_per_dim=*/2,
                                                           /*weights_per_codebook=*/128 * 192);
    config.vq.k = 256;
    config.vq.columns_per_group = 192;
    config.solver.block_size = 96;  // a multiple of the step width 3; groups start on blocks

    // The swap: one slot of the stock recipe.
    const KMeansPlusPlusFitter fitter;
    const auto policies = vqlib::gptvq_policies(config).with_fitter(fitter);
    const vqlib::GptvqResult mine = vqlib::gptvq(layer.W, layer.H, config, policies);

    const vqlib::GptvqResult stock = vqlib::gptvq(layer.W, layer.H, config);
    vqlib::GptqConfig<vqlib::IntGrid> int2{vqlib::IntGrid(2, false, {}, vqlib::ScaleStorage::fp16)};
    int2.groups.size = 128;
    const auto scalar = vqlib::gptq(layer.W, layer.H, int2);

    std::printf("layer %lldx%lld, 3-D VQ with K = 256, INT8 codebooks per 128 x 192 tile\n\n",
                static_cast<long long>(rows), static_cast<long long>(cols));
    std::printf("%-34s %8s %13s %13s\n", "", "bits/w", "proxy loss", "before update");
    std::printf("%-34s %8.4f %13.6g %13.6g\n", "k-means++ fitter (this file)", mine.bits_per_weight,
                mine.proxy_loss, mine.codebook_update.loss_before);
    std::printf("%-34s %8.4f %13.6g %13.6g\n", "stock fitter (Mahalanobis seeding)",
                stock.bits_per_weight, stock.proxy_loss, stock.codebook_update.loss_before);
    std::printf("%-34s %8.4f %13.6g\n", "GPTQ INT2 asym g128", scalar.bits_per_weight,
                scalar.proxy_loss);

    bool ok = true;
    auto check = [&](bool condition, const char* what) {
        if (!condition) {
            std::printf("FAIL: %s\n", what);
            ok = false;
        }
    };
    const Index tiles = mine.layer.layout.codebook_count();
    check(*fitter.calls == tiles, "the swapped fitter did not fit every codebook tile");
    vqlib::VqLayer again = mine.layer;
    vqlib::requantize_codebooks(again, policies.storage);
    check(again.codebooks == mine.layer.codebooks, "the codebooks are not on their INT8 grid");
    const double recomputed = vqlib::proxy_loss(layer.W, mine.Q, layer.H);
    // (The least-squares update reports float32 products summed in float64: within 1e-6.)
    check(std::abs(recomputed - mine.proxy_loss) <= 1e-6 * recomputed,
          "the reported proxy loss is not the loss of the returned Q");
    check(mine.codebook_update.loss_after <= mine.codebook_update.loss_before,
          "the codebook update raised the loss");
    check(mine.proxy_loss < scalar.proxy_loss, "3-D VQ did not beat GPTQ INT2 g128");
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
