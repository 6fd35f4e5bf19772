#pragma once
// How the cluster component runs its fixed chunks: in parallel through vqlib::parallel_for, or on
// the calling thread. Chunk boundaries never depend on that choice, so neither do results; the
// choice only avoids paying for threads where they cannot help: small problems, and problems
// already running inside a parallel loop (kmeans_batch, or a caller's vqlib::parallel_for).
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vqlib::detail {

inline bool& cluster_serial_flag() {
    thread_local bool serial = false;
    return serial;
}

/// While alive, the cluster component runs everything on this thread.
class ClusterSerialScope {
public:
    ClusterSerialScope() : previous_(cluster_serial_flag()) { cluster_serial_flag() = true; }
    ~ClusterSerialScope() { cluster_serial_flag() = previous_; }
    ClusterSerialScope(const ClusterSerialScope&) = delete;
    ClusterSerialScope& operator=(const ClusterSerialScope&) = delete;

private:
    bool previous_;
};

/// True when a parallel loop may be opened here: not inside a ClusterSerialScope, not inside an
/// OpenMP parallel region (active or not), and more than one thread configured.
inline bool cluster_may_parallelize() {
    if (cluster_serial_flag()) return false;
#ifdef _OPENMP
    if (omp_get_level() > 0) return false;
#endif
    return num_threads() > 1;
}

/// Calls body(c) for c in [0, chunks): in parallel if `parallel` and cluster_may_parallelize(),
/// otherwise in order on this thread.
template <class Body>
void run_chunks(Index chunks, bool parallel, Body&& body) {
    if (parallel && chunks > 1 && cluster_may_parallelize()) {
        parallel_for(chunks, body);
        return;
    }
    for (Index c = 0; c < chunks; ++c) body(c);
}

/// Like run_chunks, for bodies that call Eigen products: on the calling thread they still run
/// inside a one-thread vqlib::parallel_for when no parallel region is open yet, so that Eigen never
/// splits a product over threads itself (that could change its rounding with the thread count).
template <class Body>
void run_chunks_with_products(Index chunks, bool parallel, Body&& body) {
    if (parallel && chunks > 1 && cluster_may_parallelize()) {
        parallel_for(chunks, body);
        return;
    }
#ifdef _OPENMP
    if (omp_get_level() == 0) {
        parallel_for(1, [&](Index) {
            for (Index c = 0; c < chunks; ++c) body(c);
        });
        return;
    }
#endif
    for (Index c = 0; c < chunks; ++c) body(c);
}

}  // namespace vqlib::detail
