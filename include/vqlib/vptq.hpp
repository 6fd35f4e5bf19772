#pragma once
// VPTQ (Liu et al., arXiv 2409.17066) assembled from vqlib's components:
//   optional per-input-column min/max normalization, with the Hessian rescaled to match
//   (H' = S H S; the released code forgets this) + act-order by the Hessian diagonal
//   + outlier columns (the top N% by Hessian diagonal) with their own codebook (v0, k0)
//   + group codebooks over contiguous column groups, initialized by Hessian-weighted k-means
//     (weight of a vector = H_jj of its column; cluster/)
//   + the BlockSolver one column at a time (channel-independent second-order optimization),
//     Euclidean nearest centroid per vector of v rows (VptqQuantizer)
//   + residual VQ: a second codebook fitted on the first sweep's residual, then the sweep rerun
//     from the original W with the greedy two-stage lookup.
// The layer (VptqLayer) has VPTQ's checkpoint layout; io::save_vptq_model / add_vptq_layer
// (include vqlib/io/vptq_checkpoint.hpp; this header pulls in no I/O) write it as VPTQ's
// safetensors + quantization_config.
//
//   auto config = vqlib::vptq_presets::v8_k65536();
//   auto result = vqlib::vptq(W, H, config);        // result.layer, result.Q, result.proxy_loss
#include <vqlib/cluster.hpp>
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/quantizers/vptq_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>
#include <vqlib/solver/result.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace vqlib {

struct VptqConfig {
    std::string name = "vptq";
    /// v: vector length (consecutive output rows of one column).
    Index vector_len = 8;
    /// k: centroids of each group's main codebook.
    Index num_centroids = 256;
    /// k_res: centroids of the residual codebook; 0 = no residual VQ.
    Index num_res_centroids = 0;
    /// N%: percentage of the columns (the top ones by Hessian diagonal when permuted) quantized
    /// with the outlier codebook; 0 = none.
    double outlier_percent = 0.0;
    Index outlier_vector_len = 4;
    Index outlier_centroids = 8192;
    /// Contiguous column groups, each with its own codebooks.
    Index group_num = 1;
    /// Act-order: columns sorted by descending Hessian diagonal (stored as a uint16 perm).
    bool enable_perm = true;
    /// Per-input-column min/max normalization (fp16 scale and bias per column).
    bool enable_norm = false;
    /// Codebook k-means: VPTQ uses random seeding, 100 Lloyd iterations, tolerance 1e-5.
    KMeansParameters kmeans = default_kmeans();
    HessianOptions hessian{};
    /// Row chunks of 1024 rows: each lookup batch is 1024/v vectors, so a large codebook is
    /// streamed once per batch rather than once per 16 vectors.
    SolverOptions solver{128, 1024};
    /// How result.proxy_loss (and proxy_loss_first_pass) are computed: the float64 product
    /// (`solver` means the same here: the sweeps run on the normalized, permuted, padded problem)
    /// or not at all (`none`: both NaN).
    LossEvaluation loss = LossEvaluation::solver;

    static KMeansParameters default_kmeans() {
        KMeansParameters p;
        p.max_iterations = 100;
        p.tolerance = 1e-5;
        p.seeding = RandomSeeding{};
        p.empty_clusters = EmptyClusterPolicy::split_heaviest;
        p.seed = 0;
        return p;
    }
};

/// VPTQ's result: the common core (solver/result.hpp) with a VptqLayer, plus the first-pass loss
/// and the time split between k-means and the sweeps.
struct VptqResult : QuantizationResult<VptqLayer> {
    /// The proxy loss after the first sweep (before residual VQ); equal to proxy_loss without one.
    double proxy_loss_first_pass = std::numeric_limits<double>::quiet_NaN();
    double seconds_kmeans = 0.0;
    double seconds_solve = 0.0;
};

