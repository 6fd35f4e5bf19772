#pragma once
// Weighted k-means (Lloyd's EM), as GPTVQ's `kmeans_vq` runs it when configured so.
//
// For N points x_n of dimension D, weights omega_nj (cluster/weights.hpp) and K centroids:
//   E-step  a_n = argmin_k sum_j omega_nj (x_nj - c_kj)^2          (ties -> the lowest k)
//   M-step  c_kj = sum_{n: a_n = k} omega_nj x_nj / max(sum_{n: a_n = k} omega_nj, 1e-10)
//           (unweighted: / max(count, 1)); sums in double, in increasing n.
//   objective  J = sum_n sum_j omega_nj (x_nj - c_{a_n j})^2, in double, with the weights.
// One iteration is an E-step then an M-step; its recorded objective is J(a_t, c_t), the assignment
// it made with the centroids it produced, which never increases from one iteration to the next
// (up to float32 rounding in the E-step's comparisons). After the last iteration a final E-step
// assigns every point to the final centroids, and the final objective is J for that pair.
//
// Stopping. With tolerance = 0 (the default, like the reference) the loop runs max_iterations,
// except that it ends early at an exact fixed point: when an E-step reproduces the previous
// assignment, every further iteration would recompute the same centroids bit for bit, so the
// result is identical to running all of them (converged = true). With tolerance > 0 it also stops
// once (J_{t-1} - J_t) / J_{t-1} < tolerance.
//
// Empty clusters (no point assigned):
//   reset_to_zero   the reference: the centroid becomes the zero vector (what the M-step formula
//                   gives for an empty cluster), and may stay unused.
//   split_heaviest  the empty centroid moves into the cluster h with the largest total weight:
//                   to the midpoint between c_h and the point of h farthest from c_h in the
//                   weighted metric. That point's weighted squared distance to the moved
//                   centroid is a quarter of its distance to c_h, so the next E-step moves it (at
//                   least) and the objective strictly decreases, while J(a_t, c_t) is unchanged.
//                   Several empty clusters are handled in increasing index; each split halves h's
//                   weight for the next choice and uses a different farthest point; a cluster whose
//                   points all sit on its centroid is not split (if none can be, the empty centroid
//                   keeps its position). In this mode, a coordinate whose total weight in a
//                   non-empty cluster is 0 keeps its previous value (the formula above would zero
//                   it; either leaves J unchanged).
//
// Subsampling only when asked (parameters.subsample): EM runs on that many points drawn without
// replacement (before the seeding, from the same seeded stream), the iteration objectives are over
// that subsample, and the final E-step and objective cover all points; the result says so.
//
// Assignment backend: every E-step asks an AssignmentBackend (backend/assignment.hpp) for the
// nearest centroid of each point, as faiss's Clustering::train asks its Index. kmeans(points,
// weights, parameters) uses the CPU kernels (CpuAssignment with parameters.assignment and
// parameters.parallel); kmeans(points, weights, parameters, assign) takes any backend, e.g.
// CudaAssignment (backend/cuda/assignment.cuh), which gives the same indices.
//
// Accelerated E-steps (parameters.acceleration): with the CPU backend and the direct kernel, the
// E-steps after the first may prune centroids by distance bounds (cluster/bounded_assignment.hpp,
// Yinyang k-means). This is exact: the assignments, hence the centroids, objectives and stopping,
// are bit-identical to plain Lloyd's; only the work changes (KMeansIterationStats::
// distances_computed says how much). `automatic` uses it for k >= 512 and k d >= 4096 (below
// that the plain kernel is faster; measured on 1M points: 1.4x at k = 1024, d = 8; 1.7-2.3x at
// k = 4096, d = 8; 0.7x at k = 256, d = 8) on problems of at least 2^22 terms.
//
// Determinism: results depend on the data, the parameters and the seed only; never on the thread
// count (fixed chunks, ordered reductions) nor on the SIMD variant picked at run time.
//
// Parallelism: large problems run in fixed chunks through vqlib::parallel_for; small ones, and
// problems solved inside kmeans_batch or inside an OpenMP region (such as a vqlib::parallel_for
// body), stay on the calling thread. kmeans_batch solves many independent problems (GPTVQ: one
// per codebook tile) in parallel over problems. In a build without OpenMP, set
// parameters.parallel = false when calling kmeans() from your own parallel loop.
#include <vqlib/backend/assignment.hpp>
#include <vqlib/backend/cpu_assignment.hpp>
#include <vqlib/cluster/assignment.hpp>
#include <vqlib/cluster/bounded_assignment.hpp>
#include <vqlib/cluster/execution.hpp>
#include <vqlib/cluster/seeding.hpp>
#include <vqlib/cluster/weights.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/timing.hpp>
#include <vqlib/core/types.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace vqlib {

