// A custom VQ variant assembled from vqlib's policies in user code: 3-D vectors (3 consecutive
// columns of a row), codebooks fitted by k-means++ with split-heaviest empty clusters, INT8
// codebooks, the exact 3-column OBS update and metric, then the least-squares codebook update.
// Compared with the same variant under GPTVQ's diagonal update and with GPTQ INT3 at a similar
// rate. Exits non-zero if a property the library guarantees does not hold.
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>

#include <cstdio>

namespace {

struct Layer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

Layer make_layer(vqlib::Index rows, vqlib::Index cols, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Layer l{vqlib::MatrixXf(rows, cols), {}};
    for (vqlib::Index j = 0; j < cols; ++j)
        for (vqlib::Index i = 0; i < rows; ++i) l.W(i, j) = static_cast<float>(0.02 * rng.student_t(4));
    vqlib::HessianAccumulator acc(cols);
    vqlib::MatrixXf X(cols, 1024);
    for (vqlib::Index t = 0; t < X.cols(); ++t) {
        const double shared = rng.normal();
        for (vqlib::Index i = 0; i < cols; ++i)
            X(i, t) = static_cast<float>((0.5 * shared + rng.normal()) * (i % 61 == 3 ? 20.0 : 1.0));
    }
    acc.add(X);
    l.H = acc.finalize();
    return l;
}

/// The codebook fitter: k-means++ seeding, 50 EM iterations, empty clusters split from the
/// heaviest, weights as the VQ policy passes them (1/U_jj per coordinate here).
vqlib::KMeansCodebookFitter fitter() {
    vqlib::KMeansParameters p;
    p.seeding = vqlib::KMeansPlusPlusSeeding{};
    p.max_iterations = 50;
    p.empty_clusters = vqlib::EmptyClusterPolicy::split_heaviest;
    p.seed = 7;
    return vqlib::KMeansCodebookFitter{p};
}

struct Outcome {
    vqlib::VqLayer layer;
    vqlib::MatrixXf Q;
    double error_sum;
    double loss;
};

template <vqlib::ErrorUpdatePolicy Update>
Outcome run(const Layer& l, const vqlib::PreparedHessian& prepared) {
    vqlib::VqOptions options;
    options.dim = 3;
    options.k = 256;                      // an 8-bit index per 3 weights
    options.columns_per_group = 192;      // a multiple of 3
    options.weights_per_codebook = 192 * 128;  // one codebook per 128 x 192 tile
    options.lookup = vqlib::LookupMetric::exact;
    options.init_weighting = vqlib::InitWeighting::inverse_u;
    vqlib::IntegerCodebookStorage storage{};
    vqlib::VqQuantizer<vqlib::KMeansCodebookFitter, vqlib::IntegerCodebookStorage> quantizer(
        options, fitter(), storage);
    vqlib::SolverOptions solver;
    solver.block_size = 96;  // a multiple of the step width 3
    const auto solved = vqlib::BlockSolver<Update>(solver).run(l.W, prepared, quantizer);
    return {quantizer.layer(), solved.Q, solved.stats.error_sum,
            vqlib::proxy_loss(l.W, solved.Q, l.H)};
}

}  // namespace

int main() {
    const Layer l = make_layer(128, 384, 2026);
    const auto prepared = vqlib::prepare_hessian(l.H);
    bool ok = true;
    auto expect = [&](bool condition, const char* what) {
        if (!condition) {
            std::fprintf(stderr, "FAILED: %s\n", what);
            ok = false;
        }
    };

    Outcome exact = run<vqlib::ExactUpdate>(l, prepared);
    const Outcome diagonal = run<vqlib::DiagonalUpdate>(l, prepared);
    expect(exact.layer.dequantize() == exact.Q, "dequantize() reproduces the solver's Q");
    vqlib::MatrixXd damped = l.H;
    damped.diagonal().array() += prepared.damp;
    const double damped_loss = vqlib::proxy_loss(l.W, exact.Q, damped);
    expect(std::abs(exact.error_sum - damped_loss) <= 1e-3 * damped_loss,
           "the exact update's error sum equals the damped proxy loss");

    // Codebook update: least squares, requantized to INT8 per codebook.
    vqlib::CodebookUpdateOptions update;
    update.method = vqlib::CodebookUpdateMethod::least_squares;
    const vqlib::IntegerCodebookStorage storage{};
    const auto stats = vqlib::update_codebooks(exact.layer, l.W, l.H, update, [&](vqlib::VqLayer& layer) {
        const vqlib::Index per_group = layer.layout.bands() * layer.layout.k;
        for (vqlib::Index cg = 0; cg < layer.layout.column_groups(); ++cg)
            storage.quantize(layer.codebooks.middleRows(cg * per_group, per_group), layer.layout.k);
    });
    expect(stats.loss_after <= stats.loss_before, "the codebook update does not raise the loss");

    vqlib::GptqConfig<vqlib::IntGrid> int3{vqlib::IntGrid(3, false, {}, vqlib::ScaleStorage::fp16)};
    int3.groups.size = 128;
    const auto gptq = vqlib::gptq(l.W, l.H, int3);

    std::printf("%-44s %8s %14s\n", "variant", "bits/w", "proxy loss");
    std::printf("%-44s %8.4f %14.6g\n", "3-D VQ, k-means++, diagonal update",
                diagonal.layer.bits_per_weight(), diagonal.loss);
    std::printf("%-44s %8.4f %14.6g\n", "3-D VQ, k-means++, exact update",
                exact.layer.bits_per_weight(), exact.loss);
    std::printf("%-44s %8.4f %14.6g\n", "  + least-squares codebook update",
                exact.layer.bits_per_weight(), stats.loss_after);
    std::printf("%-44s %8.4f %14.6g\n", "GPTQ INT3 asym g128", gptq.layer.bits_per_weight(),
                gptq.proxy_loss);
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
