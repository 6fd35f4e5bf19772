#pragma once
// PVQ for LLMs (van der Ouderaa et al., arXiv 2410.16926) assembled from vqlib's components:
//   incoherence processing: randomized Hadamard rotations of W (both sides) and of H (transform/)
//   + Hessian preparation (damping, optional act-order, U = chol(H^-1))
//   + the lazy-batch BlockSolver with D columns per step and the exact D-column OBS update
//   + a PvqQuantizer: the Opus pulse search for the shape (lattice/), optionally refined in the
//     group's Hessian metric; the gain refit in that metric and quantized relative to the row
//     norm with levels designed for the Beta amplitude law (quantizers/gain_quantizer.hpp).
// The paper's body was not available; the parts docs/pvq.md reconstructs are alternatives
// in PvqConfig (search, gain metric, gain design, rotation, update).
//
//   auto config = vqlib::pvq_presets::best(3.25);      // D = 32, K = 50, 8-bit gains
//   auto result = vqlib::pvq(W, H, config);           // result.layer, result.Q, result.proxy_loss
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/lattice.hpp>
#include <vqlib/quantizers/gain_quantizer.hpp>
#include <vqlib/formats/pvq_layer.hpp>
#include <vqlib/quantizers/pvq_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>
#include <vqlib/solver/result.hpp>
#include <vqlib/transform.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vqlib {

/// The gain design, chosen at run time (each alternative is a GainQuantizer policy).
using PvqGainDesign = std::variant<BetaLloydMaxGain, BetaQuantileGain, LogUniformGain>;

struct PvqConfig {
    std::string name = "pvq";
    PvqOptions pvq{};
    PvqGainDesign gain = BetaLloydMaxGain{8};
    /// Randomized Hadamard rotation of both sides of W (and of H); nullopt quantizes W as given.
    std::optional<transform::IncoherenceOptions> incoherence = transform::IncoherenceOptions{};
    ErrorUpdateKind update = ErrorUpdateKind::exact;
    PvqIndexPacking packing = PvqIndexPacking::fixed_width;
    Index groups_per_chunk = 8;
    HessianOptions hessian{};
    SolverOptions solver{};
    /// How result.proxy_loss is computed: from the solver's error sum in the rotated basis
    /// (O(R C); the loss is rotation-invariant, so it differs from the product with the restored
    /// Q by float32 rounding only; the diagonal update falls back to the product), the float64
    /// product (R C^2), or not at all.
    LossEvaluation loss = LossEvaluation::solver;
};

/// PVQ's result: the common core (solver/result.hpp) with a PvqLayer.
template <lattice::PvqIndex Idx>
struct PvqResult : QuantizationResult<PvqLayer<Idx>> {};

/// What the gain slot of the recipe must provide: the levels for groups of `dim` in rows of
/// `row_length` (every GainQuantizer does).
template <class G>
concept PvqGainSlot = requires(const G& g, Index dim, Index row_length) {
    { g.codebook(dim, row_length) } -> std::same_as<GainCodebook>;
};

/// The gain design chosen at run time in the configuration (config.gain), as a slot.
struct ConfiguredGain {
    PvqGainDesign design;
    GainCodebook codebook(Index dim, Index row_length) const {
        return std::visit([&](const auto& g) { return g.codebook(dim, row_length); }, design);
    }
};

/// The policy slots of the PVQ recipe: the gain design (any PvqGainSlot, e.g. a GainQuantizer of
/// your own). pvq_policies(config) gives the configured one; with_gain swaps it:
///
///   auto r = vqlib::pvq(W, H, config, vqlib::pvq_policies(config).with_gain(MyGain{4}));
template <PvqGainSlot Gain = ConfiguredGain>
struct PvqPolicies {
    Gain gain;

    template <PvqGainSlot G>
    PvqPolicies<G> with_gain(G g) const {
        return {std::move(g)};
    }
};

inline PvqPolicies<> pvq_policies(const PvqConfig& config) { return {ConfiguredGain{config.gain}}; }

/// The gain levels a configuration uses for rows of length `row_length`.
inline GainCodebook pvq_gain_codebook(const PvqConfig& config, Index row_length) {
    return ConfiguredGain{config.gain}.codebook(config.pvq.dim, row_length);
}

