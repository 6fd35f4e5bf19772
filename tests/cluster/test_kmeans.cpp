#include <vqlib/cluster.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>

#include <catch2/catch.hpp>

#include "../support/cluster.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace {

using vqlib::test::normal_matrix;
using vqlib::test::positive_matrix;
using vqlib::test::ThreadCountScope;
using vqlib::test::WeightFixture;
using Catch::Matchers::Contains;
using vqlib::EmptyClusterPolicy;
using vqlib::Index;
using vqlib::KMeansParameters;
using vqlib::MatrixXf;
using vqlib::WeightKind;
using vqlib::Weights;

// `blobs` well-separated Gaussian clusters of `per_blob` points in d dimensions.
MatrixXf blobs(Index count, Index per_blob, Index d, std::uint64_t seed, float spread = 0.3f) {
    vqlib::Rng rng(seed);
    MatrixXf centers(count, d);
    for (Index b = 0; b < count; ++b)
        for (Index j = 0; j < d; ++j) centers(b, j) = static_cast<float>(10.0 * rng.normal());
    MatrixXf x(count * per_blob, d);
    for (Index i = 0; i < count * per_blob; ++i)
        for (Index j = 0; j < d; ++j)
            x(i, j) = centers(i % count, j) + spread * static_cast<float>(rng.normal());
    return x;
}

double weighted_distance(const MatrixXf& x, Index i, const MatrixXf& c, Index k, const Weights& w) {
    double s = 0.0;
    for (Index j = 0; j < x.cols(); ++j) {
        const double diff = static_cast<double>(x(i, j)) - c(k, j);
        s += static_cast<double>(w(i, j)) * diff * diff;
    }
    return s;
}

double objective(const MatrixXf& x, const MatrixXf& c, const std::vector<std::int32_t>& a,
                 const Weights& w) {
    double s = 0.0;
    for (Index i = 0; i < x.rows(); ++i)
        s += weighted_distance(x, i, c, a[static_cast<std::size_t>(i)], w);
    return s;
}

bool same_bits(const MatrixXf& a, const MatrixXf& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)) == 0;
}

// GPTVQ's kmeans_vq written out plainly: E-step with the direct kernel's float arithmetic
// (brute force), M-step sum(w x) / max(sum(w), 1e-10) in double (unweighted: / max(count, 1)),
// a fixed number of iterations.
MatrixXf reference_em(const MatrixXf& x, const Weights& w, MatrixXf c, int iterations) {
    const Index n = x.rows(), d = x.cols(), k = c.rows();
    std::vector<std::int32_t> a(static_cast<std::size_t>(n));
    for (int it = 0; it < iterations; ++it) {
        a = vqlib::nearest_centroids(x, c, w, {vqlib::AssignmentMethod::direct, false});
        vqlib::MatrixXd num = vqlib::MatrixXd::Zero(k, d), den = vqlib::MatrixXd::Zero(k, d);
        for (Index j = 0; j < d; ++j)
            for (Index i = 0; i < n; ++i) {
                const double wij = w(i, j);
                num(a[static_cast<std::size_t>(i)], j) += w.is_none() ? x(i, j) : wij * x(i, j);
                den(a[static_cast<std::size_t>(i)], j) += w.is_none() ? 1.0 : wij;
            }
        for (Index kk = 0; kk < k; ++kk)
            for (Index j = 0; j < d; ++j)
                c(kk, j) = static_cast<float>(num(kk, j) /
                                              std::max(den(kk, j), w.is_none() ? 1.0 : 1e-10));
    }
    return c;
}

using vqlib::test::kAllKinds;

}  // namespace

