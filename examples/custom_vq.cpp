// vqlib example: a GPTVQ variant that none of the presets offers, assembled in user code from the
// policies the GPTVQ recipe is made of:
//
//   vectors       3 consecutive columns of a row (D = 3), K = 256 centroids: an 8-bit index per
//                 3 weights; one codebook per 128-row x 192-column tile (192 = 64 vectors of 3)
//   fitting       a CodebookFitter written here: vqlib::kmeans with k-means++ seeding, empty
//                 clusters split from the heaviest, weights 1/U_jj per coordinate
//   storage       IntegerCodebookStorage: INT8 entries, one fp16 scale per codebook
//   lookup        the exact joint metric (U_PP^T U_PP)^-1 of the 3 columns
//   error update  ExactUpdate: E = (W_P - Q_P) U_PP^-1 (also run with GPTVQ's DiagonalUpdate)
//   codebooks     vqlib::update_codebooks with the exact least-squares solve, requantized to INT8
//
// The layer is deterministic and LLM-like. For scale, GPTQ with an INT3 grid is run at a slightly
// higher bit rate. The program exits with 1 if any of these properties fails:
//   - the layer (indices + codebooks) dequantizes to exactly the solver's Q;
//   - with ExactUpdate, stats.error_sum equals the damped proxy loss tr((W-Q) H_damp (W-Q)^T);
//   - the least-squares codebook update does not raise the loss, with float codebooks (an exact
//     minimization) and after requantization to INT8;
//   - the codebooks stay on their INT8 grid: requantizing them changes nothing.
#include <vqlib/cluster.hpp>                          // kmeans, seeding, Weights
#include <vqlib/codebook.hpp>                         // IntegerCodebookStorage
#include <vqlib/core.hpp>
#include <vqlib/gptq.hpp>                             // only for the INT3 comparison line
#include <vqlib/hessian.hpp>
#include <vqlib/quantizers/vq_codebook_update.hpp>    // update_codebooks
#include <vqlib/quantizers/vq_quantizer.hpp>          // VqQuantizer, VqOptions
#include <vqlib/solver/block_solver.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace {

using vqlib::Index;

/// The CodebookFitter: K centroids for the N x D points of one tile, with the per-coordinate
/// weights the quantizer passes (N x D, or empty when InitWeighting::none). The quantizer calls it
/// for several tiles at once, so it keeps no mutable state; kmeans() run inside the quantizer's
/// parallel loop stays on the calling thread.
struct KMeansPlusPlusFitter {
    int iterations = 50;
    std::uint64_t seed = 7;

