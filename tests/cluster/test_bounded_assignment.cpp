#include <vqlib/cluster.hpp>
#include <vqlib/cluster/bounded_assignment.hpp>
#include <vqlib/core/rng.hpp>

#include <catch2/catch.hpp>

#include "../support/cluster.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

using vqlib::Index;
using vqlib::KMeansAcceleration;
using vqlib::KMeansParameters;
using vqlib::MatrixXf;
using vqlib::WeightKind;
using vqlib::Weights;
using vqlib::test::kAllKinds;
using vqlib::test::normal_matrix;
using vqlib::test::ThreadCountScope;
using vqlib::test::WeightFixture;

// Points in `count` loose Gaussian clusters (spread 1 around centres of spread 4): clusters
// overlap, so the E-steps keep moving points for many iterations.
MatrixXf loose_clusters(Index count, Index n, Index d, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    MatrixXf centers = normal_matrix(count, d, seed + 1) * 4.0f;
    MatrixXf x(n, d);
    for (Index i = 0; i < n; ++i) {
        const Index b = static_cast<Index>(rng.below(static_cast<std::uint64_t>(count)));
        for (Index j = 0; j < d; ++j) x(i, j) = centers(b, j) + static_cast<float>(rng.normal());
    }
    return x;
}

KMeansParameters params(Index k, KMeansAcceleration a) {
    KMeansParameters p;
    p.k = k;
    p.max_iterations = 25;
    p.seeding = vqlib::KMeansPlusPlusSeeding{};
    p.seed = 7;
    p.acceleration = a;
    return p;
}

void require_same(const vqlib::KMeansResult& plain, const vqlib::KMeansResult& bounded) {
    REQUIRE(plain.bound_groups == 0);
    REQUIRE(bounded.bound_groups > 0);
    REQUIRE(plain.assignment == bounded.assignment);
    REQUIRE(plain.centroids.rows() == bounded.centroids.rows());
    for (Index k = 0; k < plain.centroids.rows(); ++k)
        for (Index j = 0; j < plain.centroids.cols(); ++j)
            REQUIRE(std::bit_cast<std::uint32_t>(plain.centroids(k, j)) ==
                    std::bit_cast<std::uint32_t>(bounded.centroids(k, j)));
    REQUIRE(plain.objective == bounded.objective);
    REQUIRE(plain.converged == bounded.converged);
    REQUIRE(plain.iterations.size() == bounded.iterations.size());
    for (std::size_t t = 0; t < plain.iterations.size(); ++t) {
        REQUIRE(plain.iterations[t].objective == bounded.iterations[t].objective);
        REQUIRE(plain.iterations[t].reassigned == bounded.iterations[t].reassigned);
    }
}

double total_distances(const vqlib::KMeansResult& r) {
    double total = 0.0;
    for (const auto& it : r.iterations) total += it.distances_computed;
    return total;
}

}  // namespace

TEST_CASE("bounded E-steps give plain Lloyd's k-means bit for bit, every weight form and dimension",
          "[cluster][kmeans][bounds]") {
    for (WeightKind kind : kAllKinds) {
        for (Index d : {1, 2, 3, 8, 13, 19}) {
            for (Index k : {40, 150}) {
                CAPTURE(vqlib::to_string(kind), d, k);
                const Index n = 3000 + d;  // not a multiple of the lane block or the chunk
                const MatrixXf x = loose_clusters(60, n, d, static_cast<std::uint64_t>(d * 100 + k));
                WeightFixture w(kind, n, d, 11);
                KMeansParameters none = params(k, KMeansAcceleration::none);
                KMeansParameters bounds = params(k, KMeansAcceleration::bounds);
                // d = 19 has no compiled kernel: the runtime-D direct kernel (automatic picks
                // the GEMM path there, which bounds do not reproduce).
                none.assignment = bounds.assignment = vqlib::AssignmentMethod::direct;
                const auto plain = vqlib::kmeans(x, w.weights, none);
                const auto fast = vqlib::kmeans(x, w.weights, bounds);
                require_same(plain, fast);
                // The bounds prune: over the run, well under the plain work (less so with
                // elementwise weights, whose bounds use each point's largest weight).
                REQUIRE(total_distances(fast) <
                        (kind == WeightKind::elementwise ? 0.9 : 0.8) * total_distances(plain));
            }
        }
    }
}

