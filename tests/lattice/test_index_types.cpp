// Tests of vqlib/lattice/big_uint.hpp, index_types.hpp and the internal natural.hpp: BigUint
// arithmetic against unsigned __int128, overflow detection for every index type, decimal
// conversions, and the big-number multiply / Knuth division used by the packing.
#include <vqlib/core/rng.hpp>
#include <vqlib/lattice/big_uint.hpp>
#include <vqlib/lattice/index_types.hpp>
#include <vqlib/lattice/natural.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

using namespace vqlib::lattice;
using Catch::Matchers::Contains;

namespace {

uint128 random_u128(vqlib::Rng& rng) {
    const int shape = static_cast<int>(rng.below(4));
    uint128 v = (static_cast<uint128>(rng.next()) << 64) | rng.next();
    if (shape == 0) v >>= rng.below(128);  // values of every size
    if (shape == 1) v = rng.below(1000);
    return v;
}

BigUint<2> to_big(uint128 v) {
    BigUint<2> b;
    b.set_limb(0, static_cast<std::uint64_t>(v));
    b.set_limb(1, static_cast<std::uint64_t>(v >> 64));
    return b;
}

detail::Natural random_natural(vqlib::Rng& rng, std::size_t max_words) {
    std::vector<std::uint32_t> w(1 + rng.below(max_words));
    for (auto& x : w) {
        x = static_cast<std::uint32_t>(rng.next());
        if (rng.below(8) == 0) x = rng.below(2) ? 0xffffffffu : 0u;  // carries and borrows
    }
    return detail::Natural::from_words(w);
}

}  // namespace

static_assert(PvqIndex<std::uint32_t>);
static_assert(PvqIndex<std::uint64_t>);
static_assert(PvqIndex<uint128>);
static_assert(PvqIndex<BigUint<1>>);
static_assert(PvqIndex<BigUint<4>>);
static_assert(!PvqIndex<int>);
static_assert(!PvqIndex<double>);
static_assert(index_bits<std::uint32_t> == 32);
static_assert(index_bits<std::uint64_t> == 64);
static_assert(index_bits<uint128> == 128);
static_assert(index_bits<BigUint<3>> == 192);

TEST_CASE("BigUint<2> arithmetic matches unsigned __int128", "[lattice][index]") {
    vqlib::Rng rng(11);
    for (int trial = 0; trial < 2000; ++trial) {
        const uint128 a = random_u128(rng), b = random_u128(rng);
        const BigUint<2> x = to_big(a), y = to_big(b);
        REQUIRE(x + y == to_big(a + b));
        REQUIRE(x - y == to_big(a - b));
        REQUIRE((x < y) == (a < b));
        REQUIRE((x == y) == (a == b));
        REQUIRE((x <= y) == (a <= b));
        const int s = static_cast<int>(rng.below(140));
        REQUIRE((x << s) == to_big(s >= 128 ? uint128(0) : a << s));
        REQUIRE((x >> s) == to_big(s >= 128 ? uint128(0) : a >> s));
        REQUIRE((x & y) == to_big(a & b));
        REQUIRE((x | y) == to_big(a | b));
        REQUIRE(x.bit_length() == bit_length(a));
        REQUIRE(to_string(x) == to_string(a));
        BigUint<2> q = x;
        const std::uint32_t d = static_cast<std::uint32_t>(1 + rng.below(0xfffffffeu));
        const std::uint32_t r = q.divmod_small(d);
        REQUIRE(q == to_big(a / d));
        REQUIRE(r == static_cast<std::uint32_t>(a % d));
        BigUint<2> sum{};
        uint128 exact{};
        REQUIRE(detail::checked_add(x, y, sum) == !__builtin_add_overflow(a, b, &exact));
        REQUIRE(detail::checked_add(a, b, exact) == detail::checked_add(x, y, sum));
    }
}

TEST_CASE("Overflow is detected for every index type", "[lattice][index]") {
    std::uint32_t o32{};
    CHECK(detail::checked_add<std::uint32_t>(0xffffffffu, 0u, o32));
    CHECK_FALSE(detail::checked_add<std::uint32_t>(0xffffffffu, 1u, o32));
    std::uint64_t o64{};
    CHECK_FALSE(detail::checked_add<std::uint64_t>(~std::uint64_t{0}, 1u, o64));
    CHECK(detail::checked_sub<std::uint64_t>(5u, 5u, o64));
    CHECK(o64 == 0u);
    CHECK_FALSE(detail::checked_sub<std::uint64_t>(4u, 5u, o64));
    uint128 o128{};
    CHECK_FALSE(detail::checked_add<uint128>(~uint128(0), uint128(1), o128));
    BigUint<3> o3{};
    CHECK(detail::checked_add(BigUint<3>::max() - BigUint<3>(7), BigUint<3>(7), o3));
    CHECK(o3 == BigUint<3>::max());
    CHECK_FALSE(detail::checked_add(BigUint<3>::max(), BigUint<3>(1), o3));
    CHECK_FALSE(detail::checked_sub(BigUint<3>(1), BigUint<3>(2), o3));
    BigUint<3> m = BigUint<3>::max();
    CHECK(m.mul_small(2) == 1u);
}

