#include <vqlib/core/rng.hpp>
#include <vqlib/gptq.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

namespace {

vqlib::MatrixXf random_weight(vqlib::Index rows, vqlib::Index cols, std::uint64_t seed) {
    return vqlib::test::student_t_matrix(rows, cols, seed, 4);
}

}  // namespace

TEST_CASE("quantizers/scalar_quantizer: round-to-nearest rounds every group on its own grid") {
    const vqlib::MatrixXf W = random_weight(10, 64, 6);
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(3, false)};
    config.groups.size = 16;
    const auto r = vqlib::rtn(W, config);
    REQUIRE(r.layer.groups() == 4);
    CHECK(r.layer.dequantize() == r.Q);
    for (vqlib::Index g = 0; g < 4; ++g) {
        std::vector<vqlib::GridParams> p(10);
        config.grid.fit(W.middleCols(g * 16, 16), p);
        for (vqlib::Index j = g * 16; j < (g + 1) * 16; ++j) {
            CHECK(r.layer.g_idx[static_cast<std::size_t>(j)] == g);
            for (vqlib::Index i = 0; i < 10; ++i)
                CHECK(r.Q(i, j) == config.grid.decode(config.grid.encode(W(i, j), p[i]), p[i]));
        }
    }
}

TEST_CASE("quantizers/scalar_layer: exact bits per weight") {
    const vqlib::MatrixXf W = random_weight(8, 256, 7);
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(4, false)};
    config.groups.size = 128;
    auto bits = vqlib::rtn(W, config).layer.bits();
    CHECK(bits.weights == 8 * 256);
    CHECK(bits.codes == 8 * 256 * 4);
    CHECK(bits.parameters == 8 * 2 * (32 + 4));  // fp32 scale + 4-bit zero per (row, group)
    CHECK(bits.per_weight() == 4.0 + 36.0 / 128.0);

    config.grid = vqlib::IntGrid(4, true, {}, vqlib::ScaleStorage::fp16);
    CHECK(vqlib::rtn(W, config).layer.bits_per_weight() == 4.0 + 16.0 / 128.0);

    config.groups.size = 0;  // one grid per row
    CHECK(vqlib::rtn(W, config).layer.bits_per_weight() == 4.0 + 16.0 / 256.0);
}

TEST_CASE("quantizers/scalar_quantizer: group size must divide the columns") {
    const vqlib::MatrixXf W = random_weight(4, 96, 8);
    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(4, false)};
    config.groups.size = 64;
    CHECK_THROWS_AS(vqlib::rtn(W, config), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::rtn(W, config),
                      Catch::Contains("group size = 64") && Catch::Contains("C = 96"));
    config.groups.size = -5;
    CHECK_THROWS_AS(vqlib::rtn(W, config), vqlib::invalid_argument);
}