enum class EmptyClusterPolicy { reset_to_zero, split_heaviest };

/// How kmeans() runs its E-steps on the CPU (the results are the same for all three).
enum class KMeansAcceleration {
    automatic,  // bounds for k >= 512, k D >= 4096 and N k D >= 2^22; plain otherwise
    none,       // every E-step compares every point with every centroid
    bounds,     // distance bounds whenever the direct kernel is the method
};

inline const char* to_string(KMeansAcceleration a) {
    switch (a) {
    case KMeansAcceleration::automatic: return "automatic";
    case KMeansAcceleration::none: return "none";
    case KMeansAcceleration::bounds: return "bounds";
    }
    return "?";
}

/// Parameters of kmeans(). The defaults reproduce GPTVQ's codebook initialization (Mahalanobis
/// seeding, 100 EM iterations, no convergence test, empty clusters reset to zero); for general
/// use prefer KMeansPlusPlusSeeding and EmptyClusterPolicy::split_heaviest.
struct KMeansParameters {
    /// Number of centroids, 1 <= k <= number of points (after subsampling: <= subsample).
    Index k = 0;
    /// EM iterations (E-step + M-step); 0 = the seeds and one E-step.
    int max_iterations = 100;
    /// Stop when the relative objective decrease of an iteration is below this; 0 = no test.
    double tolerance = 0.0;
    Seeding seeding = MahalanobisSeeding{};
    EmptyClusterPolicy empty_clusters = EmptyClusterPolicy::reset_to_zero;
    /// Seeds the subsample and the random seeding policies.
    std::uint64_t seed = 0;
    /// 0 = fit on all points; otherwise fit on this many points drawn without replacement
    /// (k <= subsample; a value >= the number of points means all points).
    Index subsample = 0;
    /// How E-steps find the nearest centroid (cluster/assignment.hpp).
    AssignmentMethod assignment = AssignmentMethod::automatic;
    /// Allow parallel chunks (results are identical either way).
    bool parallel = true;
    /// Bound-pruned E-steps (exact; see the top of this header). Only with the CPU backend.
    KMeansAcceleration acceleration = KMeansAcceleration::automatic;
    /// At most this much memory for the bounds (4 bytes per point and centroid group; fewer
    /// groups prune less: VPTQ's 2M vectors of a 4096 x 4096 layer get 128 groups in 1 GiB, and
    /// its K = 65536 k-means then runs 1.2x faster than with 64 groups in 512 MiB).
    std::size_t bounds_memory = std::size_t{1} << 30;
};

struct KMeansIterationStats {
    int iteration = 0;         // 1-based
    double objective = 0.0;    // J(a_t, c_t), weighted, over the points fitted
    Index reassigned = 0;      // points whose cluster changed in this E-step (all at t = 1)
    Index empty_clusters = 0;  // clusters with no point in this E-step (handled by policy)
    double largest_cluster_weight = 0.0;   // total weight sum_{n in k} sum_j omega_nj (counts x D
    double smallest_cluster_weight = 0.0;  // unweighted), before empty clusters are handled
    double distances_computed = 0.0;       // point-centroid distances in the E-step (plain: N K)
    double seconds = 0.0;
};

