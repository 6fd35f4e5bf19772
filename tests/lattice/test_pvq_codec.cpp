// Tests of vqlib/lattice/pvq_codec.hpp: the icwrs/cwrsi and Fischer test vectors of
// fixtures/pvq/testvectors.txt (parsed at run time) in every index type wide enough, exhaustive
// bijection checks for N <= 6, K <= 5 in both orders, random round trips up to 218-bit indices,
// the ordering facts of docs/pvq.md, and the errors.
#include <vqlib/core/rng.hpp>
#include <vqlib/lattice/pvq_codec.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../support/lattice.hpp"

using namespace vqlib::lattice;
using Catch::Matchers::Contains;

namespace {

using vqlib::test::random_below;


std::vector<std::int32_t> parse_vector(const std::string& text) {
    std::vector<std::int32_t> v;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');) v.push_back(std::stoi(item));
    return v;
}

/// Whether V(N, K) fits in Idx.
template <PvqIndex Idx>
bool fits(int N, int K) {
    try {
        pvq_v<Idx>(N, K);
        return true;
    } catch (const vqlib::invalid_argument&) {
        return false;
    }
}

template <PvqIndex Idx>
int check_test_vectors() {
    const std::regex vector_line(R"(^(\d+) (\d+) \[([^\]]*)\] (\d+) (\d+) (\d+)$)");
    const std::regex decode_line(R"(^(cwrsi|fischer_decode)\((\d+),(\d+),(\d+)\) = \[([^\]]*)\]$)");
    int checked = 0;
    for (const auto& line : vqlib::test::pvq_fixture_lines("testvectors.txt")) {
        std::smatch m;
        if (std::regex_search(line, m, vector_line)) {
            const int N = std::stoi(m[1]), K = std::stoi(m[2]);
            if (!fits<Idx>(N, K)) continue;
            INFO(index_type_name<Idx>() << ": " << line);
            const PvqCodec<Idx> codec(N, K);
            const auto y = parse_vector(m[3]);
            REQUIRE(y.size() == static_cast<std::size_t>(N));
            CHECK(to_string(codec.size()) == m[6].str());
            CHECK(to_string(codec.encode(y)) == m[4].str());
            CHECK(to_string(codec.encode_fischer(y)) == m[5].str());
            std::vector<std::int32_t> back(static_cast<std::size_t>(N));
            codec.decode(parse_index<Idx>(m[4].str()), back);
            CHECK(back == y);
            codec.decode(parse_index<Idx>(m[5].str()), back, EnumerationOrder::fischer);
            CHECK(back == y);
            ++checked;
        } else if (std::regex_search(line, m, decode_line)) {
            const int N = std::stoi(m[2]), K = std::stoi(m[3]);
            if (!fits<Idx>(N, K)) continue;
            INFO(index_type_name<Idx>() << ": " << line);
            const PvqCodec<Idx> codec(N, K);
            const auto expected = parse_vector(m[5]);
            const Idx i = parse_index<Idx>(m[4].str());
            const auto order = m[1] == "cwrsi" ? EnumerationOrder::opus : EnumerationOrder::fischer;
            std::vector<std::int32_t> y(static_cast<std::size_t>(N));
            codec.decode(i, y, order);
            CHECK(y == expected);
            CHECK(codec.encode(y, order) == i);
            ++checked;
        }
    }
    return checked;
}

/// Every y ∈ Z^N with ||y||_1 = K, built independently of the codec.
void all_codewords(int N, int K, std::vector<std::int32_t>& prefix,
                   std::vector<std::vector<std::int32_t>>& out) {
    if (static_cast<int>(prefix.size()) == N) {
        if (K == 0) out.push_back(prefix);
        return;
    }
    for (int a = 0; a <= K; ++a)
        for (int sign : {1, -1}) {
            if (a == 0 && sign < 0) continue;
            prefix.push_back(sign * a);
            all_codewords(N, K - a, prefix, out);
            prefix.pop_back();
        }
}

/// Position of a coordinate value in Fischer's order 0 < +1 < -1 < +2 < -2 < ...
int fischer_key(std::int32_t v) { return v == 0 ? 0 : (v > 0 ? 2 * v - 1 : -2 * v); }

template <PvqIndex Idx>
void check_exhaustive(int N, int K) {
    INFO("N = " << N << ", K = " << K << ", type " << index_type_name<Idx>());
    const PvqCodec<Idx> codec(N, K);
    std::vector<std::vector<std::int32_t>> words;
    std::vector<std::int32_t> prefix;
    all_codewords(N, K, prefix, words);
    const auto V = static_cast<std::size_t>(detail::Natural::from_index(codec.size()).low64());
    REQUIRE(words.size() == V);
    for (auto order : {EnumerationOrder::opus, EnumerationOrder::fischer}) {
        std::vector<char> seen(V, 0);
        std::vector<std::int32_t> back(static_cast<std::size_t>(N));
        for (const auto& y : words) {
            const Idx i = codec.encode(y, order);
            REQUIRE(i < codec.size());
            const auto pos = static_cast<std::size_t>(detail::Natural::from_index(i).low64());
            REQUIRE(seen[pos] == 0);  // injective onto [0, V), hence bijective
            seen[pos] = 1;
            codec.decode(i, back, order);
            REQUIRE(back == y);
        }
        std::vector<std::int32_t> previous;
        for (std::size_t i = 0; i < V; ++i) {
            codec.decode(Idx(static_cast<std::uint64_t>(i)), back, order);
            REQUIRE(codec.encode(back, order) == Idx(static_cast<std::uint64_t>(i)));
            if (order == EnumerationOrder::fischer && i > 0) {
                // Consecutive Fischer indices are consecutive in the lexicographic order.
                std::vector<int> a, b;
                for (auto v : previous) a.push_back(fischer_key(v));
                for (auto v : back) b.push_back(fischer_key(v));
                REQUIRE(std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end()));
            }
            previous = back;
        }
    }
}


