#pragma once
// Streaming Hessian accumulator: H = 2/n * sum over tokens of x x^T, in float64.
//
// Calibration data arrives in batches (and, across machines, in shards): `add` takes a batch of
// tokens, `merge` combines accumulators built on different shards, and `finalize` returns H with
// GPTQ's convention H = 2/n X X^T, n counting tokens. Only the lower triangle is accumulated; it is
// cut into fixed column tiles that are computed in parallel, so the result does not depend on the
// number of threads.
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>

namespace vqlib {

class HessianAccumulator {
public:
    /// Tokens converted to float64 at a time (bounds the temporary to columns * 8 * slab bytes).
    static constexpr Index token_slab = 1024;
    /// Width of the column tiles of H computed independently.
    static constexpr Index tile = 64;

    explicit HessianAccumulator(Index columns) : columns_(columns) {
        VQLIB_CHECK(columns > 0, invalid_argument, "columns = ", columns, ": expected > 0");
        sum_.setZero(columns, columns);
    }

    Index columns() const { return columns_; }
    /// Number of tokens accumulated so far.
    std::int64_t tokens() const { return tokens_; }

    /// Adds a batch of inputs, one token per column: X is columns x tokens (the layout of the
    /// fixture's X.npy and of X in H = 2/n X X^T).
    template <class Derived>
    void add(const Eigen::MatrixBase<Derived>& X) {
        VQLIB_CHECK(X.rows() == columns_, shape_error, "X is ", X.rows(), "x", X.cols(),
                    ": expected ", columns_, " rows (one per input feature, one column per token)");
        check_finite("X", X);
        for (Index t0 = 0; t0 < X.cols(); t0 += token_slab) {
            const Index t1 = std::min(X.cols(), t0 + token_slab);
            accumulate(X.middleCols(t0, t1 - t0).template cast<double>());
        }
        tokens_ += X.cols();
    }

    /// Adds a batch of inputs, one token per row (activations as a tokens x columns matrix, the
    /// layout of a flattened (batch, sequence, features) tensor).
    template <class Derived>
    void add_rows(const Eigen::MatrixBase<Derived>& A) {
        VQLIB_CHECK(A.cols() == columns_, shape_error, "A is ", A.rows(), "x", A.cols(),
                    ": expected ", columns_, " columns (one per input feature, one row per token)");
        check_finite("A", A);
        for (Index t0 = 0; t0 < A.rows(); t0 += token_slab) {
            const Index t1 = std::min(A.rows(), t0 + token_slab);
            accumulate(A.middleRows(t0, t1 - t0).transpose().template cast<double>());
        }
        tokens_ += A.rows();
    }

    /// Adds the statistics of an accumulator built on another shard of the calibration data.
    void merge(const HessianAccumulator& other) {
        VQLIB_CHECK(other.columns_ == columns_, shape_error, "other.columns() = ", other.columns_,
                    ": expected ", columns_, " to merge");
        sum_.triangularView<Eigen::Lower>() += other.sum_;
        tokens_ += other.tokens_;
    }

    /// The raw sum X X^T (full, symmetric).
    MatrixXd gram() const {
        MatrixXd g = sum_.selfadjointView<Eigen::Lower>();
        return g;
    }

    /// H = 2/n X X^T in float64. Throws if no token was added.
    MatrixXd finalize() const {
        VQLIB_CHECK(tokens_ > 0, invalid_argument,
                    "tokens = 0: add at least one batch before finalize()");
        MatrixXd h = gram();
        h *= 2.0 / static_cast<double>(tokens_);
        return h;
    }

    void reset() {
        sum_.setZero();
        tokens_ = 0;
    }

private:
    void accumulate(const MatrixXd& x) {
        const Index tiles = (columns_ + tile - 1) / tile;
        parallel_for(tiles, [&](Index t) {
            const Index j0 = t * tile;
            const Index width = std::min(tile, columns_ - j0);
            const Index below = columns_ - j0;
            sum_.block(j0, j0, below, width).noalias() +=
                x.middleRows(j0, below) * x.middleRows(j0, width).transpose();
        });
    }

    Index columns_;
    std::int64_t tokens_ = 0;
    MatrixXd sum_;  // lower triangle (tiles also fill a few entries above it; they are ignored)
};

}  // namespace vqlib