struct KMeansResult {
    MatrixXf centroids;                    // K x D
    std::vector<std::int32_t> assignment;  // per point (all points), for `centroids`
    double objective = 0.0;                // J(assignment, centroids) over all points
    std::vector<KMeansIterationStats> iterations;
    bool converged = false;    // fixed point reached, or tolerance met
    Index empty_clusters = 0;  // clusters without a point in `assignment`
    Index points_used = 0;     // points EM ran on (the subsample size, or N)
    bool subsampled = false;
    AssignmentMethod assignment_method = AssignmentMethod::direct;  // as resolved
    Index bound_groups = 0;  // centroid groups of the bounded E-steps (0: plain E-steps)
    double seeding_seconds = 0.0;
    double seconds = 0.0;  // the whole call
};

namespace detail {

inline void check_kmeans_arguments(ConstMatrixRef points, const Weights& weights,
                                   const KMeansParameters& p) {
    const Index n = points.rows();
    const Index d = points.cols();
    VQLIB_CHECK(d >= 1, shape_error, "kmeans: points are ", n, "x", d,
                ": expected at least one column (the dimension d)");
    VQLIB_CHECK(p.k >= 1, invalid_argument, "kmeans: k = ", p.k, ": expected k >= 1");
    VQLIB_CHECK(p.k <= n, invalid_argument, "kmeans: k = ", p.k,
                " is larger than the number of points n = ", n);
    VQLIB_CHECK(p.k <= std::numeric_limits<std::int32_t>::max(), invalid_argument,
                "kmeans: k = ", p.k, ": expected at most 2^31 - 1");
    VQLIB_CHECK(p.max_iterations >= 0, invalid_argument,
                "kmeans: max_iterations = ", p.max_iterations, ": expected >= 0");
    VQLIB_CHECK(std::isfinite(p.tolerance) && p.tolerance >= 0.0, invalid_argument,
                "kmeans: tolerance = ", p.tolerance, ": expected a finite value >= 0");
    VQLIB_CHECK(p.subsample >= 0, invalid_argument, "kmeans: subsample = ", p.subsample,
                ": expected 0 (all points) or a number of points >= k");
    VQLIB_CHECK(p.subsample == 0 || p.subsample >= p.k, invalid_argument,
                "kmeans: subsample = ", p.subsample, " is smaller than k = ", p.k);
    if (std::holds_alternative<QuantileSeeding>(p.seeding))
        VQLIB_CHECK(d == 1, invalid_argument, "kmeans: quantile seeding needs d = 1, got d = ", d);
    if (const auto* given = std::get_if<GivenCentroids>(&p.seeding)) {
        check_shape("given centroids", given->centroids, p.k, d);
        check_finite("given centroids", given->centroids);
    }
    check_finite("points", points);
    check_weights(weights, n, d);
}

/// Runs of the EM loop on one point set, with buffers reused across iterations.
template <AssignmentBackend Assign>
class KMeansEm {
public:
    /// `bound_groups` > 0: bounded E-steps with that many centroid groups.
    KMeansEm(ConstMatrixRef points, const Weights& weights, const KMeansParameters& p,
             const Assign& assign, Index bound_groups = 0)
        : assign_(assign),
          points_(points),
          weights_(weights),
          p_(p),
          n_(points.rows()),
          d_(points.cols()),
          k_(p.k) {
        if (bound_groups > 0) bounded_.emplace(points, weights, bound_groups, p.parallel);
    }

    /// One E-step of `centroids`; returns the point-centroid distances it computed.
    double e_step(const MatrixXf& centroids, std::span<std::int32_t> assignment) {
        if (bounded_) {
            bounded_->assign(centroids, assignment);
            return bounded_->distances_computed();
        }
        assign_.nearest_centroid(points_, centroids, weights_, assignment);
        return static_cast<double>(n_) * static_cast<double>(k_);
    }