TEST_CASE("Decimal conversions of index types", "[lattice][index]") {
    CHECK(to_string(std::uint32_t{0}) == "0");
    CHECK(to_string(std::uint32_t{4294967295u}) == "4294967295");
    CHECK(to_string(~std::uint64_t{0}) == "18446744073709551615");
    CHECK(to_string(~uint128(0)) == "340282366920938463463374607431768211455");
    CHECK(to_string(BigUint<4>::max()) ==
          "115792089237316195423570985008687907853269984665640564039457584007913129639935");
    CHECK(to_string(BigUint<1>(1000000000u)) == "1000000000");
    const std::string v128_64 =
        "354208665794591334497747331502735141542382279366529857564202500096";
    CHECK(to_string(parse_index<BigUint<4>>(v128_64)) == v128_64);
    CHECK(parse_index<BigUint<4>>(v128_64).bit_length() == 218);
    CHECK(parse_index<uint128>("340282366920938463463374607431768211455") == ~uint128(0));
    CHECK(parse_index<std::uint32_t>("4294967295") == 4294967295u);
    CHECK_THROWS_AS(parse_index<std::uint32_t>("4294967296"), vqlib::invalid_argument);
    CHECK_THROWS_AS(parse_index<uint128>("340282366920938463463374607431768211456"),
                    vqlib::invalid_argument);
    CHECK_THROWS_AS(parse_index<BigUint<1>>("18446744073709551616"), vqlib::invalid_argument);
    CHECK_THROWS_WITH(parse_index<std::uint64_t>("12a"), Contains("not a decimal number"));
    CHECK_THROWS_AS(parse_index<BigUint<2>>(""), vqlib::invalid_argument);
    CHECK(index_type_name<BigUint<4>>() == "BigUint<4>");
    CHECK(index_type_name<uint128>() == "uint128");
}

TEST_CASE("Index values round-trip through 32-bit words", "[lattice][index]") {
    const BigUint<4> big = parse_index<BigUint<4>>(
        "354208665794591334497747331502735141542382279366529857564202500096");
    const auto n = detail::Natural::from_index(big);
    CHECK(n.to_string() == to_string(big));
    BigUint<4> back{};
    REQUIRE(n.to_index(back));
    CHECK(back == big);
    uint128 narrow{};
    CHECK_FALSE(n.to_index(narrow));
    const uint128 v = (uint128(0x0123456789abcdefULL) << 64) | 0xfedcba9876543210ULL;
    uint128 v_back{};
    REQUIRE(detail::Natural::from_index(v).to_index(v_back));
    CHECK(v_back == v);
    std::uint32_t small{};
    REQUIRE(detail::Natural(77).to_index(small));
    CHECK(small == 77u);
}

TEST_CASE("Natural multiplication and Knuth division agree", "[lattice][index]") {
    vqlib::Rng rng(5);
    for (int trial = 0; trial < 3000; ++trial) {
        const detail::Natural u = random_natural(rng, 12);
        detail::Natural v = random_natural(rng, 6);
        if (v.is_zero()) v.assign(1);
        detail::NaturalDivider divider(v);
        detail::Natural q, r, back;
        divider.divmod(u, q, r);
        REQUIRE(r < v);
        detail::Natural::mul(q, v, back);
        back.add(r);
        REQUIRE(back == u);
    }
    // Worst cases of the quotient estimate: a divisor with a large top word and a small second.
    const detail::Natural v =
        detail::Natural::from_words(std::vector<std::uint32_t>{0u, 0x80000000u});
    const detail::Natural u =
        detail::Natural::from_words(std::vector<std::uint32_t>{0u, 0xffffffffu, 0x7fffffffu});
    detail::NaturalDivider divider(v);
    detail::Natural q, r, back;
    divider.divmod(u, q, r);
    detail::Natural::mul(q, v, back);
    back.add(r);
    CHECK(back == u);
    CHECK(r < v);
    CHECK(detail::Natural(1000).log2() == Approx(std::log2(1000.0)));
    CHECK(detail::Natural::from_index(BigUint<4>::max()).log2() == Approx(256.0));
}