/// Fits VPTQ's codebooks: k centroids (k x v) for the N x v `points` (rows are vectors of v
/// consecutive output rows of one column) with per-point weights (empty: unweighted). `stream`
/// tells the fits of one layer apart (main group g: g; residual group g: 1000 + g; outlier
/// columns: 0), so that each draws its own seeds. Called once per codebook, serially.
template <class F>
concept VptqCodebookFitter = requires(const F& f, ConstMatrixRef points,
                                      std::span<const float> weights, Index k,
                                      std::uint64_t stream) {
    { f(points, weights, k, stream) } -> std::convertible_to<MatrixXf>;
};

/// VPTQ's fitter: weighted k-means (cluster/kmeans.hpp) with the configuration's parameters,
/// seeded with parameters.seed + stream.
struct VptqKMeansFitter {
    KMeansParameters parameters = VptqConfig::default_kmeans();

    MatrixXf operator()(ConstMatrixRef points, std::span<const float> weights, Index k,
                        std::uint64_t stream) const {
        KMeansParameters p = parameters;
        p.k = k;
        p.seed = parameters.seed + stream;
        return weights.empty() ? kmeans(points, Weights{}, p).centroids
                               : kmeans(points, Weights::per_point(weights), p).centroids;
    }
};

/// The policy slots of the VPTQ recipe: the codebook fitter and the nearest-centroid backend of
/// the sweeps' lookups. vptq_policies(config) gives the stock ones; with_fitter / with_assignment
/// swap one.
template <VptqCodebookFitter Fitter = VptqKMeansFitter, AssignmentBackend Assign = CpuAssignment>
struct VptqPolicies {
    Fitter fitter;
    Assign assign{};

    template <VptqCodebookFitter F>
    VptqPolicies<F, Assign> with_fitter(F f) const {
        return {std::move(f), assign};
    }
    template <AssignmentBackend A>
    VptqPolicies<Fitter, A> with_assignment(A a) const {
        return {fitter, std::move(a)};
    }
};

inline VptqPolicies<> vptq_policies(const VptqConfig& config) {
    return {VptqKMeansFitter{config.kmeans}, CpuAssignment{}};
}

