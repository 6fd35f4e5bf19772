#pragma once
// Exact E-steps pruned by distance bounds (Yinyang k-means, Ding et al. 2015), for kmeans().
//
// Plain Lloyd computes every point's distance to every centroid in every E-step (N K D terms).
// Between two E-steps a centroid moves by its drift delta_k = ||c_k(t) - c_k(t-1)||, and by the
// triangle inequality no point's distance to it changes by more. Centroids are split once into T
// groups (k-means of the first centroids into T clusters, so a group is compact) and every point
// keeps one lower bound per group: lb_g <= the distance to any centroid of g other than its own.
// Each E-step lowers every bound by its group's largest drift and computes the point's exact
// distance to its current centroid (f_a); only the groups whose bound does not clear it are
// searched, with the direct kernel's own arithmetic (cluster/assignment_kernels.hpp, top-2
// variant, which also yields the bounds for the next step). A point all of whose bounds clear
// f_a keeps its centroid without any other distance.
//
// Exact, not approximate. The result is bit for bit the plain direct kernel's argmin over all K
// (ties to the lowest index), because every decision allows for float32 rounding: a centroid is
// left out only if its true distance t satisfies t^2 > (f_a + eta) / (1 - gamma), where the
// kernel's squared distance f of any true t obeys |f - t^2| <= gamma t^2 + eta (gamma =
// (D + 8) 2^-24 covers the D-term sum of rounded squares and weights; eta = D 2^-120 covers
// underflow), so its float32 distance is strictly larger than the winner's. Bounds are derived
// from kernel distances the same way (sqrt((f - eta) / (1 + gamma))) and every bound update
// rounds towards safety (drifts in double, rounded up; subtractions with a 1e-6 relative slack).
// The searched candidates are compared by (distance, original index), as the plain kernel does.
//
// Metrics. none and per-point weights: Euclidean (per-point weights do not change the argmin).
// Per-coordinate weights lambda: the weighted norm sqrt(sum_j lambda_j v_j^2), drifts in it.
// Elementwise weights: each point's own norm, bounded by sqrt(max_j omega_nj) times the Euclidean
// one, so a point's bounds drop by that factor times the Euclidean drifts.
//
// Memory: T floats per point (T <= 128, and at most 1 GiB of bounds by default) plus O(N + K D).
// Work is cut into fixed chunks of points; every point's result depends on that point alone, so
// results never depend on the thread count.
#include <vqlib/cluster/assignment.hpp>
#include <vqlib/cluster/assignment_kernels.hpp>
#include <vqlib/cluster/execution.hpp>
#include <vqlib/cluster/weights.hpp>
#include <vqlib/core/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

namespace vqlib::detail {

/// Points per chunk of the bounded E-step.
inline constexpr Index kBoundedChunkPoints = 2048;

/// The number of bound groups for n points and k centroids: k / 128 within [1, 128] (measured on
/// 1M 8-D points: 32 groups beat 16 and 64 at k = 4096; at k = 65536, 128 groups prune more than
/// 32 or 64), and at most `memory_bytes` of bounds (4 bytes per point and group).
inline Index bounded_assignment_groups(Index n, Index k, std::size_t memory_bytes) {
    const Index by_memory =
        static_cast<Index>(memory_bytes / (4 * static_cast<std::size_t>(std::max<Index>(1, n))));
    return std::max<Index>(1, std::min(std::clamp<Index>(k / 128, 1, 128), by_memory));
}

class BoundedAssignment {
public:
    /// For `points` (N x D, read in place, kept by reference) with `weights`; `groups` bound
    /// groups (bounded_assignment_groups()).
    BoundedAssignment(ConstMatrixRef points, const Weights& weights, Index groups, bool parallel)
        : points_(points),
          weights_(weights),
          n_(points.rows()),
          d_(points.cols()),
          requested_groups_(std::max<Index>(1, groups)),
          parallel_(parallel),
          mode_(kernel_weights(weights.kind())) {
        const double u = std::ldexp(1.0, -24);
        gamma_ = static_cast<double>(d_ + 8) * u;
        eta_ = static_cast<double>(d_) * std::ldexp(1.0, -120);
        eta_f_ = static_cast<float>(eta_ * 2.0);
        shrink_ = static_cast<float>(1.0 / (1.0 + gamma_) * (1.0 - 1e-7));
        if (weights_.kind() == WeightKind::elementwise) {
            scale_.resize(static_cast<std::size_t>(n_));
            for (Index i = 0; i < n_; ++i) {
                float most = 0.0f;
                for (Index j = 0; j < d_; ++j) most = std::max(most, weights_(i, j));
                // Rounded up: the factor must not understate the point's norm.
                scale_[static_cast<std::size_t>(i)] =
                    static_cast<float>(std::sqrt(static_cast<double>(most)) * (1.0 + 1e-6));
            }
        }
    }

