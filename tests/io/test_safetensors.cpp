// Tests of vqlib/io/safetensors.hpp: fp16/bf16 conversions against independent oracles, tensor
// accessors, bit-exact round trips of every dtype, the written bytes parsed by hand, hand-built
// files (valid and one malformed file per error), and the atomicity of write_safetensors.
#include <vqlib/formats/packed_indices.hpp>
#include <vqlib/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(__unix__)
#include <csignal>
#include <sys/resource.h>
#endif

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using vqlib::io::Dtype;
using vqlib::io::SafetensorsFile;
using vqlib::io::Tensor;

namespace {

/// A temporary directory for this file's tests (support/files.hpp).
class st_temp_dir : public vqlib::test::temp_dir {
public:
    st_temp_dir() : vqlib::test::temp_dir("vqlib_test_st_") {}
};

using vqlib::test::read_bytes;
using vqlib::test::write_bytes;

std::vector<std::uint8_t> as_bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::uint64_t u64_le(const std::string& bytes, std::size_t at) {
    std::uint64_t v = 0;
    for (int k = 7; k >= 0; --k) v = v << 8 | static_cast<unsigned char>(bytes[at + k]);
    return v;
}

/// A safetensors file built by hand: the 8-byte little-endian length of `header`, `header`
/// (padded with spaces to a multiple of 8 unless pad is false), then `data`.
std::string st_file(std::string header, const std::string& data, bool pad = true) {
    if (pad) header.append((8 - header.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int k = 0; k < 8; ++k)
        out[static_cast<std::size_t>(k)] = static_cast<char>((header.size() >> (8 * k)) & 0xff);
    return out + header + data;
}

template <class T>
std::string raw(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::string load_message(const fs::path& path) {
    try {
        vqlib::io::read_safetensors(path);
    } catch (const vqlib::io_error& e) {
        return e.what();
    }
    return "(no exception)";
}

std::string parse_message(const std::string& bytes) {
    try {
        vqlib::io::parse_safetensors(as_bytes(bytes), "hand-built");
    } catch (const vqlib::io_error& e) {
        return e.what();
    }
    return "(no exception)";
}

template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const vqlib::error& e) {
        return e.what();
    }
    return "(no exception)";
}

Tensor random_tensor(Dtype dtype, std::vector<std::int64_t> shape, std::mt19937_64& rng) {
    Tensor t{dtype, std::move(shape), {}};
    t.data.resize(t.expected_bytes());
    for (auto& byte : t.data) byte = static_cast<std::uint8_t>(rng());
    return t;
}

// The value of half bit pattern h (non-negative, finite), computed from the definition.
double half_value(std::uint16_t h) {
    const int e = (h >> 10) & 0x1f;
    const int m = h & 0x3ff;
    return e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
}

// The half nearest to f, ties to the even pattern, by search over the finite halves: an oracle
// independent of float_to_half. (NaN excluded.)
std::uint16_t half_oracle(float f) {
    const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double x = std::fabs(static_cast<double>(f));
    if (x >= 65520.0) return sign | 0x7c00;
    // The largest pattern h in [0, 0x7bff] with half_value(h) <= x (the patterns are ordered).
    std::uint32_t lo = 0, hi = 0x7bff;
    while (lo < hi) {
        const std::uint32_t mid = (lo + hi + 1) / 2;
        if (half_value(static_cast<std::uint16_t>(mid)) <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    const auto below = static_cast<std::uint16_t>(lo);
    if (below == 0x7bff) return sign | below;  // x < 65520: rounds down to 65504
    const auto above = static_cast<std::uint16_t>(below + 1);
    const double down = x - half_value(below);
    const double up = half_value(above) - x;
    if (down < up || (down == up && (below & 1) == 0)) return sign | below;
    return sign | above;
}

// The bfloat16 nearest to f, ties to even, from the two bfloat16 values around it. (NaN excluded.)
std::uint16_t bfloat16_oracle(float f) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t sign = bits & 0x80000000u;
    const std::uint32_t magnitude = bits & 0x7fffffffu;
    const std::uint32_t below = magnitude >> 16;
    const std::uint32_t above = below + 1;
    const auto value = [](std::uint32_t pattern) {
        // Pattern 0x7f80 is Inf; for rounding it stands for 2^128, the next binade's start.
        return pattern == 0x7f80 ? std::ldexp(1.0, 128)
                                 : static_cast<double>(std::bit_cast<float>(pattern << 16));
    };
    if (magnitude == 0x7f800000u) return static_cast<std::uint16_t>((sign >> 16) | 0x7f80);
    const double x = std::bit_cast<float>(magnitude);
    const double down = x - value(below);
    const double up = value(above) - x;
    const std::uint32_t pick = (down < up || (down == up && (below & 1) == 0)) ? below : above;
    return static_cast<std::uint16_t>((sign >> 16) | pick);
}

}  // namespace

// Asserts that the hand-built file `bytes` fails to load from a file and from memory with an
// io_error naming the file (or label) and containing `keyword`.
#define CHECK_MALFORMED(dir, bytes, keyword)                                                  \
    do {                                                                                      \
        const fs::path path_ = (dir) / "bad.safetensors";                                     \
        write_bytes(path_, bytes);                                                            \
        CHECK_THROWS_AS(vqlib::io::read_safetensors(path_), vqlib::io_error);                 \
        CHECK_THROWS_AS(vqlib::io::read_safetensors_header(path_), vqlib::io_error);          \
        CHECK_THAT(load_message(path_), Contains(path_.string()) && Contains(keyword));       \
        CHECK_THAT(parse_message(bytes), Contains("'hand-built'") && Contains(keyword));      \
    } while (false)

TEST_CASE("io/safetensors: dtype names and sizes", "[io][safetensors]") {
    for (const Dtype dtype : vqlib::io::all_dtypes) {
        CAPTURE(vqlib::io::dtype_name(dtype));
        CHECK(vqlib::io::dtype_from_name(vqlib::io::dtype_name(dtype)) == dtype);
    }
    CHECK(vqlib::io::dtype_size(Dtype::F64) == 8);
    CHECK(vqlib::io::dtype_size(Dtype::I64) == 8);
    CHECK(vqlib::io::dtype_size(Dtype::U64) == 8);
    CHECK(vqlib::io::dtype_size(Dtype::F32) == 4);
    CHECK(vqlib::io::dtype_size(Dtype::I32) == 4);
    CHECK(vqlib::io::dtype_size(Dtype::U32) == 4);
    CHECK(vqlib::io::dtype_size(Dtype::F16) == 2);
    CHECK(vqlib::io::dtype_size(Dtype::BF16) == 2);
    CHECK(vqlib::io::dtype_size(Dtype::I16) == 2);
    CHECK(vqlib::io::dtype_size(Dtype::U16) == 2);
    CHECK(vqlib::io::dtype_size(Dtype::I8) == 1);
    CHECK(vqlib::io::dtype_size(Dtype::U8) == 1);
    CHECK(vqlib::io::dtype_name(Dtype::BF16) == "BF16");
    CHECK_FALSE(vqlib::io::dtype_from_name("f32").has_value());
    CHECK_FALSE(vqlib::io::dtype_from_name("F8_E4M3").has_value());
    CHECK_FALSE(vqlib::io::dtype_from_name("BOOL").has_value());
    CHECK(vqlib::io::is_floating_point(Dtype::BF16));
    CHECK_FALSE(vqlib::io::is_floating_point(Dtype::I16));
}

TEST_CASE("io/safetensors: fp16 to float is exact for every pattern", "[io][safetensors][fp]") {
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const auto bits = static_cast<std::uint16_t>(h);
        const float f = vqlib::io::half_to_float(bits);
        const bool negative = (h & 0x8000) != 0;
        const std::uint16_t magnitude = bits & 0x7fff;
        CHECK(std::signbit(f) == negative);
        if (magnitude > 0x7c00) {
            CHECK(std::isnan(f));
        } else if (magnitude == 0x7c00) {
            CHECK(std::isinf(f));
        } else {
            const double expected = negative ? -half_value(magnitude) : half_value(magnitude);
            if (static_cast<double>(f) != expected) FAIL("pattern " << h << ": " << f);
        }
        // float -> half gives the pattern back, NaN payloads included.
        if (vqlib::io::float_to_half(f) != bits) FAIL("pattern " << h << " does not round-trip");
    }
}