    Index bound_groups() const { return bounded_ ? bounded_->groups() : 0; }

    /// EM from `centroids` (updated in place), appending to result.iterations. Returns true at a
    /// fixed point, where `assignment` already is the final E-step for `centroids`.
    bool run(MatrixXf& centroids, std::vector<std::int32_t>& assignment, KMeansResult& result) {
        std::vector<std::int32_t> previous(static_cast<std::size_t>(n_), -1);
        assignment.assign(static_cast<std::size_t>(n_), 0);
        for (int it = 1; it <= p_.max_iterations; ++it) {
            const auto start = std::chrono::steady_clock::now();
            const double computed = e_step(centroids, assignment);
            Index reassigned = 0;
            for (Index i = 0; i < n_; ++i)
                reassigned += assignment[static_cast<std::size_t>(i)] !=
                              previous[static_cast<std::size_t>(i)];
            if (it > 1 && reassigned == 0) return true;  // fixed point: nothing would change

            KMeansIterationStats stats;
            stats.iteration = it;
            stats.reassigned = reassigned;
            stats.distances_computed = computed;
            m_step(assignment, centroids, stats);
            stats.objective = objective(points_, weights_, centroids, assignment);
            stats.seconds = seconds_since(start);
            result.iterations.push_back(stats);
            std::swap(previous, assignment);

            if (p_.tolerance > 0.0 && it > 1) {
                const double before = result.iterations[result.iterations.size() - 2].objective;
                if (!(before > 0.0) || (before - stats.objective) / before < p_.tolerance) {
                    result.converged = true;
                    break;
                }
            }
        }
        return false;
    }

    /// J = sum_n sum_j omega_nj (x_nj - c_{a_n j})^2 in double: within a fixed chunk of points,
    /// coordinate by coordinate; chunk sums added in chunk order.
    static double objective(ConstMatrixRef points, const Weights& weights,
                            const MatrixXf& centroids, std::span<const std::int32_t> assignment) {
        const Index n = points.rows();
        const Index d = points.cols();
        constexpr Index chunk = 8192;
        const Index chunks = (n + chunk - 1) / chunk;
        std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
        run_chunks(chunks, n * d >= (Index{1} << 18), [&](Index c) {
            const Index i0 = c * chunk;
            const Index i1 = std::min(n, i0 + chunk);
            const std::int32_t* a = assignment.data();
            double sum = 0.0;
            for (Index j = 0; j < d; ++j) {
                const float* x = points.col(j).data();
                const float* cj = centroids.col(j).data();
                const auto diff = [&](Index i) {
                    return static_cast<double>(x[i]) - static_cast<double>(cj[a[i]]);
                };
                switch (weights.kind()) {
                case WeightKind::none:
                    for (Index i = i0; i < i1; ++i) sum += diff(i) * diff(i);
                    break;
                case WeightKind::per_point:
                    for (Index i = i0; i < i1; ++i)
                        sum += static_cast<double>(weights.data()[i]) * diff(i) * diff(i);
                    break;
                case WeightKind::per_coordinate: {
                    const double lambda = weights.data()[j];
                    for (Index i = i0; i < i1; ++i) sum += lambda * diff(i) * diff(i);
                    break;
                }
                case WeightKind::elementwise: {
                    const float* w = weights.data() + j * weights.outer_stride();
                    for (Index i = i0; i < i1; ++i)
                        sum += static_cast<double>(w[i]) * diff(i) * diff(i);
                    break;
                }
                }
            }
            partial[static_cast<std::size_t>(c)] = sum;
        });
        double total = 0.0;
        for (double s : partial) total += s;
        return total;
    }

private:
    // Per-cluster sums of one assignment: sum(k, j) = sum_n omega_nj x_nj (per-coordinate
    // weights: sum_n x_nj, scaled afterwards), weight(k, j) = sum_n omega_nj for elementwise
    // weights, weight(k, 0) = sum_n w_n for per-point weights, and counts. Tasks: one per
    // coordinate plus one for counts and per-point weights, each in increasing n.
    void accumulate(std::span<const std::int32_t> assignment) {
        const bool elementwise = weights_.kind() == WeightKind::elementwise;
        const bool per_point = weights_.kind() == WeightKind::per_point;
        sum_.setZero(k_, d_);
        weight_.setZero(k_, elementwise ? d_ : 1);
        count_.assign(static_cast<std::size_t>(k_), 0);
        run_chunks(d_ + 1, n_ * d_ >= (Index{1} << 18), [&](Index task) {
            if (task == d_) {
                for (Index i = 0; i < n_; ++i) {
                    const std::int32_t a = assignment[static_cast<std::size_t>(i)];
                    ++count_[static_cast<std::size_t>(a)];
                    if (per_point) weight_(a, 0) += static_cast<double>(weights_.data()[i]);
                }
                return;
            }
            const Index j = task;
            double* sum = sum_.col(j).data();
            const float* x = points_.col(j).data();
            const std::int32_t* a = assignment.data();
            if (elementwise) {
                double* weight = weight_.col(j).data();
                const float* w = weights_.data() + j * weights_.outer_stride();
                for (Index i = 0; i < n_; ++i) {
                    sum[a[i]] += static_cast<double>(w[i]) * static_cast<double>(x[i]);
                    weight[a[i]] += static_cast<double>(w[i]);
                }
            } else if (per_point) {
                const float* w = weights_.data();
                for (Index i = 0; i < n_; ++i)
                    sum[a[i]] += static_cast<double>(w[i]) * static_cast<double>(x[i]);
            } else {
                for (Index i = 0; i < n_; ++i) sum[a[i]] += static_cast<double>(x[i]);
            }
        });
    }