/// The steps of the VPTQ recipe, in order. Each takes and returns plain matrices, so a variant of
/// the method can reuse some and replace others.
namespace vptq_steps {

/// The layout of a configuration on an M x N layer (outlier columns rounded up so that the rest
/// divides into the groups, as VPTQ's get_group_setting).
inline VptqLayout layout(const VptqConfig& c, Index M, Index N) {
    VQLIB_CHECK(c.outlier_percent >= 0.0 && c.outlier_percent < 100.0, invalid_argument,
                "outlier_percent = ", c.outlier_percent, ": expected [0, 100)");
    VptqLayout L;
    L.out_features = M;
    L.in_features = N;
    L.vector_len = c.vector_len;
    L.num_centroids = c.num_centroids;
    L.num_res_centroids = c.num_res_centroids;
    L.group_num = c.group_num;
    L.enable_norm = c.enable_norm;
    L.enable_perm = c.enable_perm;
    VQLIB_CHECK(c.group_num >= 1 && c.group_num <= N, invalid_argument, "group_num = ",
                c.group_num, ": expected 1..", N);
    if (c.outlier_percent > 0) {
        Index outliers = static_cast<Index>(std::ceil(c.outlier_percent / 100.0 * double(N)));
        while ((N - outliers) % c.group_num != 0) ++outliers;
        L.outlier_size = outliers;
        L.outlier_vector_len = c.outlier_vector_len;
        L.outlier_centroids = c.outlier_centroids;
    } else {
        VQLIB_CHECK(N % c.group_num == 0, shape_error, "group_num = ", c.group_num,
                    " does not divide in_features = ", N, " (and there are no outlier columns)");
    }
    L.group_size = (N - L.outlier_size) / c.group_num;
    L.validate();
    return L;
}

/// A weight and its Hessian at one stage of the recipe.
struct Problem {
    MatrixXf W;
    MatrixXd H;
};

/// 1. Normalization (layout.enable_norm): W = Wn * S + 1 b^T per column with fp16 min/max scale
///    and bias (recorded in the layer), so W - Q = (Wn - Qn) S and the normalized problem's
///    Hessian is S H S. Without it, the problem as given.
inline Problem normalize(Problem p, VptqLayer& layer) {
    if (!layer.layout.enable_norm) return p;
    const Index N = p.W.cols();
    layer.weight_scale.resize(N);
    layer.weight_bias.resize(N);
    for (Index j = 0; j < N; ++j) {
        const float lo = p.W.col(j).minCoeff(), hi = p.W.col(j).maxCoeff();
        float scale = detail::round_value(hi - lo, ScaleStorage::fp16);
        if (!(scale > 0)) scale = 1.0f;
        const float bias = detail::round_value(lo, ScaleStorage::fp16);
        layer.weight_scale[j] = scale;
        layer.weight_bias[j] = bias;
        p.W.col(j) = ((p.W.col(j).array() - bias) / scale).matrix();
    }
    const VectorXd s = layer.weight_scale.cast<double>();
    p.H = s.asDiagonal() * p.H * s.asDiagonal();
    return p;
}

/// 2. Act-order (layout.enable_perm): stored column q = column perm[q], by descending Hessian
///    diagonal (stable; recorded in the layer). Without it, the problem as given.
inline Permutation descending_diagonal_order(const MatrixXd& H) {
    Permutation perm(static_cast<std::size_t>(H.cols()));
    std::iota(perm.begin(), perm.end(), Index{0});
    std::stable_sort(perm.begin(), perm.end(), [&](Index a, Index b) { return H(a, a) > H(b, b); });
    return perm;
}

/// H with rows and columns in the order perm (stored index q = original perm[q]).
inline MatrixXd permuted_hessian(const MatrixXd& H, const Permutation& perm) {
    const Index N = H.cols();
    MatrixXd out(N, N);
    for (Index q = 0; q < N; ++q)
        for (Index r = 0; r < N; ++r)
            out(r, q) = H(perm[static_cast<std::size_t>(r)], perm[static_cast<std::size_t>(q)]);
    return out;
}

/// W with its columns in the order perm (stored column q = original perm[q]).
inline MatrixXf permuted_columns(ConstMatrixRef W, const Permutation& perm) {
    MatrixXf out(W.rows(), W.cols());
    for (Index q = 0; q < W.cols(); ++q) out.col(q) = W.col(perm[static_cast<std::size_t>(q)]);
    return out;
}

inline Problem act_order(Problem p, VptqLayer& layer) {
    if (!layer.layout.enable_perm) return p;
    layer.perm = descending_diagonal_order(p.H);
    return {permuted_columns(p.W, layer.perm), permuted_hessian(p.H, layer.perm)};
}

/// Step 3's preparation options: config.hessian without act-order (the permutation is step 2's).
inline HessianOptions preparation_options(const VptqConfig& config) {
    HessianOptions options = config.hessian;
    options.act_order = false;
    return options;
}

/// 3. Rows padded with zeros to whole vectors (of v, and of v0 for the outlier columns).
inline MatrixXf pad_rows(ConstMatrixRef W, const VptqLayout& L) {
    Index granularity = L.vector_len;
    if (L.has_outliers()) granularity = std::lcm(granularity, L.outlier_vector_len);
    const Index Mp = (W.rows() + granularity - 1) / granularity * granularity;
    MatrixXf Wp = MatrixXf::Zero(Mp, W.cols());
    Wp.topRows(W.rows()) = W;
    return Wp;
}

/// A Hessian-weighted codebook of the vectors of v rows of the stored columns [c0, c0 + count):
/// weight of a vector = H_jj of its column; only the stored row blocks take part. Entries are
/// rounded to fp16 (VPTQ stores them so).
template <VptqCodebookFitter Fitter>
MatrixXf fit_codebook(const Fitter& fitter, ConstMatrixRef W, const MatrixXd& H, Index c0,
                      Index count, Index v, Index row_blocks, Index k, std::uint64_t stream,
                      const char* what) {
    const Index n = row_blocks * count;
    VQLIB_CHECK(k <= n, invalid_argument, what, ": ", k, " centroids for only ", n,
                " vectors (", row_blocks, " row blocks x ", count,
                " columns): reduce the number of centroids or use fewer groups");
    MatrixXf points(n, v);
    std::vector<float> weights(static_cast<std::size_t>(n));
    bool any_weight = false;
    for (Index j = 0; j < count; ++j) {
        const float h = static_cast<float>(std::max(0.0, H(c0 + j, c0 + j)));
        any_weight = any_weight || h > 0;
        for (Index r = 0; r < row_blocks; ++r) {
            const Index at = j * row_blocks + r;
            for (Index t = 0; t < v; ++t) points(at, t) = W(r * v + t, c0 + j);
            weights[static_cast<std::size_t>(at)] = h;
        }
    }
    MatrixXf C = fitter(points, any_weight ? std::span<const float>(weights) : std::span<const float>{},
                        k, stream);
    VQLIB_CHECK(C.rows() == k && C.cols() == v, shape_error, "the codebook fitter returned ",
                C.rows(), "x", C.cols(), " for ", what, ": expected ", k, "x", v);
    for (Index i = 0; i < C.size(); ++i) C.data()[i] = detail::round_value(C.data()[i], ScaleStorage::fp16);
    return C;
}

/// 4. The main codebooks, one per column group (streams 0..group_num-1), and the outlier
///    codebook (stream 0), fitted on the padded stored-order weight.
template <VptqCodebookFitter Fitter>
void fit_main_codebooks(const Fitter& fitter, ConstMatrixRef Wp, const MatrixXd& Hs, VptqLayer& layer) {
    const VptqLayout& L = layer.layout;
    layer.centroids.resize(L.group_num * L.num_centroids, L.vector_len);
    for (Index g = 0; g < L.group_num; ++g)
        layer.centroids.middleRows(g * L.num_centroids, L.num_centroids) = fit_codebook(
            fitter, Wp, Hs, L.outlier_size + g * L.group_size, L.group_size, L.vector_len,
            L.row_blocks(), L.num_centroids, static_cast<std::uint64_t>(g), "num_centroids");
    if (L.has_outliers())
        layer.outlier_centroids = fit_codebook(fitter, Wp, Hs, 0, L.outlier_size,
                                               L.outlier_vector_len, L.outlier_row_blocks(),
                                               L.outlier_centroids, 0, "outlier_centroids");
}

/// 6. The residual codebooks, one per column group (streams 1000 + g), fitted on the first
///    sweep's residual w - q.
template <VptqCodebookFitter Fitter>
void fit_residual_codebooks(const Fitter& fitter, ConstMatrixRef residual, const MatrixXd& Hs,
                            VptqLayer& layer) {
    const VptqLayout& L = layer.layout;
    layer.res_centroids.resize(L.group_num * L.num_res_centroids, L.vector_len);
    for (Index g = 0; g < L.group_num; ++g)
        layer.res_centroids.middleRows(g * L.num_res_centroids, L.num_res_centroids) = fit_codebook(
            fitter, residual, Hs, L.outlier_size + g * L.group_size, L.group_size, L.vector_len,
            L.row_blocks(), L.num_res_centroids, 1000 + static_cast<std::uint64_t>(g),
            "num_res_centroids");
}

}  // namespace vptq_steps

