#pragma once
// Initial centroids for k-means: seeding policies, each a plain struct with
//   static const char* name();
//   MatrixXf seed(ConstMatrixRef points, const Weights& weights, Index k, Rng& rng) const;
// returning K x D centroids for the N x D points (the SeedingPolicy concept).
//
//   MahalanobisSeeding   GPTVQ's (deterministic, unweighted, as the reference): sort the points by
//                        their Mahalanobis distance to the mean and take the points at ranks
//                        round(linspace(0, N-1, K)), from the nearest-to-mean to the farthest.
//   QuantileSeeding      GPTVQ's `cdf` (D = 1 only): the values at ranks round(linspace(0,N-1,K)).
//   KMeansPlusPlusSeeding  proper k-means++ (Arthur & Vassilvitskii): the first centroid a random
//                        point, each next one a point drawn with probability proportional to its
//                        weighted squared distance to the nearest centroid so far. (Not the
//                        reference's variant, which starts at point 0 and samples by distance.)
//   RandomSeeding        K distinct points drawn uniformly.
//   GivenCentroids       centroids the caller provides.
// `Seeding` holds any of them; k-means takes one in its parameters. A custom rule can compute its
// centroids and pass them as GivenCentroids.
#include <vqlib/cluster/execution.hpp>
#include <vqlib/cluster/weights.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/types.hpp>

#include <Eigen/LU>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace vqlib {

template <class S>
concept SeedingPolicy = requires(const S& s, ConstMatrixRef points, const Weights& w, Index k,
                                 Rng& rng) {
    { S::name() } -> std::convertible_to<const char*>;
    { s.seed(points, w, k, rng) } -> std::same_as<MatrixXf>;
};

namespace detail {

inline void check_seeding_arguments(const char* policy, ConstMatrixRef points, Index k) {
    VQLIB_CHECK(points.cols() >= 1, shape_error, policy, " seeding: points have ", points.cols(),
                " columns: expected the dimension d >= 1");
    VQLIB_CHECK(k >= 1, invalid_argument, policy, " seeding: k = ", k, ": expected k >= 1");
    VQLIB_CHECK(k <= points.rows(), invalid_argument, policy, " seeding: k = ", k,
                " is larger than the number of points n = ", points.rows());
}

/// round(linspace(0, n - 1, k)) with halves rounded to even (torch.round), computed exactly in
/// integers. k = 1 gives {0}.
inline std::vector<Index> linspace_ranks(Index n, Index k) {
    std::vector<Index> ranks(static_cast<std::size_t>(k), 0);
    if (k == 1) return ranks;
    for (Index i = 0; i < k; ++i) {
        const Index numerator = i * (n - 1);
        Index q = numerator / (k - 1);
        const Index twice_remainder = 2 * (numerator % (k - 1));
        if (twice_remainder > k - 1 || (twice_remainder == k - 1 && q % 2 == 1)) ++q;
        ranks[static_cast<std::size_t>(i)] = q;
    }
    return ranks;
}

inline MatrixXf gather_rows(ConstMatrixRef points, const std::vector<Index>& rows) {
    MatrixXf out(static_cast<Index>(rows.size()), points.cols());
    for (Index j = 0; j < points.cols(); ++j)
        for (std::size_t r = 0; r < rows.size(); ++r)
            out(static_cast<Index>(r), j) = points(rows[r], j);
    return out;
}

/// `m` distinct indices of [0, n), uniformly (Floyd's algorithm), in a uniformly random order.
inline std::vector<Index> sample_without_replacement(Index n, Index m, Rng& rng) {
    std::vector<Index> picked;
    picked.reserve(static_cast<std::size_t>(m));
    std::unordered_set<Index> seen;
    seen.reserve(static_cast<std::size_t>(m));
    for (Index j = n - m; j < n; ++j) {
        Index t = static_cast<Index>(rng.below(static_cast<std::uint64_t>(j + 1)));
        if (!seen.insert(t).second) {
            t = j;
            seen.insert(t);
        }
        picked.push_back(t);
    }
    // Floyd's order is not random (with m = n it is 0, 1, ...): shuffle.
    for (Index i = m - 1; i > 0; --i)
        std::swap(picked[static_cast<std::size_t>(i)],
                  picked[static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(i + 1)))]);
    return picked;
}

/// Eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations (small D x D
/// covariances; deterministic). Returns false if 100 sweeps do not converge.
inline bool symmetric_eigen(MatrixXd a, Eigen::VectorXd& values, MatrixXd& vectors) {
    const Index d = a.rows();
    vectors = MatrixXd::Identity(d, d);
    const double scale = a.cwiseAbs().maxCoeff();
    bool converged = scale == 0.0;
    for (int sweep = 0; sweep < 100 && !converged; ++sweep) {
        double off = 0.0;
        for (Index q = 1; q < d; ++q)
            for (Index p = 0; p < q; ++p) off = std::max(off, std::abs(a(p, q)));
        if (off <= 1e-15 * scale) {
            converged = true;
            break;
        }
        for (Index q = 1; q < d; ++q)
            for (Index p = 0; p < q; ++p) {
                if (a(p, q) == 0.0) continue;
                const double theta = (a(q, q) - a(p, p)) / (2.0 * a(p, q));
                const double t = (theta >= 0.0 ? 1.0 : -1.0) /
                                 (std::abs(theta) + std::sqrt(theta * theta + 1.0));
                const double c = 1.0 / std::sqrt(t * t + 1.0);
                const double s = t * c;
                for (Index r = 0; r < d; ++r) {  // a <- a J (columns p, q)
                    const double ap = a(r, p);
                    const double aq = a(r, q);
                    a(r, p) = c * ap - s * aq;
                    a(r, q) = s * ap + c * aq;
                }
                for (Index r = 0; r < d; ++r) {  // a <- J^T a (rows p, q)
                    const double ap = a(p, r);
                    const double aq = a(q, r);
                    a(p, r) = c * ap - s * aq;
                    a(q, r) = s * ap + c * aq;
                }
                for (Index r = 0; r < d; ++r) {
                    const double vp = vectors(r, p);
                    const double vq = vectors(r, q);
                    vectors(r, p) = c * vp - s * vq;
                    vectors(r, q) = s * vp + c * vq;
                }
            }
    }
    values = a.diagonal();
    return converged;
}

/// The weighted squared distance of point n to centroid c (row k of `centroids`), in double:
/// the point's term of the k-means objective.
template <class Centroid>
double weighted_distance(ConstMatrixRef points, const Weights& weights, Index n,
                         const Centroid& c) {
    double sum = 0.0;
    for (Index j = 0; j < points.cols(); ++j) {
        const double diff = static_cast<double>(points(n, j)) - static_cast<double>(c(j));
        sum += static_cast<double>(weights(n, j)) * diff * diff;
    }
    return sum;
}

}  // namespace detail

struct MahalanobisSeeding {
    /// Compute the keys in float32 as the reference does (mean, Sigma, its inverse and the
    /// quadratic forms all in single precision), so that near-ties rank as in the reference and
    /// its codebooks are reproduced. Off, the keys are computed in float64 (more accurate).
    bool reference_float32 = false;

    static const char* name() { return "mahalanobis"; }

    MatrixXf seed(ConstMatrixRef points, const Weights& /*unweighted*/, Index k, Rng&) const {
        return detail::gather_rows(points, ranked_points(points, k, reference_float32));
    }