    /// The nearest centroid of every point for `centroids` (K x D; the same K at every call).
    /// The first call searches all centroids; later ones use the bounds of the call before.
    void assign(ConstMatrixRef centroids, std::span<std::int32_t> out) {
        if (!started_) {
            start(centroids);
        } else {
            update_centroids(centroids);
        }
        const Index chunks = (n_ + kBoundedChunkPoints - 1) / kBoundedChunkPoints;
        std::vector<double> evaluated(static_cast<std::size_t>(chunks), 0.0);
        const bool big = static_cast<double>(n_) * static_cast<double>(k_) *
                             static_cast<double>(d_) >= kAssignmentParallelWork;
        run_chunks(chunks, parallel_ && big,
                   [&](Index c) { evaluated[static_cast<std::size_t>(c)] = run_chunk(c); });
        distances_computed_ = 0.0;
        for (double e : evaluated) distances_computed_ += e;
        for (Index i = 0; i < n_; ++i)
            out[static_cast<std::size_t>(i)] =
                static_cast<std::int32_t>(perm_[static_cast<std::size_t>(
                    assigned_[static_cast<std::size_t>(i)])]);
        started_ = true;
    }

    /// Point-centroid distances the last assign() computed (plain Lloyd: N K).
    double distances_computed() const { return distances_computed_; }
    /// Centroid groups (after the first assign(); before it, the number asked for).
    Index groups() const {
        return group_begin_.empty() ? requested_groups_ : static_cast<Index>(group_begin_.size()) - 1;
    }

private:
    // ---- centroid groups ------------------------------------------------------------------------