    // Numerator and denominator of c_kj.
    std::pair<double, double> mean_terms(Index k, Index j) const {
        const double count = static_cast<double>(count_[static_cast<std::size_t>(k)]);
        switch (weights_.kind()) {
        case WeightKind::none: return {sum_(k, j), count};
        case WeightKind::per_point: return {sum_(k, j), weight_(k, 0)};
        case WeightKind::per_coordinate: {
            const double lambda = weights_.data()[j];
            return {lambda * sum_(k, j), lambda * count};
        }
        case WeightKind::elementwise: return {sum_(k, j), weight_(k, j)};
        }
        return {0.0, 0.0};
    }

    double cluster_weight(Index k) const {
        const double count = static_cast<double>(count_[static_cast<std::size_t>(k)]);
        switch (weights_.kind()) {
        case WeightKind::none: return count * static_cast<double>(d_);
        case WeightKind::per_point: return weight_(k, 0) * static_cast<double>(d_);
        case WeightKind::per_coordinate: {
            double lambda_sum = 0.0;
            for (Index j = 0; j < d_; ++j) lambda_sum += weights_.data()[j];
            return count * lambda_sum;
        }
        case WeightKind::elementwise: return weight_.row(k).sum();
        }
        return 0.0;
    }

    void m_step(std::span<const std::int32_t> assignment, MatrixXf& centroids,
                KMeansIterationStats& stats) {
        accumulate(assignment);
        const bool reset = p_.empty_clusters == EmptyClusterPolicy::reset_to_zero;
        const double floor = weights_.is_none() ? 1.0 : 1e-10;
        std::vector<Index> empty;
        std::vector<double> weight(static_cast<std::size_t>(k_));
        for (Index k = 0; k < k_; ++k) {
            weight[static_cast<std::size_t>(k)] = cluster_weight(k);
            const bool is_empty = count_[static_cast<std::size_t>(k)] == 0;
            if (is_empty) empty.push_back(k);
            for (Index j = 0; j < d_; ++j) {
                const auto [numerator, denominator] = mean_terms(k, j);
                if (reset)
                    centroids(k, j) = static_cast<float>(numerator / std::max(denominator, floor));
                else if (!is_empty && denominator > 0.0)
                    centroids(k, j) = static_cast<float>(numerator / denominator);
            }
        }
        stats.empty_clusters = static_cast<Index>(empty.size());
        const auto [lightest, heaviest] = std::minmax_element(weight.begin(), weight.end());
        stats.smallest_cluster_weight = *lightest;
        stats.largest_cluster_weight = *heaviest;
        if (!reset && !empty.empty()) split_heaviest(assignment, centroids, empty, weight);
    }