    /// The chosen points, in rank order. With mu the mean and Xc the centered points (double
    /// precision), Sigma = Xc^T Xc (unnormalized) and delta_n = xc_n^T Sigma^+ xc_n, where Sigma^+
    /// is the pseudo-inverse: Sigma^-1 when Sigma is invertible (the reference), and otherwise
    /// the inverse within the span of the data (eigenvalues below 1e-12 of the largest count as
    /// zero), so points confined to a subspace (a constant coordinate, duplicated columns) are
    /// ranked by their spread inside it instead of failing. For D = 1 the key is |x - mu|, as the
    /// reference. Points are sorted by the key with a stable sort and picked at ranks
    /// round(linspace(0, N - 1, K)). With reference_float32 (and D > 1, Sigma invertible in
    /// float), the keys are the reference's float32 computation instead.
    static std::vector<Index> ranked_points(ConstMatrixRef points, Index k,
                                            bool reference_float32 = false) {
        detail::check_seeding_arguments(name(), points, k);
        const Index n = points.rows();
        const Index d = points.cols();
        if (reference_float32 && d > 1) {
            std::vector<double> key;
            if (float32_keys(points, key)) return ranks_of(key, k);
        }
        Eigen::VectorXd mean = Eigen::VectorXd::Zero(d);
        for (Index j = 0; j < d; ++j)
            for (Index i = 0; i < n; ++i) mean(j) += static_cast<double>(points(i, j));
        mean /= static_cast<double>(n);

        std::vector<double> key(static_cast<std::size_t>(n));
        if (d == 1) {
            for (Index i = 0; i < n; ++i)
                key[static_cast<std::size_t>(i)] =
                    std::abs(static_cast<double>(points(i, 0)) - mean(0));
        } else {
            MatrixXd sigma = MatrixXd::Zero(d, d);
            Eigen::VectorXd xc(d);
            for (Index i = 0; i < n; ++i) {
                for (Index j = 0; j < d; ++j) xc(j) = static_cast<double>(points(i, j)) - mean(j);
                for (Index b = 0; b < d; ++b)
                    for (Index a = b; a < d; ++a) sigma(a, b) += xc(a) * xc(b);
            }
            for (Index b = 0; b < d; ++b)
                for (Index a = 0; a < b; ++a) sigma(a, b) = sigma(b, a);
            Eigen::VectorXd lambda;
            MatrixXd vectors;
            VQLIB_CHECK(detail::symmetric_eigen(sigma, lambda, vectors), numerical_error,
                        "mahalanobis seeding: the eigendecomposition of the ", d, "x", d,
                        " covariance did not converge");
            const double cutoff = 1e-12 * lambda.maxCoeff();
            // Whitening: delta_n = |P^T xc_n|^2 with P = V_r diag(lambda_r^-1/2) over the kept r.
            std::vector<Index> kept;
            for (Index r = 0; r < d; ++r)
                if (lambda(r) > cutoff && lambda(r) > 0.0) kept.push_back(r);
            MatrixXd whiten(d, static_cast<Index>(kept.size()));
            for (std::size_t r = 0; r < kept.size(); ++r)
                whiten.col(static_cast<Index>(r)) =
                    vectors.col(kept[r]) / std::sqrt(lambda(kept[r]));
            constexpr Index chunk = 8192;
            const bool parallel = n * d * d >= (Index{1} << 18);
            detail::run_chunks((n + chunk - 1) / chunk, parallel, [&](Index c) {
                Eigen::VectorXd centered(d);
                for (Index i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) {
                    for (Index j = 0; j < d; ++j)
                        centered(j) = static_cast<double>(points(i, j)) - mean(j);
                    double delta = 0.0;
                    for (Index r = 0; r < whiten.cols(); ++r) {
                        double y = 0.0;
                        for (Index j = 0; j < d; ++j) y += whiten(j, r) * centered(j);
                        delta += y * y;
                    }
                    key[static_cast<std::size_t>(i)] = delta;
                }
            });
        }
        return ranks_of(key, k);
    }

private:
    /// The reference's keys in float32: mu = mean, Xc = X - mu, Sigma = Xc^T Xc, Lambda =
    /// Sigma^-1, delta_n = (xc_n Lambda) xc_n^T. False when Sigma is not invertible in float.
    static bool float32_keys(ConstMatrixRef points, std::vector<double>& key) {
        const Eigen::RowVectorXf mean = points.colwise().mean();
        const MatrixXf centered = points.rowwise() - mean;
        const MatrixXf sigma = centered.transpose() * centered;
        const MatrixXf lambda = sigma.inverse();
        if (!lambda.allFinite()) return false;
        key.resize(static_cast<std::size_t>(points.rows()));
        for (Index i = 0; i < points.rows(); ++i) {
            const float delta = (centered.row(i) * lambda * centered.row(i).transpose())(0, 0);
            key[static_cast<std::size_t>(i)] = static_cast<double>(delta);
        }
        return true;
    }

    static std::vector<Index> ranks_of(const std::vector<double>& key, Index k) {
        const Index n = static_cast<Index>(key.size());
        // Ascending key, ties in point order (a stable sort).
        std::vector<std::pair<double, Index>> order(static_cast<std::size_t>(n));
        for (Index i = 0; i < n; ++i)
            order[static_cast<std::size_t>(i)] = {key[static_cast<std::size_t>(i)], i};
        std::sort(order.begin(), order.end());
        std::vector<Index> chosen;
        chosen.reserve(static_cast<std::size_t>(k));
        for (Index rank : detail::linspace_ranks(n, k))
            chosen.push_back(order[static_cast<std::size_t>(rank)].second);
        return chosen;
    }
};

struct QuantileSeeding {
    static const char* name() { return "quantile"; }