/// The Hessian side of VPTQ, prepared once for every linear that reads the same input (q/k/v,
/// gate/up): the act-order permutation (step 2; empty without enable_perm), H in that order, and
/// its preparation (step 3). Normalization (enable_norm) scales H by each layer's own column
/// ranges, so a VptqHessian serves only configurations without it.
struct VptqHessian {
    Permutation perm;
    MatrixXd H;
    PreparedHessian prepared;
};

namespace vptq_steps {

/// Steps 2 and 3 for an H that no per-layer normalization changes.
inline VptqHessian prepare(MatrixXd H, const VptqConfig& config) {
    VptqHessian out;
    if (config.enable_perm) {
        out.perm = descending_diagonal_order(H);
        out.H = permuted_hessian(H, out.perm);
    } else {
        out.H = std::move(H);
    }
    out.prepared = prepare_hessian(out.H, preparation_options(config));
    return out;
}

}  // namespace vptq_steps

/// Steps 2 and 3 of vptq() for the undamped H (N x N), to share between linears with the same
/// input. Throws invalid_argument with enable_norm (the normalized H differs per layer).
template <class DerivedH>
VptqHessian vptq_prepare_hessian(const Eigen::MatrixBase<DerivedH>& H, const VptqConfig& config) {
    check_square("H", H);
    check_finite("H", H);
    VQLIB_CHECK(!config.enable_norm, invalid_argument,
                "enable_norm = true: the normalized Hessian S H S depends on each layer's weights; "
                "a shared VptqHessian needs enable_norm = false");
    VQLIB_CHECK(H.cols() <= 65536 || !config.enable_perm, invalid_argument, "in_features = ",
                H.cols(), ": VPTQ stores the permutation as uint16 (at most 65536 columns)");
    return vptq_steps::prepare(H.template cast<double>(), config);
}

