#pragma once
// GPTVQ (van Baalen et al., arXiv 2402.15319) assembled from vqlib's components:
//   Hessian preparation (dead columns, damping, U = chol(H^-1); optional act-order over whole
//   D-column vectors, the codebook tiles staying the original column groups)
//   + the lazy-batch BlockSolver with D columns per step
//   + a VqQuantizer: per column group and band of rows, codebooks fitted by weighted k-means/EM
//     (cluster/), stored as INT8 (codebook/), looked up under a Hessian-derived metric, optionally
//     in a blockwise-normalized domain (the paper's scaled configurations)
//   + the diagonal (reference) or exact D-column OBS update
//   + the codebook update after the sweep (Adam as the reference, or the exact least squares).
//
//   auto config = vqlib::gptvq_presets::best(/*dim=*/2, /*bits_per_dim=*/2, /*weights=*/2048);
//   auto result = vqlib::gptvq(W, H, config);   // result.layer, result.Q, result.proxy_loss
#include <vqlib/cluster.hpp>
#include <vqlib/codebook.hpp>
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/quantizers/vq_codebook_update.hpp>
#include <vqlib/formats/vq_layer.hpp>
#include <vqlib/quantizers/vq_quantizer.hpp>
#include <vqlib/quantizers/vq_svd_codebooks.hpp>
#include <vqlib/solver/block_solver.hpp>
#include <vqlib/solver/result.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>

namespace vqlib {

/// Codebook fitting by weighted k-means/EM (cluster/kmeans.hpp): the CodebookFitter of GPTVQ.
struct KMeansCodebookFitter {
    KMeansParameters parameters{};

    MatrixXf operator()(ConstMatrixRef points, ConstMatrixRef weights, Index k) const {
        KMeansParameters p = parameters;
        p.k = k;
        if (weights.size() == 0) return kmeans(points, Weights{}, p).centroids;
        return kmeans(points, Weights::elementwise(weights), p).centroids;
    }
};

/// Codebook storage chosen at run time: signed integers (INT8 by default) or fp16 floats.
struct GptvqCodebookStorage {
    std::optional<IntegerCodebookOptions> integer = IntegerCodebookOptions{};

    void quantize(MatrixRef codebooks, Index k) const {
        if (integer) {
            IntegerCodebookStorage{*integer}.quantize(codebooks, k);
        } else {
            HalfCodebooks{}.quantize(codebooks, k);
        }
    }
    int entry_bits() const { return integer ? integer->bits : 16; }
    int scale_bits() const { return integer ? IntegerCodebookStorage{*integer}.scale_bits() : 0; }
    Index scales_for(Index count) const {
        return integer ? IntegerCodebookStorage{*integer}.scales_for(count) : 0;
    }
};

struct GptvqConfig {
    std::string name = "gptvq";
    VqOptions vq{};
    KMeansParameters kmeans{};
    GptvqCodebookStorage codebooks{};
    ErrorUpdateKind update = ErrorUpdateKind::diagonal;
    CodebookUpdateOptions codebook_update{};
    /// SVD codebook compression (1-D only, App. G): after the sweep, the codebooks are factored
    /// (quantizers/vq_svd_codebooks.hpp) and the codebook update and storage work on U''.
    std::optional<SvdCodebookOptions> svd{};
    HessianOptions hessian{};
    SolverOptions solver{};
};

/// GPTVQ's result: the common core (solver/result.hpp) with a VqLayer, plus the codebook update.
struct GptvqResult : QuantizationResult<VqLayer> {
    CodebookUpdateStats codebook_update;
};

/// The policy slots of the GPTVQ recipe: how codebooks are fitted (a CodebookFitter), how they
/// are stored (a CodebookStorage) and which nearest-centroid backend looks the vectors up (an
/// AssignmentBackend). gptvq_policies(config) gives the stock ones built from the configuration;
/// with_fitter / with_storage / with_assignment swap one slot and keep the others:
///
///   auto r = vqlib::gptvq(W, H, config, vqlib::gptvq_policies(config).with_fitter(MyFitter{}));
template <CodebookFitter Fitter = KMeansCodebookFitter, CodebookStorage Storage = GptvqCodebookStorage,
          AssignmentBackend Assign = CpuAssignment>
struct GptvqPolicies {
    Fitter fitter;
    Storage storage;
    Assign assign{};