    /// D = 1 only (invalid_argument otherwise): the sorted values at ranks
    /// round(linspace(0, N - 1, K)); unweighted, as the reference's `cdf`.
    MatrixXf seed(ConstMatrixRef points, const Weights& /*unweighted*/, Index k, Rng&) const {
        detail::check_seeding_arguments(name(), points, k);
        VQLIB_CHECK(points.cols() == 1, invalid_argument, "quantile seeding: d = ", points.cols(),
                    ": expected one-dimensional points (d = 1)");
        std::vector<float> values(points.col(0).begin(), points.col(0).end());
        std::sort(values.begin(), values.end());
        MatrixXf centroids(k, 1);
        const std::vector<Index> ranks = detail::linspace_ranks(points.rows(), k);
        for (Index i = 0; i < k; ++i)
            centroids(i, 0) = values[static_cast<std::size_t>(ranks[static_cast<std::size_t>(i)])];
        return centroids;
    }
};

struct RandomSeeding {
    static const char* name() { return "random"; }

    /// K distinct points drawn uniformly, in random order.
    MatrixXf seed(ConstMatrixRef points, const Weights& /*unweighted*/, Index k, Rng& rng) const {
        detail::check_seeding_arguments(name(), points, k);
        return detail::gather_rows(points,
                                   detail::sample_without_replacement(points.rows(), k, rng));
    }
};

struct KMeansPlusPlusSeeding {
    static const char* name() { return "kmeans++"; }

    /// The first centroid is a point drawn with probability proportional to its total weight
    /// sum_j omega_nj (uniformly if unweighted or if all weights are 0); each next one a point
    /// drawn with probability proportional to its weighted squared distance to the nearest
    /// centroid so far, sum_j omega_nj (x_nj - c_j)^2 (the point's term of the objective). If
    /// every distance is 0 (fewer distinct points than K), the next point is drawn uniformly
    /// among those not chosen yet. Cost: K passes over the points, O(N K D); subsample large
    /// problems. Deterministic for a seed, and independent of the thread count (fixed chunks,
    /// partial sums added in chunk order).
    MatrixXf seed(ConstMatrixRef points, const Weights& weights, Index k, Rng& rng) const {
        detail::check_seeding_arguments(name(), points, k);
        const Index n = points.rows();
        const Index d = points.cols();
        constexpr Index chunk = 8192;
        const Index chunks = (n + chunk - 1) / chunk;
        const bool parallel = n * d >= (Index{1} << 16);

        std::vector<double> distance(static_cast<std::size_t>(n));
        std::vector<double> chunk_sum(static_cast<std::size_t>(chunks));
        std::vector<char> chosen(static_cast<std::size_t>(n), 0);
        MatrixXf centroids(k, d);

        // The first point: proportional to the total weight of each point.
        for (Index i = 0; i < n; ++i)
            distance[static_cast<std::size_t>(i)] =
                weights.is_none() ? 1.0 : weights.point_total(i, d);
        for (Index c = 0; c < chunks; ++c)
            chunk_sum[static_cast<std::size_t>(c)] =
                sum_range(distance, c * chunk, std::min(n, (c + 1) * chunk));
        Index pick = draw(distance, chunk_sum, chunk, chosen, rng);
        for (Index step = 0;; ++step) {
            chosen[static_cast<std::size_t>(pick)] = 1;
            centroids.row(step) = points.row(pick);
            if (step + 1 == k) break;
            const auto c_new = centroids.row(step);
            detail::run_chunks(chunks, parallel, [&](Index c) {
                const Index i0 = c * chunk;
                const Index m = std::min(n, i0 + chunk) - i0;
                std::vector<double> candidate(static_cast<std::size_t>(m), 0.0);
                add_weighted_distances(points, weights, c_new, i0, candidate);
                double* current = distance.data() + i0;
                for (Index i = 0; i < m; ++i)
                    if (step == 0 || candidate[static_cast<std::size_t>(i)] < current[i])
                        current[i] = candidate[static_cast<std::size_t>(i)];
                chunk_sum[static_cast<std::size_t>(c)] = sum_range(distance, i0, i0 + m);
            });
            pick = draw(distance, chunk_sum, chunk, chosen, rng);
        }
        return centroids;
    }

private:
    // out[i] += sum_j omega_{i0+i, j} (x_{i0+i, j} - c_j)^2, coordinate by coordinate.
    template <class Centroid>
    static void add_weighted_distances(ConstMatrixRef points, const Weights& weights,
                                       const Centroid& c, Index i0, std::vector<double>& out) {
        const Index m = static_cast<Index>(out.size());
        for (Index j = 0; j < points.cols(); ++j) {
            const float* x = points.col(j).data() + i0;
            const double cj = c(j);
            const float* w = nullptr;
            if (weights.kind() == WeightKind::per_point) w = weights.data() + i0;
            if (weights.kind() == WeightKind::elementwise)
                w = weights.data() + j * weights.outer_stride() + i0;
            const double lambda =
                weights.kind() == WeightKind::per_coordinate ? weights.data()[j] : 1.0;
            for (Index i = 0; i < m; ++i) {
                const double diff = static_cast<double>(x[i]) - cj;
                const double omega = w != nullptr ? static_cast<double>(w[i]) : lambda;
                out[static_cast<std::size_t>(i)] += omega * diff * diff;
            }
        }
    }

