#include <vqlib/core/rng.hpp>
#include <vqlib/formats/scalar_grid.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

namespace {

std::vector<vqlib::GridParams> fit(const vqlib::IntGrid& grid, const vqlib::MatrixXf& x) {
    std::vector<vqlib::GridParams> p(static_cast<std::size_t>(x.rows()));
    grid.fit(x, p);
    return p;
}

}  // namespace

TEST_CASE("quantizers/int_grid: asymmetric min/max grid as the GPTQ reference") {
    vqlib::MatrixXf x(2, 4);
    x << -1.0f, 0.5f, 2.0f, 3.0f,  // range [-1, 3]
        0.5f, 1.0f, 2.0f, 1.5f;    // positive row: the range is extended to contain 0
    const vqlib::IntGrid grid(4, false);
    const auto p = fit(grid, x);
    CHECK(p[0].scale == 4.0f / 15.0f);
    CHECK(p[0].zero == std::nearbyint(1.0f / (4.0f / 15.0f)));
    CHECK(p[1].scale == 2.0f / 15.0f);
    CHECK(p[1].zero == 0.0f);
    for (vqlib::Index r = 0; r < 2; ++r) {
        for (vqlib::Index c = 0; c < 4; ++c) {
            const auto code = grid.encode(x(r, c), p[r]);
            CHECK(code <= 15u);
            CHECK(std::abs(grid.decode(code, p[r]) - x(r, c)) <= p[r].scale / 2 + 1e-6f);
        }
    }
    // Zero is exactly representable.
    CHECK(grid.decode(grid.encode(0.0f, p[0]), p[0]) == 0.0f);
    // Clamping at the ends.
    CHECK(grid.encode(100.0f, p[0]) == 15u);
    CHECK(grid.encode(-100.0f, p[0]) == 0u);
    CHECK(grid.name() == "INT4-asym");
    CHECK(grid.code_bits() == 4);
    CHECK(grid.param_bits() == 32 + 4);
}

TEST_CASE("quantizers/int_grid: rounding is half to even, like torch.round") {
    const vqlib::IntGrid grid(4, false);
    const vqlib::GridParams p{1.0f, 0.0f};
    CHECK(grid.encode(2.5f, p) == 2u);
    CHECK(grid.encode(3.5f, p) == 4u);
    CHECK(grid.encode(0.5f, p) == 0u);
}

TEST_CASE("quantizers/int_grid: symmetric grid and the all-zero row") {
    vqlib::MatrixXf x(3, 3);
    x << -2.0f, 1.0f, 0.5f,  // symmetric range [-2, 2]
        0.0f, 0.0f, 0.0f,    // all zero: range [-1, 1]
        0.5f, 1.0f, 2.0f;    // all positive: xmin stays 0 (the reference's behaviour)
    const vqlib::IntGrid grid(3, true);
    const auto p = fit(grid, x);
    CHECK(p[0].scale == 4.0f / 7.0f);
    CHECK(p[0].zero == 4.0f);
    CHECK(p[1].scale == 2.0f / 7.0f);
    CHECK(p[2].scale == 2.0f / 7.0f);
    CHECK(grid.param_bits() == 32);
    CHECK(grid.name() == "INT3-sym");
}

TEST_CASE("quantizers/int_grid: the MSE search never increases the norm-2.4 error") {
    vqlib::Rng rng(5);
    vqlib::MatrixXf x(16, 64);
    for (vqlib::Index j = 0; j < 64; ++j)
        for (vqlib::Index i = 0; i < 16; ++i) x(i, j) = static_cast<float>(rng.student_t(3));
    const vqlib::IntGrid plain(3, false);
    const vqlib::IntGrid searched(3, false, vqlib::MseSearch{true, 2.4, 100, 0.8});
    const auto p0 = fit(plain, x);
    const auto p1 = fit(searched, x);
    int improved = 0;
    for (vqlib::Index r = 0; r < 16; ++r) {
        double e0 = 0, e1 = 0;
        for (vqlib::Index c = 0; c < 64; ++c) {
            e0 += std::pow(std::abs(plain.decode(plain.encode(x(r, c), p0[r]), p0[r]) - x(r, c)), 2.4);
            e1 += std::pow(std::abs(searched.decode(searched.encode(x(r, c), p1[r]), p1[r]) - x(r, c)), 2.4);
        }
        CHECK(e1 <= e0 * (1 + 1e-5));
        improved += e1 < e0 * 0.999;
    }
    CHECK(improved > 0);  // heavy tails: shrinking the range helps somewhere
}

TEST_CASE("quantizers/int_grid: fp16 scale storage stores exactly representable scales") {
    vqlib::MatrixXf x(1, 3);
    x << -0.3f, 0.1f, 0.7f;
    const vqlib::IntGrid grid(4, false, {}, vqlib::ScaleStorage::fp16);
    const auto p = fit(grid, x);
    CHECK(static_cast<float>(Eigen::half(p[0].scale)) == p[0].scale);
    CHECK(std::abs(p[0].scale - 1.0f / 15.0f) < 1e-4f);
    CHECK(grid.param_bits() == 16 + 4);
}

TEST_CASE("quantizers/int_grid: bad arguments are rejected") {
    CHECK_THROWS_AS(vqlib::IntGrid(0, false), vqlib::invalid_argument);
    CHECK_THROWS_AS(vqlib::IntGrid(17, false), vqlib::invalid_argument);
    CHECK_THROWS_WITH(vqlib::IntGrid(0, false), Catch::Contains("bits = 0"));
    CHECK_THROWS_AS(vqlib::IntGrid(4, false, vqlib::MseSearch{true, 2.4, 0, 0.8}),
                    vqlib::invalid_argument);
    const vqlib::IntGrid grid(4, false);
    std::vector<vqlib::GridParams> too_few(1);
    CHECK_THROWS_AS(grid.fit(vqlib::MatrixXf::Ones(2, 3), too_few), vqlib::shape_error);
}