template <PvqIndex Idx>
void check_random_round_trips(int N, int K, int trials, std::uint64_t seed) {
    INFO("N = " << N << ", K = " << K << ", type " << index_type_name<Idx>());
    const PvqCodec<Idx> codec(N, K);
    vqlib::Rng rng(seed);
    std::vector<std::int32_t> y(static_cast<std::size_t>(N)), back(y.size());
    for (int t = 0; t < trials; ++t) {
        std::fill(y.begin(), y.end(), 0);
        for (int p = 0; p < K; ++p) ++y[rng.below(static_cast<std::uint64_t>(N))];
        for (auto& v : y)
            if (rng.below(2)) v = -v;
        for (auto order : {EnumerationOrder::opus, EnumerationOrder::fischer}) {
            const Idx i = codec.encode(y, order);
            REQUIRE(i < codec.size());
            codec.decode(i, back, order);
            REQUIRE(back == y);
            const Idx j = random_below(rng, codec.size());
            codec.decode(j, back, order);
            std::int64_t norm = 0;
            for (auto v : back) norm += v < 0 ? -v : v;
            REQUIRE(norm == K);
            REQUIRE(codec.encode(back, order) == j);
        }
    }
    // The ends of the index range.
    const Idx last = static_cast<Idx>(codec.size() - Idx(1));
    for (auto order : {EnumerationOrder::opus, EnumerationOrder::fischer}) {
        codec.decode(Idx(0), back, order);
        CHECK(codec.encode(back, order) == Idx(0));
        codec.decode(last, back, order);
        CHECK(codec.encode(back, order) == last);
    }
}

}  // namespace

TEST_CASE("Test vectors of testvectors.txt", "[lattice][codec][fixtures]") {
    CHECK(check_test_vectors<std::uint32_t>() == 38);  // all but the 9 lines of (32, 16)
    CHECK(check_test_vectors<std::uint64_t>() == 47);
    CHECK(check_test_vectors<uint128>() == 47);
    CHECK(check_test_vectors<BigUint<1>>() == 47);
    CHECK(check_test_vectors<BigUint<2>>() == 47);
    CHECK(check_test_vectors<BigUint<4>>() == 47);
}

TEST_CASE("Exhaustive bijection for N <= 6, K <= 5", "[lattice][codec]") {
    for (int N = 1; N <= 6; ++N)
        for (int K = 0; K <= 5; ++K) {
            check_exhaustive<std::uint32_t>(N, K);
            check_exhaustive<BigUint<2>>(N, K);
        }
    check_exhaustive<std::uint64_t>(8, 4);
}

TEST_CASE("Ordering facts of the Opus enumeration", "[lattice][codec]") {
    for (int N : {1, 2, 3, 5, 8, 16})
        for (int K : {1, 2, 3, 4, 7}) {
            INFO("N = " << N << ", K = " << K);
            const PvqCodec<std::uint64_t> codec(N, K);
            const std::uint64_t V = codec.size();
            std::vector<std::int32_t> y(static_cast<std::size_t>(N)), expected(y.size());
            codec.decode(0, y);
            std::fill(expected.begin(), expected.end(), 0);
            expected[0] = K;
            CHECK(y == expected);  // index 0 = (K, 0, ..., 0)
            if (N >= 2) {
                codec.decode(1, y);
                expected[0] = K - 1;
                expected[1] = 1;
                CHECK(y == expected);  // index 1 = (K-1, 1, 0, ...)
            }
            codec.decode(V / 2, y);
            std::fill(expected.begin(), expected.end(), 0);
            expected.back() = -K;
            CHECK(y == expected);  // index V/2 = (0, ..., 0, -K)
            if (K <= N) {
                codec.decode(V - 1, y);
                std::fill(expected.begin(), expected.end(), 0);
                std::fill(expected.begin(), expected.begin() + K, -1);
                CHECK(y == expected);  // index V-1 = (-1, ..., -1, 0, ...)
            }
            codec.decode(0, y, EnumerationOrder::fischer);
            std::fill(expected.begin(), expected.end(), 0);
            expected.back() = K;
            CHECK(y == expected);  // Fischer 0 = (0, ..., 0, K)
            codec.decode(V - 1, y, EnumerationOrder::fischer);
            std::fill(expected.begin(), expected.end(), 0);
            expected[0] = -K;
            CHECK(y == expected);  // Fischer V-1 = (-K, 0, ..., 0)
        }
}

