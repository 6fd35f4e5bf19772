#pragma once
// GPTQ's lazy-batch block solver, generic over the quantizer and the error update.
//
// Columns are processed in solver order (act-order permutation applied) in blocks of B columns.
// Within a block, each step quantizes `D = quantizer.step_width()` columns, turns the error into
// the OBS error E with the update policy, and subtracts E * U[P, rest of block] from the block's
// remaining columns; at the end of the block the accumulated errors are applied to all later
// columns at once (W[:, end:] -= Err * U[block, end:]), one GEMM.
//
// Rows are independent given the quantizer's parameters, so each block is computed by fixed row
// chunks in parallel: chunk boundaries depend only on the layer shape, never on the thread count,
// and results are bit-identical for any number of threads.
#include <vqlib/backend/cpu_linear_algebra.hpp>
#include <vqlib/backend/linear_algebra.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/timing.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/hessian/prepare.hpp>
#include <vqlib/solver/context.hpp>
#include <vqlib/solver/policies.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

namespace vqlib {

struct SolverOptions {
    /// Lazy-batch block size B (GPTQ: 128). Must be a multiple of the quantizer's step width.
    Index block_size = 128;
    /// Rows per parallel chunk (rounded up to the quantizer's row granularity).
    Index row_chunk = 128;
};

/// Statistics of one solve.
struct SolveStats {
    /// Sum over all weights of E^2, E the OBS error the update policy computed: GPTQ's reported
    /// "error" times two. With the exact update (and with any feedback update when D = 1) it
    /// equals tr((W0 - Q) H_damp (W0 - Q)^T); with NoFeedback, or the diagonal update at D > 1,
    /// it is only the policy's own proxy, not the loss.
    double error_sum = 0.0;
    /// Whether error_sum equals tr((W0 - Q) H_damp (W0 - Q)^T) in exact arithmetic (the update's
    /// error_sum_is_loss at this step width); proxy_loss_from_solve() then turns it into the
    /// undamped loss at O(R C) cost.
    bool error_sum_is_loss = false;
    /// Wall-clock seconds: preparing H (copied from PreparedHessian; not part of the total, since
    /// one preparation may serve several solves), the quantizer's begin/begin_block (grid
    /// fitting, codebook initialization), the parallel row phase, and the whole solve.
    double seconds_prepare = 0.0;
    double seconds_policy_setup = 0.0;
    double seconds_row_phase = 0.0;
    /// Thread-seconds inside the row phase spent in quantize() and in the updates.
    double thread_seconds_quantize = 0.0;
    double thread_seconds_update = 0.0;
    double seconds_total = 0.0;
    Index blocks = 0;
    Index steps = 0;
};

struct SolveResult {
    /// The quantized (dequantized-value) layer, R x C, original column order.
    MatrixXf Q;
    SolveStats stats;
};

template <ErrorUpdatePolicy Update = ExactUpdate, LinearAlgebraBackend Compute = CpuLinearAlgebra>
class BlockSolver {
public:
    explicit BlockSolver(SolverOptions options = {}) : options_(options) {
        VQLIB_CHECK(options.block_size > 0, invalid_argument, "block_size = ",
                    options.block_size, ": expected > 0");
        VQLIB_CHECK(options.row_chunk > 0, invalid_argument, "row_chunk = ", options.row_chunk,
                    ": expected > 0");
    }

    const SolverOptions& options() const { return options_; }

