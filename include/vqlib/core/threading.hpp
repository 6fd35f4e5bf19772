#pragma once
// Deterministic parallel loops.
//
// Work is cut into chunks whose boundaries depend only on the problem size, never on the number of
// threads; each chunk is computed by exactly one thread with the same code path. Results are
// therefore bit-identical for any thread count. OpenMP is used when the translation unit is
// compiled with it (the vqlib::vqlib target adds it when found); otherwise std::thread.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vqlib {
namespace detail {
inline std::atomic<int>& thread_setting() {
    static std::atomic<int> threads{0};
    return threads;
}
}  // namespace detail

/// Sets the number of threads vqlib uses (0 = all hardware threads). Results do not depend on it.
inline void set_num_threads(int threads) {
    VQLIB_CHECK(threads >= 0, invalid_argument, "threads = ", threads, ": expected >= 0");
    detail::thread_setting() = threads;
}

namespace detail {
/// The default thread count, read once: OpenMP's (OMP_NUM_THREADS or the processor count) or the
/// hardware concurrency. Cached because parallel_for lowers OpenMP's per-thread count to 1 inside
/// its regions (see below), which must not change what a nested vqlib loop asks for.
inline int default_threads() {
#ifdef _OPENMP
    static const int threads = std::max(1, omp_get_max_threads());
#else
    static const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#endif
    return threads;
}
}  // namespace detail

/// The number of threads vqlib will use.
inline int num_threads() {
    const int set = detail::thread_setting();
    return set > 0 ? set : detail::default_threads();
}

/// Calls body(chunk) for every chunk in [0, chunks), spread over the threads. If bodies throw,
/// the exception of the lowest-numbered failing chunk is rethrown on the calling thread once all
/// threads have stopped (the same one whatever the thread count).
template <class Body>
void parallel_for(Index chunks, Body&& body) {
    if (chunks <= 0) return;
    const int threads = static_cast<int>(std::min<Index>(num_threads(), chunks));
#ifndef _OPENMP
    if (threads <= 1) {
        for (Index c = 0; c < chunks; ++c) body(c);
        return;
    }
#endif
    std::exception_ptr failure;
    Index failed_chunk = chunks;
    std::mutex failure_mutex;
    auto guarded = [&](Index c) {
        try {
            body(c);
        } catch (...) {
            std::lock_guard<std::mutex> lock(failure_mutex);
            if (c < failed_chunk) {
                failed_chunk = c;
                failure = std::current_exception();
            }
        }
    };
#ifdef _OPENMP
    // Even with one thread the body runs inside a parallel region, and each thread of it lowers
    // its own nested thread count to 1: Eigen then never splits a product across threads itself,
    // so every product is computed by the same serial code whatever the thread count.
#pragma omp parallel num_threads(threads)
    {
        omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
        for (Index c = 0; c < chunks; ++c) guarded(c);
    }
#else
    std::atomic<Index> next{0};
    auto worker = [&] {
        for (Index c = next++; c < chunks; c = next++) guarded(c);
    };
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
#endif
    if (failure) std::rethrow_exception(failure);
}

/// Splits [0, n) into chunks of `chunk` elements (the last may be shorter) and calls
/// body(begin, end) for each, in parallel. The boundaries depend on n and chunk only.
template <class Body>
void parallel_for_ranges(Index n, Index chunk, Body&& body) {
    VQLIB_CHECK(chunk > 0, invalid_argument, "chunk = ", chunk, ": expected > 0");
    const Index chunks = (n + chunk - 1) / chunk;
    parallel_for(chunks, [&](Index c) { body(c * chunk, std::min(n, (c + 1) * chunk)); });
}

}  // namespace vqlib