TEST_CASE("cluster/kmeans: a converged result is a fixed point of both steps") {
    const MatrixXf x = blobs(6, 40, 3, 1);
    for (WeightKind kind : kAllKinds) {
        for (auto policy :
             {EmptyClusterPolicy::reset_to_zero, EmptyClusterPolicy::split_heaviest}) {
            INFO("weights " << vqlib::to_string(kind) << ", policy " << static_cast<int>(policy));
            const WeightFixture w(kind, x.rows(), x.cols(), 2);
            KMeansParameters p;
            p.k = 6;
            p.seeding = vqlib::KMeansPlusPlusSeeding{};
            p.empty_clusters = policy;
            p.seed = 3;
            const auto r = vqlib::kmeans(x, w.weights, p);
            REQUIRE(r.converged);
            CHECK(r.iterations.size() < 100);
            CHECK(r.points_used == x.rows());
            CHECK_FALSE(r.subsampled);
            // Exhaustive: every point sits at a nearest centroid (per-point weights do not
            // change the argmin).
            const Weights metric = kind == WeightKind::per_point ? Weights{} : w.weights;
            for (Index i = 0; i < x.rows(); ++i) {
                const std::int32_t a = r.assignment[static_cast<std::size_t>(i)];
                const double mine = weighted_distance(x, i, r.centroids, a, metric);
                for (Index k = 0; k < p.k; ++k)
                    CHECK(mine <=
                          weighted_distance(x, i, r.centroids, k, metric) * (1 + 1e-6) + 1e-9);
            }
            // Every centroid is the weighted mean of its points.
            for (Index k = 0; k < p.k; ++k)
                for (Index j = 0; j < x.cols(); ++j) {
                    double num = 0.0, den = 0.0;
                    for (Index i = 0; i < x.rows(); ++i)
                        if (r.assignment[static_cast<std::size_t>(i)] == k) {
                            num += w.weights(i, j) * static_cast<double>(x(i, j));
                            den += w.weights(i, j);
                        }
                    REQUIRE(den > 0.0);
                    CHECK_THAT(r.centroids(k, j), Catch::Matchers::WithinAbs(num / den, 1e-5));
                }
            CHECK_THAT(r.objective, Catch::Matchers::WithinRel(
                                        objective(x, r.centroids, r.assignment, w.weights), 1e-12));
            CHECK(r.empty_clusters == 0);
        }
    }
}

TEST_CASE("cluster/kmeans: the weighted objective never increases") {
    const MatrixXf x = normal_matrix(600, 2, 10);
    for (WeightKind kind : kAllKinds) {
        for (auto policy :
             {EmptyClusterPolicy::reset_to_zero, EmptyClusterPolicy::split_heaviest}) {
            for (std::uint64_t seed = 0; seed < 3; ++seed) {
                INFO("weights " << vqlib::to_string(kind) << ", policy " << static_cast<int>(policy)
                                << ", seed " << seed);
                const WeightFixture w(kind, x.rows(), x.cols(), 20 + seed);
                KMeansParameters p;
                p.k = 24;
                p.max_iterations = 40;
                p.seeding = vqlib::RandomSeeding{};
                p.empty_clusters = policy;
                p.seed = seed;
                const auto r = vqlib::kmeans(x, w.weights, p);
                REQUIRE(!r.iterations.empty());
                // The E-step compares float32 distances, so J can rise by float rounding only.
                for (std::size_t t = 1; t < r.iterations.size(); ++t)
                    CHECK(r.iterations[t].objective <= r.iterations[t - 1].objective * (1 + 1e-6));
                CHECK(r.objective <= r.iterations.back().objective * (1 + 1e-6));
                for (std::size_t t = 0; t < r.iterations.size(); ++t)
                    CHECK(r.iterations[t].iteration == static_cast<int>(t) + 1);
                CHECK(r.iterations.front().reassigned == x.rows());
            }
        }
    }
}

TEST_CASE("cluster/kmeans: reset_to_zero reproduces the reference EM bit for bit") {
    const MatrixXf x = normal_matrix(500, 2, 30);
    const MatrixXf seeds = x.topRows(16);
    for (WeightKind kind : {WeightKind::none, WeightKind::elementwise}) {
        const WeightFixture w(kind, x.rows(), x.cols(), 31);
        KMeansParameters p;
        p.k = 16;
        p.max_iterations = 100;
        p.seeding = vqlib::GivenCentroids{seeds};
        const auto r = vqlib::kmeans(x, w.weights, p);
        const MatrixXf expected = reference_em(x, w.weights, seeds, 100);
        CHECK(same_bits(r.centroids, expected));
        CHECK(r.assignment == vqlib::nearest_centroids(x, expected, w.weights,
                                                       {vqlib::AssignmentMethod::direct, false}));
    }
}