    void split_heaviest(std::span<const std::int32_t> assignment, MatrixXf& centroids,
                        const std::vector<Index>& empty, std::vector<double> weight) {
        // Members of every cluster, in increasing point index (counting sort).
        std::vector<Index> offset(static_cast<std::size_t>(k_) + 1, 0);
        for (Index k = 0; k < k_; ++k)
            offset[static_cast<std::size_t>(k) + 1] =
                offset[static_cast<std::size_t>(k)] + count_[static_cast<std::size_t>(k)];
        std::vector<Index> members(static_cast<std::size_t>(n_));
        {
            std::vector<Index> fill(offset.begin(), offset.end() - 1);
            for (Index i = 0; i < n_; ++i)
                members[static_cast<std::size_t>(
                    fill[static_cast<std::size_t>(assignment[static_cast<std::size_t>(i)])]++)] = i;
        }
        std::vector<char> splittable(static_cast<std::size_t>(k_));
        for (Index k = 0; k < k_; ++k)
            splittable[static_cast<std::size_t>(k)] = count_[static_cast<std::size_t>(k)] > 0;
        std::vector<char> used(static_cast<std::size_t>(n_), 0);
        for (Index e : empty) {
            for (;;) {
                Index h = -1;
                for (Index k = 0; k < k_; ++k)
                    if (splittable[static_cast<std::size_t>(k)] &&
                        (h < 0 ||
                         weight[static_cast<std::size_t>(k)] > weight[static_cast<std::size_t>(h)]))
                        h = k;
                if (h < 0) break;  // nothing can be split: the empty centroid stays
                Index farthest = -1;
                double farthest_distance = 0.0;
                for (Index m = offset[static_cast<std::size_t>(h)];
                     m < offset[static_cast<std::size_t>(h) + 1]; ++m) {
                    const Index i = members[static_cast<std::size_t>(m)];
                    if (used[static_cast<std::size_t>(i)]) continue;
                    const double dist = weighted_distance(points_, weights_, i, centroids.row(h));
                    if (dist > farthest_distance) {
                        farthest_distance = dist;
                        farthest = i;
                    }
                }
                if (farthest < 0) {
                    splittable[static_cast<std::size_t>(h)] = 0;
                    continue;
                }
                for (Index j = 0; j < d_; ++j)
                    centroids(e, j) =
                        static_cast<float>(0.5 * (static_cast<double>(centroids(h, j)) +
                                                  static_cast<double>(points_(farthest, j))));
                used[static_cast<std::size_t>(farthest)] = 1;
                weight[static_cast<std::size_t>(h)] *= 0.5;
                break;
            }
        }
    }