    template <QuantizerPolicy Quantizer>
    SolveResult run(ConstMatrixRef W, const PreparedHessian& hessian, Quantizer& quantizer) const {
        using clock = std::chrono::steady_clock;
        const auto start = clock::now();
        const Index R = W.rows();
        const Index C = W.cols();
        const Index D = quantizer.step_width();
        const Index granularity = quantizer.row_granularity();
        const Index B = options_.block_size;

        VQLIB_CHECK(C == hessian.columns(), shape_error, "W is ", R, "x", C,
                    " but the Hessian is ", hessian.columns(), "x", hessian.columns(),
                    ": expected H to be C x C with C = W.cols()");
        VQLIB_CHECK(R > 0 && C > 0, shape_error, "W is ", R, "x", C, ": expected a non-empty layer");
        check_finite("W", W);
        VQLIB_CHECK(D > 0 && C % D == 0, shape_error, "the quantizer's step width D = ", D,
                    " does not divide the number of columns C = ", C);
        VQLIB_CHECK(B % D == 0, shape_error, "block_size = ", B,
                    " is not a multiple of the quantizer's step width D = ", D);
        VQLIB_CHECK(granularity > 0 && R % granularity == 0, shape_error,
                    "the quantizer needs rows in groups of ", granularity, " but W has ", R,
                    " rows");

        SolveResult result;
        SolveStats& stats = result.stats;
        stats.seconds_prepare = hessian.seconds;
        stats.error_sum_is_loss = error_sum_is_loss<Update>(D);

        // Dead columns are zeroed; the working copy is in solver order.
        MatrixXf live = W;
        for (Index j = 0; j < C; ++j)
            if (hessian.dead[static_cast<std::size_t>(j)]) live.col(j).setZero();
        MatrixXf work(R, C);
        for (Index k = 0; k < C; ++k) work.col(k) = live.col(hessian.perm[static_cast<std::size_t>(k)]);

        auto t = clock::now();
        quantizer.begin(SolveSetup{W, live, hessian.perm, hessian.dead, hessian.U, B});
        stats.seconds_policy_setup += detail::seconds_since(t);

        MatrixXf Qs(R, C);  // solver order
        const Index chunk_rows =
            std::max<Index>(granularity, (options_.row_chunk + granularity - 1) / granularity *
                                             granularity);
        const Index chunks = (R + chunk_rows - 1) / chunk_rows;
        std::vector<double> chunk_error(static_cast<std::size_t>(chunks), 0.0);
        std::vector<double> chunk_quantize(static_cast<std::size_t>(chunks), 0.0);
        std::vector<double> chunk_update(static_cast<std::size_t>(chunks), 0.0);
        const MatrixXf& U = hessian.U;

        for (Index i1 = 0; i1 < C; i1 += B) {
            const Index i2 = std::min(C, i1 + B);
            const Index count = i2 - i1;
            t = clock::now();
            quantizer.begin_block(BlockView{i1, i2, work, U, hessian.perm});
            stats.seconds_policy_setup += detail::seconds_since(t);

            t = clock::now();
            parallel_for(chunks, [&](Index c) {
                const Index r0 = c * chunk_rows;
                const Index rows = std::min(R, r0 + chunk_rows) - r0;
                const auto cs = static_cast<std::size_t>(c);
                MatrixXf W1 = work.block(r0, i1, rows, count);
                MatrixXf Err1(rows, count);
                MatrixXf q(rows, D);
                MatrixXf diff(rows, D);
                MatrixXf err(rows, D);
                double error_sum = 0.0;
                double t_quantize = 0.0;
                double t_update = 0.0;
                for (Index i = 0; i < count; i += D) {
                    const auto s0 = clock::now();
                    const StepView step{i1 + i, D, U.block(i1 + i, i1 + i, D, D)};
                    quantizer.quantize(step, r0, W1.middleCols(i, D), q);
                    const auto s1 = clock::now();
                    Qs.block(r0, i1 + i, rows, D) = q;
                    diff = W1.middleCols(i, D) - q;
                    Update::error(diff, step.U_step, err);
                    error_sum += err.template cast<double>().squaredNorm();
                    Err1.middleCols(i, D) = err;
                    if (Update::feedback && i + D < count) {
                        Compute::subtract_product(W1.rightCols(count - i - D), err,
                                            U.block(i1 + i, i1 + i + D, D, count - i - D));
                    }
                    t_quantize += std::chrono::duration<double>(s1 - s0).count();
                    t_update += detail::seconds_since(s1);
                }
                const auto s2 = clock::now();
                if (Update::feedback && i2 < C) {
                    Compute::subtract_product(work.block(r0, i2, rows, C - i2), Err1,
                                        U.block(i1, i2, count, C - i2));
                }
                chunk_error[cs] += error_sum;
                chunk_quantize[cs] += t_quantize;
                chunk_update[cs] += t_update + detail::seconds_since(s2);
            });
            stats.seconds_row_phase += detail::seconds_since(t);
            ++stats.blocks;
            stats.steps += count / D;
        }
        for (Index c = 0; c < chunks; ++c) {
            const auto cs = static_cast<std::size_t>(c);
            stats.error_sum += chunk_error[cs];
            stats.thread_seconds_quantize += chunk_quantize[cs];
            stats.thread_seconds_update += chunk_update[cs];
        }

        result.Q.resize(R, C);
        for (Index k = 0; k < C; ++k) result.Q.col(hessian.perm[static_cast<std::size_t>(k)]) = Qs.col(k);
        stats.seconds_total = detail::seconds_since(start);
        return result;
    }

private:
    SolverOptions options_;
};

}  // namespace vqlib
