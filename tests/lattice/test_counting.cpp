// Tests of vqlib/lattice/counting.hpp: every number of fixtures/pvq/tables.txt (parsed at run
// time), the Opus V/U tables for N, K < 10, the polynomial forms, the identities between U and V,
// and the width boundaries of 32, 64 and 128-bit indices.
#include <vqlib/lattice/counting.hpp>
#include <vqlib/lattice/pvq_codec.hpp>

#include <catch2/catch.hpp>

#include <climits>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "../support/lattice.hpp"

using namespace vqlib::lattice;
using Catch::Matchers::Contains;

namespace {


/// pvq_v<Idx>(N, K) equals `decimal` when that fits in Idx, and throws otherwise.
template <PvqIndex Idx>
void check_v_in_type(int N, int K, const std::string& decimal) {
    INFO("N = " << N << ", K = " << K << ", type " << index_type_name<Idx>());
    bool fits = true;
    Idx expected{};
    try {
        expected = parse_index<Idx>(decimal);
    } catch (const vqlib::invalid_argument&) {
        fits = false;
    }
    if (fits) {
        CHECK(pvq_v<Idx>(N, K) == expected);
    } else {
        CHECK_THROWS_AS(pvq_v<Idx>(N, K), vqlib::invalid_argument);
    }
}

/// V(N, K) fits in Idx and V(N, K+1) does not, for both the counting function and the codec.
template <PvqIndex Idx>
void check_boundary(int N, int K) {
    INFO("N = " << N << ", K = " << K << ", type " << index_type_name<Idx>());
    CHECK_NOTHROW(pvq_v<Idx>(N, K));
    CHECK_THROWS_AS(pvq_v<Idx>(N, K + 1), vqlib::invalid_argument);
    const std::string bits = std::to_string(index_bits<Idx>) + "-bit";
    CHECK_THROWS_WITH(pvq_v<Idx>(N, K + 1), Contains("N = " + std::to_string(N)) &&
                                                 Contains("K = " + std::to_string(K + 1)) &&
                                                 Contains(bits));
}

template <PvqIndex Idx>
void check_max_k(int N, const std::string& entry) {
    const int bits = index_bits<Idx>;
    INFO("N = " << N << ", bits = " << bits << ", fixture " << entry);
    if (entry == ">1e6") {
        CHECK(max_pulses_fitting(N, bits) > 1000000);
        CHECK_NOTHROW(pvq_v<Idx>(N, 1000000));
    } else {
        const int K = std::stoi(entry);
        CHECK(max_pulses_fitting(N, bits) == K);
        check_boundary<Idx>(N, K);
    }
}

}  // namespace

TEST_CASE("V(N, K) test vectors of tables.txt", "[lattice][counting][fixtures]") {
    const std::regex pattern(
        R"(V\((\d+),(\d+)\) = (\d+)\s+log2=([\d.]+)\s+bits/dim=([\d.]+)\s+ceil_bits=(\d+))");
    int parsed = 0;
    for (const auto& line : vqlib::test::pvq_fixture_lines("tables.txt")) {
        std::smatch m;
        if (!std::regex_search(line, m, pattern)) continue;
        ++parsed;
        const int N = std::stoi(m[1]), K = std::stoi(m[2]);
        const std::string value = m[3];
        INFO(line);
        CHECK(pvq_v_decimal(N, K) == value);
        check_v_in_type<std::uint32_t>(N, K, value);
        check_v_in_type<std::uint64_t>(N, K, value);
        check_v_in_type<uint128>(N, K, value);
        check_v_in_type<BigUint<2>>(N, K, value);
        check_v_in_type<BigUint<4>>(N, K, value);
        CHECK(log2_pvq_size(N, K) == Approx(std::stod(m[4])).margin(1e-6));
        CHECK(log2_pvq_size(N, K) / N == Approx(std::stod(m[5])).margin(1e-5));
        CHECK(pvq_index_bits(N, K) == std::stoi(m[6]));
    }
    CHECK(parsed == 22);
}