namespace detail {

/// Steps 4 to 6 of vptq(), from the stored problem (normalized, permuted) and its prepared H.
template <class DerivedH, VptqCodebookFitter Fitter, AssignmentBackend Assign>
VptqResult vptq_sweeps(VptqResult out, ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                       ConstMatrixRef W_stored, const MatrixXd& H_stored,
                       const PreparedHessian& prepared, const VptqConfig& config,
                       const VptqPolicies<Fitter, Assign>& policies,
                       std::chrono::steady_clock::time_point start) {
    using clock = std::chrono::steady_clock;
    const Index N = W.cols();
    VptqLayer& layer = out.layer;
    const VptqLayout& L = layer.layout;
    MatrixXf Wp = vptq_steps::pad_rows(W_stored, L);
    out.record(prepared);
    for (Index j = 0; j < N; ++j)
        if (prepared.dead[static_cast<std::size_t>(j)]) Wp.col(j).setZero();

    auto t = clock::now();
    vptq_steps::fit_main_codebooks(policies.fitter, Wp, H_stored, layer);
    out.seconds_kmeans += seconds_since(t);

    t = clock::now();
    VptqQuantizer<Assign> first(layer, false, L.has_residual(), policies.assign);
    SolveResult solved = solve(ErrorUpdateKind::exact, config.solver, Wp, prepared, first);
    out.seconds_solve += seconds_since(t);

    if (L.has_residual()) {
        {
            VptqLayer plain = layer;
            plain.layout.num_res_centroids = 0;
            plain.res_indices.clear();
            if (config.loss != LossEvaluation::none)
                out.proxy_loss_first_pass = proxy_loss(W, plain.dequantize(), H);
        }
        t = clock::now();
        vptq_steps::fit_residual_codebooks(policies.fitter, first.error(), H_stored, layer);
        out.seconds_kmeans += seconds_since(t);
        t = clock::now();
        VptqQuantizer<Assign> second(layer, true, false, policies.assign);
        solved = solve(ErrorUpdateKind::exact, config.solver, Wp, prepared, second);
        out.seconds_solve += seconds_since(t);
    }

    out.stats = solved.stats;
    out.update = ErrorUpdateKind::exact;
    out.Q = layer.dequantize();
    if (config.loss != LossEvaluation::none) out.proxy_loss = proxy_loss(W, out.Q, H);
    if (!L.has_residual()) out.proxy_loss_first_pass = out.proxy_loss;
    out.bits_per_weight = layer.bits_per_weight();
    out.seconds = seconds_since(start) + prepared.seconds;
    return out;
}

}  // namespace detail