TEST_CASE("io/safetensors: float to fp16 rounds to nearest even", "[io][safetensors][fp]") {
    using vqlib::io::float_to_half;
    CHECK(float_to_half(0.0f) == 0x0000);
    CHECK(float_to_half(-0.0f) == 0x8000);
    CHECK(float_to_half(1.0f) == 0x3c00);
    CHECK(float_to_half(-2.0f) == 0xc000);
    CHECK(float_to_half(65504.0f) == 0x7bff);
    // Ties: 1 + 2^-11 lies halfway between 1 (even) and 1 + 2^-10 (odd): down.
    CHECK(float_to_half(1.0f + 0x1p-11f) == 0x3c00);
    // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): up.
    CHECK(float_to_half(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(float_to_half(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);  // just above the tie: up
    // Overflow: 65519.99 rounds to 65504; 65520 is a tie going to the even 2^16, i.e. Inf.
    CHECK(float_to_half(65519.99f) == 0x7bff);
    CHECK(float_to_half(65520.0f) == 0x7c00);
    CHECK(float_to_half(-1e10f) == 0xfc00);
    CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00);
    CHECK(float_to_half(-std::numeric_limits<float>::infinity()) == 0xfc00);
    // Subnormals: 2^-24 is the smallest; 2^-25 is a tie going to 0; just above it, to 2^-24.
    CHECK(float_to_half(0x1p-24f) == 0x0001);
    CHECK(float_to_half(0x1p-25f) == 0x0000);
    CHECK(float_to_half(-0x1p-25f) == 0x8000);
    CHECK(float_to_half(0x1.000002p-25f) == 0x0001);
    CHECK(float_to_half(3 * 0x1p-25f) == 0x0002);  // 1.5 * 2^-24: tie between 1 and 2 -> 2
    CHECK(float_to_half(5 * 0x1p-25f) == 0x0002);  // 2.5 * 2^-24: tie between 2 and 3 -> 2
    CHECK(float_to_half(0x1p-14f) == 0x0400);      // smallest normal
    CHECK(float_to_half(0x1p-14f - 0x1p-25f) == 0x0400);  // tie between 0x3ff and 0x400 -> even
    CHECK(float_to_half(std::numeric_limits<float>::denorm_min()) == 0x0000);
    CHECK(float_to_half(1e-30f) == 0x0000);
    // NaN stays NaN, a quiet bit set when the payload's top bits are all zero.
    const std::uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
    CHECK((nan & 0x7c00) == 0x7c00);
    CHECK((nan & 0x3ff) != 0);
    CHECK((float_to_half(std::bit_cast<float>(0x7f800001u)) & 0x3ff) != 0);

    // Every tie between adjacent finite halves, and its neighbours one float ulp away.
    for (std::uint32_t h = 0; h < 0x7bff; ++h) {
        const double mid = (half_value(static_cast<std::uint16_t>(h)) +
                            half_value(static_cast<std::uint16_t>(h + 1))) / 2;
        const auto m = static_cast<float>(mid);
        REQUIRE(static_cast<double>(m) == mid);
        const std::uint16_t even = (h & 1) == 0 ? static_cast<std::uint16_t>(h)
                                                : static_cast<std::uint16_t>(h + 1);
        if (float_to_half(m) != even) FAIL("tie above pattern " << h);
        if (float_to_half(std::nextafter(m, 0.0f)) != h) FAIL("below the tie above " << h);
        if (float_to_half(std::nextafter(m, 1e9f)) != h + 1) FAIL("above the tie above " << h);
    }

    // Random floats of every magnitude against the search oracle (and the compiler's
    // _Float16 conversion where there is one).
    std::mt19937 rng(7);
    for (int k = 0; k < 200000; ++k) {
        std::uint32_t bits = static_cast<std::uint32_t>(rng());
        if (k % 2 == 0)  // half the samples near the half range: exponents 2^-26 .. 2^17
            bits = (bits & 0x807fffffu) | static_cast<std::uint32_t>(101 + rng() % 43) << 23;
        const float f = std::bit_cast<float>(bits);
        if (std::isnan(f)) continue;
        const std::uint16_t got = float_to_half(f);
        if (got != half_oracle(f)) FAIL("float bits " << bits << ": got " << got);
#if defined(__FLT16_MANT_DIG__)
        const _Float16 reference = static_cast<_Float16>(f);
        std::uint16_t reference_bits;
        std::memcpy(&reference_bits, &reference, 2);
        if (got != reference_bits) FAIL("float bits " << bits << " vs _Float16");
#endif
    }
}

TEST_CASE("io/safetensors: bf16 conversions", "[io][safetensors][fp]") {
    using vqlib::io::bfloat16_to_float;
    using vqlib::io::float_to_bfloat16;
    for (std::uint32_t b = 0; b < 0x10000; ++b) {
        const auto bits = static_cast<std::uint16_t>(b);
        const float f = bfloat16_to_float(bits);
        if (std::bit_cast<std::uint32_t>(f) != b << 16) FAIL("pattern " << b);
        if (float_to_bfloat16(f) != bits) FAIL("pattern " << b << " does not round-trip");
    }
    CHECK(float_to_bfloat16(1.0f) == 0x3f80);
    // 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7: down; 1 + 3 * 2^-8: up to 1 + 2^-6.
    CHECK(float_to_bfloat16(1.0f + 0x1p-8f) == 0x3f80);
    CHECK(float_to_bfloat16(1.0f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(float_to_bfloat16(1.0f + 0x1p-8f + 0x1p-23f) == 0x3f81);
    CHECK(float_to_bfloat16(std::numeric_limits<float>::max()) == 0x7f80);  // overflows to Inf
    CHECK(float_to_bfloat16(-std::numeric_limits<float>::max()) == 0xff80);
    CHECK(float_to_bfloat16(std::bit_cast<float>(0x7f7f7fffu)) == 0x7f7f);  // below the tie
    CHECK(float_to_bfloat16(std::numeric_limits<float>::denorm_min()) == 0x0000);
    CHECK(float_to_bfloat16(-0.0f) == 0x8000);
    // NaN whose payload lies only in the low 16 bits stays NaN (not Inf).
    const std::uint16_t nan = float_to_bfloat16(std::bit_cast<float>(0x7f800001u));
    CHECK((nan & 0x7f80) == 0x7f80);
    CHECK((nan & 0x7f) != 0);
    CHECK(float_to_bfloat16(std::bit_cast<float>(0xffc00000u)) == 0xffc0);

    std::mt19937 rng(11);
    for (int k = 0; k < 200000; ++k) {
        const float f = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
        if (std::isnan(f)) continue;
        if (float_to_bfloat16(f) != bfloat16_oracle(f))
            FAIL("float bits " << std::bit_cast<std::uint32_t>(f));
    }
}

TEST_CASE("io/safetensors: tensor accessors", "[io][safetensors]") {
    SECTION("to_floats for every dtype") {
        const auto check = [](Dtype dtype, const std::string& bytes, std::vector<float> expected) {
            CAPTURE(vqlib::io::dtype_name(dtype));
            const Tensor t{dtype, {static_cast<std::int64_t>(expected.size())},
                           as_bytes(bytes)};
            CHECK(t.to_floats() == expected);
        };
        check(Dtype::F64, raw(std::vector<double>{0.5, -3.0}), {0.5f, -3.0f});
        check(Dtype::F32, raw(std::vector<float>{1.25f, -7.0f}), {1.25f, -7.0f});
        check(Dtype::F16, raw(std::vector<std::uint16_t>{0x3c00, 0xc100, 0x0001}),
              {1.0f, -2.5f, 0x1p-24f});
        check(Dtype::BF16, raw(std::vector<std::uint16_t>{0x3f80, 0xc020}), {1.0f, -2.5f});
        check(Dtype::I64, raw(std::vector<std::int64_t>{-5, 1 << 20}), {-5.0f, 1048576.0f});
        check(Dtype::I32, raw(std::vector<std::int32_t>{-7, 65536}), {-7.0f, 65536.0f});
        check(Dtype::I16, raw(std::vector<std::int16_t>{-32768, 32767}), {-32768.0f, 32767.0f});
        check(Dtype::I8, raw(std::vector<std::int8_t>{-128, 127}), {-128.0f, 127.0f});
        check(Dtype::U64, raw(std::vector<std::uint64_t>{3, 1u << 30}), {3.0f, 1073741824.0f});
        check(Dtype::U32, raw(std::vector<std::uint32_t>{4294967295u, 0}), {4294967296.0f, 0.0f});
        check(Dtype::U16, raw(std::vector<std::uint16_t>{65535, 1}), {65535.0f, 1.0f});
        check(Dtype::U8, raw(std::vector<std::uint8_t>{255, 0}), {255.0f, 0.0f});
    }

    SECTION("matrices are row-major on disk and m(i, j) == t[i, j] in memory") {
        vqlib::MatrixXf m(2, 3);
        m << 1, 2, 3, 4, 5, 6;
        const Tensor t = Tensor::from_matrix(m);
        CHECK(t.dtype == Dtype::F32);
        CHECK(t.shape == std::vector<std::int64_t>{2, 3});
        CHECK(t.data == as_bytes(raw(std::vector<float>{1, 2, 3, 4, 5, 6})));
        CHECK(t.to_matrix() == m);

        const Tensor h = Tensor::from_matrix(m, Dtype::F16);
        CHECK(h.bits_as<std::uint16_t>() ==
              std::vector<std::uint16_t>{0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600});
        CHECK(h.to_matrix() == m);
        const Tensor b = Tensor::from_matrix(m.transpose(), Dtype::BF16);
        CHECK(b.shape == std::vector<std::int64_t>{3, 2});
        CHECK(b.to_matrix() == m.transpose());

        // Rounding: 1 + 2^-11 is not a half; it rounds to 1.
        vqlib::MatrixXf r(1, 1);
        r << 1.0f + 0x1p-11f;
        CHECK(Tensor::from_matrix(r, Dtype::F16).to_matrix()(0, 0) == 1.0f);

        const vqlib::VectorXf v = vqlib::VectorXf::LinSpaced(4, 1, 4);
        const Tensor tv = Tensor::from_vector(v, Dtype::F16);
        CHECK(tv.shape == std::vector<std::int64_t>{4});
        const vqlib::MatrixXf column = tv.to_matrix();
        CHECK(column.rows() == 4);
        CHECK(column.cols() == 1);
        CHECK(column.col(0) == v);

        CHECK(Tensor::from_matrix(vqlib::MatrixXf(0, 5)).to_matrix().cols() == 5);
        CHECK_THROWS_AS(Tensor::from_matrix(m, Dtype::I32), vqlib::invalid_argument);
        const Tensor three_d{Dtype::F32, {1, 2, 3}, std::vector<std::uint8_t>(24)};
        CHECK_THAT(message_of([&] { (void)three_d.to_matrix(); }), Contains("3-D"));
        const Tensor scalar{Dtype::F32, {}, as_bytes(raw(std::vector<float>{2.5f}))};
        CHECK(scalar.numel() == 1);
        CHECK(scalar.to_floats() == std::vector<float>{2.5f});
        CHECK_THROWS_AS(scalar.to_matrix(), vqlib::shape_error);
    }

    SECTION("raw bits as a same-sized type") {
        // An I16 perm with values past 32767 (VPTQ stores uint16 bits in int16 tensors).
        const std::vector<std::uint16_t> perm = {0, 40000, 65535, 7};
        const Tensor t = Tensor::from_bits(Dtype::I16, {4}, perm);
        CHECK(t.bits_as<std::uint16_t>() == perm);
        CHECK(t.bits_as<std::int16_t>() == std::vector<std::int16_t>{0, -25536, -1, 7});
        CHECK(t.to_floats() == std::vector<float>{0, -25536, -1, 7});
        CHECK_THROWS_AS(t.bits_as<std::uint32_t>(), vqlib::invalid_argument);
        CHECK_THROWS_AS(Tensor::from_bits(Dtype::I32, {4}, perm), vqlib::invalid_argument);
        CHECK_THROWS_AS(Tensor::from_bits(Dtype::I16, {5}, perm), vqlib::shape_error);
        CHECK_THROWS_AS(Tensor::from_bits(Dtype::I16, {-4}, perm), vqlib::shape_error);
        const std::vector<float> values = {1, 2, 3};
        CHECK_THROWS_AS(Tensor::from_floats(Dtype::F32, {2, 2}, values), vqlib::shape_error);
        CHECK_THROWS_AS(Tensor::from_floats(Dtype::U8, {3}, values), vqlib::invalid_argument);
    }

    SECTION("accessors check the data size") {
        const Tensor t{Dtype::F32, {2, 3}, std::vector<std::uint8_t>(20)};
        CHECK_THROWS_AS(t.check(), vqlib::shape_error);
        CHECK_THAT(message_of([&] { t.check(); }),
                   Contains("holds 20 bytes but shape [2, 3] of F32 needs 24 bytes"));
        CHECK_THROWS_AS(t.to_floats(), vqlib::shape_error);
        CHECK_THROWS_AS(t.bits_as<float>(), vqlib::shape_error);
        const Tensor huge{Dtype::F32, {std::int64_t{1} << 40, std::int64_t{1} << 40}, {}};
        CHECK_THROWS_AS(huge.numel(), vqlib::shape_error);
        CHECK_THROWS_AS(huge.expected_bytes(), vqlib::shape_error);
    }
}

TEST_CASE("io/safetensors: write then read is bit-exact for every dtype", "[io][safetensors]") {
    st_temp_dir dir;
    std::mt19937_64 rng(42);
    SafetensorsFile file;
    for (const Dtype dtype : vqlib::io::all_dtypes) {
        const std::string name(vqlib::io::dtype_name(dtype));
        // Random bytes: for the float dtypes these include NaNs, Infs and subnormals, which
        // must come back with the same bits.
        file.tensors["m_" + name] = random_tensor(dtype, {3, 5}, rng);
        file.tensors["v_" + name] = random_tensor(dtype, {7}, rng);
    }
    file.tensors["scalar"] = random_tensor(Dtype::F32, {}, rng);
    file.tensors["empty"] = random_tensor(Dtype::F16, {0, 4}, rng);
    file.tensors["cube"] = random_tensor(Dtype::BF16, {2, 3, 4}, rng);
    file.metadata = {{"format", "pt"}, {"note", "vqlib \xe2\x9c\x93 round trip"}, {"", "empty"}};

    const fs::path path = dir / "all.safetensors";
    vqlib::io::write_safetensors(path, file);
    CHECK(dir.entries() == std::vector<std::string>{"all.safetensors"});
    const SafetensorsFile loaded = vqlib::io::read_safetensors(path);
    CHECK(loaded.metadata == file.metadata);
    REQUIRE(loaded.tensors.size() == file.tensors.size());
    for (const auto& [name, tensor] : file.tensors) {
        CAPTURE(name);
        REQUIRE(loaded.tensors.count(name) == 1);
        CHECK(loaded.tensors.at(name).dtype == tensor.dtype);
        CHECK(loaded.tensors.at(name).shape == tensor.shape);
        CHECK(loaded.tensors.at(name).data == tensor.data);
    }
    CHECK(loaded == file);

    // The same bytes in memory, and deterministic.
    const std::vector<std::uint8_t> bytes = vqlib::io::serialize_safetensors(file);
    CHECK(as_bytes(read_bytes(path)) == bytes);
    CHECK(vqlib::io::serialize_safetensors(loaded) == bytes);
    CHECK(vqlib::io::parse_safetensors(bytes) == file);

    // Overloads taking the map and metadata.
    vqlib::io::write_safetensors(path, file.tensors);
    CHECK(vqlib::io::read_safetensors(path).metadata.empty());
    CHECK(vqlib::io::read_safetensors(path).tensors == file.tensors);

    // An empty file.
    vqlib::io::write_safetensors(path, SafetensorsFile{});
    CHECK(read_bytes(path) == st_file("{}", ""));
    CHECK(vqlib::io::read_safetensors(path) == SafetensorsFile{});
}

TEST_CASE("io/safetensors: the written bytes, parsed by hand", "[io][safetensors]") {
    SafetensorsFile file;
    file.tensors["b16"] = Tensor::from_floats(Dtype::F16, {3}, std::vector<float>{1, 2, 3});
    file.tensors["a8"] =
        Tensor::from_bits(Dtype::U8, {5}, std::vector<std::uint8_t>{1, 2, 3, 4, 5});
    file.tensors["z64"] = Tensor::from_bits(Dtype::I64, {2}, std::vector<std::int64_t>{-1, 2});
    file.tensors["c32"] = Tensor::from_bits(Dtype::I32, {1, 3}, std::vector<std::int32_t>{7, 8, 9});
    file.tensors["a32"] = Tensor::from_floats(Dtype::F32, {2}, std::vector<float>{0.5f, -1});
    file.metadata = {{"format", "pt"}};
    const std::string bytes = [&] {
        const auto b = vqlib::io::serialize_safetensors(file);
        return std::string(b.begin(), b.end());
    }();

    const std::uint64_t n = u64_le(bytes, 0);
    CHECK(n % 8 == 0);  // the data starts 8-byte aligned
    REQUIRE(bytes.size() >= 8 + n);
    const std::string header = bytes.substr(8, n);
    // Compact JSON, then spaces up to the alignment.
    const std::size_t end = header.find_last_not_of(' ');
    CHECK(header.size() - end - 1 < 8);
    // Metadata first, then the tensors by decreasing element size, then by name.
    CHECK(header.substr(0, end + 1) ==
          R"({"__metadata__":{"format":"pt"},)"
          R"("z64":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
          R"("a32":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},)"
          R"("c32":{"dtype":"I32","shape":[1,3],"data_offsets":[24,36]},)"
          R"("b16":{"dtype":"F16","shape":[3],"data_offsets":[36,42]},)"
          R"("a8":{"dtype":"U8","shape":[5],"data_offsets":[42,47]}})");
    const std::string data = bytes.substr(8 + n);
    CHECK(data.size() == 47);
    // Each tensor's bytes at its offsets; each offset a multiple of its element size.
    const nlohmann::json json = nlohmann::json::parse(header);
    for (const auto& [name, tensor] : file.tensors) {
        CAPTURE(name);
        const auto offsets = json.at(name).at("data_offsets");
        const auto begin = offsets[0].get<std::size_t>();
        const auto stop = offsets[1].get<std::size_t>();
        CHECK(begin % vqlib::io::dtype_size(tensor.dtype) == 0);
        CHECK(as_bytes(data.substr(begin, stop - begin)) == tensor.data);
    }
    CHECK(data.substr(0, 16) == raw(std::vector<std::int64_t>{-1, 2}));
    CHECK(data.substr(36, 6) == raw(std::vector<std::uint16_t>{0x3c00, 0x4000, 0x4200}));
    CHECK(data.substr(42, 5) == std::string("\x01\x02\x03\x04\x05", 5));
}

TEST_CASE("io/safetensors: hand-built files load", "[io][safetensors]") {
    st_temp_dir dir;
    const fs::path path = dir / "hand.safetensors";

    // Two tensors, no padding (other writers need not align), keys in any order, whitespace.
    const std::string header =
        R"({ "w" : {"shape": [2, 2], "dtype": "BF16", "data_offsets": [8, 16]},)"
        R"( "__metadata__": {"format": "pt"},)"
        R"( "idx": {"data_offsets": [0, 8], "dtype": "I32", "shape": [2]} })";
    const std::string data = raw(std::vector<std::int32_t>{-1, 5}) +
                             raw(std::vector<std::uint16_t>{0x3f80, 0x4000, 0xbf80, 0x0000});
    write_bytes(path, st_file(header, data, false));
    const SafetensorsFile file = vqlib::io::read_safetensors(path);
    CHECK(file.metadata == vqlib::io::Metadata{{"format", "pt"}});
    REQUIRE(file.tensors.size() == 2);
    CHECK(file.tensors.at("idx").bits_as<std::uint32_t>() ==
          std::vector<std::uint32_t>{0xffffffffu, 5});
    vqlib::MatrixXf expected(2, 2);
    expected << 1, 2, -1, 0;
    CHECK(file.tensors.at("w").to_matrix() == expected);

    // The header alone.
    const auto info = vqlib::io::read_safetensors_header(path);
    CHECK(info.header_size == header.size());
    CHECK(info.data_start() == 8 + header.size());
    CHECK(info.data_size == 16);
    CHECK(info.tensors.at("w") ==
          vqlib::io::TensorInfo{Dtype::BF16, {2, 2}, 8, 16});
    CHECK(info.metadata.at("format") == "pt");

    // Selecting tensors.
    const SafetensorsFile only =
        vqlib::io::read_safetensors(path, [](const std::string& name) { return name == "w"; });
    CHECK(only.tensors.size() == 1);
    CHECK(only.tensors.count("w") == 1);

    // Choosing by what the header says, from one open file.
    const SafetensorsFile chosen = vqlib::io::read_safetensors_chosen(
        path, [](const vqlib::io::SafetensorsHeader& h) {
            std::vector<std::string> names;
            for (const auto& [name, info] : h.tensors)
                if (info.shape.size() == 2) names.push_back(name);
            return names;
        });
    CHECK(chosen.tensors.size() == 1);
    CHECK(chosen.tensors.at("w").to_matrix() == expected);
    CHECK(chosen.metadata.at("format") == "pt");
    CHECK_THROWS_WITH(vqlib::io::read_safetensors_chosen(
                          path, [](const vqlib::io::SafetensorsHeader&) {
                              return std::vector<std::string>{"missing"};
                          }),
                      Contains("no tensor named 'missing'") && Contains("hand.safetensors"));

    // Zero-sized tensors may sit anywhere, even at the same offset.
    const std::string with_empty =
        R"({"e1":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
        R"("e2":{"dtype":"U8","shape":[3,0],"data_offsets":[4,4]},)"
        R"("b":{"dtype":"U8","shape":[],"data_offsets":[4,5]}})";
    write_bytes(path, st_file(with_empty, raw(std::vector<float>{2}) + "\x07"));
    const SafetensorsFile e = vqlib::io::read_safetensors(path);
    CHECK(e.tensors.at("e1").data.empty());
    CHECK(e.tensors.at("e2").shape == std::vector<std::int64_t>{3, 0});
    CHECK(e.tensors.at("b").data == std::vector<std::uint8_t>{7});
}

TEST_CASE("io/safetensors: a VPTQ layer's tensors round-trip", "[io][safetensors]") {
    // centroids [G, k*v] fp16, packed int32 indices [G, R, W], uint16 perm stored as int16.
    st_temp_dir dir;
    vqlib::io::PackedLayout layout;
    layout.groups = 1;
    layout.rows = 4;
    layout.codes_per_row = 6;
    layout.index_bits = 12;
    layout.residual_bits = 8;
    std::vector<std::uint32_t> indices, residuals;
    std::mt19937 rng(5);
    for (int k = 0; k < 24; ++k) {
        indices.push_back(rng() % 4096);
        residuals.push_back(rng() % 256);
    }
    const auto packed = vqlib::io::pack_codes(layout, indices, residuals);
    const auto shape = packed.shape();

    SafetensorsFile file;
    const std::string prefix = "model.layers.0.self_attn.q_proj.";
    file.tensors[prefix + "indices"] =
        Tensor::from_bits(Dtype::I32, {shape[0], shape[1], shape[2]},
                          vqlib::io::as_int32_words(packed.words));
    file.tensors[prefix + "perm"] =
        Tensor::from_bits(Dtype::I16, {6}, std::vector<std::uint16_t>{5, 4, 3, 2, 1, 0});
    const vqlib::MatrixXf centroids = vqlib::MatrixXf::Random(1, 4096 * 2);
    file.tensors[prefix + "centroids.weight"] = Tensor::from_matrix(centroids, Dtype::F16);
    const fs::path path = dir / "model.safetensors";
    vqlib::io::write_safetensors(path, file);

    const SafetensorsFile loaded = vqlib::io::read_safetensors(path);
    const Tensor& t = loaded.tensors.at(prefix + "indices");
    CHECK(t.dtype == Dtype::I32);
    vqlib::io::check_packed_shape(layout, t.shape);
    const auto words = t.bits_as<std::uint32_t>();
    const auto unpacked =
        vqlib::io::unpack_codes(layout, std::span<const std::uint32_t>(words));
    CHECK(unpacked.indices == indices);
    CHECK(unpacked.residuals == residuals);
    const vqlib::MatrixXf c = loaded.tensors.at(prefix + "centroids.weight").to_matrix();
    CHECK((c - centroids).cwiseAbs().maxCoeff() <= 1e-3f);
}

TEST_CASE("io/safetensors: missing files and truncation are io_errors",
          "[io][safetensors][errors]") {
    st_temp_dir dir;
    CHECK_THAT(load_message(dir / "missing.safetensors"), Contains("no such file"));
    CHECK_THAT(load_message(dir.path()), Contains("not a regular file"));

    CHECK_MALFORMED(dir, std::string(), "truncated file: it is 0 bytes long");
    CHECK_MALFORMED(dir, std::string("\x02\0\0", 3), "too short for the 8-byte header length");

    SafetensorsFile file;
    std::mt19937_64 rng(1);
    file.tensors["a"] = random_tensor(Dtype::F32, {4, 4}, rng);
    file.tensors["b"] = random_tensor(Dtype::F16, {9}, rng);
    const auto whole_bytes = vqlib::io::serialize_safetensors(file);
    const std::string whole(whole_bytes.begin(), whole_bytes.end());
    const std::uint64_t n = u64_le(whole, 0);
    // Cut inside the length, the header and the data: every cut says "truncated".
    for (const std::size_t size : {std::size_t{5}, std::size_t{8}, std::size_t{20},
                                   std::size_t(8 + n), std::size_t(8 + n + 10),
                                   whole.size() - 1}) {
        CAPTURE(size);
        CHECK_MALFORMED(dir, whole.substr(0, size), "truncated");
    }
    CHECK_MALFORMED(dir, whole.substr(0, 8 + n + 70), "reach past the end of the data buffer");
    CHECK_MALFORMED(dir, whole.substr(0, 20),
                    "the header length is " + std::to_string(n) + " bytes but only 12 bytes");

    // A header length that is absurd, not merely past the end.
    std::string absurd = whole;
    absurd[6] = '\x01';  // 2^48 + n
    CHECK_MALFORMED(dir, absurd, "is absurd");
    CHECK_MALFORMED(dir, absurd, "exceeds the limit of 100000000 bytes");
}

TEST_CASE("io/safetensors: malformed headers are io_errors naming the problem",
          "[io][safetensors][errors]") {
    st_temp_dir dir;
    const std::string f32x2 = raw(std::vector<float>{1, 2});
    const auto one = [](const std::string& entry) { return "{\"a\":" + entry + "}"; };

    // Not JSON, or not an object.
    CHECK_MALFORMED(dir, st_file("", ""), "does not start with '{' (it is empty)");
    CHECK_MALFORMED(dir, st_file("[1, 2]", ""), "does not start with '{' (first byte 0x5b)");
    CHECK_MALFORMED(dir, st_file(" {}", ""), "does not start with '{'");
    CHECK_MALFORMED(dir, st_file("{\"a\": ", f32x2), "not valid JSON");
    CHECK_MALFORMED(dir, st_file("{} trailing", ""), "not valid JSON");
    CHECK_MALFORMED(dir, st_file("{\"\xff\": 1}", ""), "not valid JSON");
    CHECK_MALFORMED(dir, st_file(std::string("{}\0\0\0\0\0\0", 8), "", false), "not valid JSON");
    CHECK_MALFORMED(dir, st_file("{/*c*/}", ""), "not valid JSON");

    // Entries.
    CHECK_MALFORMED(dir, st_file(one("5"), f32x2), "tensor 'a': the entry is an integer");
    CHECK_MALFORMED(dir, st_file(one("[1]"), f32x2), "tensor 'a': the entry is an array");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":[2]})"), f32x2),
                    "tensor 'a': missing key 'data_offsets'");
    CHECK_MALFORMED(dir, st_file(one(R"({"shape":[2],"data_offsets":[0,8]})"), f32x2),
                    "tensor 'a': missing key 'dtype'");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","data_offsets":[0,8]})"), f32x2),
                    "tensor 'a': missing key 'shape'");
    CHECK_MALFORMED(
        dir, st_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})"), f32x2),
        "tensor 'a': unexpected key 'x'");

    // dtype.
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), f32x2),
                    "tensor 'a': 'dtype' is an integer, not a string: 4");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]})"), f32x2),
                    "tensor 'a': unknown dtype \"F8_E4M3\"");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"f32","shape":[2],"data_offsets":[0,8]})"), f32x2),
                    "unknown dtype \"f32\"");

    // shape.
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})"), f32x2),
                    "tensor 'a': 'shape' is a string, not an array: \"2\"");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"),
                                 f32x2),
                    "tensor 'a': shape[0] = 2.0 is not a non-negative integer");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":[1,"2"],"data_offsets":[0,8]})"),
                                 f32x2),
                    "shape[1] = \"2\" is not a non-negative integer");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":[null],"data_offsets":[0,8]})"),
                                 f32x2),
                    "shape[0] = null is not a non-negative integer");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":[-2,-1],"data_offsets":[0,8]})"),
                                 f32x2),
                    "tensor 'a': shape[0] = -2 is negative");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[18446744073709551615],)"
                                R"("data_offsets":[0,8]})"),
                            f32x2),
                    "shape[0] = 18446744073709551615 exceeds 2^63 - 1");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[4294967296,4294967296],)"
                                R"("data_offsets":[0,8]})"),
                            f32x2),
                    "tensor 'a': shape [4294967296, 4294967296] of F32 overflows");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F64","shape":[2305843009213693952],)"
                                R"("data_offsets":[0,8]})"),
                            f32x2),
                    "overflows");
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":[1e3],"data_offsets":[0,8]})"),
                                 f32x2),
                    "is not a non-negative integer");

    // data_offsets.
    CHECK_MALFORMED(dir, st_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8]})"), f32x2),
                    "tensor 'a': data_offsets [8] is not an array [begin, end]");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8,8]})"), f32x2),
                    "is not an array [begin, end]");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), f32x2),
                    "data_offsets [-8,0] is not an array [begin, end] of two non-negative");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":"0-8"})"), f32x2),
                    "is not an array [begin, end]");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,0]})"), f32x2),
                    "tensor 'a': data_offsets [8, 0] have begin > end");

    // Size of the range against the shape.
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,8]})"), f32x2),
                    "tensor 'a': shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 8] "
                    "span 8 bytes");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F16","shape":[2],"data_offsets":[0,8]})"), f32x2),
                    "needs 4 bytes but data_offsets [0, 8] span 8 bytes");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), f32x2),
                    "tensor 'a': data_offsets [0, 16] reach past the end of the data buffer, "
                    "which holds 8 bytes");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[2],)"
                                R"("data_offsets":[18446744073709551000,18446744073709551008]})"),
                            f32x2),
                    "reach past the end of the data buffer");

    // Overlaps and holes.
    CHECK_MALFORMED(dir,
                    st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            f32x2),
                    "tensor 'b': data_offsets [4, 8] overlap tensor 'a', which ends at byte 8");
    CHECK_MALFORMED(dir,
                    st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                            f32x2),
                    "overlap tensor 'a'");
    CHECK_MALFORMED(dir,
                    st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("z":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            f32x2),
                    "tensor 'z': data_offsets [2, 2] overlap tensor 'a'");
    CHECK_MALFORMED(dir,
                    st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                            f32x2 + f32x2),
                    "hole in the data buffer: bytes [4, 8) before tensor 'b' belong to no "
                    "tensor");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), f32x2),
                    "bytes [0, 4) before tensor 'a'");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"),
                            f32x2 + "xyz"),
                    "hole in the data buffer: its last 3 bytes (from byte 8 of 11)");
    CHECK_MALFORMED(dir, st_file("{}", "x"), "its last 1 bytes");

    // Duplicates.
    CHECK_MALFORMED(dir,
                    st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                            f32x2),
                    "duplicate tensor name 'a'");
    CHECK_MALFORMED(dir,
                    st_file(one(R"({"dtype":"F16","dtype":"F32","shape":[2],)"
                                R"("data_offsets":[0,8]})"),
                            f32x2),
                    "duplicate key 'dtype' in the entry of 'a'");
    CHECK_MALFORMED(dir,
                    st_file(R"({"__metadata__":{"k":"1","k":"2"},)"
                            R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                            f32x2),
                    "duplicate key 'k' in the entry of '__metadata__'");
    CHECK_MALFORMED(dir,
                    st_file(R"({"__metadata__":{},"__metadata__":{}})", ""),
                    "duplicate tensor name '__metadata__'");

    // Metadata and names.
    CHECK_MALFORMED(dir, st_file(R"({"__metadata__":"pt"})", ""),
                    "'__metadata__' is a string, not an object of strings");
    CHECK_MALFORMED(dir, st_file(R"({"__metadata__":{"format":"pt","n":3}})", ""),
                    "'__metadata__' value of key 'n' is an integer, not a string: 3");
    CHECK_MALFORMED(dir, st_file(R"({"__metadata__":{"x":null}})", ""),
                    "value of key 'x' is a null");
    CHECK_MALFORMED(dir, st_file(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2),
                    "a tensor has an empty name");
}