    template <CodebookFitter F>
    GptvqPolicies<F, Storage, Assign> with_fitter(F f) const {
        return {std::move(f), storage, assign};
    }
    template <CodebookStorage S>
    GptvqPolicies<Fitter, S, Assign> with_storage(S s) const {
        return {fitter, std::move(s), assign};
    }
    template <AssignmentBackend A>
    GptvqPolicies<Fitter, Storage, A> with_assignment(A a) const {
        return {fitter, storage, std::move(a)};
    }
};

/// The stock policies of a configuration: k-means with config.kmeans, config.codebooks, the CPU
/// lookups.
inline GptvqPolicies<> gptvq_policies(const GptvqConfig& config) {
    return {KMeansCodebookFitter{config.kmeans}, config.codebooks, CpuAssignment{}};
}

/// The Hessian options GPTVQ prepares with: config.hessian, with act-order (when on) moving whole
/// D-column vectors (HessianOptions::act_order_unit = config.vq.dim).
inline HessianOptions gptvq_hessian_options(const GptvqConfig& config) {
    HessianOptions options = config.hessian;
    options.act_order_unit = config.vq.dim;
    return options;
}

/// prepare_hessian(H, gptvq_hessian_options(config)): the preparation gptvq(W, H, prepared, ...)
/// expects, to share between the linears that read one input.
template <class DerivedH>
PreparedHessian gptvq_prepare_hessian(const Eigen::MatrixBase<DerivedH>& H, const GptvqConfig& config) {
    return prepare_hessian(H, gptvq_hessian_options(config));
}

/// GPTVQ on W (R x C) with the undamped Hessian H (C x C, float or double), with the given
/// policies. The recipe: prepare H; sweep the solver with the VQ quantizer (codebooks fitted per
/// tile at block starts, looked up per step) and the configured error update; update the
/// codebooks after the sweep and store them again; decode.
///
/// With `prepared` = gptvq_prepare_hessian(H, config) given, the preparation is not repeated:
/// one serves every linear that reads the same input (q/k/v, gate/up). H itself is still needed
/// (the codebook update and the loss use the undamped H).
template <class DerivedH, CodebookFitter Fitter, CodebookStorage Storage, AssignmentBackend Assign>
GptvqResult gptvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                  const PreparedHessian& prepared, const GptvqConfig& config,
                  const GptvqPolicies<Fitter, Storage, Assign>& policies) {
    const auto start = std::chrono::steady_clock::now();
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    VQLIB_CHECK(prepared.columns() == W.cols(), shape_error, "the prepared Hessian has ",
                prepared.columns(), " columns: expected W.cols() = ", W.cols());
    VqQuantizer<Fitter, Storage, Assign> quantizer(config.vq, policies.fitter, policies.storage,
                                                   policies.assign);
    const SolveResult solved = solve(config.update, config.solver, W, prepared, quantizer);
    GptvqResult out;
    out.layer = quantizer.layer();
    out.stats = solved.stats;
    out.update = config.update;
    out.record(prepared);
    const MatrixXd Hd = H.template cast<double>();
    if (config.svd) factor_codebooks_svd(out.layer, *config.svd);
    auto requantize = [&](VqLayer& layer) {
        if (config.svd)
            SvdFactoredStorage{*config.svd}(layer);
        else
            requantize_codebooks(layer, policies.storage);
    };
    out.codebook_update = update_codebooks(out.layer, W, Hd, config.codebook_update, requantize);
    out.Q = out.layer.dequantize();
    out.proxy_loss = out.codebook_update.loss_after;
    out.bits_per_weight = out.layer.bits_per_weight();
    out.seconds = detail::seconds_since(start) + prepared.seconds;
    return out;
}

/// GPTVQ with the given policies, preparing H first.
template <class DerivedH, CodebookFitter Fitter, CodebookStorage Storage, AssignmentBackend Assign>
GptvqResult gptvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const GptvqConfig& config,
                  const GptvqPolicies<Fitter, Storage, Assign>& policies) {
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    return gptvq(W, H, gptvq_prepare_hessian(H, config), config, policies);
}