TEST_CASE("Largest K per index width, tables.txt", "[lattice][counting][fixtures]") {
    const std::regex pattern(R"(N=\s*(\d+): K32=\s*(\S+) K64=\s*(\S+) K128=\s*(\S+))");
    int parsed = 0;
    for (const auto& line : vqlib::test::pvq_fixture_lines("tables.txt")) {
        std::smatch m;
        if (!std::regex_search(line, m, pattern)) continue;
        ++parsed;
        const int N = std::stoi(m[1]);
        check_max_k<std::uint32_t>(N, m[2]);
        check_max_k<std::uint64_t>(N, m[3]);
        check_max_k<uint128>(N, m[4]);
        check_max_k<BigUint<2>>(N, m[4]);
    }
    CHECK(parsed == 13);
}

TEST_CASE("Shape bits per weight, tables.txt", "[lattice][counting][fixtures]") {
    const std::regex line_pattern(R"(^N=(\d+): (K=.*)$)");
    const std::regex entry(R"(K=(\d+):([\d.]+)/([\d.]+))");
    int parsed = 0;
    for (const auto& line : vqlib::test::pvq_fixture_lines("tables.txt")) {
        std::smatch m;
        if (!std::regex_search(line, m, line_pattern)) continue;
        const int N = std::stoi(m[1]);
        const std::string rest = m[2];
        for (std::sregex_iterator it(rest.begin(), rest.end(), entry), end; it != end; ++it) {
            ++parsed;
            const int K = std::stoi((*it)[1]);
            INFO("N = " << N << ", K = " << K);
            CHECK(log2_pvq_size(N, K) / N == Approx(std::stod((*it)[2])).margin(6e-4));
            CHECK(static_cast<double>(pvq_index_bits(N, K)) / N ==
                  Approx(std::stod((*it)[3])).margin(6e-4));
        }
    }
    CHECK(parsed == 120);
}

TEST_CASE("Largest K per target rate, tables.txt", "[lattice][counting][fixtures]") {
    const std::regex pattern(
        R"(N=\s*(\d+) target<=\s*([\d.]+) bpw: largest K=\s*(\d+) )"
        R"(\(ceil bits (\d+), bpw ([\d.]+)\))");
    int parsed = 0;
    for (const auto& line : vqlib::test::pvq_fixture_lines("tables.txt")) {
        std::smatch m;
        if (!std::regex_search(line, m, pattern)) continue;
        ++parsed;
        const int N = std::stoi(m[1]), K = std::stoi(m[3]), bits = std::stoi(m[4]);
        const double budget = std::stod(m[2]) * N;
        INFO(line);
        CHECK(pvq_index_bits(N, K) == bits);
        CHECK(bits <= budget + 1e-9);
        CHECK(pvq_index_bits(N, K + 1) > budget);
        CHECK(static_cast<double>(bits) / N == Approx(std::stod(m[5])).margin(1e-4));
    }
    CHECK(parsed == 35);
}

TEST_CASE("Opus fits_in32 maxK table", "[lattice][counting]") {
    // rate.c maxK[N] for N = 4..14 (docs/pvq.md); N <= 3 is capped at 32767 there.
    const int max_k[] = {1172, 238, 95, 53, 36, 27, 22, 18, 16, 15, 13};
    for (int N = 4; N <= 14; ++N) {
        INFO("N = " << N);
        CHECK(max_pulses_fitting(N, 32) == max_k[N - 4]);
    }
    for (int N = 1; N <= 3; ++N) CHECK(max_pulses_fitting(N, 32) >= 32767);
    CHECK(max_pulses_fitting(3, 32) == 32767);
    CHECK(max_pulses_fitting(2, 32) == (1 << 30) - 1);  // V(2, K) = 4K
    CHECK(max_pulses_fitting(1, 2) == INT_MAX);          // V(1, K) = 2 for every K >= 1
    CHECK(max_pulses_fitting(1, 1) == 0);
    CHECK(max_pulses_fitting(2, 64) == INT_MAX);
    CHECK_THROWS_AS(max_pulses_fitting(0, 32), vqlib::invalid_argument);
    CHECK_THROWS_AS(max_pulses_fitting(4, 0), vqlib::invalid_argument);
}