    static double sum_range(const std::vector<double>& v, Index begin, Index end) {
        double s = 0.0;
        for (Index i = begin; i < end; ++i) s += v[static_cast<std::size_t>(i)];
        return s;
    }

    // A point with probability proportional to `mass`, or uniformly among the points not chosen
    // yet when the mass is all zero.
    static Index draw(const std::vector<double>& mass, const std::vector<double>& chunk_sum,
                      Index chunk, const std::vector<char>& chosen, Rng& rng) {
        const Index n = static_cast<Index>(mass.size());
        double total = 0.0;
        for (double s : chunk_sum) total += s;
        if (!(total > 0.0)) {
            Index remaining = 0;
            for (char c : chosen) remaining += c ? 0 : 1;
            Index r = static_cast<Index>(rng.below(static_cast<std::uint64_t>(remaining)));
            for (Index i = 0; i < n; ++i)
                if (!chosen[static_cast<std::size_t>(i)] && r-- == 0) return i;
            return n - 1;  // not reached: remaining > 0 since k <= n
        }
        double target = rng.uniform() * total;
        Index c = 0;
        const Index chunks = static_cast<Index>(chunk_sum.size());
        while (c + 1 < chunks && target >= chunk_sum[static_cast<std::size_t>(c)]) {
            target -= chunk_sum[static_cast<std::size_t>(c)];
            ++c;
        }
        // Within the chunk, the same running sum that produced its chunk_sum.
        const Index i1 = std::min(n, (c + 1) * chunk);
        double running = 0.0;
        Index last_positive = -1;
        for (Index i = c * chunk; i < i1; ++i) {
            const double m = mass[static_cast<std::size_t>(i)];
            if (m <= 0.0) continue;
            running += m;
            last_positive = i;
            if (target < running) return i;
        }
        if (last_positive >= 0) return last_positive;  // rounding pushed the target to the end
        // The chunk has no mass (rounding in the chunk walk): the last point with mass anywhere.
        for (Index i = n - 1; i >= 0; --i)
            if (mass[static_cast<std::size_t>(i)] > 0.0) return i;
        return 0;
    }
};

struct GivenCentroids {
    MatrixXf centroids;

    static const char* name() { return "given"; }

    /// The centroids as given: K x D and finite (shape_error / numerical_error otherwise).
    MatrixXf seed(ConstMatrixRef points, const Weights&, Index k, Rng&) const {
        detail::check_seeding_arguments(name(), points, k);
        check_shape("given centroids", centroids, k, points.cols());
        check_finite("given centroids", centroids);
        return centroids;
    }
};

/// One of the seeding policies.
using Seeding = std::variant<MahalanobisSeeding, KMeansPlusPlusSeeding, QuantileSeeding,
                             RandomSeeding, GivenCentroids>;

static_assert(SeedingPolicy<MahalanobisSeeding> && SeedingPolicy<KMeansPlusPlusSeeding> &&
                  SeedingPolicy<QuantileSeeding> && SeedingPolicy<RandomSeeding> &&
                  SeedingPolicy<GivenCentroids>,
              "vqlib: every seeding policy provides name() and seed(points, weights, k, rng)");

inline const char* seeding_name(const Seeding& seeding) {
    return std::visit([](const auto& policy) { return policy.name(); }, seeding);
}

/// K x D initial centroids from `seeding`.
inline MatrixXf seed_centroids(const Seeding& seeding, ConstMatrixRef points,
                               const Weights& weights, Index k, Rng& rng) {
    return std::visit([&](const auto& policy) { return policy.seed(points, weights, k, rng); },
                      seeding);
}

}  // namespace vqlib