    const Assign& assign_;
    ConstMatrixRef points_;
    Weights weights_;
    const KMeansParameters& p_;
    Index n_;
    Index d_;
    Index k_;
    MatrixXd sum_;
    MatrixXd weight_;
    std::vector<Index> count_;
    std::optional<BoundedAssignment> bounded_;
};

/// Centroid groups for bounded E-steps of kmeans() (0: plain E-steps), from the parameters and
/// the shapes only.
template <AssignmentBackend Assign>
Index kmeans_bound_groups(const KMeansParameters& p, const Assign& assign, Index n, Index d) {
    if constexpr (std::same_as<Assign, CpuAssignment>) {
        if (p.acceleration == KMeansAcceleration::none) return 0;
        if (resolve_assignment_method(assign.method, p.k, d) != AssignmentMethod::direct) return 0;
        if (p.acceleration == KMeansAcceleration::automatic &&
            (p.k < 512 || p.k * d < 4096 ||
             static_cast<double>(n) * static_cast<double>(p.k) * static_cast<double>(d) <
                 static_cast<double>(1 << 22)))
            return 0;
        return bounded_assignment_groups(n, p.k, p.bounds_memory);
    } else {
        (void)p, (void)assign, (void)n, (void)d;
        return 0;
    }
}

inline Index count_empty(std::span<const std::int32_t> assignment, Index k) {
    std::vector<char> seen(static_cast<std::size_t>(k), 0);
    for (std::int32_t a : assignment) seen[static_cast<std::size_t>(a)] = 1;
    return static_cast<Index>(std::count(seen.begin(), seen.end(), 0));
}

/// kmeans() without the argument checks.
template <AssignmentBackend Assign>
KMeansResult run_kmeans(ConstMatrixRef points, const Weights& weights, const KMeansParameters& p,
                        const Assign& assign) {
    const auto start = std::chrono::steady_clock::now();
    std::optional<ClusterSerialScope> serial;
    if (!p.parallel) serial.emplace();

    const Index n = points.rows();
    const Index d = points.cols();
    KMeansResult result;
    Rng rng(p.seed);

    // The points EM runs on: all, or a seeded subsample (with its weights).
    const bool subsampled = p.subsample > 0 && p.subsample < n;
    MatrixXf sub_points;
    MatrixXf sub_weights;
    Weights fit_weights = weights;
    if (subsampled) {
        std::vector<Index> rows = sample_without_replacement(n, p.subsample, rng);
        std::sort(rows.begin(), rows.end());
        sub_points = gather_rows(points, rows);
        if (weights.kind() == WeightKind::per_point || weights.kind() == WeightKind::elementwise) {
            sub_weights.resize(p.subsample, weights.kind() == WeightKind::per_point ? 1 : d);
            for (Index j = 0; j < sub_weights.cols(); ++j)
                for (Index r = 0; r < p.subsample; ++r)
                    sub_weights(r, j) = weights(rows[static_cast<std::size_t>(r)], j);
            fit_weights = weights.kind() == WeightKind::per_point
                              ? Weights::per_point(sub_weights.col(0))
                              : Weights::elementwise(sub_weights);
        }
    }
    const ConstMatrixRef fit_points = subsampled ? ConstMatrixRef(sub_points) : points;
    result.subsampled = subsampled;
    result.points_used = fit_points.rows();

    const auto seeding_start = std::chrono::steady_clock::now();
    result.centroids = seed_centroids(p.seeding, fit_points, fit_weights, p.k, rng);
    result.seeding_seconds = seconds_since(seeding_start);

    KMeansEm<Assign> em(fit_points, fit_weights, p, assign,
                        kmeans_bound_groups(p, assign, fit_points.rows(), d));
    std::vector<std::int32_t> fit_assignment;
    const bool fixed_point = em.run(result.centroids, fit_assignment, result);
    result.converged = result.converged || fixed_point;

    // The final E-step: all points against the final centroids (the bounded E-steps continue).
    if (fixed_point && !subsampled) {
        result.assignment = std::move(fit_assignment);
    } else if (!subsampled) {
        result.assignment.assign(static_cast<std::size_t>(n), 0);
        em.e_step(result.centroids, result.assignment);
    } else {
        result.assignment.assign(static_cast<std::size_t>(n), 0);
        assign.nearest_centroid(points, result.centroids, weights, result.assignment);
    }
    result.bound_groups = em.bound_groups();
    result.assignment_method = resolve_assignment_method(p.assignment, p.k, d);
    result.objective = KMeansEm<Assign>::objective(points, weights, result.centroids, result.assignment);
    result.empty_clusters = count_empty(result.assignment, p.k);
    result.seconds = seconds_since(start);
    return result;
}

}  // namespace detail