TEST_CASE("cluster/kmeans: an exact fixed point ends the loop without changing the result") {
    const MatrixXf x = blobs(5, 30, 2, 40);
    KMeansParameters p;
    p.k = 5;
    p.seeding = vqlib::KMeansPlusPlusSeeding{};
    const auto all = vqlib::kmeans(x, p);
    REQUIRE(all.converged);
    const int done = static_cast<int>(all.iterations.size());
    for (int iterations : {done, done + 7}) {
        p.max_iterations = iterations;
        const auto r = vqlib::kmeans(x, p);
        CHECK(same_bits(r.centroids, all.centroids));
        CHECK(r.assignment == all.assignment);
        CHECK(r.objective == all.objective);
    }
}

TEST_CASE("cluster/kmeans: a positive tolerance stops on a small relative decrease") {
    const MatrixXf x = normal_matrix(2000, 2, 50);
    KMeansParameters p;
    p.k = 64;
    p.seeding = vqlib::RandomSeeding{};
    p.tolerance = 1e-2;
    const auto r = vqlib::kmeans(x, p);
    REQUIRE(r.converged);
    REQUIRE(r.iterations.size() >= 2);
    const auto& last = r.iterations.back();
    const auto& before = r.iterations[r.iterations.size() - 2];
    CHECK((before.objective - last.objective) / before.objective < 1e-2);
    CHECK_THAT(r.objective,
               Catch::Matchers::WithinRel(objective(x, r.centroids, r.assignment, {}), 1e-12));
}

TEST_CASE("cluster/seeding: Mahalanobis picks the expected points") {
    // Symmetric around 0, so mu = 0 and Sigma = diag(20, 202): delta = x^2/20 + y^2/202.
    MatrixXf x(9, 2);
    x << 0, 0,   // 0: 0
        1, 0,    // 1: 0.05
        -1, 0,   // 2: 0.05
        0, 10,   // 3: 0.495
        0, -10,  // 4: 0.495
        3, 0,    // 5: 0.45
        -3, 0,   // 6: 0.45
        0, 1,    // 7: 0.00495 (a Euclidean ranking would tie it with point 1)
        0, -1;   // 8: 0.00495
    // Sorted (stable): 0, 7, 8, 1, 2, 5, 6, 3, 4.
    using vqlib::MahalanobisSeeding;
    CHECK(MahalanobisSeeding::ranked_points(x, 3) == std::vector<Index>{0, 2, 4});
    CHECK(MahalanobisSeeding::ranked_points(x, 5) == std::vector<Index>{0, 8, 2, 6, 4});
    CHECK(MahalanobisSeeding::ranked_points(x, 4) == std::vector<Index>{0, 1, 5, 4});  // 0, 3, 5, 8
    vqlib::Rng rng(0);
    const MatrixXf c = MahalanobisSeeding{}.seed(x, {}, 3, rng);
    CHECK(c.row(1) == x.row(2));

    // D = 1: sorted by |x - mu| (mu = 1.8): ranks 2, 4, 3, 1, 0.
    MatrixXf v(5, 1);
    v << 5, -1, 2, 0, 3;
    CHECK(MahalanobisSeeding::ranked_points(v, 3) == std::vector<Index>{2, 3, 0});

    // A singular covariance (points on the line y = 2x): the pseudo-inverse ranks them along the
    // line, like the 1-D case.
    MatrixXf line(5, 2);
    line << 5, 10, -1, -2, 2, 4, 0, 0, 3, 6;
    CHECK(MahalanobisSeeding::ranked_points(line, 3) == std::vector<Index>{2, 3, 0});
    // All points equal: every delta is 0, and the stable order picks by rank.
    const MatrixXf same = MatrixXf::Constant(7, 3, 1.5f);
    CHECK(MahalanobisSeeding::ranked_points(same, 3) == std::vector<Index>{0, 3, 6});
}

TEST_CASE("cluster/seeding: linspace ranks round half to even like torch.round") {
    using vqlib::detail::linspace_ranks;
    CHECK(linspace_ranks(4, 3) == std::vector<Index>{0, 2, 3});              // 1.5 -> 2
    CHECK(linspace_ranks(6, 3) == std::vector<Index>{0, 2, 5});              // 2.5 -> 2
    CHECK(linspace_ranks(8, 3) == std::vector<Index>{0, 4, 7});              // 3.5 -> 4
    CHECK(linspace_ranks(100, 5) == std::vector<Index>{0, 25, 50, 74, 99});  // 24.75, 49.5, 74.25
    CHECK(linspace_ranks(10, 1) == std::vector<Index>{0});
    CHECK(linspace_ranks(5, 5) == std::vector<Index>{0, 1, 2, 3, 4});
}

