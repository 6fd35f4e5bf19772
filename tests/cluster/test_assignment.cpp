#include <vqlib/backend/cpu.hpp>
#include <vqlib/cluster/assignment.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>

#include <catch2/catch.hpp>

#include "../support/cluster.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace {

using vqlib::test::normal_matrix;
using vqlib::test::positive_matrix;
using vqlib::test::ThreadCountScope;
using vqlib::test::WeightFixture;
using vqlib::Index;
using vqlib::MatrixXf;
using vqlib::WeightKind;
using vqlib::Weights;
using vqlib::detail::KernelWeights;

// The documented arithmetic of the direct kernel, written out plainly: float32, terms
// ((x - c)^2) * omega added in increasing j (direct_distance pins the products, so no FMA).
float reference_distance(const MatrixXf& x, Index i, const MatrixXf& c, Index k, const Weights& w) {
    const Index d = x.cols();
    std::vector<float> xi(static_cast<std::size_t>(d)), ck(static_cast<std::size_t>(d)),
        wi(static_cast<std::size_t>(d));
    for (Index j = 0; j < d; ++j) {
        xi[static_cast<std::size_t>(j)] = x(i, j);
        ck[static_cast<std::size_t>(j)] = c(k, j);
        wi[static_cast<std::size_t>(j)] = w(i, j);
    }
    const KernelWeights mode = w.kind() == WeightKind::per_coordinate
                                   ? KernelWeights::per_coordinate
                               : w.kind() == WeightKind::elementwise ? KernelWeights::elementwise
                                                                     : KernelWeights::none;
    float dist = vqlib::detail::direct_distance(xi.data(), 1, ck.data(), d, mode, wi.data(), 1);
    if (w.kind() == WeightKind::per_point) dist *= w(i, 0);
    return dist;
}