/// VPTQ on W (M x N) with the undamped Hessian H (N x N, float or double), with the given
/// policies. The recipe: 1. normalize, 2. act-order, 3. pad rows, prepare H (no act-order of its
/// own: the permutation is step 2's); 4. fit the main (and outlier) codebooks; 5. sweep the solver
/// one column at a time with the exact update, recording the residual; 6. with residual VQ, fit
/// the residual codebooks and sweep again from the same start with the two-stage lookup (the
/// same prepared H serves both sweeps).
template <class DerivedH, VptqCodebookFitter Fitter, AssignmentBackend Assign>
VptqResult vptq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const VptqConfig& config,
                const VptqPolicies<Fitter, Assign>& policies) {
    const auto start = std::chrono::steady_clock::now();
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    check_finite("W", W);
    check_finite("H", H);
    const Index M = W.rows(), N = W.cols();
    VQLIB_CHECK(N <= 65536 || !config.enable_perm, invalid_argument, "in_features = ", N,
                ": VPTQ stores the permutation as uint16 (at most 65536 columns)");

    VptqResult out;
    out.layer.layout = vptq_steps::layout(config, M, N);
    vptq_steps::Problem stored = vptq_steps::act_order(
        vptq_steps::normalize({W, H.template cast<double>()}, out.layer), out.layer);
    const PreparedHessian prepared =
        prepare_hessian(stored.H, vptq_steps::preparation_options(config));
    return detail::vptq_sweeps(std::move(out), W, H, stored.W, stored.H, prepared, config,
                               policies, start);
}

/// VPTQ on W (M x N) with the Hessian side already prepared (`hessian` =
/// vptq_prepare_hessian(H, config): act-order and preparation done once for every linear that
/// reads the same input); H is the undamped H, for the reported loss. Same result as vptq(W, H,
/// config, policies).
template <class DerivedH, VptqCodebookFitter Fitter, AssignmentBackend Assign>
VptqResult vptq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const VptqHessian& hessian,
                const VptqConfig& config, const VptqPolicies<Fitter, Assign>& policies) {
    const auto start = std::chrono::steady_clock::now();
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    check_finite("W", W);
    const Index M = W.rows(), N = W.cols();
    VQLIB_CHECK(!config.enable_norm, invalid_argument,
                "enable_norm = true: a shared VptqHessian needs enable_norm = false");
    VQLIB_CHECK(hessian.prepared.columns() == N && hessian.H.cols() == N &&
                    hessian.perm.size() == (config.enable_perm ? static_cast<std::size_t>(N) : 0u),
                shape_error, "the prepared VPTQ Hessian has ", hessian.prepared.columns(),
                " columns and a permutation of ", hessian.perm.size(), ": expected W.cols() = ",
                N, (config.enable_perm ? " and a permutation of as many" : " and none (enable_perm = false)"));
    VptqResult out;
    out.layer.layout = vptq_steps::layout(config, M, N);
    MatrixXf Ws = config.enable_perm ? vptq_steps::permuted_columns(W, hessian.perm) : MatrixXf(W);
    out.layer.perm = hessian.perm;
    return detail::vptq_sweeps(std::move(out), W, H, Ws, hessian.H, hessian.prepared, config,
                               policies, start);
}

/// VPTQ with the stock policies on an already prepared Hessian side.
template <class DerivedH>
VptqResult vptq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const VptqHessian& hessian,
                const VptqConfig& config) {
    return vptq(W, H, hessian, config, vptq_policies(config));
}

/// VPTQ with the stock policies of the configuration.
template <class DerivedH>
VptqResult vptq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const VptqConfig& config) {
    return vptq(W, H, config, vptq_policies(config));
}

