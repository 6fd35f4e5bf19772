// vqlib example: PVQ with a gain quantizer written here, swapped into the stock recipe.
//
// vqlib::pvq() is a recipe over policy slots; pvq_policies(config) gives the configured ones and
// with_gain() replaces the gain design. SqrtUniformGain (below) spaces its levels uniformly in
// sqrt(a) between the amplitude law's 1st and 99.9th percentiles: any type with bits(),
// codebook(D, n) and name() is a GainQuantizer. Everything else is the recipe's: randomized
// Hadamard rotations, D = 16 groups with K = 27 pulses (a 48-bit index in a uint64_t), the Opus
// search refined in the conditional Hessian metric, the exact update.
//
// It prints the proxy loss next to the recipe's own Lloyd-Max gains at the same rate, and exits
// with 1 unless: the layer holds this file's gain levels; both variants store the same bits per
// weight; the proxy loss is the same in the rotated domain (with the rotated H); both beat
// round-to-nearest of the same codebook by 2x.
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/pvq.hpp>

#include <cmath>
#include <cstdint>
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

    auto config = vqlib::pvq_presets::make(/*dim=*/16, /*bits_per_weight=*/3.25, /*gain_bits=*/4);
    config.pvq.search = vqlib::ShapeSearch::metric_swap;
    config.pvq.gain_metric = vqlib::GainMetric::conditional;
    config.incoherence = vqlib::transform::IncoherenceOptions{11};

    // The swap: one slot of the stock recipe.
    const auto policies = vqlib::pvq_policies(config).with_gain(SqrtUniformGain{4});
    const auto mine = vqlib::pvq<std::uint64_t>(L.W, L.H, config, policies);

    const auto stock = vqlib::pvq<std::uint64_t>(L.W, L.H, config);
    auto rtn = config;
    rtn.update = vqlib::ErrorUpdateKind::none;
    const auto rounded = vqlib::pvq<std::uint64_t>(L.W, L.H, rtn, policies);

    std::printf("PVQ D=16 K=%d, %s gains:  %.4f bpw, proxy loss %.5g\n", config.pvq.pulses,
                SqrtUniformGain::name(), mine.bits_per_weight, mine.proxy_loss);
    std::printf("pvq() with Lloyd-Max gains:       %.4f bpw, proxy loss %.5g\n",
                stock.bits_per_weight, stock.proxy_loss);
    std::printf("round-to-nearest (no feedback):   %.4f bpw, proxy loss %.5g\n",
                rounded.bits_per_weight, rounded.proxy_loss);

    bool ok = true;
    auto check = [&](bool condition, const char* what) {
        if (!condition) {
            std::printf("FAIL: %s\n", what);
            ok = false;
        }
    };
    check(mine.layer.gains.levels == SqrtUniformGain{4}.codebook(16, 512).levels,
          "the layer does not hold the swapped gain levels");
    check(mine.bits_per_weight == stock.bits_per_weight, "the two gain designs store different rates");
    // The loss is invariant under the rotation: W' = R_out W R_in^T, H' = R_in H R_in^T.
    const vqlib::transform::IncoherenceTransform rotation(256, 512, *config.incoherence);
    vqlib::MatrixXf Wr = L.W, Qr = mine.Q;
    vqlib::MatrixXd Hr = L.H;
    rotation.transform_weights(Wr);
    rotation.transform_weights(Qr);
    rotation.transform_hessian(Hr);
    const double rotated = vqlib::proxy_loss(Wr, Qr, Hr);
    check(std::abs(rotated - mine.proxy_loss) <= 1e-4 * mine.proxy_loss,
          "the proxy loss differs in the rotated domain");
    check(mine.proxy_loss < 0.5 * rounded.proxy_loss && stock.proxy_loss < 0.5 * rounded.proxy_loss,
          "GPTQ feedback does not beat round-to-nearest by 2x");
    std::printf("%s\n", ok ? "all checks passed" : "checks FAILED");
    return ok ? 0 : 1;
}
