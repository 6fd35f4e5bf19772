// Tests of vqlib/formats/vq_layer.hpp: GPTVQ's layout, decode rule and bit count on a layer
// written by hand.
#include <vqlib/formats/vq_layer.hpp>

#include <catch2/catch.hpp>

namespace {

/// 4 rows x 8 columns, D = 2, K = 2; column groups of 4 columns, bands of 2 rows: 2 x 2 = 4
/// codebooks, codebook c = cg * bands + band.
vqlib::VqLayer vq_hand_layer() {
    vqlib::VqLayer layer;
    layer.layout = {.rows = 4, .cols = 8, .dim = 2, .k = 2, .rows_per_codebook = 2,
                    .columns_per_group = 4};
    layer.codebooks.resize(8, 2);
    for (vqlib::Index c = 0; c < 4; ++c)
        for (vqlib::Index k = 0; k < 2; ++k) {
            layer.codebooks(c * 2 + k, 0) = static_cast<float>(10 * c + k);
            layer.codebooks(c * 2 + k, 1) = static_cast<float>(-(10 * c + k));
        }
    layer.indices.resize(4, 4);
    layer.indices << 0, 1, 1, 0,
                     1, 1, 0, 0,
                     0, 0, 1, 1,
                     1, 0, 0, 1;
    layer.codebook_bits = 8;
    layer.codebook_scale_bits = 16;
    layer.codebook_scale_count = 4;
    return layer;
}

}  // namespace

TEST_CASE("formats/vq_layer: each vector is its tile's codeword") {
    const auto layer = vq_hand_layer();
    const auto& L = layer.layout;
    CHECK(L.column_groups() == 2);
    CHECK(L.bands() == 2);
    CHECK(L.codebook_count() == 4);
    CHECK(L.codebook_of(3, 1) == 3);
    CHECK(L.index_bits() == 1);
    const vqlib::MatrixXf W = layer.dequantize();
    for (vqlib::Index r = 0; r < 4; ++r)
        for (vqlib::Index v = 0; v < 4; ++v) {
            const vqlib::Index c = (v / 2) * 2 + r / 2;  // column group v / 2, band r / 2
            const float value = static_cast<float>(10 * c + layer.indices(r, v));
            CHECK(W(r, 2 * v) == value);
            CHECK(W(r, 2 * v + 1) == -value);
        }
}

TEST_CASE("formats/vq_layer: blockwise normalization scales each block of columns") {
    auto layer = vq_hand_layer();
    layer.scale_block = 4;
    layer.scales.resize(4, 2);
    layer.scales << 1, 2,
                    3, 4,
                    5, 6,
                    7, 8;
    const vqlib::MatrixXf plain = vq_hand_layer().dequantize();
    const vqlib::MatrixXf W = layer.dequantize();
    for (vqlib::Index r = 0; r < 4; ++r)
        for (vqlib::Index j = 0; j < 8; ++j) CHECK(W(r, j) == plain(r, j) * layer.scales(r, j / 4));
}

TEST_CASE("formats/vq_layer: bits count indices, codebook entries, scales and normalization") {
    auto layer = vq_hand_layer();
    // 16 vectors x 1 bit; 16 entries x 8 bits; 4 scales x 16 bits.
    CHECK(layer.bits().codes == 16.0);
    CHECK(layer.bits().codebooks == 128.0);
    CHECK(layer.bits().parameters == 64.0);
    CHECK(layer.bits_per_weight() == (16.0 + 128.0 + 64.0) / 32.0);
    layer.scale_block = 4;
    layer.scales.setOnes(4, 2);
    // + 8 normalization codes x 4 bits + a 16-bit offset and step per block column.
    CHECK(layer.bits().parameters == 64.0 + 8 * 4.0 + 2 * 2 * 16.0);
}
