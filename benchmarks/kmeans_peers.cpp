// vqlib's k-means next to faiss's (faiss::Clustering with an IndexFlatL2, Debian libfaiss-dev) in
// one process, on the same data from the same initial centroids for the same number of
// iterations. Configure with -DVQLIB_BENCH_FAISS=ON to build the faiss side; without it the
// benchmark runs vqlib alone (plain and bounded E-steps).
//
// Cases (issue 13): 1M points of dimension 8 to 4096 and to 65536 centroids, 1M points of
// dimension 2 to 256 centroids. Points: rows of an LLM-like weight matrix cut into vectors
// (Gaussian entries with a heavy-tailed scale per output row and a few outlier columns).
//
// Each benchmark iteration runs, in this order: faiss (niter iterations; it samples nothing:
// max_points_per_centroid is raised above N), vqlib with plain E-steps, vqlib with bounded
// E-steps (KMeansAcceleration::bounds); vqlib's time includes its final E-step (faiss returns
// centroids without one). Objectives are evaluated the same way for all three: every point
// assigned to its nearest returned centroid, J = sum of squared distances in double.
// Counters: seconds and objective of each, and vqlib_bounded / faiss time ratio.
#include <vqlib/cluster.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/threading.hpp>

#include <benchmark/benchmark.h>

#ifdef VQLIB_HAVE_FAISS
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <omp.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

using vqlib::Index;
using vqlib::MatrixXf;

// n vectors of dimension d cut from a synthetic weight matrix of 4096 columns: w_ij =
// s_i * z_ij * (1 + 4 [j is an outlier column]), s_i log-normal, z standard normal.
MatrixXf llm_like_vectors(Index n, Index d, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    const Index columns = 4096;
    std::vector<float> column_gain(static_cast<std::size_t>(columns));
    for (Index j = 0; j < columns; ++j)
        column_gain[static_cast<std::size_t>(j)] = rng.uniform() < 0.01 ? 5.0f : 1.0f;
    MatrixXf x(n, d);
    const Index per_row = columns / d;
    float row_scale = 1.0f;
    for (Index i = 0; i < n; ++i) {
        if (i % per_row == 0) row_scale = static_cast<float>(0.02 * std::exp(0.3 * rng.normal()));
        const Index c0 = (i % per_row) * d;
        for (Index j = 0; j < d; ++j)
            x(i, j) = row_scale * column_gain[static_cast<std::size_t>(c0 + j)] *
                      static_cast<float>(rng.normal());
    }
    return x;
}

MatrixXf initial_centroids(const MatrixXf& x, Index k, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    return vqlib::detail::gather_rows(x, vqlib::detail::sample_without_replacement(x.rows(), k, rng));
}

// kmeans()'s own objective (double sums) of every point at its nearest returned centroid.
double objective_of(const MatrixXf& x, const MatrixXf& centroids) {
    const auto a = vqlib::nearest_centroids(x, centroids, {}, {vqlib::AssignmentMethod::direct, true});
    return vqlib::detail::KMeansEm<vqlib::CpuAssignment>::objective(x, vqlib::Weights{}, centroids, a);
}

double seconds_of(const std::chrono::steady_clock::time_point& start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

vqlib::KMeansParameters parameters(Index k, int iterations, const MatrixXf& init,
                                   vqlib::KMeansAcceleration acceleration) {
    vqlib::KMeansParameters p;
    p.k = k;
    p.max_iterations = iterations;
    p.seeding = vqlib::GivenCentroids{init};
    p.empty_clusters = vqlib::EmptyClusterPolicy::split_heaviest;  // faiss splits too
    p.acceleration = acceleration;
    return p;
}

void compare(benchmark::State& state, Index n, Index d, Index k, int iterations) {
    const MatrixXf x = llm_like_vectors(n, d, 1);
    const MatrixXf init = initial_centroids(x, k, 2);
    for (auto _ : state) {
#ifdef VQLIB_HAVE_FAISS
        {
            omp_set_num_threads(vqlib::num_threads());
            // faiss wants row-major n x d.
            std::vector<float> rows(static_cast<std::size_t>(n * d));
            for (Index i = 0; i < n; ++i)
                for (Index j = 0; j < d; ++j) rows[static_cast<std::size_t>(i * d + j)] = x(i, j);
            faiss::ClusteringParameters cp;
            cp.niter = iterations;
            cp.max_points_per_centroid = static_cast<int>(n / k + 1);
            cp.min_points_per_centroid = 1;
            faiss::Clustering clustering(static_cast<int>(d), static_cast<std::size_t>(k), cp);
            clustering.centroids.resize(static_cast<std::size_t>(k * d));
            for (Index c = 0; c < k; ++c)
                for (Index j = 0; j < d; ++j)
                    clustering.centroids[static_cast<std::size_t>(c * d + j)] = init(c, j);
            faiss::IndexFlatL2 index(static_cast<faiss::Index::idx_t>(d));
            const auto start = std::chrono::steady_clock::now();
            clustering.train(static_cast<faiss::Index::idx_t>(n), rows.data(), index);
            const double seconds = seconds_of(start);
            MatrixXf c(k, d);
            for (Index r = 0; r < k; ++r)
                for (Index j = 0; j < d; ++j) c(r, j) = clustering.centroids[static_cast<std::size_t>(r * d + j)];
            state.counters["faiss_s"] = seconds;
            state.counters["faiss_J"] = objective_of(x, c);
        }
#endif
        double bounded_seconds = 0.0;
        for (auto acceleration : {vqlib::KMeansAcceleration::none, vqlib::KMeansAcceleration::bounds}) {
            const auto start = std::chrono::steady_clock::now();
            const auto r = vqlib::kmeans(x, parameters(k, iterations, init, acceleration));
            const double seconds = seconds_of(start);
            const bool bounded = acceleration == vqlib::KMeansAcceleration::bounds;
            state.counters[bounded ? "bounded_s" : "plain_s"] = seconds;
            state.counters[bounded ? "bounded_J" : "plain_J"] = objective_of(x, r.centroids);
            if (bounded) {
                bounded_seconds = seconds;
                double work = 0.0;
                for (const auto& it : r.iterations) work += it.distances_computed;
                state.counters["bounded_work"] =
                    work / (static_cast<double>(r.iterations.size()) * static_cast<double>(n * k));
            }
        }
        state.counters["plain/bounded"] = state.counters["plain_s"] / bounded_seconds;
#ifdef VQLIB_HAVE_FAISS
        state.counters["faiss/bounded"] = state.counters["faiss_s"] / bounded_seconds;
#endif
    }
}

void register_all() {
    struct Case {
        Index n, d, k;
        int iterations;
    };
    for (const Case c : {Case{1000000, 8, 4096, 25}, Case{1000000, 2, 256, 25},
                         Case{1000000, 8, 65536, 5}}) {
        const std::string name = "kmeans_vs_faiss/n" + std::to_string(c.n) + "_d" +
                                 std::to_string(c.d) + "_k" + std::to_string(c.k) + "_it" +
                                 std::to_string(c.iterations);
        benchmark::RegisterBenchmark(name.c_str(), [c](benchmark::State& s) {
            compare(s, c.n, c.d, c.k, c.iterations);
        })->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