TEST_CASE("cluster/seeding: quantiles of one-dimensional data") {
    MatrixXf v(100, 1);
    vqlib::Rng rng(7);
    std::vector<float> values(100);
    for (int i = 0; i < 100; ++i) values[static_cast<std::size_t>(i)] = static_cast<float>(i);
    for (int i = 99; i > 0; --i)
        std::swap(values[static_cast<std::size_t>(i)],
                  values[rng.below(static_cast<std::uint64_t>(i + 1))]);
    for (int i = 0; i < 100; ++i) v(i, 0) = values[static_cast<std::size_t>(i)];
    const MatrixXf c = vqlib::QuantileSeeding{}.seed(v, {}, 5, rng);
    CHECK(c.col(0) == (vqlib::VectorXf(5) << 0, 25, 50, 74, 99).finished());
    CHECK_THROWS_WITH(vqlib::QuantileSeeding{}.seed(normal_matrix(10, 2, 1), {}, 3, rng),
                      Contains("d = 2"));
}

TEST_CASE("cluster/seeding: k-means++ is deterministic for a seed") {
    const MatrixXf x = normal_matrix(3000, 3, 60);
    const MatrixXf w = positive_matrix(3000, 3, 61);
    for (const Weights& weights : {Weights{}, Weights::elementwise(w)}) {
        vqlib::Rng a(5), b(5), c(6);
        const MatrixXf first = vqlib::KMeansPlusPlusSeeding{}.seed(x, weights, 32, a);
        const MatrixXf again = vqlib::KMeansPlusPlusSeeding{}.seed(x, weights, 32, b);
        const MatrixXf other = vqlib::KMeansPlusPlusSeeding{}.seed(x, weights, 32, c);
        CHECK(same_bits(first, again));
        CHECK_FALSE(same_bits(first, other));
        // Every seed is a distinct data point.
        for (Index k = 0; k < 32; ++k) {
            bool found = false;
            for (Index i = 0; i < x.rows() && !found; ++i) found = x.row(i) == first.row(k);
            CHECK(found);
            for (Index l = 0; l < k; ++l) CHECK(first.row(l) != first.row(k));
        }
    }
    // Fewer distinct points than k: the remaining seeds are drawn among the unchosen points.
    MatrixXf few(20, 2);
    for (Index i = 0; i < 20; ++i) few.row(i) << static_cast<float>(i % 3), 0.0f;
    vqlib::Rng rng(1);
    const MatrixXf c = vqlib::KMeansPlusPlusSeeding{}.seed(few, {}, 10, rng);
    CHECK(c.rows() == 10);
}

TEST_CASE("cluster/seeding: random seeds are distinct points and follow the seed") {
    const MatrixXf x = normal_matrix(50, 2, 70);
    vqlib::Rng a(1), b(1), c(2);
    const MatrixXf s20 = vqlib::RandomSeeding{}.seed(x, {}, 20, a);
    CHECK(same_bits(s20, vqlib::RandomSeeding{}.seed(x, {}, 20, b)));
    CHECK_FALSE(same_bits(s20, vqlib::RandomSeeding{}.seed(x, {}, 20, c)));
    // k = n: a random permutation of the points.
    const MatrixXf s1 = vqlib::RandomSeeding{}.seed(x, {}, 50, a);
    CHECK_FALSE(same_bits(s1, vqlib::RandomSeeding{}.seed(x, {}, 50, c)));
    std::vector<float> firsts(s1.col(0).begin(), s1.col(0).end());
    std::vector<float> all(x.col(0).begin(), x.col(0).end());
    std::sort(firsts.begin(), firsts.end());
    std::sort(all.begin(), all.end());
    CHECK(firsts == all);
}