    vqlib::MatrixXf operator()(vqlib::ConstMatrixRef points, vqlib::ConstMatrixRef weights,
                               Index k) const {
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

/// INT8 codebook entries, one scale per codebook stored as fp16.
const vqlib::IntegerCodebookStorage int8_codebooks{
    {.bits = 8, .scope = vqlib::CodebookScaleScope::per_codebook,
     .scale_storage = vqlib::ScaleStorage::fp16}};

using Quantizer = vqlib::VqQuantizer<KMeansPlusPlusFitter, vqlib::IntegerCodebookStorage>;

vqlib::VqOptions vq_options() {
    vqlib::VqOptions o;
    o.dim = 3;
    o.k = 256;
    o.columns_per_group = 192;              // must be a multiple of dim
    o.weights_per_codebook = 128 * 192;     // tiles of 128 rows x 192 columns
    o.lookup = vqlib::LookupMetric::exact;
    o.init_weighting = vqlib::InitWeighting::inverse_u;
    return o;
}

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

struct Outcome {
    double bits_per_weight = 0.0;
    double error_sum = 0.0;    // what the solver fed back, squared
    double damped_loss = 0.0;  // tr((W-Q) H_damp (W-Q)^T)
    double loss = 0.0;         // tr((W-Q) H (W-Q)^T) after the sweep
    double loss_updated = 0.0; // the same after the INT8 least-squares codebook update
};

template <vqlib::ErrorUpdatePolicy Update>
Outcome solve(const Layer& layer, const vqlib::PreparedHessian& prepared,
              const vqlib::MatrixXd& H_damp, bool& ok) {
    auto fail = [&](const char* what) {
        std::printf("FAIL (%s): %s\n", Update::name(), what);
        ok = false;
    };
    Quantizer quantizer(vq_options(), KMeansPlusPlusFitter{}, int8_codebooks);
    vqlib::SolverOptions solver;
    solver.block_size = 96;  // a multiple of the step width 3; 192-column groups start on blocks
    const vqlib::SolveResult result =
        vqlib::BlockSolver<Update>(solver).run(layer.W, prepared, quantizer);
    vqlib::VqLayer vq = quantizer.layer();
    if (vq.dequantize() != result.Q) fail("indices and codebooks do not rebuild the solver's Q");

    Outcome out;
    out.bits_per_weight = vq.bits_per_weight();
    out.error_sum = result.stats.error_sum;
    out.damped_loss = vqlib::proxy_loss(layer.W, result.Q, H_damp);
    out.loss = vqlib::proxy_loss(layer.W, result.Q, layer.H);

    vqlib::CodebookUpdateOptions update;
    update.method = vqlib::CodebookUpdateMethod::least_squares;

    // With float codebooks the update is an exact minimization over the codebook entries:
    // returned even if it were worse (keep_if_worse), it must not raise the loss.
    {
        vqlib::VqLayer unquantized = vq;
        vqlib::CodebookUpdateOptions exact = update;
        exact.keep_if_worse = true;
        const auto stats =
            vqlib::update_codebooks(unquantized, layer.W, layer.H, exact, [](vqlib::VqLayer&) {});
        if (!(stats.loss_after <= stats.loss_before))
            fail("the least-squares update raised the loss of float codebooks");
    }
    // The update as deployed: requantized to INT8 (the better of the update and the old
    // codebooks is kept; `kept` says the update won).
    const auto stats = vqlib::update_codebooks(
        vq, layer.W, layer.H, update, [](vqlib::VqLayer& l) {
            vqlib::requantize_codebooks(l, int8_codebooks);
        });
    out.loss_updated = stats.loss_after;
    if (!stats.kept || !(stats.loss_after < stats.loss_before))
        fail("the INT8 least-squares update did not lower the loss");
    if (std::abs(vqlib::proxy_loss(layer.W, vq.dequantize(), layer.H) - stats.loss_after) >
        1e-9 * stats.loss_after)
        fail("the reported loss is not the loss of the updated layer");
    vqlib::VqLayer again = vq;
    vqlib::requantize_codebooks(again, int8_codebooks);
    if (again.codebooks != vq.codebooks) fail("the updated codebooks are not on their INT8 grid");

    std::printf("%-30s %7.4f %15.6g %13.6g %13.6g %13.6g\n", Update::name(), out.bits_per_weight,
                out.error_sum, out.damped_loss, out.loss, out.loss_updated);
    return out;
}

}  // namespace

int main() {
    constexpr Index rows = 256, cols = 384, tokens = 2048;
    const Layer layer = make_layer(rows, cols, tokens, 11);
    const vqlib::PreparedHessian prepared = vqlib::prepare_hessian(layer.H);
    vqlib::MatrixXd H_damp = layer.H;
    H_damp.diagonal().array() += prepared.damp;

    const vqlib::VqOptions o = vq_options();
    std::printf("layer %lldx%lld, %lld tokens; 3-D VQ: K = %lld, codebook tiles of %lld x %lld, "
                "INT8 codebooks (fp16 scale each), k-means++ init\n\n",
                static_cast<long long>(rows), static_cast<long long>(cols),
                static_cast<long long>(tokens), static_cast<long long>(o.k),
                static_cast<long long>(o.weights_per_codebook / o.columns_per_group),
                static_cast<long long>(o.columns_per_group));
    std::printf("%-30s %7s %15s %13s %13s %13s\n", "error update", "bits/w", "stats.error_sum",
                "damped loss", "proxy loss", "+ cb update");

    bool ok = true;
    const Outcome exact = solve<vqlib::ExactUpdate>(layer, prepared, H_damp, ok);
    const Outcome diagonal = solve<vqlib::DiagonalUpdate>(layer, prepared, H_damp, ok);

    vqlib::GptqConfig<vqlib::IntGrid> int3{vqlib::IntGrid(3, false, {}, vqlib::ScaleStorage::fp16)};
    int3.groups.size = 128;
    const auto scalar = vqlib::gptq(layer.W, layer.H, int3);
    std::printf("%-30s %7.4f %15s %13s %13.6g\n", "(GPTQ, INT3 asym g128)",
                scalar.layer.bits_per_weight(), "", "", scalar.proxy_loss);

    const double mismatch = std::abs(exact.error_sum - exact.damped_loss) / exact.damped_loss;
    std::printf("\nexact update: |error_sum - damped loss| / damped loss = %.2e\n", mismatch);
    std::printf("diagonal update: error_sum / damped loss = %.3f (its own proxy, not the loss)\n",
                diagonal.error_sum / diagonal.damped_loss);
    if (!(mismatch <= 1e-3)) {
        std::printf("FAIL: the exact update's error_sum is not the damped proxy loss\n");
        ok = false;
    }
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