/// Preset arguments, the same order and meaning in every method (gptvq_presets, pvq_presets,
/// vptq_presets): the vector dimension first (D, or VPTQ's vector length v), then the rate as
/// code bits per weight (what each vector stores, spread over its weights: the index, plus the
/// gain code for PVQ; codebooks, scales and other side information come on top), then the
/// method's own sizes. GPTVQ's paper() is the one exception: it takes the paper's table rate
/// (index and codebook bits per value), as the paper lists its configurations.
///
/// VPTQ: rate(v, bits_per_weight, residual_bits_per_weight) by that convention (index bits per
/// weight b give k = 2^(b*v) centroids); make(v, k, k_res, ...) by VPTQ's own parameters; and
/// the published configurations (docs/vptq.md) and small-layer ones whose codebooks stay cheap
/// on layers of a few hundred rows, by name.
namespace vptq_presets {

inline VptqConfig make(Index v, Index k, Index k_res = 0, double outlier_percent = 0.0,
                       Index v0 = 4, Index k0 = 8192, Index group_num = 1) {
    VptqConfig c;
    c.vector_len = v;
    c.num_centroids = k;
    c.num_res_centroids = k_res;
    c.outlier_percent = outlier_percent;
    c.outlier_vector_len = v0;
    c.outlier_centroids = k0;
    c.group_num = group_num;
    c.name = detail::concat("vptq v", v, " k", k, k_res > 0 ? detail::concat("+", k_res) : "",
                            outlier_percent > 0 ? detail::concat(" out", outlier_percent, "% v", v0,
                                                                 " k", k0)
                                                : "",
                            group_num > 1 ? detail::concat(" g", group_num) : "");
    return c;
}

/// Vectors of v rows at `bits_per_weight` index bits per weight (k = 2^(bits_per_weight * v)
/// centroids) and, with residual VQ, `residual_bits_per_weight` more (k_res likewise).
inline VptqConfig rate(Index v, double bits_per_weight, double residual_bits_per_weight = 0.0) {
    auto centroids = [&](double bits, const char* what) {
        const double index_bits = bits * static_cast<double>(v);
        VQLIB_CHECK(index_bits >= 1 && index_bits <= 24 && index_bits == std::floor(index_bits),
                    invalid_argument, what, " = ", bits, " with v = ", v, ": ", index_bits,
                    " bits per vector, expected a whole number in [1, 24]");
        return Index{1} << static_cast<int>(index_bits);
    };
    VQLIB_CHECK(v >= 1, invalid_argument, "v = ", v, ": expected a vector length >= 1");
    const Index k = centroids(bits_per_weight, "bits_per_weight");
    const Index k_res = residual_bits_per_weight > 0
                            ? centroids(residual_bits_per_weight, "residual_bits_per_weight")
                            : 0;
    return make(v, k, k_res);
}

/// v = 8, k = 65536: 2 bits of index per weight.
inline VptqConfig v8_k65536() { return make(8, 65536); }
/// v = 8, k = 65536 + residual 256: 3 bits of index per weight.
inline VptqConfig v8_k65536_res256() { return make(8, 65536, 256); }
/// v = 6, k = 4096: 2 bits (Table 8, Llama-2 7B/13B at 2.02 bits).
inline VptqConfig v6_k4096() { return make(6, 4096); }
/// v = 12, k = 4096 + residual 4096, 1% outlier columns at v0 = 4, k0 = 8192 (Table 8).
inline VptqConfig v12_k4096_res4096_outliers() { return make(12, 4096, 4096, 1.0, 4, 8192); }
/// Small layers: v = 4, k = 256 (2 bits of index per weight, a 2 KiB codebook).
inline VptqConfig v4_k256() { return make(4, 256); }
/// Small layers: v = 4, k = 256 + residual 16 (3 bits of index per weight).
inline VptqConfig v4_k256_res16() { return make(4, 256, 16); }
/// Small layers: v = 2, k = 64 (3 bits of index per weight).
inline VptqConfig v2_k64() { return make(2, 64); }

}  // namespace vptq_presets
}  // namespace vqlib