/// The Hessian side of PVQ, prepared once for every linear that reads the same input (q/k/v,
/// gate/up): H in the basis PVQ quantizes in, R_in H R_in^T with the input rotation of
/// config.incoherence (it depends on the column count and the seed only, so linears with the
/// same input share it), or H as given; and its preparation with config.hessian.
struct PvqHessian {
    MatrixXd H;
    PreparedHessian prepared;
};

/// Rotates (config.incoherence) and prepares (config.hessian) the undamped H for pvq().
template <class DerivedH>
PvqHessian pvq_prepare_hessian(const Eigen::MatrixBase<DerivedH>& H, const PvqConfig& config) {
    check_square("H", H);
    check_finite("H", H);
    PvqHessian out{H.template cast<double>(), {}};
    if (config.incoherence && config.incoherence->rotate_inputs) {
        transform::IncoherenceOptions inputs_only = *config.incoherence;
        inputs_only.rotate_outputs = false;
        transform::IncoherenceTransform(1, H.cols(), inputs_only).transform_hessian(out.H);
    }
    out.prepared = prepare_hessian(out.H, config.hessian);
    return out;
}

/// PVQ on W (R x C) with the undamped Hessian H (C x C, float or double) and its side already
/// prepared (`hessian` = pvq_prepare_hessian(H, config)), with the given policies. Idx is the
/// shape index type; unsigned __int128 covers D = 32 up to K = 105 (4 bpw of shape); use
/// lattice::BigUint<L> for larger codebooks (the constructor of the codec says when it must).
/// The recipe: rotate W (incoherence); sweep the solver with the PVQ quantizer and the
/// configured error update; decode (rotating back).
template <lattice::PvqIndex Idx = unsigned __int128, class DerivedH, PvqGainSlot Gain>
PvqResult<Idx> pvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const PvqHessian& hessian,
                   const PvqConfig& config, const PvqPolicies<Gain>& policies) {
    const auto start = std::chrono::steady_clock::now();
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    check_finite("W", W);
    VQLIB_CHECK(hessian.prepared.columns() == W.cols() && hessian.H.cols() == W.cols(),
                shape_error, "the prepared PVQ Hessian has ", hessian.prepared.columns(),
                " columns: expected W.cols() = ", W.cols());
    VQLIB_CHECK(config.groups_per_chunk >= 1, invalid_argument, "groups_per_chunk = ",
                config.groups_per_chunk, ": expected >= 1");

    MatrixXf Wt = W;
    std::optional<transform::IncoherenceTransform> rotation;
    if (config.incoherence) {
        rotation.emplace(W.rows(), W.cols(), *config.incoherence);
        rotation->transform_weights(Wt);
    }
    const PreparedHessian& prepared = hessian.prepared;
    const bool needs_h = config.pvq.gain_metric == GainMetric::hessian;
    PvqQuantizer<Idx> quantizer(config.pvq, policies.gain.codebook(config.pvq.dim, W.cols()),
                                needs_h ? &hessian.H : nullptr);
    const SolveResult solved = solve(config.update, config.solver, Wt, prepared, quantizer);
    PvqResult<Idx> out;
    out.layer = std::move(quantizer.layer());
    out.layer.incoherence = config.incoherence;
    out.layer.packing = config.packing;
    out.layer.groups_per_chunk = config.groups_per_chunk;
    out.stats = solved.stats;
    out.update = config.update;
    out.record(prepared);
    out.Q = out.layer.dequantize();
    out.proxy_loss = detail::report_loss(
        config.loss, [&] { return proxy_loss_from_solve(Wt, solved.Q, prepared, solved.stats); }, W,
        out.Q, H);
    out.bits_per_weight = out.layer.bits().per_weight();
    out.seconds = detail::seconds_since(start) + prepared.seconds;
    return out;
}

/// PVQ on W with the undamped H, with the given policies: pvq_prepare_hessian(H, config), then
/// the recipe above.
template <lattice::PvqIndex Idx = unsigned __int128, class DerivedH, PvqGainSlot Gain>
PvqResult<Idx> pvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const PvqConfig& config,
                   const PvqPolicies<Gain>& policies) {
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    check_finite("W", W);
    return pvq<Idx>(W, H, pvq_prepare_hessian(H, config), config, policies);
}

