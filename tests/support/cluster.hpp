#pragma once
// Test support for cluster/: a thread-count scope and weights of each form with their storage.
#include <vqlib/cluster/weights.hpp>
#include <vqlib/core/threading.hpp>

#include "random.hpp"

namespace vqlib::test {

/// Sets vqlib's thread count for a scope, and restores the default (0) after it.
class ThreadCountScope {
public:
    explicit ThreadCountScope(int threads) { set_num_threads(threads); }
    ~ThreadCountScope() { set_num_threads(0); }
    ThreadCountScope(const ThreadCountScope&) = delete;
    ThreadCountScope& operator=(const ThreadCountScope&) = delete;
};

/// Weights of one form for n points of dimension d, with the storage they view.
struct WeightFixture {
    MatrixXf storage;
    Weights weights;

    WeightFixture(WeightKind kind, Index n, Index d, std::uint64_t seed) {
        switch (kind) {
        case WeightKind::none: break;
        case WeightKind::per_point:
            storage = positive_matrix(n, 1, seed);
            weights = Weights::per_point(storage.col(0));
            break;
        case WeightKind::per_coordinate:
            storage = positive_matrix(d, 1, seed);
            weights = Weights::per_coordinate(storage.col(0));
            break;
        case WeightKind::elementwise:
            storage = positive_matrix(n, d, seed);
            weights = Weights::elementwise(storage);
            break;
        }
    }
    WeightFixture(const WeightFixture&) = delete;
    WeightFixture& operator=(const WeightFixture&) = delete;
};

/// Every form of k-means weights (cluster/weights.hpp).
inline constexpr WeightKind kAllKinds[] = {WeightKind::none, WeightKind::per_point,
                                           WeightKind::per_coordinate, WeightKind::elementwise};

}  // namespace vqlib::test