// Brute force: the argmin of the reference distance, first index on ties.
void brute_force(const MatrixXf& x, const MatrixXf& c, const Weights& w,
                 std::vector<std::int32_t>& index, std::vector<float>& distance) {
    index.assign(static_cast<std::size_t>(x.rows()), 0);
    distance.assign(static_cast<std::size_t>(x.rows()), 0.0f);
    for (Index i = 0; i < x.rows(); ++i) {
        // Per-point weights do not change the argmin: compare unweighted distances.
        const Weights search = w.kind() == WeightKind::per_point ? Weights{} : w;
        float best = std::numeric_limits<float>::infinity();
        Index best_k = 0;
        for (Index k = 0; k < c.rows(); ++k) {
            const float dist = reference_distance(x, i, c, k, search);
            if (dist < best) {
                best = dist;
                best_k = k;
            }
        }
        index[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(best_k);
        distance[static_cast<std::size_t>(i)] = reference_distance(x, i, c, best_k, w);
    }
}

// The weighted distance in double.
double exact_distance(const MatrixXf& x, Index i, const MatrixXf& c, Index k, const Weights& w) {
    double s = 0.0;
    for (Index j = 0; j < x.cols(); ++j) {
        const double diff = static_cast<double>(x(i, j)) - c(k, j);
        s += static_cast<double>(w(i, j)) * diff * diff;
    }
    return s;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

using vqlib::test::kAllKinds;

}  // namespace

TEST_CASE("cluster/assignment: direct kernels match brute force for every D and weight form") {
    // n = 301: unrolled blocks (up to 8 x 16 points), single lane blocks and a padded tail.
    const Index n = 301;
    const Index k = 37;
    for (Index d = 1; d <= 19; ++d) {
        const MatrixXf x = normal_matrix(n, d, 10 + static_cast<std::uint64_t>(d));
        const MatrixXf c = normal_matrix(k, d, 20 + static_cast<std::uint64_t>(d));
        for (WeightKind kind : kAllKinds) {
            INFO("d = " << d << ", weights " << vqlib::to_string(kind));
            const WeightFixture w(kind, n, d, 30 + static_cast<std::uint64_t>(d));
            std::vector<std::int32_t> expected_index, index(static_cast<std::size_t>(n));
            std::vector<float> expected_distance, distance(static_cast<std::size_t>(n));
            brute_force(x, c, w.weights, expected_index, expected_distance);
            vqlib::assign_nearest(x, c, w.weights, index, distance,
                                  {vqlib::AssignmentMethod::direct, true});
            CHECK(index == expected_index);
            CHECK(same_bits(distance, expected_distance));
        }
    }
}

TEST_CASE("cluster/assignment: every SIMD variant computes the same bits") {
    using vqlib::SimdLevel;
    const Index n = 272;  // 2 x 128 + 16: unrolled and single blocks for every lane count
    const Index k = 29;
    for (Index d = 1; d <= 18; ++d) {
        const MatrixXf x = normal_matrix(n, d, 40 + static_cast<std::uint64_t>(d));
        const MatrixXf c = normal_matrix(k, d, 50 + static_cast<std::uint64_t>(d));
        const MatrixXf w = positive_matrix(n, d, 60 + static_cast<std::uint64_t>(d));
        vqlib::RowMajorMatrixXf rows = c;
        for (KernelWeights mode :
             {KernelWeights::none, KernelWeights::per_coordinate, KernelWeights::elementwise}) {
            std::vector<std::vector<float>> bests;
            std::vector<std::vector<std::int32_t>> indices;
            for (SimdLevel level : {SimdLevel::portable, SimdLevel::avx2, SimdLevel::avx512}) {
                if (!vqlib::simd_level_supported(level)) continue;
                std::vector<float> best(static_cast<std::size_t>(n),
                                        std::numeric_limits<float>::infinity());
                std::vector<std::int32_t> index(static_cast<std::size_t>(n), 0);
                vqlib::detail::DirectTask task;
                task.points = x.data();
                task.point_stride = n;
                task.weights = w.data();
                task.weight_stride = n;
                task.centroids = rows.data();
                task.d = d;
                task.k_end = k;
                task.n = n;
                task.best = best.data();
                task.index = index.data();
                vqlib::detail::assignment_kernels(level).direct_for(mode, d)(task);
                bests.push_back(best);
                indices.push_back(index);
            }
            INFO("d = " << d << ", mode " << static_cast<int>(mode));
            for (std::size_t v = 1; v < bests.size(); ++v) {
                CHECK(indices[v] == indices[0]);
                CHECK(same_bits(bests[v], bests[0]));
            }
        }
    }
}

TEST_CASE("cluster/assignment: the GEMM path finds a nearest centroid") {
    // 300 points: two GEMM row blocks (256 + a partial one); 600 centroids: two tiles of 512.
    const Index n = 300;
    const Index k = 600;
    for (Index d : {1, 2, 5, 8, 16, 20, 33}) {
        const MatrixXf x = normal_matrix(n, d, 70 + static_cast<std::uint64_t>(d));
        const MatrixXf c = normal_matrix(k, d, 80 + static_cast<std::uint64_t>(d));
        for (WeightKind kind : kAllKinds) {
            INFO("d = " << d << ", weights " << vqlib::to_string(kind));
            const WeightFixture w(kind, n, d, 90 + static_cast<std::uint64_t>(d));
            std::vector<std::int32_t> expected_index, index(static_cast<std::size_t>(n));
            std::vector<float> expected_distance, distance(static_cast<std::size_t>(n));
            brute_force(x, c, w.weights, expected_index, expected_distance);
            vqlib::assign_nearest(x, c, w.weights, index, distance,
                                  {vqlib::AssignmentMethod::gemm, true});
            Index differ = 0;
            for (Index i = 0; i < n; ++i) {
                const auto a = static_cast<std::size_t>(i);
                // Distances are the direct kernel's value for the centroid chosen.
                CHECK(distance[a] == reference_distance(x, i, c, index[a], w.weights));
                // The centroid chosen is nearest up to float rounding of the expanded form.
                const Weights metric = kind == WeightKind::per_point ? Weights{} : w.weights;
                const double chosen = exact_distance(x, i, c, index[a], metric);
                const double best = exact_distance(x, i, c, expected_index[a], metric);
                CHECK(chosen <= best + 1e-5 * (1.0 + best));
                differ += index[a] != expected_index[a];
            }
            CHECK(differ <= 3);
        }
    }
}

TEST_CASE("cluster/assignment: ties go to the lowest index on both paths") {
    // Integer data: all distances are exact in both forms, so ties are real ties.
    MatrixXf c(6, 2);
    c << 0, 0,  //
        2, 0,   //
        0, 0,   // duplicate of centroid 0
        4, 4,   //
        2, 0,   // duplicate of centroid 1
        1, 0;
    MatrixXf x(40, 2);
    for (Index i = 0; i < 40; ++i) {
        switch (i % 4) {
        case 0: x.row(i) << 0, 0; break;     // on centroids 0 and 2 -> 0
        case 1: x.row(i) << 2, 0; break;     // on centroids 1 and 4 -> 1
        case 2: x.row(i) << 0.5f, 0; break;  // equidistant from 0, 2 and 5 -> 0
        case 3: x.row(i) << 1.5f, 0; break;  // equidistant from 1, 4 and 5 -> 1
        }
    }
    const std::int32_t expected[4] = {0, 1, 0, 1};
    for (auto method : {vqlib::AssignmentMethod::direct, vqlib::AssignmentMethod::gemm}) {
        const auto a = vqlib::nearest_centroids(x, c, {}, {method, true});
        for (Index i = 0; i < 40; ++i) {
            INFO("method " << vqlib::to_string(method) << ", point " << i);
            CHECK(a[static_cast<std::size_t>(i)] == expected[i % 4]);
        }
    }
    // Every SIMD variant, every lane position.
    vqlib::RowMajorMatrixXf rows = c;
    for (auto level :
         {vqlib::SimdLevel::portable, vqlib::SimdLevel::avx2, vqlib::SimdLevel::avx512}) {
        if (!vqlib::simd_level_supported(level)) continue;
        std::vector<float> best(40, std::numeric_limits<float>::infinity());
        std::vector<std::int32_t> index(40, 0);
        vqlib::detail::DirectTask task;
        task.points = x.data();
        task.point_stride = 40;
        task.centroids = rows.data();
        task.d = 2;
        task.k_end = 6;
        task.n = 32;
        task.best = best.data();
        task.index = index.data();
        vqlib::detail::assignment_kernels(level).direct_for(KernelWeights::none, 2)(task);
        for (Index i = 0; i < 32; ++i) CHECK(index[static_cast<std::size_t>(i)] == expected[i % 4]);
    }
}

TEST_CASE("cluster/assignment: results do not depend on the thread count") {
    const Index n = 70001;
    const Index d = 4;
    const MatrixXf x = normal_matrix(n, d, 100);
    const MatrixXf c = normal_matrix(300, d, 101);
    const MatrixXf w = positive_matrix(n, d, 102);
    for (auto method : {vqlib::AssignmentMethod::direct, vqlib::AssignmentMethod::gemm}) {
        std::vector<std::int32_t> index1(static_cast<std::size_t>(n)), index2(index1.size());
        std::vector<float> dist1(index1.size()), dist2(index1.size());
        {
            ThreadCountScope one(1);
            vqlib::assign_nearest(x, c, Weights::elementwise(w), index1, dist1, {method, true});
        }
        {
            ThreadCountScope two(2);
            vqlib::assign_nearest(x, c, Weights::elementwise(w), index2, dist2, {method, true});
        }
        CHECK(index1 == index2);
        CHECK(same_bits(dist1, dist2));
        std::vector<std::int32_t> serial(index1.size());
        vqlib::assign_nearest(x, c, Weights::elementwise(w), serial, {}, {method, false});
        CHECK(serial == index1);
    }
}

TEST_CASE("cluster/assignment: points given as blocks and maps are read in place") {
    const MatrixXf big = normal_matrix(90, 7, 110);
    const MatrixXf c = normal_matrix(12, 3, 111);
    const auto block = big.block(5, 2, 70, 3);  // outer stride 90
    const MatrixXf copy = block;
    CHECK(vqlib::nearest_centroids(block, c) == vqlib::nearest_centroids(copy, c));
    const vqlib::RowMajorMatrixXf row_major = copy;  // accepted too (copied by the Ref)
    CHECK(vqlib::nearest_centroids(row_major, c) == vqlib::nearest_centroids(copy, c));
}

TEST_CASE("cluster/assignment: the automatic rule depends on the shapes only") {
    using vqlib::AssignmentMethod;
    CHECK(vqlib::resolve_assignment_method(AssignmentMethod::automatic, 65536, 16) ==
          AssignmentMethod::direct);
    CHECK(vqlib::resolve_assignment_method(AssignmentMethod::automatic, 16, 17) ==
          AssignmentMethod::gemm);
    CHECK(vqlib::resolve_assignment_method(AssignmentMethod::gemm, 16, 2) ==
          AssignmentMethod::gemm);
    CHECK(vqlib::resolve_assignment_method(AssignmentMethod::direct, 4096, 64) ==
          AssignmentMethod::direct);
}

TEST_CASE("cluster/assignment: shape errors name the argument") {
    const MatrixXf x = normal_matrix(10, 2, 120);
    const MatrixXf c = normal_matrix(4, 2, 121);
    std::vector<std::int32_t> out(10);
    using Catch::Matchers::Contains;
    const MatrixXf wrong = normal_matrix(4, 3, 1);
    CHECK_THROWS_AS(vqlib::assign_nearest(x, wrong, {}, out), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::assign_nearest(x, wrong, {}, out), Contains("centroids are 4x3"));
    CHECK_THROWS_AS(vqlib::assign_nearest(x, MatrixXf(0, 2), {}, out), vqlib::shape_error);
    std::vector<std::int32_t> short_out(9);
    CHECK_THROWS_WITH(vqlib::assign_nearest(x, c, {}, short_out),
                      Contains("assignment has 9 entries"));
    std::vector<float> short_dist(3);
    CHECK_THROWS_WITH(vqlib::assign_nearest(x, c, {}, out, short_dist),
                      Contains("distances has 3 entries"));
    const std::vector<float> lambda(3, 1.0f);
    CHECK_THROWS_WITH(vqlib::assign_nearest(x, c, Weights::per_coordinate(lambda), out),
                      Contains("per-coordinate weights have 3 entries"));
    const MatrixXf w(10, 3);
    CHECK_THROWS_WITH(vqlib::assign_nearest(x, c, Weights::elementwise(w), out),
                      Contains("elementwise weights are 10x3"));
}

TEST_CASE("cluster/assignment: CpuAssignment (the backend role) runs the direct kernel") {
    const MatrixXf x = normal_matrix(77, 3, 130);
    const MatrixXf c = normal_matrix(19, 3, 131);
    const std::vector<float> lambda = {0.5f, 2.0f, 1.25f};
    std::vector<std::int32_t> out(77), expected_index;
    std::vector<float> expected_distance;
    const vqlib::CpuAssignment cpu;
    cpu.nearest_centroid(x, c, Weights::per_coordinate(lambda), out);
    brute_force(x, c, Weights::per_coordinate(lambda), expected_index, expected_distance);
    CHECK(out == expected_index);
    cpu.nearest_centroid(x, c, Weights{}, out);
    brute_force(x, c, Weights{}, expected_index, expected_distance);
    CHECK(out == expected_index);
}