/// GPTVQ with the stock policies of the configuration.
template <class DerivedH>
GptvqResult gptvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const GptvqConfig& config) {
    return gptvq(W, H, config, gptvq_policies(config));
}

/// GPTVQ with the stock policies on a Hessian already prepared (see above).
template <class DerivedH>
GptvqResult gptvq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                  const PreparedHessian& prepared, const GptvqConfig& config) {
    return gptvq(W, H, prepared, config, gptvq_policies(config));
}

/// Preset arguments, the same order and meaning in every method (gptvq_presets, pvq_presets,
/// vptq_presets): the vector dimension first (D, or VPTQ's vector length v), then the rate as
/// code bits per weight (what each vector stores, spread over its weights: the index, plus the
/// gain code for PVQ; codebooks, scales and other side information come on top), then the
/// method's own sizes. GPTVQ's paper() is the one exception: it takes the paper's table rate
/// (index and codebook bits per value), as the paper lists its configurations.
///
/// GPTVQ: (dim D, bits_per_dim b = index bits per weight, giving K = 2^(b*D) centroids: GPTVQ's
/// --wbits; weights_per_codebook l, the tile size: --groupsize), with 256-column groups.
namespace gptvq_presets {

inline Index centroids_for(Index dim, double bits_per_dim) {
    const double index_bits = bits_per_dim * static_cast<double>(dim);
    VQLIB_CHECK(index_bits >= 1 && index_bits <= 16 && index_bits == std::floor(index_bits),
                invalid_argument, "bits_per_dim * dim = ", index_bits,
                ": expected a whole number of index bits in [1, 16]");
    return Index{1} << static_cast<int>(index_bits);
}

/// The reference code's choices (docs/gptvq.md): Mahalanobis seeding, 100 EM iterations, empty
/// clusters reset to zero, init weights U_jj and lookup weights 1/U_jj (D > 1 only), INT8
/// codebooks with one fp32 scale per codebook, the diagonal update, and the Adam codebook update
/// returned unconditionally.
inline GptvqConfig reference_compatible(Index dim, double bits_per_dim, Index weights_per_codebook) {
    GptvqConfig c;
    c.name = "reference-compatible";
    c.vq.dim = dim;
    c.vq.k = centroids_for(dim, bits_per_dim);
    c.vq.weights_per_codebook = weights_per_codebook;
    c.vq.columns_per_group = 256;
    c.vq.lookup = dim > 1 ? LookupMetric::inverse_u : LookupMetric::euclidean;
    c.vq.init_weighting = dim > 1 ? InitWeighting::u : InitWeighting::none;
    c.kmeans.max_iterations = 100;
    c.kmeans.seeding = MahalanobisSeeding{/*reference_float32=*/true};
    c.kmeans.empty_clusters = EmptyClusterPolicy::reset_to_zero;
    c.kmeans.assignment = AssignmentMethod::direct;  // distances computed as the reference
    c.codebooks.integer = IntegerCodebookOptions{8, CodebookScaleScope::per_codebook, ScaleStorage::fp32};
    c.update = ErrorUpdateKind::diagonal;
    c.codebook_update.method = CodebookUpdateMethod::adam;
    c.codebook_update.keep_if_worse = true;
    return c;
}

/// The best choices we know for the same storage (same bpw up to the codebook scale width):
/// init weights 1/U_jj (the paper's), the exact joint metric for lookups, the exact D-column
/// update, empty clusters split from the heaviest, and the exact least-squares codebook update
/// (kept only when it lowers the loss). Codebook scales are stored as fp16.
inline GptvqConfig best(Index dim, double bits_per_dim, Index weights_per_codebook) {
    GptvqConfig c = reference_compatible(dim, bits_per_dim, weights_per_codebook);
    c.name = "best";
    c.vq.lookup = LookupMetric::exact;
    c.vq.init_weighting = InitWeighting::inverse_u;
    c.kmeans.empty_clusters = EmptyClusterPolicy::split_heaviest;
    c.kmeans.seeding = MahalanobisSeeding{};
    c.kmeans.assignment = AssignmentMethod::automatic;
    c.codebooks.integer->scale_storage = ScaleStorage::fp16;
    c.update = ErrorUpdateKind::exact;
    c.codebook_update.method = CodebookUpdateMethod::least_squares;
    c.codebook_update.keep_if_worse = false;
    return c;
}

/// The paper's configurations (docs/gptvq.md, INT8 codebooks, 256-column groups) by vector dimension
/// and bits per value: 1D/2D at 2.125, 2.25, 3.125, 4.125 and 4D at 2.125, 2.25.
inline GptvqConfig paper(Index dim, double bits_per_value, bool best_choices = true) {
    struct Row {
        Index dim;
        double bpv;
        double bits_per_dim;
        Index weights;
    };
    constexpr Row table[] = {
        {1, 2.125, 2, 256},  {1, 2.25, 2, 128},   {1, 3.125, 3, 512},  {1, 4.125, 4, 1024},
        {2, 2.125, 2, 2048}, {2, 2.25, 2, 1024},  {2, 3.125, 3, 8192}, {2, 4.125, 4, 32768},
        {4, 2.125, 2, 65536}, {4, 2.25, 2, 32768},
    };
    for (const Row& r : table) {
        if (r.dim == dim && std::abs(r.bpv - bits_per_value) < 1e-9) {
            GptvqConfig c = best_choices ? best(dim, r.bits_per_dim, r.weights)
                                         : reference_compatible(dim, r.bits_per_dim, r.weights);
            c.name = std::to_string(dim) + "D " + std::to_string(bits_per_value).substr(0, 5) +
                     " bpv (" + c.name + ")";
            return c;
        }
    }
    throw invalid_argument(detail::concat("paper preset: dim = ", dim, ", bits_per_value = ",
                                          bits_per_value,
                                          ": expected 1D/2D at 2.125, 2.25, 3.125, 4.125 or 4D at "
                                          "2.125, 2.25"));
}

/// The paper's scaled configurations (App. H): paper(dim, bits_per_value) with blockwise
/// normalization of 64-column sub-blocks (max |w|, 4-bit log10 codes, fp16 offsets: 4/64 = 0.0625
/// bits per weight) and twice the weights per codebook, which halves the codebook overhead, so
/// the total stays at the table's rate. The normalization runs inside the solve, lookups reading
/// the updated weights (the reference looks up stale copies: docs/gptvq.md).
inline GptvqConfig paper_scaled(Index dim, double bits_per_value, bool best_choices = true) {
    GptvqConfig c = paper(dim, bits_per_value, best_choices);
    c.vq.weights_per_codebook *= 2;
    c.vq.normalization = BlockwiseNormalizationOptions{.block_size = 64,
                                                       .bits = 4,
                                                       .norm = ScaleNorm::max_abs,
                                                       .domain = ScaleDomain::log10,
                                                       .offset_storage = ScaleStorage::fp16};
    c.vq.scale_weighted_fit = best_choices;
    c.name += ", scaled";
    return c;
}

/// SVD codebook compression (App. G) at the paper's 1-D rates: paper(1, bits_per_value) with
/// half the weights per codebook and each codebook of K entries stored as r = K/2 INT8
/// coefficients in one shared fp16 basis (rho = 0.5, the paper's ablation), the coefficients
/// sharing one fp16 scale per layer: the codebook bits per weight of the INT8 preset, twice the
/// codebooks.
inline GptvqConfig paper_svd(double bits_per_value, bool best_choices = true) {
    GptvqConfig c = paper(1, bits_per_value, best_choices);
    c.vq.weights_per_codebook /= 2;
    SvdCodebookOptions svd;
    svd.rank_fraction = 0.5;
    svd.u_quantization = IntegerCodebookOptions{8, CodebookScaleScope::shared, ScaleStorage::fp16};
    svd.factor_storage = ScaleStorage::fp16;
    c.svd = svd;
    c.name += ", SVD codebooks (rank K/2)";
    return c;
}

}  // namespace gptvq_presets
}  // namespace vqlib