TEST_CASE("cluster/kmeans: split_heaviest fills the clusters reset_to_zero leaves empty") {
    // Four tight blobs around (10..20, 10..20); two centroids start inside the data and four far
    // away, so four clusters are empty after the first E-step.
    MatrixXf x(200, 2);
    vqlib::Rng rng(80);
    const float centers[4][2] = {{10, 10}, {10, 20}, {20, 10}, {20, 20}};
    for (Index i = 0; i < 200; ++i)
        for (Index j = 0; j < 2; ++j)
            x(i, j) = centers[i % 4][j] + 0.5f * static_cast<float>(rng.normal());
    MatrixXf seeds(6, 2);
    seeds << 12, 12, 18, 18, 1000, 1000, 1000, 1001, 1000, 1002, 1000, 1003;
    KMeansParameters p;
    p.k = 6;
    p.seeding = vqlib::GivenCentroids{std::move(seeds)};
    p.empty_clusters = EmptyClusterPolicy::reset_to_zero;
    const auto reset = vqlib::kmeans(x, p);
    p.empty_clusters = EmptyClusterPolicy::split_heaviest;
    const auto split = vqlib::kmeans(x, p);

    CHECK(reset.iterations.front().empty_clusters == 4);
    CHECK(reset.empty_clusters == 4);
    for (Index k = 2; k < 6; ++k) CHECK(reset.centroids.row(k).isZero());  // the reference
    CHECK(split.iterations.front().empty_clusters == 4);
    CHECK(split.empty_clusters == 0);
    CHECK(split.objective < 0.5 * reset.objective);
    for (std::size_t t = 1; t < split.iterations.size(); ++t)
        CHECK(split.iterations[t].objective <= split.iterations[t - 1].objective * (1 + 1e-6));
    CHECK(split.iterations.front().smallest_cluster_weight == 0.0);
    CHECK(split.iterations.front().largest_cluster_weight >= 200.0);  // >= 100 points x 2
}

TEST_CASE("cluster/kmeans: bit-identical results for 1 and 2 threads") {
    // Big enough for parallel chunks in seeding, assignment, M-step and objective.
    const Index n = 150000;
    const MatrixXf x = normal_matrix(n, 2, 90);
    const MatrixXf w = positive_matrix(n, 2, 91);
    for (auto method : {vqlib::AssignmentMethod::direct, vqlib::AssignmentMethod::gemm}) {
        KMeansParameters p;
        p.k = 48;
        p.max_iterations = 4;
        p.seeding = vqlib::KMeansPlusPlusSeeding{};
        p.empty_clusters = EmptyClusterPolicy::split_heaviest;
        p.seed = 9;
        p.assignment = method;
        vqlib::KMeansResult one, two;
        {
            ThreadCountScope scope(1);
            one = vqlib::kmeans(x, Weights::elementwise(w), p);
        }
        {
            ThreadCountScope scope(2);
            two = vqlib::kmeans(x, Weights::elementwise(w), p);
        }
        INFO("method " << vqlib::to_string(method));
        CHECK(same_bits(one.centroids, two.centroids));
        CHECK(one.assignment == two.assignment);
        CHECK(one.objective == two.objective);
        REQUIRE(one.iterations.size() == two.iterations.size());
        for (std::size_t t = 0; t < one.iterations.size(); ++t)
            CHECK(one.iterations[t].objective == two.iterations[t].objective);
        CHECK(one.assignment_method == method);
    }
}

TEST_CASE("cluster/kmeans: subsampling is seeded, explicit and reported") {
    const MatrixXf x = blobs(4, 500, 2, 100);
    const MatrixXf w = positive_matrix(x.rows(), 1, 101);
    KMeansParameters p;
    p.k = 4;
    p.seeding = vqlib::KMeansPlusPlusSeeding{};
    p.subsample = 300;
    const auto r = vqlib::kmeans(x, Weights::per_point(w.col(0)), p);
    CHECK(r.subsampled);
    CHECK(r.points_used == 300);
    CHECK(r.assignment.size() == static_cast<std::size_t>(x.rows()));
    CHECK_THAT(r.objective,
               Catch::Matchers::WithinRel(
                   objective(x, r.centroids, r.assignment, Weights::per_point(w.col(0))), 1e-12));
    const auto again = vqlib::kmeans(x, Weights::per_point(w.col(0)), p);
    CHECK(same_bits(r.centroids, again.centroids));
    p.subsample = x.rows() + 5;  // more than n: all points, and the result says so
    const auto all = vqlib::kmeans(x, p);
    CHECK_FALSE(all.subsampled);
    CHECK(all.points_used == x.rows());
}