/// PVQ with the configured gain design on an already prepared Hessian side.
template <lattice::PvqIndex Idx = unsigned __int128, class DerivedH>
PvqResult<Idx> pvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const PvqHessian& hessian,
                   const PvqConfig& config) {
    return pvq<Idx>(W, H, hessian, config, pvq_policies(config));
}

/// PVQ with the configured gain design.
template <lattice::PvqIndex Idx = unsigned __int128, class DerivedH>
PvqResult<Idx> pvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const PvqConfig& config) {
    return pvq<Idx>(W, H, config, pvq_policies(config));
}

/// Preset arguments, the same order and meaning in every method (gptvq_presets, pvq_presets,
/// vptq_presets): the vector dimension first (D, or VPTQ's vector length v), then the rate as
/// code bits per weight (what each vector stores, spread over its weights: the index, plus the
/// gain code for PVQ; codebooks, scales and other side information come on top), then the
/// method's own sizes. GPTVQ's paper() is the one exception: it takes the paper's table rate
/// (index and codebook bits per value), as the paper lists its configurations.
///
/// PVQ: (dim D, bits_per_weight = shape index at fixed width, ceil(log2 V(D, K)) bits, plus the
/// gain code, per group of D weights; gain_bits). The per-row norms and the rotation seed add a
/// little on top (16 / C bits per weight for fp16 norms).
namespace pvq_presets {

/// The largest K whose fixed-width shape index fits `index_bits` bits at dimension `dim`.
inline int pulses_for(Index dim, int index_bits) {
    const int k = lattice::max_pulses_fitting(static_cast<int>(dim), index_bits);
    VQLIB_CHECK(k >= 1, invalid_argument, "index_bits = ", index_bits,
                ": no PVQ codebook of dimension ", dim, " fits");
    return k;
}

/// D-dimensional groups at `bits_per_weight` (shape index + gain code per group): the shape gets
/// bits_per_weight * D - gain_bits bits, and K is the largest that fits.
inline PvqConfig make(Index dim, double bits_per_weight, int gain_bits = 8) {
    const double budget = bits_per_weight * static_cast<double>(dim) - gain_bits;
    VQLIB_CHECK(budget >= 1.0, invalid_argument, "bits_per_weight = ", bits_per_weight,
                ": with D = ", dim, " and ", gain_bits, " gain bits no bits are left for the shape");
    PvqConfig c;
    c.pvq.dim = dim;
    c.pvq.pulses = pulses_for(dim, static_cast<int>(std::floor(budget + 1e-9)));
    c.gain = BetaLloydMaxGain{gain_bits};
    c.name = detail::concat("pvq D=", dim, " K=", c.pvq.pulses, " gain", gain_bits);
    return c;
}

/// The paper's formulation as reconstructed in docs/pvq.md: Opus greedy search, gain refit
/// with the group's Hessian block H_BB, Lloyd-Max gains for the Beta law, Hadamard rotations,
/// exact GPTQ feedback. D = 32 with 8-bit gains: 2.25 (K = 22), 3.25 (K = 50), 4.25 (K = 105).
inline PvqConfig paper(Index dim, double bits_per_weight) {
    PvqConfig c = make(dim, bits_per_weight, 8);
    c.pvq.search = ShapeSearch::greedy;
    c.pvq.gain_metric = GainMetric::hessian;
    c.name = detail::concat("pvq-paper ", bits_per_weight, "b (D=", dim, " K=", c.pvq.pulses, ")");
    return c;
}
/// The paper's dimension, D = 32.
inline PvqConfig paper(double bits_per_weight = 3.25) { return paper(32, bits_per_weight); }

/// vqlib's best: as paper() but the shape refined by pulse moves in the conditional Hessian
/// metric and the gain refit in that metric (the exact loss increase under GPTQ feedback).
inline PvqConfig best(Index dim, double bits_per_weight) {
    PvqConfig c = make(dim, bits_per_weight, 8);
    c.pvq.search = ShapeSearch::metric_swap;
    c.pvq.gain_metric = GainMetric::conditional;
    c.name = detail::concat("pvq-best ", bits_per_weight, "b (D=", dim, " K=", c.pvq.pulses, ")");
    return c;
}
/// The paper's dimension, D = 32.
inline PvqConfig best(double bits_per_weight = 3.25) { return best(32, bits_per_weight); }

}  // namespace pvq_presets
}  // namespace vqlib
