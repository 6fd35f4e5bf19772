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
// (io/vptq_checkpoint.hpp) write it as VPTQ's safetensors + quantization_config.
//
//   auto config = vqlib::vptq_presets::v8_k65536();
//   auto result = vqlib::vptq(W, H, config);        // result.layer, result.Q, result.proxy_loss
#include <vqlib/backend/cpu.hpp>
#include <vqlib/cluster.hpp>
#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/io/vptq_checkpoint.hpp>
#include <vqlib/quantizers/vptq_layer.hpp>
#include <vqlib/quantizers/vptq_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
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

struct VptqResult {
    VptqLayer layer;
    /// The dequantized layer (= layer.dequantize()), original order and scale.
    MatrixXf Q;
    /// The final sweep's statistics.
    SolveStats stats;
    /// tr((W - Q) H (W - Q)^T) with the undamped H as given.
    double proxy_loss = std::numeric_limits<double>::quiet_NaN();
    /// The same after the first sweep (before residual VQ); equal to proxy_loss without one.
    double proxy_loss_first_pass = std::numeric_limits<double>::quiet_NaN();
    double bits_per_weight = 0.0;
    double percdamp_used = 0.0;
    double seconds_kmeans = 0.0;
    double seconds_solve = 0.0;
    double seconds = 0.0;
};

namespace detail {

inline double vptq_seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// The layout of a configuration on an M x N layer (outlier columns rounded up so that the rest
/// divides into the groups, as VPTQ's get_group_setting).
inline VptqLayout vptq_layout(const VptqConfig& c, Index M, Index N) {
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

/// Hessian-weighted k-means on the vectors of v rows of the stored columns [c0, c0 + count):
/// weight of a vector = H_jj of its column. Only the stored row blocks take part.
inline MatrixXf vptq_fit_codebook(ConstMatrixRef W, const MatrixXd& H, Index c0, Index count,
                                  Index v, Index row_blocks, Index k, KMeansParameters params,
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
    params.k = k;
    MatrixXf C = any_weight ? kmeans(points, Weights::per_point(std::span<const float>(weights)), params).centroids
                            : kmeans(points, Weights{}, params).centroids;
    for (Index i = 0; i < C.size(); ++i) C.data()[i] = detail::round_value(C.data()[i], ScaleStorage::fp16);
    return C;
}

}  // namespace detail

/// VPTQ on W (M x N) with the undamped Hessian H (N x N, float or double).
template <class DerivedH>
VptqResult vptq(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H, const VptqConfig& config) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    check_finite("W", W);
    check_finite("H", H);
    const Index M = W.rows(), N = W.cols();
    VQLIB_CHECK(N <= 65536 || !config.enable_perm, invalid_argument, "in_features = ", N,
                ": VPTQ stores the permutation as uint16 (at most 65536 columns)");

    VptqResult out;
    VptqLayer& layer = out.layer;
    layer.layout = detail::vptq_layout(config, M, N);
    const VptqLayout& L = layer.layout;

    // 1. Normalization: W = Wn * S + 1 b^T per column, so W - Q = (Wn - Qn) S and the Hessian of
    //    the normalized problem is S H S.
    MatrixXf Wn = W;
    MatrixXd Hn = H.template cast<double>();
    if (config.enable_norm) {
        layer.weight_scale.resize(N);
        layer.weight_bias.resize(N);
        for (Index j = 0; j < N; ++j) {
            const float lo = W.col(j).minCoeff(), hi = W.col(j).maxCoeff();
            float scale = detail::round_value(hi - lo, ScaleStorage::fp16);
            if (!(scale > 0)) scale = 1.0f;
            const float bias = detail::round_value(lo, ScaleStorage::fp16);
            layer.weight_scale[j] = scale;
            layer.weight_bias[j] = bias;
            Wn.col(j) = ((W.col(j).array() - bias) / scale).matrix();
        }
        const VectorXd s = layer.weight_scale.cast<double>();
        Hn = s.asDiagonal() * Hn * s.asDiagonal();
    }

    // 2. Act-order: stored column p = original column perm[p], by descending diagonal (stable).
    MatrixXf Ws(M, N);
    MatrixXd Hs;
    if (config.enable_perm) {
        layer.perm.resize(static_cast<std::size_t>(N));
        std::iota(layer.perm.begin(), layer.perm.end(), Index{0});
        std::stable_sort(layer.perm.begin(), layer.perm.end(),
                         [&](Index a, Index b) { return Hn(a, a) > Hn(b, b); });
        Hs.resize(N, N);
        for (Index p = 0; p < N; ++p) {
            Ws.col(p) = Wn.col(layer.perm[static_cast<std::size_t>(p)]);
            for (Index q = 0; q < N; ++q)
                Hs(q, p) = Hn(layer.perm[static_cast<std::size_t>(q)], layer.perm[static_cast<std::size_t>(p)]);
        }
    } else {
        Ws = Wn;
        Hs = std::move(Hn);
    }

