#include <vqlib/core/threading.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

namespace {

// Sets vqlib's thread count for one scope and restores the default (0 = all threads) after it.
class ThreadCountScope {
public:
    explicit ThreadCountScope(int threads) { vqlib::set_num_threads(threads); }
    ~ThreadCountScope() { vqlib::set_num_threads(0); }
    ThreadCountScope(const ThreadCountScope&) = delete;
    ThreadCountScope& operator=(const ThreadCountScope&) = delete;
};

// A per-chunk computation whose floating-point result depends on the order of its additions.
std::vector<float> chunk_sums(vqlib::Index chunks, int threads) {
    ThreadCountScope scope(threads);
    std::vector<float> sums(static_cast<std::size_t>(chunks));
    vqlib::parallel_for(chunks, [&](vqlib::Index c) {
        float sum = 0.0f;
        for (int k = 1; k <= 1000; ++k) sum += 1.0f / static_cast<float>(k + c);
        sums[static_cast<std::size_t>(c)] = sum;
    });
    return sums;
}

}  // namespace

TEST_CASE("parallel_for calls the body once for every chunk", "[core][threading]") {
    const int threads = GENERATE(1, 2, 4);
    const vqlib::Index chunks = GENERATE(as<vqlib::Index>{}, 1, 2, 7, 1000);
    ThreadCountScope scope(threads);

    std::vector<std::atomic<int>> calls(static_cast<std::size_t>(chunks));
    vqlib::parallel_for(chunks, [&](vqlib::Index c) { ++calls[static_cast<std::size_t>(c)]; });

    for (vqlib::Index c = 0; c < chunks; ++c) {
        INFO("threads = " << threads << ", chunks = " << chunks << ", chunk " << c);
        CHECK(calls[static_cast<std::size_t>(c)] == 1);
    }
}

TEST_CASE("parallel_for does nothing for zero or negative chunks", "[core][threading]") {
    const vqlib::Index chunks = GENERATE(as<vqlib::Index>{}, 0, -3);
    int calls = 0;
    vqlib::parallel_for(chunks, [&](vqlib::Index) { ++calls; });
    CHECK(calls == 0);
}

TEST_CASE("parallel_for results do not depend on the thread count", "[core][threading]") {
    const std::vector<float> one_thread = chunk_sums(257, 1);
    const std::vector<float> two_threads = chunk_sums(257, 2);
    const std::vector<float> all_threads = chunk_sums(257, 0);
    CHECK(one_thread == two_threads);
    CHECK(one_thread == all_threads);
}

TEST_CASE("parallel_for rethrows an exception thrown by a body", "[core][threading]") {
    const int threads = GENERATE(1, 2);
    ThreadCountScope scope(threads);
    std::atomic<int> calls{0};
    auto failing_body = [&](vqlib::Index c) {
        ++calls;
        if (c == 5) throw vqlib::invalid_argument("chunk 5 failed");
    };

    CHECK_THROWS_MATCHES(vqlib::parallel_for(16, failing_body), vqlib::invalid_argument,
                         Catch::Matchers::Message("vqlib: chunk 5 failed"));
    CHECK(calls >= 1);
    // The pool is usable again after a failure.
    std::atomic<int> later_calls{0};
    vqlib::parallel_for(16, [&](vqlib::Index) { ++later_calls; });
    CHECK(later_calls == 16);
}

TEST_CASE("parallel_for_ranges cuts [0, n) at multiples of the chunk size", "[core][threading]") {
    ThreadCountScope scope(2);
    const auto ranges_of = [](vqlib::Index n, vqlib::Index chunk) {
        std::vector<std::pair<vqlib::Index, vqlib::Index>> ranges(
            static_cast<std::size_t>((n + chunk - 1) / chunk), {-1, -1});
        vqlib::parallel_for_ranges(n, chunk, [&](vqlib::Index begin, vqlib::Index end) {
            ranges[static_cast<std::size_t>(begin / chunk)] = {begin, end};
        });
        return ranges;
    };
    using Ranges = std::vector<std::pair<vqlib::Index, vqlib::Index>>;

    CHECK(ranges_of(10, 3) == Ranges{{0, 3}, {3, 6}, {6, 9}, {9, 10}});
    CHECK(ranges_of(9, 3) == Ranges{{0, 3}, {3, 6}, {6, 9}});
    CHECK(ranges_of(5, 8) == Ranges{{0, 5}});
    CHECK(ranges_of(1, 1) == Ranges{{0, 1}});
    CHECK(ranges_of(0, 4).empty());
}

TEST_CASE("parallel_for_ranges rejects a chunk size below one", "[core][threading]") {
    const vqlib::Index chunk = GENERATE(as<vqlib::Index>{}, 0, -1);
    CHECK_THROWS_AS(vqlib::parallel_for_ranges(10, chunk, [](vqlib::Index, vqlib::Index) {}),
                    vqlib::invalid_argument);
}

TEST_CASE("set_num_threads sets num_threads and rejects negative counts", "[core][threading]") {
    {
        ThreadCountScope scope(3);
        CHECK(vqlib::num_threads() == 3);
    }
    CHECK(vqlib::num_threads() >= 1);
    CHECK_THROWS_AS(vqlib::set_num_threads(-1), vqlib::invalid_argument);
}
