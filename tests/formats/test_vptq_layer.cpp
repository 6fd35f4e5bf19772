// Tests of vqlib/formats/vptq_layer.hpp: VPTQ's layout, decode rule (outlier, main and residual
// codebooks, permutation, normalization) and bit count on a layer written by hand.
#include <vqlib/formats/vptq_layer.hpp>

#include <catch2/catch.hpp>

namespace {

/// 3 rows (2 row blocks of v = 2, the last one padded) x 5 columns: 1 outlier column (v0 = 3,
/// one block) and 2 groups of 2 columns, k = 2 with a residual codebook of 2.
vqlib::VptqLayer vptq_hand_layer() {
    vqlib::VptqLayer layer;
    auto& L = layer.layout;
    L.out_features = 3;
    L.in_features = 5;
    L.vector_len = 2;
    L.num_centroids = 2;
    L.num_res_centroids = 2;
    L.outlier_vector_len = 3;
    L.outlier_centroids = 2;
    L.outlier_size = 1;
    L.group_num = 2;
    L.group_size = 2;
    layer.centroids.resize(4, 2);  // group g's centroid i at row g * 2 + i
    layer.centroids << 1, 2,
                       3, 4,
                       10, 20,
                       30, 40;
    layer.res_centroids.resize(4, 2);
    layer.res_centroids << 0.5f, 0.25f,
                           -0.5f, -0.25f,
                           0.125f, 0,
                           0, 0.125f;
    layer.outlier_centroids.resize(2, 3);
    layer.outlier_centroids << 7, 8, 9,
                               -7, -8, -9;
    // indices[(g * row_blocks + r) * group_size + c]
    layer.indices = {0, 1, 1, 0, 1, 1, 0, 0};
    layer.res_indices = {1, 0, 0, 1, 1, 0, 1, 1};
    layer.outlier_indices = {1};
    return layer;
}

}  // namespace

TEST_CASE("formats/vptq_layer: each vector is centroid + residual centroid of its group") {
    const auto layer = vptq_hand_layer();
    REQUIRE(layer.layout.row_blocks() == 2);
    vqlib::MatrixXf expected(3, 5);
    // Column 0 (outlier): -7, -8, -9. Group 0 = columns 1, 2; group 1 = columns 3, 4.
    // Row block 0 = rows 0-1, row block 1 = row 2 (its second row is padding).
    expected.col(0) << -7, -8, -9;
    expected.col(1) << 1 - 0.5f, 2 - 0.25f, 3 + 0.5f;    // (0, res 1), block 1: (1, res 0)
    expected.col(2) << 3 + 0.5f, 4 + 0.25f, 1 - 0.5f;    // (1, res 0), block 1: (0, res 1)
    expected.col(3) << 30 + 0, 40 + 0.125f, 10 + 0;      // (1, res 1), block 1: (0, res 1)
    expected.col(4) << 30 + 0.125f, 40 + 0, 10 + 0;      // (1, res 0), block 1: (0, res 1)
    CHECK(layer.dequantize_stored() == expected);
    CHECK(layer.dequantize() == expected);
}

TEST_CASE("formats/vptq_layer: the permutation and the normalization are undone at decode") {
    auto layer = vptq_hand_layer();
    const vqlib::MatrixXf stored = layer.dequantize_stored();
    layer.layout.enable_perm = true;
    layer.perm = {4, 0, 3, 1, 2};  // stored column p is original column perm[p]
    layer.layout.enable_norm = true;
    layer.weight_scale.resize(5);
    layer.weight_scale << 1, 2, 0.5f, 4, 1;
    layer.weight_bias.resize(5);
    layer.weight_bias << 0, -1, 1, 0.5f, 2;
    const vqlib::MatrixXf W = layer.dequantize();
    for (vqlib::Index p = 0; p < 5; ++p) {
        const vqlib::Index n = layer.perm[static_cast<std::size_t>(p)];
        for (vqlib::Index r = 0; r < 3; ++r)
            CHECK(W(r, n) == stored(r, p) * layer.weight_scale[n] + layer.weight_bias[n]);
    }
}

TEST_CASE("formats/vptq_layer: bits as VPTQ's checkpoint stores them") {
    auto layer = vptq_hand_layer();
    const auto& L = layer.layout;
    // Merged codes of 1 + 1 bits, 2 columns per group row: one 32-bit word per (group, block).
    CHECK(L.packed_words_per_row() == 1);
    const auto b = layer.bits();
    CHECK(b.codes == 32.0 * 2 * 2 + 16.0 * 1);
    CHECK(b.codebooks == 16.0 * (2 * (2 + 2) * 2 + 2 * 3));
    CHECK(b.parameters == 0.0);
    CHECK(b.indices == 0.0);
    layer.layout.enable_norm = true;
    layer.layout.enable_perm = true;
    CHECK(layer.bits().parameters == 32.0 * 5);
    CHECK(layer.bits().indices == 16.0 * 5);
    // A layout whose groups do not add up is refused, naming the sizes.
    layer.layout.group_size = 3;
    CHECK_THROWS_AS(layer.dequantize(), vqlib::shape_error);
}