    // 3. Rows padded to whole vectors (of v, and of v0 for the outlier columns).
    Index granularity = L.vector_len;
    if (L.has_outliers()) granularity = std::lcm(granularity, L.outlier_vector_len);
    const Index Mp = (M + granularity - 1) / granularity * granularity;
    MatrixXf Wp = MatrixXf::Zero(Mp, N);
    Wp.topRows(M) = Ws;

    HessianOptions hopts = config.hessian;
    hopts.act_order = false;  // the permutation is ours (step 2)
    const PreparedHessian prepared = prepare_hessian(Hs, hopts);
    out.percdamp_used = prepared.percdamp;
    for (Index j = 0; j < N; ++j)
        if (prepared.dead[static_cast<std::size_t>(j)]) Wp.col(j).setZero();

    // 4. Codebooks: Hessian-weighted k-means per group (and for the outlier columns).
    auto t = clock::now();
    layer.centroids.resize(L.group_num * L.num_centroids, L.vector_len);
    for (Index g = 0; g < L.group_num; ++g) {
        KMeansParameters p = config.kmeans;
        p.seed = config.kmeans.seed + static_cast<std::uint64_t>(g);
        layer.centroids.middleRows(g * L.num_centroids, L.num_centroids) = detail::vptq_fit_codebook(
            Wp, Hs, L.outlier_size + g * L.group_size, L.group_size, L.vector_len, L.row_blocks(),
            L.num_centroids, p, "num_centroids");
    }
    if (L.has_outliers()) {
        layer.outlier_centroids = detail::vptq_fit_codebook(
            Wp, Hs, 0, L.outlier_size, L.outlier_vector_len, L.outlier_row_blocks(),
            L.outlier_centroids, config.kmeans, "outlier_centroids");
    }
    out.seconds_kmeans += detail::vptq_seconds_since(t);

    // 5. First sweep (recording w - q for the residual codebook).
    const BlockSolver<ExactUpdate> solver(config.solver);
    t = clock::now();
    VptqQuantizer<> first(layer, false, L.has_residual());
    SolveResult solved = solver.run(Wp, prepared, first);
    out.seconds_solve += detail::vptq_seconds_since(t);

    if (L.has_residual()) {
        // First-pass loss, for the record.
        {
            VptqLayer plain = layer;
            plain.layout.num_res_centroids = 0;
            plain.res_indices.clear();
            out.proxy_loss_first_pass = proxy_loss(W, plain.dequantize(), H.template cast<double>());
        }
        // 6. Residual codebooks on the first sweep's residual, then the sweep again from W.
        t = clock::now();
        const MatrixXf residual = first.error();
        layer.res_centroids.resize(L.group_num * L.num_res_centroids, L.vector_len);
        for (Index g = 0; g < L.group_num; ++g) {
            KMeansParameters p = config.kmeans;
            p.seed = config.kmeans.seed + 1000 + static_cast<std::uint64_t>(g);
            layer.res_centroids.middleRows(g * L.num_res_centroids, L.num_res_centroids) =
                detail::vptq_fit_codebook(residual, Hs, L.outlier_size + g * L.group_size,
                                          L.group_size, L.vector_len, L.row_blocks(),
                                          L.num_res_centroids, p, "num_res_centroids");
        }
        out.seconds_kmeans += detail::vptq_seconds_since(t);
        t = clock::now();
        VptqQuantizer<> second(layer, true, false);
        solved = solver.run(Wp, prepared, second);
        out.seconds_solve += detail::vptq_seconds_since(t);
    }

    out.stats = solved.stats;
    out.Q = layer.dequantize();
    out.proxy_loss = proxy_loss(W, out.Q, H.template cast<double>());
    if (!L.has_residual()) out.proxy_loss_first_pass = out.proxy_loss;
    out.bits_per_weight = layer.bits_per_weight();
    out.seconds = detail::vptq_seconds_since(start);
    return out;
}

/// Named configurations: the published ones (specs/vptq.md §1.5) and small-layer ones whose
/// codebooks stay cheap on layers of a few hundred rows.
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