TEST_CASE("io/safetensors: invalid tensors are refused before writing", "[io][safetensors]") {
    st_temp_dir dir;
    const fs::path path = dir / "out.safetensors";
    const auto refused = [&](const SafetensorsFile& file, const std::string& keyword) {
        CHECK_THROWS(vqlib::io::write_safetensors(path, file));
        CHECK_THAT(message_of([&] { vqlib::io::write_safetensors(path, file); }),
                   Contains(path.string()) && Contains(keyword));
        CHECK_THAT(message_of([&] { vqlib::io::serialize_safetensors(file); }),
                   Contains(keyword));
        CHECK(dir.entries().empty());
    };
    SafetensorsFile file;
    file.tensors["short"] = Tensor{Dtype::F32, {2, 3}, std::vector<std::uint8_t>(20)};
    CHECK_THROWS_AS(vqlib::io::serialize_safetensors(file), vqlib::shape_error);
    refused(file, "tensor 'short' holds 20 bytes but shape [2, 3] of F32 needs 24 bytes");

    file.tensors.clear();
    file.tensors["neg"] = Tensor{Dtype::F32, {-1}, {}};
    refused(file, "tensor 'neg': shape [-1] has a negative dimension");

    file.tensors.clear();
    file.tensors[""] = Tensor{Dtype::U8, {0}, {}};
    CHECK_THROWS_AS(vqlib::io::serialize_safetensors(file), vqlib::invalid_argument);
    refused(file, "a tensor has an empty name");

    file.tensors.clear();
    file.tensors["__metadata__"] = Tensor{Dtype::U8, {0}, {}};
    refused(file, "'__metadata__' is reserved");

    file.tensors.clear();
    file.tensors["bad\xff"] = Tensor{Dtype::U8, {0}, {}};
    refused(file, "tensor name 'bad\\xff' is not valid UTF-8");

    file.tensors.clear();
    file.metadata["k\xc3"] = "v";
    refused(file, "metadata key 'k\\xc3' is not valid UTF-8");
    file.metadata.clear();
    file.metadata["k"] = "\xe2\x82";
    refused(file, "metadata value of key 'k' is not valid UTF-8");
}