TEST_CASE("Random round trips at 32 to 256 bits", "[lattice][codec]") {
    check_random_round_trips<std::uint32_t>(8, 36, 200, 1);
    check_random_round_trips<std::uint64_t>(8, 2, 200, 2);
    check_random_round_trips<std::uint64_t>(8, 4, 200, 3);
    check_random_round_trips<std::uint64_t>(16, 8, 200, 4);
    check_random_round_trips<std::uint64_t>(32, 16, 200, 5);
    check_random_round_trips<std::uint64_t>(16, 58, 200, 6);
    check_random_round_trips<uint128>(32, 32, 200, 7);
    check_random_round_trips<uint128>(32, 50, 200, 8);
    check_random_round_trips<uint128>(64, 32, 200, 9);
    check_random_round_trips<uint128>(32, 105, 100, 10);
    check_random_round_trips<BigUint<2>>(32, 32, 200, 11);
    check_random_round_trips<BigUint<2>>(64, 32, 200, 12);
    check_random_round_trips<BigUint<3>>(64, 96, 100, 13);
    check_random_round_trips<BigUint<4>>(128, 64, 100, 14);
    check_random_round_trips<uint128>(8, 20000, 20, 15);  // large K, small N
}

TEST_CASE("Codec properties", "[lattice][codec]") {
    const PvqCodec<uint128> c(32, 50);
    CHECK(c.dim() == 32);
    CHECK(c.pulses() == 50);
    CHECK(c.index_bits() == 96);
    CHECK(c.log2_size() == Approx(log2_pvq_size(32, 50)));
    CHECK(c.size() == pvq_v<uint128>(32, 50));
    const PvqCodec<std::uint32_t> c8(8, 36);
    CHECK(c8.index_bits() == 32);
    CHECK(c8.size() == pvq_v<std::uint32_t>(8, 36));
    const PvqCodec<std::uint32_t> trivial(5, 0);
    CHECK(trivial.size() == 1u);
    CHECK(trivial.index_bits() == 0);
    std::vector<std::int32_t> y(5, 7);
    trivial.decode(0u, y);
    CHECK(y == std::vector<std::int32_t>(5, 0));
    CHECK(trivial.encode(y) == 0u);
    const PvqCodec<std::uint32_t> one(1, 3);
    CHECK(one.size() == 2u);
    std::vector<std::int32_t> y1(1);
    one.decode(0u, y1);
    CHECK(y1[0] == 3);
    one.decode(1u, y1);
    CHECK(y1[0] == -3);
    one.decode(1u, y1, EnumerationOrder::fischer);
    CHECK(y1[0] == -3);
}

TEST_CASE("Codec errors", "[lattice][codec]") {
    CHECK_THROWS_AS(PvqCodec<std::uint32_t>(0, 3), vqlib::invalid_argument);
    CHECK_THROWS_AS(PvqCodec<std::uint32_t>(3, -1), vqlib::invalid_argument);
    CHECK_THROWS_WITH(PvqCodec<std::uint32_t>(2, 100000000), Contains("bytes"));  // table too large
    const PvqCodec<std::uint64_t> codec(4, 3);
    std::vector<std::int32_t> short_y(3), y(4);
    CHECK_THROWS_AS(codec.encode(short_y), vqlib::shape_error);
    CHECK_THROWS_WITH(codec.encode(short_y), Contains("3 coordinates") && Contains("N = 4"));
    CHECK_THROWS_AS(codec.decode(0, short_y), vqlib::shape_error);
    for (auto order : {EnumerationOrder::opus, EnumerationOrder::fischer}) {
        y = {1, 1, 1, 1};
        CHECK_THROWS_WITH(codec.encode(y, order), Contains("||y||_1 = 4") && Contains("K = 3"));
        y = {1, 0, 0, 1};
        CHECK_THROWS_WITH(codec.encode(y, order), Contains("||y||_1 = 2"));
        y = {0, 0, 0, INT_MIN};
        CHECK_THROWS_AS(codec.encode(y, order), vqlib::invalid_argument);
        y = {INT_MIN, 0, 0, 0};
        CHECK_THROWS_AS(codec.encode(y, order), vqlib::invalid_argument);
        y = {INT_MAX, INT_MAX, 0, 0};
        CHECK_THROWS_AS(codec.encode(y, order), vqlib::invalid_argument);
        CHECK_THROWS_AS(codec.decode(codec.size(), y, order), vqlib::invalid_argument);
        CHECK_THROWS_WITH(codec.decode(~std::uint64_t{0}, y, order),
                          Contains("18446744073709551615") && Contains("V(4, 3) = 88"));
    }
    CHECK_THROWS_AS(codec.u(5, 0), vqlib::invalid_argument);
    CHECK_THROWS_AS(codec.v(1, 4), vqlib::invalid_argument);
}