TEST_CASE("bounded E-steps break exact ties like the plain kernel",
          "[cluster][kmeans][bounds]") {
    // Points on a small integer lattice and duplicated seeds: many distances tie exactly.
    vqlib::Rng rng(3);
    const Index n = 4000, d = 2, k = 48;
    MatrixXf x(n, d);
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < d; ++j)
            x(i, j) = static_cast<float>(rng.below(6));
    MatrixXf seeds(k, d);
    for (Index c = 0; c < k; ++c)
        for (Index j = 0; j < d; ++j)
            seeds(c, j) = static_cast<float>(rng.below(4)) + 0.5f * static_cast<float>(c % 2);
    for (auto policy : {vqlib::EmptyClusterPolicy::reset_to_zero,
                        vqlib::EmptyClusterPolicy::split_heaviest}) {
        KMeansParameters none = params(k, KMeansAcceleration::none);
        none.seeding = vqlib::GivenCentroids{seeds};
        none.empty_clusters = policy;
        KMeansParameters bounds = none;
        bounds.acceleration = KMeansAcceleration::bounds;
        require_same(vqlib::kmeans(x, none), vqlib::kmeans(x, bounds));
    }
}

TEST_CASE("bounded assignment matches the plain search under arbitrary centroid moves",
          "[cluster][bounds]") {
    // Not Lloyd's small steps: each round moves some centroids by tiny amounts, some far, some
    // onto another centroid, and leaves others still.
    for (WeightKind kind : kAllKinds) {
        CAPTURE(vqlib::to_string(kind));
        const Index n = 5000, d = 4, k = 300;
        const MatrixXf x = loose_clusters(30, n, d, 21);
        WeightFixture w(kind, n, d, 5);
        MatrixXf c = normal_matrix(k, d, 8) * 4.0f;
        vqlib::detail::BoundedAssignment bounded(x, w.weights, 16, true);
        vqlib::Rng rng(9);
        std::vector<std::int32_t> got(static_cast<std::size_t>(n));
        for (int round = 0; round < 12; ++round) {
            CAPTURE(round);
            bounded.assign(c, got);
            REQUIRE(got == vqlib::nearest_centroids(x, c, w.weights,
                                                    {vqlib::AssignmentMethod::direct, false}));
            // Elementwise weights bound each point's norm by its largest weight: weights this
            // uneven may prune nothing under such moves.
            if (round > 0 && kind != WeightKind::elementwise)
                REQUIRE(bounded.distances_computed() < static_cast<double>(n * k));
            for (Index q = 0; q < k; ++q) {
                const auto r = rng.below(10);
                if (r < 4) {
                    for (Index j = 0; j < d; ++j)
                        c(q, j) = std::nextafter(c(q, j), r % 2 ? 1e30f : -1e30f);
                } else if (r == 4) {
                    for (Index j = 0; j < d; ++j) c(q, j) += static_cast<float>(3.0 * rng.normal());
                } else if (r == 5) {
                    c.row(q) = c.row(static_cast<Index>(rng.below(static_cast<std::uint64_t>(k))));
                }
            }
        }
    }
}

TEST_CASE("bounded assignment: overflowing distances, equal to the plain kernel's choice",
          "[cluster][bounds]") {
    // Squared distances beyond FLT_MAX become +inf in float32 for some centroids and all of them
    // for some points.
    const Index n = 300, d = 3, k = 40;
    MatrixXf x = normal_matrix(n, d, 2) * 1e19f;
    x.topRows(20) *= 1e18f;
    MatrixXf c = normal_matrix(k, d, 3) * 1e19f;
    vqlib::detail::BoundedAssignment bounded(x, Weights{}, 4, false);
    std::vector<std::int32_t> got(static_cast<std::size_t>(n));
    for (int round = 0; round < 3; ++round) {
        bounded.assign(c, got);
        REQUIRE(got == vqlib::nearest_centroids(x, c, Weights{},
                                                {vqlib::AssignmentMethod::direct, false}));
        c *= 0.5f;
    }
}

TEST_CASE("bounded k-means: identical for 1 and 2 threads; automatic picks it for large k",
          "[cluster][kmeans][bounds]") {
    const Index n = 20000, d = 8, k = 512;
    const MatrixXf x = loose_clusters(200, n, d, 4);
    KMeansParameters p = params(k, KMeansAcceleration::automatic);
    p.max_iterations = 8;
    vqlib::KMeansResult one, two;
    {
        ThreadCountScope threads(1);
        one = vqlib::kmeans(x, p);
    }
    {
        ThreadCountScope threads(2);
        two = vqlib::kmeans(x, p);
    }
    REQUIRE(one.bound_groups == 4);
    REQUIRE(one.assignment == two.assignment);
    REQUIRE(one.centroids == two.centroids);
    REQUIRE(one.objective == two.objective);

    p.k = 256;  // small k: plain E-steps
    REQUIRE(vqlib::kmeans(x, p).bound_groups == 0);
    p.acceleration = KMeansAcceleration::bounds;
    REQUIRE(vqlib::kmeans(x, p).bound_groups == 2);
    p.acceleration = KMeansAcceleration::automatic;
    p.k = k;
    p.bounds_memory = 4 * static_cast<std::size_t>(n) * 3;  // room for 3 groups per point
    REQUIRE(vqlib::kmeans(x, p).bound_groups == 3);
    p.acceleration = KMeansAcceleration::none;
    REQUIRE(vqlib::kmeans(x, p).bound_groups == 0);
}
