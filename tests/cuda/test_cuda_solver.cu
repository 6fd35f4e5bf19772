// The algorithms on the CUDA backend's roles, compiled by nvcc: the block solver with
// CudaLinearAlgebra (GPTQ's INT4 quantizer), k-means with CudaAssignment, and GPTVQ's recipe with
// the CUDA lookups. The solver, k-means and the recipe headers include only the role they use,
// so this translation unit builds under nvcc. Results are compared with the CPU roles in the
// same process: k-means and the lookups give the same indices (the CUDA distances are
// bit-identical); the solver's products round differently, so Q agrees up to a few grid steps.
// Without a CUDA device every test passes with the warning "no CUDA device: skipped".
#include <catch2/catch.hpp>

#include <vqlib/backend/cuda.cuh>
#include <vqlib/cluster/kmeans.hpp>
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/quantizers/scalar_quantizer.hpp>
#include <vqlib/solver/block_solver.hpp>

#include "random_inputs.hpp"
#include "skip.hpp"

#include <cmath>
#include <random>

using namespace vqlib;


namespace {

MatrixXf random_matrix(Index rows, Index cols, unsigned seed) {
    std::mt19937 rng(seed);
    return test_cuda::random_matrix(rows, cols, rng);
}

MatrixXd random_hessian(Index n, unsigned seed) {
    const MatrixXf X = random_matrix(n, 4 * n, seed);
    return (2.0 / (4.0 * double(n))) * (X * X.transpose()).cast<double>();
}

}  // namespace

static_assert(LinearAlgebraBackend<CudaLinearAlgebra>);
static_assert(AssignmentBackend<CudaAssignment>);

TEST_CASE("cuda: BlockSolver with the CUDA linear-algebra backend", "[cuda][solver]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    const MatrixXf W = random_matrix(64, 256, 1);
    const MatrixXd H = random_hessian(256, 2);
    const PreparedHessian prepared = prepare_hessian(H);
    GroupOptions groups;
    groups.size = 128;
    ScalarQuantizer<IntGrid> cpu_q(IntGrid(4, false), groups), gpu_q(IntGrid(4, false), groups);
    const auto cpu = BlockSolver<DiagonalUpdate>().run(W, prepared, cpu_q);
    const auto gpu = BlockSolver<DiagonalUpdate, CudaLinearAlgebra>().run(W, prepared, gpu_q);
    // The decoded layer is the GPU solve's own Q; the codes agree with the CPU's but where a
    // value lies within the products' rounding of a decision boundary.
    CHECK(gpu_q.layer().dequantize() == gpu.Q);
    const Index differing = (gpu_q.layer().codes.array() != cpu_q.layer().codes.array()).count();
    CHECK(differing <= W.size() / 50);
    const double cpu_loss = proxy_loss(W, cpu.Q, H), gpu_loss = proxy_loss(W, gpu.Q, H);
    CHECK(std::abs(gpu_loss - cpu_loss) <= 0.02 * cpu_loss);
}

TEST_CASE("cuda: k-means with the CUDA assignment backend gives the CPU's result", "[cuda][cluster]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    const MatrixXf points = random_matrix(20000, 4, 3);
    const VectorXf lambda = random_matrix(4, 1, 4).cwiseAbs().array() + 0.5f;
    KMeansParameters p;
    p.k = 64;
    p.max_iterations = 15;
    p.seeding = KMeansPlusPlusSeeding{};
    p.assignment = AssignmentMethod::direct;  // the CPU kernel whose distances CUDA reproduces
    p.seed = 5;
    for (const Weights& w : {Weights{}, Weights::per_coordinate(lambda)}) {
        INFO("weights " << to_string(w.kind()));
        const KMeansResult cpu = kmeans(points, w, p);
        const KMeansResult gpu = kmeans(points, w, p, CudaAssignment{});
        CHECK(gpu.assignment == cpu.assignment);
        CHECK(gpu.centroids == cpu.centroids);
        CHECK(gpu.objective == cpu.objective);
    }
    const MatrixXf elementwise = points.cwiseAbs();
    CHECK_THROWS_AS(kmeans(points, Weights::elementwise(elementwise), p, CudaAssignment{}),
                    invalid_argument);
}

TEST_CASE("cuda: GPTVQ's recipe with the CUDA lookups", "[cuda][gptvq]") {
    VQLIB_SKIP_WITHOUT_CUDA_DEVICE();
    const MatrixXf W = random_matrix(64, 256, 6);
    const MatrixXd H = random_hessian(256, 7);
    GptvqConfig config = gptvq_presets::reference_compatible(2, 2, 2048);
    const GptvqResult cpu = gptvq(W, H, config);
    const GptvqResult gpu = gptvq(W, H, config, gptvq_policies(config).with_assignment(CudaAssignment{}));
    CHECK(gpu.layer.indices == cpu.layer.indices);
    CHECK(gpu.Q == cpu.Q);
}
