#pragma once
// The CPU nearest-centroid role: the kernels of cluster/assignment.hpp.
//
// The defaults (the direct kernel, on the calling thread) are what the quantizer policies use for
// their lookups, which already run inside the solver's parallel row chunks: float32 distances
// ((x - c)^2 * w) summed in coordinate order, ties to the lowest index, the same bits on every
// instruction set. kmeans() builds one from its parameters (method, parallel).
#include <vqlib/backend/assignment.hpp>
#include <vqlib/cluster/assignment.hpp>
#include <vqlib/core/types.hpp>

namespace vqlib {

struct CpuAssignment {
    AssignmentMethod method = AssignmentMethod::direct;
    /// Allow parallel chunks of points (results are the same either way).
    bool parallel = false;

    static const char* name() { return "cpu"; }

    void nearest_centroid(ConstMatrixRef points, ConstMatrixRef centroids, const Weights& weights,
                          std::span<std::int32_t> out) const {
        assign_nearest(points, centroids, weights, out, {}, {method, parallel});
    }
};

static_assert(AssignmentBackend<CpuAssignment>);

}  // namespace vqlib