TEST_CASE("cluster/kmeans: kmeans_batch equals kmeans on each problem") {
    std::vector<MatrixXf> points, weights;
    for (std::uint64_t i = 0; i < 12; ++i) {
        points.push_back(normal_matrix(300 + 17 * static_cast<Index>(i), 2, 110 + i));
        weights.push_back(positive_matrix(points.back().rows(), 2, 130 + i));
    }
    std::vector<vqlib::KMeansProblem> problems;
    for (std::size_t i = 0; i < points.size(); ++i)
        problems.emplace_back(points[i], Weights::elementwise(weights[i]));
    KMeansParameters p;
    p.k = 16;
    p.max_iterations = 20;
    const auto results = vqlib::kmeans_batch(problems, p);
    REQUIRE(results.size() == problems.size());
    for (std::size_t i = 0; i < points.size(); ++i) {
        const auto single = vqlib::kmeans(points[i], Weights::elementwise(weights[i]), p);
        CHECK(same_bits(results[i].centroids, single.centroids));
        CHECK(results[i].assignment == single.assignment);
    }
    // Errors name the problem.
    points[7](3, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(vqlib::kmeans_batch(problems, p), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::kmeans_batch(problems, p), Contains("problem 7: points(3, 1) = nan"));
}

TEST_CASE("cluster/kmeans: invalid arguments are refused with their values") {
    const MatrixXf x = normal_matrix(256, 2, 140);
    KMeansParameters p;
    p.k = 300;
    CHECK_THROWS_AS(vqlib::kmeans(x, p), vqlib::invalid_argument);
    CHECK_THROWS_WITH(vqlib::kmeans(x, p),
                      Contains("k = 300 is larger than the number of points n = 256"));
    p.k = 0;
    CHECK_THROWS_WITH(vqlib::kmeans(x, p), Contains("k = 0: expected k >= 1"));
    p.k = 8;
    p.max_iterations = -1;
    CHECK_THROWS_WITH(vqlib::kmeans(x, p), Contains("max_iterations = -1"));
    p.max_iterations = 10;
    p.tolerance = -0.5;
    CHECK_THROWS_WITH(vqlib::kmeans(x, p), Contains("tolerance = -0.5"));
    p.tolerance = 0.0;
    p.subsample = 5;
    CHECK_THROWS_WITH(vqlib::kmeans(x, p), Contains("subsample = 5 is smaller than k = 8"));
    p.subsample = 0;

    const std::vector<float> lambda(3, 1.0f);
    CHECK_THROWS_AS(vqlib::kmeans(x, Weights::per_coordinate(lambda), p), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::kmeans(x, Weights::per_coordinate(lambda), p),
                      Contains("per-coordinate weights have 3 entries") && Contains("d = 2"));
    const MatrixXf w_shape = positive_matrix(256, 3, 1);
    CHECK_THROWS_AS(vqlib::kmeans(x, Weights::elementwise(w_shape), p), vqlib::shape_error);
    const std::vector<float> per_point(255, 1.0f);
    CHECK_THROWS_WITH(vqlib::kmeans(x, Weights::per_point(per_point), p),
                      Contains("per-point weights have 255 entries"));

    MatrixXf bad = x;
    bad(17, 1) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(vqlib::kmeans(bad, p), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::kmeans(bad, p), Contains("points(17, 1) = inf"));

    MatrixXf w = positive_matrix(256, 2, 2);
    w(4, 0) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(vqlib::kmeans(x, Weights::elementwise(w), p), vqlib::numerical_error);
    CHECK_THROWS_WITH(vqlib::kmeans(x, Weights::elementwise(w), p),
                      Contains("weights(4, 0) = nan"));
    w(4, 0) = -0.25f;
    CHECK_THROWS_AS(vqlib::kmeans(x, Weights::elementwise(w), p), vqlib::invalid_argument);
    CHECK_THROWS_WITH(vqlib::kmeans(x, Weights::elementwise(w), p),
                      Contains("weights(4, 0) = -0.25") && Contains("expected weights >= 0"));

    p.seeding = vqlib::QuantileSeeding{};
    CHECK_THROWS_WITH(vqlib::kmeans(x, p), Contains("quantile seeding needs d = 1"));
    p.seeding = vqlib::GivenCentroids{MatrixXf::Zero(7, 2)};
    CHECK_THROWS_AS(vqlib::kmeans(x, p), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::kmeans(x, p), Contains("given centroids is 7x2: expected 8x2"));
    MatrixXf nan_seeds = MatrixXf::Zero(8, 2);
    nan_seeds(5, 0) = std::numeric_limits<float>::quiet_NaN();
    p.seeding = vqlib::GivenCentroids{std::move(nan_seeds)};
    CHECK_THROWS_WITH(vqlib::kmeans(x, p), Contains("given centroids(5, 0) = nan"));
}

TEST_CASE("cluster/kmeans: zero iterations give the seeds and their assignment") {
    const MatrixXf x = normal_matrix(100, 2, 150);
    KMeansParameters p;
    p.k = 7;
    p.max_iterations = 0;
    const auto r = vqlib::kmeans(x, p);
    vqlib::Rng rng(0);
    CHECK(same_bits(r.centroids, vqlib::MahalanobisSeeding{}.seed(x, {}, 7, rng)));
    CHECK(r.iterations.empty());
    CHECK(r.assignment == vqlib::nearest_centroids(x, r.centroids));
    CHECK_FALSE(r.converged);
}

namespace {

/// An assignment backend of the test's own: brute force in double, counting its calls. Its
/// distances round differently from the CPU kernels', so results agree where no point is
/// within rounding of two centroids (as with these well-separated clusters).
struct BruteForceAssignment {
    std::shared_ptr<int> calls = std::make_shared<int>(0);
    static const char* name() { return "brute force"; }
    void nearest_centroid(vqlib::ConstMatrixRef points, vqlib::ConstMatrixRef centroids,
                          const Weights& weights, std::span<std::int32_t> out) const {
        ++*calls;
        REQUIRE(static_cast<Index>(out.size()) == points.rows());
        for (Index i = 0; i < points.rows(); ++i) {
            double best = std::numeric_limits<double>::infinity();
            std::int32_t best_k = 0;
            for (Index k = 0; k < centroids.rows(); ++k) {
                double d = 0.0;
                for (Index j = 0; j < points.cols(); ++j) {
                    const double diff = double(points(i, j)) - double(centroids(k, j));
                    d += diff * diff * weights(i, j);
                }
                if (d < best) {
                    best = d;
                    best_k = static_cast<std::int32_t>(k);
                }
            }
            out[static_cast<std::size_t>(i)] = best_k;
        }
    }
};
static_assert(vqlib::AssignmentBackend<BruteForceAssignment>);
static_assert(vqlib::AssignmentBackend<vqlib::CpuAssignment>);

}  // namespace

TEST_CASE("cluster/kmeans: the E-steps run on the assignment backend given") {
    // Three well-separated blobs in 2-D.
    MatrixXf x = normal_matrix(300, 2, 501, 0.1);
    for (Index i = 0; i < 300; ++i) x(i, 0) += static_cast<float>(10 * (i % 3));
    const MatrixXf w = positive_matrix(300, 2, 502);
    KMeansParameters p;
    p.k = 3;
    p.max_iterations = 7;
    p.seeding = vqlib::KMeansPlusPlusSeeding{};
    p.seed = 3;
    for (const Weights& weights : {Weights{}, Weights::elementwise(w)}) {
        INFO("weights " << vqlib::to_string(weights.kind()));
        const BruteForceAssignment brute;
        const auto mine = vqlib::kmeans(x, weights, p, brute);
        const auto cpu = vqlib::kmeans(x, weights, p);
        // One E-step per recorded iteration, plus one more: the final E-step, or, at a fixed
        // point, the E-step that found nothing to change (and is the final assignment).
        CHECK(*brute.calls == static_cast<int>(mine.iterations.size()) + 1);
        CHECK(mine.assignment == cpu.assignment);
        CHECK_THAT(mine.objective, Catch::Matchers::WithinRel(cpu.objective, 1e-6));
        for (Index i = 0; i < 300; ++i)
            CHECK(mine.assignment[static_cast<std::size_t>(i)] ==
                  mine.assignment[static_cast<std::size_t>(i % 3)]);
    }
}