TEST_CASE("Opus V and U tables for N, K < 10", "[lattice][counting]") {
    // Rows of the tables in the comments of celt/cwrs.c (recomputed independently).
    const std::uint64_t v_rows[10][10] = {
        {1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {1, 2, 2, 2, 2, 2, 2, 2, 2, 2},
        {1, 4, 8, 12, 16, 20, 24, 28, 32, 36},
        {1, 6, 18, 38, 66, 102, 146, 198, 258, 326},
        {1, 8, 32, 88, 192, 360, 608, 952, 1408, 1992},
        {1, 10, 50, 170, 450, 1002, 1970, 3530, 5890, 9290},
        {1, 12, 72, 292, 912, 2364, 5336, 10836, 20256, 35436},
        {1, 14, 98, 462, 1666, 4942, 12642, 28814, 59906, 115598},
        {1, 16, 128, 688, 2816, 9424, 27008, 68464, 157184, 332688},
        {1, 18, 162, 978, 4482, 16722, 53154, 148626, 374274, 864146},
    };
    const std::uint64_t u_rows[10][10] = {
        {1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {0, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {0, 1, 3, 5, 7, 9, 11, 13, 15, 17},
        {0, 1, 5, 13, 25, 41, 61, 85, 113, 145},
        {0, 1, 7, 25, 63, 129, 231, 377, 575, 833},
        {0, 1, 9, 41, 129, 321, 681, 1289, 2241, 3649},
        {0, 1, 11, 61, 231, 681, 1683, 3653, 7183, 13073},
        {0, 1, 13, 85, 377, 1289, 3653, 8989, 19825, 40081},
        {0, 1, 15, 113, 575, 2241, 7183, 19825, 48639, 108545},
        {0, 1, 17, 145, 833, 3649, 13073, 40081, 108545, 265729},
    };
    const PvqCodec<std::uint32_t> codec(9, 9);  // its table holds U(n, k), n <= 9, k <= 10
    for (int n = 0; n < 10; ++n)
        for (int k = 0; k < 10; ++k) {
            INFO("N = " << n << ", K = " << k);
            CHECK(pvq_v<std::uint32_t>(n, k) == v_rows[n][k]);
            CHECK(pvq_u<std::uint32_t>(n, k) == u_rows[n][k]);
            CHECK(codec.u(n, k) == u_rows[n][k]);
            CHECK(codec.v(n, k) == v_rows[n][k]);
        }
    // The tail of the Opus data table (docs/pvq.md).
    CHECK(pvq_u<std::uint32_t>(14, 14) == 1409933619u);
    const std::uint32_t u12[] = {45046719u,  103274625u,  224298231u, 464387817u,
                                 921406335u, 1759885185u, 3248227095u};
    for (int k = 12; k <= 18; ++k) CHECK(pvq_u<std::uint32_t>(12, k) == u12[k - 12]);
    const std::uint32_t u13[] = {251595969u, 579168825u, 1267854873u, 2653649025u};
    for (int k = 13; k <= 16; ++k) CHECK(pvq_u<std::uint32_t>(13, k) == u13[k - 13]);
}

TEST_CASE("Polynomial forms of V", "[lattice][counting]") {
    for (std::uint64_t K = 1; K < 200; ++K) {
        const int k = static_cast<int>(K);
        INFO("K = " << K);
        CHECK(pvq_v<std::uint64_t>(1, k) == 2u);
        CHECK(pvq_v<std::uint64_t>(2, k) == 4 * K);
        CHECK(pvq_v<std::uint64_t>(3, k) == 4 * K * K + 2);
        CHECK(3 * pvq_v<std::uint64_t>(4, k) == 8 * (K * K + 2) * K);
        CHECK(3 * pvq_v<std::uint64_t>(5, k) == (4 * K * K + 20) * K * K + 6);
        CHECK(pvq_v<std::uint64_t>(k, 2) == 2 * K * K);
    }
    CHECK(pvq_v<std::uint64_t>(2, 3) == 12u);  // V is not symmetric
    CHECK(pvq_v<std::uint64_t>(3, 2) == 18u);
}

TEST_CASE("Identities between U and V", "[lattice][counting]") {
    for (int n = 0; n < 20; ++n)
        for (int k = 0; k < 30; ++k) {
            INFO("N = " << n << ", K = " << k);
            const auto u = pvq_u<uint128>(n, k);
            CHECK(u == pvq_u<uint128>(k, n));                              // symmetry
            CHECK(pvq_v<uint128>(n, k) == u + pvq_u<uint128>(n, k + 1));  // V = U(K) + U(K+1)
            if (n > 0 && k > 0) {
                CHECK(pvq_v<uint128>(n, k) == pvq_v<uint128>(n - 1, k) + pvq_v<uint128>(n, k - 1) +
                                                  pvq_v<uint128>(n - 1, k - 1));
                CHECK(u == pvq_u<uint128>(n - 1, k) + pvq_u<uint128>(n, k - 1) +
                               pvq_u<uint128>(n - 1, k - 1));
            }
            if (k >= 2) {  // row generator; the division is exact
                const uint128 num = (2 * static_cast<uint128>(n) - 1) * pvq_u<uint128>(n, k - 1) -
                                    pvq_u<uint128>(n, k - 2);
                if (n >= 1) {
                    CHECK(num % static_cast<unsigned>(k - 1) == 0);
                    CHECK(u == num / static_cast<unsigned>(k - 1) + pvq_u<uint128>(n, k - 2));
                }
            }
        }
}

TEST_CASE("Index width boundaries", "[lattice][counting]") {
    check_boundary<std::uint32_t>(8, 36);  // V(8,36) < 2^32 <= V(8,37)
    check_boundary<std::uint32_t>(16, 12);
    check_boundary<std::uint64_t>(16, 58);
    check_boundary<uint128>(32, 105);
    check_boundary<BigUint<2>>(32, 105);
    CHECK(pvq_index_bits(32, 50) == 96);  // D = 32, K = 50: 3.0 bpw of shape
    CHECK(pvq_index_bits(8, 36) == 32);
    CHECK(pvq_index_bits(8, 37) == 33);
    CHECK(pvq_index_bits(64, 96) == 192);
    CHECK_NOTHROW(pvq_v<BigUint<3>>(64, 96));
    CHECK_THROWS_AS(pvq_v<BigUint<3>>(64, 97), vqlib::invalid_argument);
    CHECK_THROWS_AS(PvqCodec<std::uint32_t>(8, 37), vqlib::invalid_argument);
    CHECK_THROWS_WITH(PvqCodec<std::uint64_t>(16, 59),
                      Contains("N = 16") && Contains("K = 59") && Contains("64-bit"));
    CHECK_THROWS_AS(PvqCodec<uint128>(32, 106), vqlib::invalid_argument);
}

TEST_CASE("Counting edge cases and errors", "[lattice][counting]") {
    CHECK(pvq_v<std::uint32_t>(0, 0) == 1u);
    CHECK(pvq_v<std::uint32_t>(0, 5) == 0u);
    CHECK(pvq_v<std::uint32_t>(7, 0) == 1u);
    CHECK(pvq_u<std::uint32_t>(0, 0) == 1u);
    CHECK(pvq_u<std::uint32_t>(3, 0) == 0u);
    CHECK(pvq_u<std::uint32_t>(0, 3) == 0u);
    CHECK(log2_pvq_size(5, 0) == 0.0);
    CHECK(pvq_index_bits(5, 0) == 0);
    CHECK(pvq_index_bits(1, 1) == 1);
    CHECK_THROWS_AS(pvq_v<std::uint32_t>(-1, 2), vqlib::invalid_argument);
    CHECK_THROWS_AS(pvq_u<std::uint32_t>(2, -1), vqlib::invalid_argument);
    CHECK_THROWS_AS(log2_pvq_size(0, 3), vqlib::invalid_argument);
    // Large arguments stay cheap and accurate: the exact and log-domain paths agree.
    CHECK(log2_pvq_size(4, 1000000) ==
          Approx(std::log2(8.0 * (1e12 + 2) * 1e6 / 3)).epsilon(1e-12));
    const double big = log2_pvq_size(20000, 20000);  // beyond the exact path
    CHECK(big == Approx(detail::log2_pvq_size_estimate(20000, 20000)));
    CHECK(big > 20000 * 2.5);
    CHECK(log2_pvq_size(2000, 2000) ==
          Approx(detail::log2_pvq_size_estimate(2000, 2000)).epsilon(1e-12));
    CHECK(log2_pvq_size(128, 64) == Approx(217.749926).margin(1e-6));
}
