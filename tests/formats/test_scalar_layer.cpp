// Tests of vqlib/formats/scalar_layer.hpp and formats/grouped_scalar.hpp: the grouped decode rule
// and the bit count on a layer written by hand.
#include <vqlib/backend/cpu_dequantize.hpp>
#include <vqlib/formats/grouped_scalar.hpp>
#include <vqlib/formats/minifloat_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>

#include <catch2/catch.hpp>

namespace {

/// 2 rows x 4 columns, 2-bit asymmetric codes, groups of 2 columns with act-order's g_idx
/// (columns 0 and 3 in group 1, columns 1 and 2 in group 0).
vqlib::ScalarLayer<vqlib::IntGrid> scalar_hand_layer() {
    vqlib::ScalarLayer<vqlib::IntGrid> layer{vqlib::IntGrid(2, false), /*group_size=*/2, {}, {}, {}};
    layer.codes.resize(2, 4);
    layer.codes << 0, 1, 2, 3,
                   3, 2, 1, 0;
    // params[g * rows + r]
    layer.params = {{0.5f, 1.0f}, {2.0f, 0.0f}, {0.25f, 2.0f}, {1.0f, 3.0f}};
    layer.g_idx = {1, 0, 0, 1};
    layer.stores_g_idx = true;
    return layer;
}

}  // namespace

TEST_CASE("formats/scalar_layer: value = scale * (code - zero) of the column's group") {
    const auto layer = scalar_hand_layer();
    REQUIRE(layer.groups() == 2);
    vqlib::MatrixXf expected(2, 4);
    // row 0: group 1 (0.25, 2) for columns 0, 3; group 0 (0.5, 1) for columns 1, 2.
    // row 1: group 1 (1, 3); group 0 (2, 0).
    expected << 0.25f * (0 - 2), 0.5f * (1 - 1), 0.5f * (2 - 1), 0.25f * (3 - 2),
                1.0f * (3 - 3), 2.0f * (2 - 0), 2.0f * (1 - 0), 1.0f * (0 - 3);
    CHECK(layer.dequantize() == expected);
    CHECK(layer.dequantize<vqlib::CpuDequantize>() == expected);

    // A column range through the decode view, as a dequantization backend sees it.
    std::vector<float> lut, scales, zeros;
    const vqlib::GroupedScalarView view = layer.view(lut, scales, zeros);
    CHECK(lut == std::vector<float>{0, 1, 2, 3});
    vqlib::MatrixXf middle(2, 2);
    vqlib::dequantize_columns(view, 1, middle);
    CHECK(middle == expected.middleCols(1, 2));
    vqlib::MatrixXf too_wide(2, 4);
    CHECK_THROWS_AS(vqlib::dequantize_columns(view, 1, too_wide), vqlib::shape_error);
}

TEST_CASE("formats/scalar_layer: bits count codes, scales, zero points and a stored g_idx") {
    auto layer = scalar_hand_layer();
    // 8 codes x 2 bits + 4 (row, group) pairs x (32-bit scale + 2-bit zero) + 4 x int32 g_idx.
    auto b = layer.bits();
    CHECK(b.codes == 16.0);
    CHECK(b.parameters == 4 * 34.0);
    CHECK(b.indices == 4 * 32.0);
    CHECK(layer.bits_per_weight() == (16.0 + 136.0 + 128.0) / 8.0);
    layer.stores_g_idx = false;
    CHECK(layer.bits().indices == 0.0);
    // A symmetric fp16-scale grid stores no zero point.
    layer.grid = vqlib::IntGrid(2, true, {}, vqlib::ScaleStorage::fp16);
    CHECK(layer.bits().parameters == 4 * 16.0);
}

TEST_CASE("formats/scalar_layer: a minifloat grid decodes through its code table") {
    // FP4 E2M1: codes 1, 2 are 0.5, 1.0; code 9 is -0.5 (sign bit 8).
    vqlib::ScalarLayer<vqlib::MinifloatGrid> layer{
        vqlib::MinifloatGrid(vqlib::MinifloatFormat::fp4_e2m1()), /*group_size=*/0, {}, {}, {}};
    layer.codes.resize(1, 3);
    layer.codes << 1, 2, 9;
    layer.params = {{2.0f, 0.0f}};
    layer.g_idx = {0, 0, 0};
    const vqlib::MatrixXf Q = layer.dequantize();
    CHECK(Q(0, 0) == 1.0f);
    CHECK(Q(0, 1) == 2.0f);
    CHECK(Q(0, 2) == -1.0f);
}