    // Groups from a few Lloyd iterations on the centroids (unweighted, strided seeds, the direct
    // kernel), then the internal order: by group, and by original index within a group.
    void start(ConstMatrixRef centroids) {
        k_ = centroids.rows();
        const Index t = std::min(requested_groups_, k_);
        std::vector<std::int32_t> group(static_cast<std::size_t>(k_), 0);
        if (t > 1) {
            MatrixXf centers(t, d_);
            for (Index g = 0; g < t; ++g) centers.row(g) = centroids.row(g * k_ / t);
            for (int it = 0; it < 5; ++it) {
                assign_nearest(centroids, centers, {}, group, {}, {AssignmentMethod::direct, false});
                MatrixXd sum = MatrixXd::Zero(t, d_);
                std::vector<Index> count(static_cast<std::size_t>(t), 0);
                for (Index k = 0; k < k_; ++k) {
                    sum.row(group[static_cast<std::size_t>(k)]) += centroids.row(k).cast<double>();
                    ++count[static_cast<std::size_t>(group[static_cast<std::size_t>(k)])];
                }
                for (Index g = 0; g < t; ++g)
                    if (count[static_cast<std::size_t>(g)] > 0)
                        centers.row(g) =
                            (sum.row(g) / static_cast<double>(count[static_cast<std::size_t>(g)]))
                                .cast<float>();
            }
            assign_nearest(centroids, centers, {}, group, {}, {AssignmentMethod::direct, false});
        }
        // Counting sort by group (stable: original order within a group); empty groups vanish.
        std::vector<Index> offset(static_cast<std::size_t>(t) + 1, 0);
        for (Index k = 0; k < k_; ++k) ++offset[static_cast<std::size_t>(group[static_cast<std::size_t>(k)]) + 1];
        for (Index g = 0; g < t; ++g)
            offset[static_cast<std::size_t>(g) + 1] += offset[static_cast<std::size_t>(g)];
        perm_.assign(static_cast<std::size_t>(k_), 0);
        inv_.assign(static_cast<std::size_t>(k_), 0);
        {
            std::vector<Index> fill(offset.begin(), offset.end() - 1);
            for (Index k = 0; k < k_; ++k) {
                const Index r = fill[static_cast<std::size_t>(group[static_cast<std::size_t>(k)])]++;
                perm_[static_cast<std::size_t>(r)] = k;
                inv_[static_cast<std::size_t>(k)] = static_cast<std::int32_t>(r);
            }
        }
        group_begin_.assign(1, 0);
        for (Index g = 0; g < t; ++g)
            if (offset[static_cast<std::size_t>(g) + 1] > offset[static_cast<std::size_t>(g)])
                group_begin_.push_back(offset[static_cast<std::size_t>(g) + 1]);
        const Index groups = static_cast<Index>(group_begin_.size()) - 1;
        group_of_.assign(static_cast<std::size_t>(k_), 0);
        for (Index g = 0; g < groups; ++g)
            for (Index r = group_begin_[static_cast<std::size_t>(g)];
                 r < group_begin_[static_cast<std::size_t>(g) + 1]; ++r)
                group_of_[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(g);

        rows_.resize(static_cast<std::size_t>(k_ * d_));
        copy_rows(centroids);
        lower_.assign(static_cast<std::size_t>(n_ * groups), 0.0f);
        assigned_.assign(static_cast<std::size_t>(n_), 0);
        drift_.assign(static_cast<std::size_t>(groups), 0.0f);
    }

    // New centroids: each group's largest drift in the bounds' metric (rounded up), then the
    // internal copy.
    void update_centroids(ConstMatrixRef centroids) {
        const Index groups = this->groups();
        const bool per_coordinate = weights_.kind() == WeightKind::per_coordinate;
        for (Index g = 0; g < groups; ++g) {
            double most = 0.0;
            for (Index r = group_begin_[static_cast<std::size_t>(g)];
                 r < group_begin_[static_cast<std::size_t>(g) + 1]; ++r) {
                const Index k = perm_[static_cast<std::size_t>(r)];
                double sum = 0.0;
                for (Index j = 0; j < d_; ++j) {
                    const double v = static_cast<double>(centroids(k, j)) -
                                     static_cast<double>(rows_[static_cast<std::size_t>(r * d_ + j)]);
                    sum += (per_coordinate ? static_cast<double>(weights_.data()[j]) : 1.0) * v * v;
                }
                most = std::max(most, sum);
            }
            drift_[static_cast<std::size_t>(g)] =
                static_cast<float>(std::sqrt(most) * (1.0 + 1e-9) + 1e-300) * (1.0f + 1e-6f);
        }
        copy_rows(centroids);
    }

    // The centroids, row-major in internal order.
    void copy_rows(ConstMatrixRef centroids) {
        for (Index r = 0; r < k_; ++r)
            for (Index j = 0; j < d_; ++j)
                rows_[static_cast<std::size_t>(r * d_ + j)] = centroids(perm_[static_cast<std::size_t>(r)], j);
    }

    // ---- bounds ---------------------------------------------------------------------------------

    // A lower bound on the true distance of a kernel distance f (an overflowed f still says the
    // true squared distance is about FLT_MAX or more), in float: the products and the square
    // root round by at most 2^-24 each, well inside the 1e-6 slack.
    float lower_from(float f) const {
        const float v = (std::min(f, std::numeric_limits<float>::max()) - eta_f_) * shrink_;
        return v > 0.0f ? std::sqrt(v) * (1.0f - 1e-6f) : 0.0f;
    }
    // An upper bound on the true distance of a kernel distance f, rounded up to a float.
    float upper_from(float f) const {
        const double v = std::sqrt((static_cast<double>(f) + eta_) / (1.0 - gamma_)) * (1.0 + 1e-6);
        return v < static_cast<double>(std::numeric_limits<float>::max())
                   ? static_cast<float>(v)
                   : std::numeric_limits<float>::infinity();
    }

    float distance_to(Index i, Index r) const {
        const float* w = weights_.data();
        if (mode_ == KernelWeights::elementwise) w += i;
        return direct_distance(points_.data() + i, points_.outerStride(),
                               rows_.data() + r * d_, d_, mode_, w, weights_.outer_stride());
    }

    // Lowers a point's bounds by its groups' drifts (times s), with the slack that keeps them
    // bounds in float arithmetic; returns the smallest. Written in lanes of 16 for the compiler's
    // vectorizer (a plain min-reduction over floats is not vectorized without -ffast-math).
    float lower_bounds(float* lb, Index groups, float s) const {
        constexpr int L = 16;
        float least[L];
        for (int q = 0; q < L; ++q) least[q] = std::numeric_limits<float>::infinity();
        const float* drift = drift_.data();
        const auto lower = [s](float bound, float group_drift) {
            const float step = s * group_drift;
            float v = bound - step;
            v -= 1e-6f * (bound + step);
            return v > 0.0f ? v : 0.0f;
        };
        Index g = 0;
        for (; g + L <= groups; g += L)
            for (int q = 0; q < L; ++q) {
                const float v = lower(lb[g + q], drift[g + q]);
                lb[g + q] = v;
                least[q] = least[q] < v ? least[q] : v;
            }
        for (; g < groups; ++g) {
            const float v = lower(lb[g], drift[g]);
            lb[g] = v;
            least[0] = least[0] < v ? least[0] : v;
        }
        float m = least[0];
        for (int q = 1; q < L; ++q) m = m < least[q] ? m : least[q];
        return m;
    }

    // ---- one chunk ------------------------------------------------------------------------------

    struct Candidate {
        float f;          // kernel distance of the best centroid found
        std::int32_t r;   // its internal index
        std::int32_t from;  // the group whose search found it (-1: the previous centroid)
        float second;     // that search's second smallest distance
    };

    double run_chunk(Index c) {
        const Index i0 = c * kBoundedChunkPoints;
        const Index m = std::min(n_, i0 + kBoundedChunkPoints) - i0;
        const Index groups = this->groups();
        const bool first = !started_;

        // Which groups each point must search: lists[g * m + 0 .. count[g]).
        std::unique_ptr<std::int32_t[]> lists(new std::int32_t[static_cast<std::size_t>(groups * m)]);
        std::vector<Index> count(static_cast<std::size_t>(groups), 0);
        std::vector<Candidate> best(static_cast<std::size_t>(m));
        std::vector<float> previous(static_cast<std::size_t>(m), 0.0f);
        double evaluated = 0.0;
        if (first) {
            for (Index g = 0; g < groups; ++g) {
                for (Index l = 0; l < m; ++l)
                    lists[static_cast<std::size_t>(g * m + l)] = static_cast<std::int32_t>(l);
                count[static_cast<std::size_t>(g)] = m;
            }
            for (Index l = 0; l < m; ++l)
                best[static_cast<std::size_t>(l)] = {std::numeric_limits<float>::infinity(), -1,
                                                     -1, std::numeric_limits<float>::infinity()};
        }
        for (Index l = 0; l < m && !first; ++l) {
            const Index i = i0 + l;
            const std::int32_t a = assigned_[static_cast<std::size_t>(i)];
            const float fa = distance_to(i, a);
            previous[static_cast<std::size_t>(l)] = fa;
            best[static_cast<std::size_t>(l)] = {fa, a, -1, std::numeric_limits<float>::infinity()};
            const float ub = upper_from(fa);
            const float s = scale_.empty() ? 1.0f : scale_[static_cast<std::size_t>(i)];
            float* lb = lower_.data() + i * groups;
            const float least = lower_bounds(lb, groups, s);
            if (least > ub) continue;  // no other centroid can be as close
            for (Index g = 0; g < groups; ++g) {
                Index& listed = count[static_cast<std::size_t>(g)];
                lists[static_cast<std::size_t>(g * m + listed)] = static_cast<std::int32_t>(l);
                listed += lb[g] <= ub ? 1 : 0;
            }
        }
        evaluated += first ? 0.0 : static_cast<double>(m);

        // Each group's search over the points that need it, with the top-2 kernel. The first
        // call searches every group for every point: the chunk is gathered once.
        const DirectKernelFn kernel = assignment_kernels().top2_for(mode_, d_);
        const bool elementwise = mode_ == KernelWeights::elementwise;
        std::vector<float> x, w, f1, f2;
        std::vector<std::int32_t> r1;
        const auto gather = [&](const std::int32_t* list, Index size, Index padded) {
            x.assign(static_cast<std::size_t>(padded * d_), 0.0f);
            if (elementwise) w.assign(x.size(), 0.0f);
            for (Index j = 0; j < d_; ++j) {
                const float* col = points_.data() + j * points_.outerStride() + i0;
                float* to = x.data() + j * padded;
                for (Index q = 0; q < size; ++q) to[q] = col[list[q]];
                if (elementwise) {
                    const float* wc = weights_.data() + j * weights_.outer_stride() + i0;
                    float* wt = w.data() + j * padded;
                    for (Index q = 0; q < size; ++q) wt[q] = wc[list[q]];
                }
            }
        };
        for (Index g = 0; g < groups; ++g) {
            const std::int32_t* list = lists.get() + g * m;
            const Index listed = count[static_cast<std::size_t>(g)];
            if (listed == 0) continue;
            const Index padded = (listed + kLaneBlock - 1) / kLaneBlock * kLaneBlock;
            if (!first || g == 0) gather(list, listed, padded);
            f1.assign(static_cast<std::size_t>(padded), std::numeric_limits<float>::infinity());
            f2.assign(static_cast<std::size_t>(padded), std::numeric_limits<float>::infinity());
            r1.assign(static_cast<std::size_t>(padded), 0);
            DirectTask task;
            task.points = x.data();
            task.point_stride = padded;
            task.weights = elementwise ? w.data() : weights_.data();
            task.weight_stride = elementwise ? padded : weights_.outer_stride();
            task.centroids = rows_.data();
            task.d = d_;
            task.k_begin = group_begin_[static_cast<std::size_t>(g)];
            task.k_end = group_begin_[static_cast<std::size_t>(g) + 1];
            task.n = padded;
            task.best = f1.data();
            task.index = r1.data();
            task.second = f2.data();
            kernel(task);
            evaluated += static_cast<double>(listed) * static_cast<double>(task.k_end - task.k_begin);

            for (Index q = 0; q < listed; ++q) {
                const Index l = list[q];
                const float m1 = f1[static_cast<std::size_t>(q)];
                const std::int32_t k1 = r1[static_cast<std::size_t>(q)];
                lower_[static_cast<std::size_t>((i0 + l) * groups + g)] = lower_from(m1);
                Candidate& b = best[static_cast<std::size_t>(l)];
                if (!(m1 < std::numeric_limits<float>::infinity())) continue;  // overflowed
                if (k1 == b.r) {  // the same centroid: this search also knows the runner-up
                    b.from = static_cast<std::int32_t>(g);
                    b.second = f2[static_cast<std::size_t>(q)];
                } else if (m1 < b.f || (m1 == b.f && perm_[static_cast<std::size_t>(k1)] <
                                                         perm_[static_cast<std::size_t>(b.r)])) {
                    b = {m1, k1, static_cast<std::int32_t>(g), f2[static_cast<std::size_t>(q)]};
                }
            }
        }

        // The winners, and the bounds their groups need: the runner-up of the winner's search;
        // the previous centroid, if it lost, joins its group's bound.
        for (Index l = 0; l < m; ++l) {
            const Index i = i0 + l;
            Candidate& b = best[static_cast<std::size_t>(l)];
            if (!(b.f < std::numeric_limits<float>::infinity())) {
                // Every distance overflowed: the plain kernel keeps its initial centroid 0.
                b = {b.f, inv_[0], -1, b.f};
            }
            float* lb = lower_.data() + i * groups;
            if (b.from >= 0) lb[b.from] = lower_from(b.second);
            if (!first) {
                const std::int32_t a = assigned_[static_cast<std::size_t>(i)];
                if (b.r != a) {
                    const std::int32_t ga = group_of_[static_cast<std::size_t>(a)];
                    lb[ga] = std::min(lb[ga], lower_from(previous[static_cast<std::size_t>(l)]));
                }
            }
            assigned_[static_cast<std::size_t>(i)] = b.r;
        }
        return evaluated;
    }

    ConstMatrixRef points_;
    Weights weights_;
    Index n_;
    Index d_;
    Index k_ = 0;
    Index requested_groups_;
    bool parallel_;
    KernelWeights mode_;
    double gamma_ = 0.0;
    double eta_ = 0.0;
    float eta_f_ = 0.0f;   // eta, rounded up
    float shrink_ = 1.0f;  // 1 / (1 + gamma), rounded down
    bool started_ = false;
    double distances_computed_ = 0.0;

    std::vector<float> scale_;              // elementwise: sqrt(max_j omega_nj), rounded up
    std::vector<Index> perm_;               // internal index -> original index
    std::vector<std::int32_t> inv_;         // original index -> internal index
    std::vector<std::int32_t> group_of_;    // internal index -> group
    std::vector<Index> group_begin_;        // groups' internal ranges
    std::vector<float> rows_;               // row-major centroids in internal order
    std::vector<float> lower_;              // N x T lower bounds, point-major
    std::vector<std::int32_t> assigned_;    // internal index of each point's centroid
    std::vector<float> drift_;              // per group, in the bounds' metric
};

}  // namespace vqlib::detail
