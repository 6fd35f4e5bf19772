// vqlib example: a PVQ variant assembled in user code from the components of the PVQ recipe,
// with a gain quantizer written here.
//
//   rotation      transform::IncoherenceTransform: randomized Hadamard on both sides of W and H
//   shape         PvqQuantizer with D = 16, K = 27 (a 48-bit index in a uint64_t), the Opus search
//                 refined in the conditional Hessian metric
//   gain          SqrtUniformGain (below): levels uniform in sqrt(a) between the law's 1st and
//                 99.9th percentiles -- any type with bits(), codebook(D, n) and name() is a
//                 GainQuantizer
//   solver        BlockSolver<ExactUpdate>
//
// It prints the proxy loss next to vqlib::pvq with the Lloyd-Max gains at the same rate, and
// exits with 1 unless:
//   - the layer (shape indices, gain codes, row norms, rotation seed) dequantizes to the
//     solver's output rotated back;
//   - the proxy loss in the rotated domain (with the rotated H) equals the original's;
//   - both PVQ variants beat round-to-nearest of the same codebook by a wide margin.
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/pvq.hpp>

#include <cmath>
#include <cstdio>

namespace {

/// Levels uniform in sqrt(a): denser near small amplitudes than a linear grid, sparser than a
/// logarithmic one.
struct SqrtUniformGain {
    int gain_bits = 4;

    static const char* name() { return "sqrt-uniform"; }
    int bits() const { return gain_bits; }
    vqlib::GainCodebook codebook(vqlib::Index dim, vqlib::Index row_length) const {
        const vqlib::GroupAmplitudeLaw law(dim, row_length);
        const double lo = std::sqrt(law.quantile(0.01)), hi = std::sqrt(law.quantile(0.999));
        vqlib::GainCodebook cb;
        cb.bits = gain_bits;
        const int L = 1 << gain_bits;
        for (int i = 0; i < L; ++i) {
            const double r = lo + (hi - lo) * i / (L - 1);
            cb.levels.push_back(static_cast<float>(r * r));
        }
        return cb;
    }
};
static_assert(vqlib::GainQuantizer<SqrtUniformGain>);

struct Layer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

Layer make_layer(vqlib::Index rows, vqlib::Index cols) {
    vqlib::Rng rng(7);
    Layer L{vqlib::MatrixXf(rows, cols), vqlib::MatrixXd()};
    for (vqlib::Index i = 0; i < rows; ++i)
        for (vqlib::Index j = 0; j < cols; ++j)
            L.W(i, j) = static_cast<float>(0.02 * rng.student_t(4) * (i % 31 == 0 ? 5.0 : 1.0));
    vqlib::MatrixXf X(cols, 4 * cols);
    for (vqlib::Index t = 0; t < X.cols(); ++t)
        for (vqlib::Index j = 0; j < cols; ++j)
            X(j, t) = static_cast<float>(rng.normal() * (j % 53 == 3 ? 30.0 : 1.0));
    vqlib::HessianAccumulator acc(cols);
    acc.add(X);
    L.H = acc.finalize();
    return L;
}

}  // namespace

int main() {
    const Layer L = make_layer(256, 512);
    bool ok = true;

    // 1. Rotate W and H.
    const vqlib::transform::IncoherenceTransform rotation(256, 512, {/*seed=*/11});
    vqlib::MatrixXf Wr = L.W;
    vqlib::MatrixXd Hr = L.H;
    rotation.transform_weights(Wr);
    rotation.transform_hessian(Hr);

    // 2. The quantizer policy with the gain quantizer above, and the solver.
    vqlib::PvqOptions options;
    options.dim = 16;
    options.pulses = 27;
    options.search = vqlib::ShapeSearch::metric_swap;
    options.gain_metric = vqlib::GainMetric::conditional;
    const auto prepared = vqlib::prepare_hessian(Hr, vqlib::HessianOptions{});
    vqlib::PvqQuantizer<std::uint64_t> quantizer(options, SqrtUniformGain{4}.codebook(16, 512));
    const auto solved = vqlib::BlockSolver<vqlib::ExactUpdate>().run(Wr, prepared, quantizer);

    vqlib::PvqLayer<std::uint64_t> layer = quantizer.layer();
    layer.incoherence = rotation.options();
    vqlib::MatrixXf Q = solved.Q;
    rotation.restore_weights(Q);
    const double loss = vqlib::proxy_loss(L.W, Q, L.H);
    const double loss_rotated = vqlib::proxy_loss(Wr, solved.Q, Hr);

    // 3. The recipe at the same rate (D = 16, 48-bit index + 4-bit gain), Lloyd-Max gains.
    auto config = vqlib::pvq_presets::make(16, 3.25, 4);
    config.incoherence = vqlib::transform::IncoherenceOptions{11};
    const auto recipe = vqlib::pvq<std::uint64_t>(L.W, L.H, config);
    auto rtn = config;
    rtn.update = vqlib::ErrorUpdateKind::none;
    const auto rounded = vqlib::pvq<std::uint64_t>(L.W, L.H, rtn);

    std::printf("PVQ D=16 K=%d, %s gains: %.4f bpw, proxy loss %.5g\n", options.pulses,
                SqrtUniformGain::name(), layer.bits().per_weight(), loss);
    std::printf("pvq() with Lloyd-Max gains:       %.4f bpw, proxy loss %.5g\n",
                recipe.bits_per_weight, recipe.proxy_loss);
    std::printf("round-to-nearest (no feedback):   %.4f bpw, proxy loss %.5g\n",
                rounded.bits_per_weight, rounded.proxy_loss);

    const vqlib::MatrixXf Qlayer = layer.dequantize();
    if (!Qlayer.isApprox(Q, 1e-5f)) {
        std::printf("FAIL: the layer does not dequantize to the solver's output\n");
        ok = false;
    }
    if (std::abs(loss - loss_rotated) > 1e-4 * loss) {
        std::printf("FAIL: proxy loss %.9g in the original domain, %.9g rotated\n", loss, loss_rotated);
        ok = false;
    }
    if (!(loss < 0.5 * rounded.proxy_loss && recipe.proxy_loss < 0.5 * rounded.proxy_loss)) {
        std::printf("FAIL: GPTQ feedback should beat round-to-nearest by 2x\n");
        ok = false;
    }
    std::printf("%s\n", ok ? "all checks passed" : "checks FAILED");
    return ok ? 0 : 1;
}