TEST_CASE("io/safetensors: a failed write leaves the existing target and no temporary file",
          "[io][safetensors]") {
    st_temp_dir dir;
    std::mt19937_64 rng(3);
    SafetensorsFile small;
    small.tensors["w"] = random_tensor(Dtype::F16, {4, 4}, rng);

    SECTION("a missing directory") {
        const fs::path path = dir / "no_such_dir" / "m.safetensors";
        CHECK_THROWS_AS(vqlib::io::write_safetensors(path, small), vqlib::io_error);
        CHECK_THAT(message_of([&] { vqlib::io::write_safetensors(path, small); }),
                   Contains(path.string()) && Contains("temporary file"));
        CHECK(dir.entries().empty());
        CHECK_THROWS_AS(vqlib::io::write_safetensors("", small), vqlib::io_error);
    }

    SECTION("the target is a directory") {
        const fs::path path = dir / "target.safetensors";
        fs::create_directory(path);
        write_bytes(path / "inside.txt", "keep me");
        CHECK_THAT(message_of([&] { vqlib::io::write_safetensors(path, small); }),
                   Contains(path.string()) && Contains("rename"));
        CHECK(read_bytes(path / "inside.txt") == "keep me");
        CHECK(dir.entries() == std::vector<std::string>{"target.safetensors"});
    }

    SECTION("overwriting replaces the file whole") {
        const fs::path path = dir / "target.safetensors";
        vqlib::io::write_safetensors(path, small);
        SafetensorsFile other;
        other.tensors["x"] = random_tensor(Dtype::I32, {3}, rng);
        vqlib::io::write_safetensors(path, other);
        CHECK(vqlib::io::read_safetensors(path) == other);
        CHECK(dir.entries() == std::vector<std::string>{"target.safetensors"});
    }

#if defined(__unix__)
    SECTION("a write that fails half way does not clobber the existing file") {
        const fs::path path = dir / "target.safetensors";
        vqlib::io::write_safetensors(path, small);
        const std::string before = read_bytes(path);
        struct file_size_limit {
            rlimit saved{};
            void (*saved_handler)(int) = nullptr;
            explicit file_size_limit(rlim_t bytes) {
                saved_handler = std::signal(SIGXFSZ, SIG_IGN);
                getrlimit(RLIMIT_FSIZE, &saved);
                rlimit limited = saved;
                limited.rlim_cur = bytes;
                setrlimit(RLIMIT_FSIZE, &limited);
            }
            ~file_size_limit() {
                setrlimit(RLIMIT_FSIZE, &saved);
                std::signal(SIGXFSZ, saved_handler);
            }
        };
        SafetensorsFile big;
        big.tensors["big"] = random_tensor(Dtype::F32, {300, 300}, rng);
        {
            const file_size_limit limit(64 * 1024);
            CHECK_THAT(message_of([&] { vqlib::io::write_safetensors(path, big); }),
                       Contains(path.string()) && Contains("failed"));
        }
        CHECK(read_bytes(path) == before);
        CHECK(vqlib::io::read_safetensors(path) == small);
        CHECK(dir.entries() == std::vector<std::string>{"target.safetensors"});
    }
#endif
}