/// The CPU assignment backend kmeans() uses by default: parameters.assignment, with parallel
/// chunks of points allowed when parameters.parallel.
inline CpuAssignment default_assignment(const KMeansParameters& parameters) {
    return CpuAssignment{parameters.assignment, parameters.parallel};
}

/// Weighted k-means of the N x D `points` (rows are points), E-steps by `assign`. See the top of
/// this header.
template <AssignmentBackend Assign>
KMeansResult kmeans(ConstMatrixRef points, const Weights& weights,
                    const KMeansParameters& parameters, const Assign& assign) {
    detail::check_kmeans_arguments(points, weights, parameters);
    return detail::run_kmeans(points, weights, parameters, assign);
}

/// Weighted k-means with the CPU kernels.
inline KMeansResult kmeans(ConstMatrixRef points, const Weights& weights,
                           const KMeansParameters& parameters) {
    return kmeans(points, weights, parameters, default_assignment(parameters));
}

/// Unweighted k-means.
inline KMeansResult kmeans(ConstMatrixRef points, const KMeansParameters& parameters) {
    return kmeans(points, Weights{}, parameters);
}

/// One problem of kmeans_batch: a view of column-major float points (a MatrixXf, a Map or a
/// block of one; the memory must outlive the call) and their weights.
struct KMeansProblem {
    Eigen::Map<const MatrixXf, 0, Eigen::OuterStride<>> points;
    Weights weights;

    template <class Derived>
    KMeansProblem(const Eigen::DenseBase<Derived>& p, Weights w = {})  // NOLINT: implicit by design
        : points(p.derived().data(), p.rows(), p.cols(),
                 Eigen::OuterStride<>(p.derived().outerStride())),
          weights(w) {
        static_assert(detail::is_viewable_float_storage<Derived> &&
                          !bool(Derived::Flags & Eigen::RowMajorBit),
                      "vqlib: KMeansProblem needs column-major float storage with direct access "
                      "(MatrixXf, Map, block); evaluate expressions into a MatrixXf first");
        VQLIB_CHECK(p.derived().innerStride() == 1, invalid_argument,
                    "KMeansProblem: inner stride = ", p.derived().innerStride(),
                    ": expected contiguous columns");
    }
};

/// kmeans() of every problem with the same parameters (and seed), in parallel over problems,
/// each problem on one thread: results[i] == kmeans(problems[i].points, problems[i].weights,
/// parameters) bit for bit. All problems are checked first; an error names the problem.
inline std::vector<KMeansResult> kmeans_batch(std::span<const KMeansProblem> problems,
                                              const KMeansParameters& parameters) {
    for (std::size_t i = 0; i < problems.size(); ++i) {
        const auto prefix = [&](const error& e) {
            return detail::concat("kmeans_batch problem ", i, ": ",
                                  std::string(e.what()).substr(std::string("vqlib: ").size()));
        };
        try {
            detail::check_kmeans_arguments(problems[i].points, problems[i].weights, parameters);
        } catch (const invalid_argument& e) {
            throw invalid_argument(prefix(e));
        } catch (const shape_error& e) {
            throw shape_error(prefix(e));
        } catch (const numerical_error& e) {
            throw numerical_error(prefix(e));
        }
    }
    std::vector<KMeansResult> results(problems.size());
    detail::run_chunks(static_cast<Index>(problems.size()), parameters.parallel, [&](Index i) {
        detail::ClusterSerialScope serial;
        const KMeansProblem& problem = problems[static_cast<std::size_t>(i)];
        results[static_cast<std::size_t>(i)] = detail::run_kmeans(
            problem.points, problem.weights, parameters, default_assignment(parameters));
    });
    return results;
}

}  // namespace vqlib
