// Tests of vqlib/formats/pvq_layer.hpp: the shape-gain decode rule, the permutation, the rotation
// and the bit count on a layer written by hand.
#include <vqlib/formats/pvq_layer.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

/// 2 rows x 4 columns in groups of D = 2 with K = 2 pulses; shapes (2, 0), (1, -1), (1, 1),
/// (0, -2); gains 0.5 and 0.25 of the row norms 4 and 2.
vqlib::PvqLayer<std::uint32_t> pvq_hand_layer(std::vector<std::vector<std::int32_t>>& shapes) {
    vqlib::PvqLayer<std::uint32_t> layer;
    layer.rows = 2;
    layer.cols = 4;
    layer.dim = 2;
    layer.pulses = 2;
    shapes = {{2, 0}, {1, -1}, {1, 1}, {0, -2}};
    const auto codec = layer.codec();
    for (const auto& y : shapes) layer.indices.push_back(codec.encode(y));
    layer.gains.levels = {0.25f, 0.5f};
    layer.gains.bits = 1;
    layer.gain_codes = {1, 0, 0, 1};
    layer.row_norms = {4.0f, 2.0f};
    return layer;
}

}  // namespace

TEST_CASE("formats/pvq_layer: q = row norm * gain * y / |y|, then the permutation") {
    std::vector<std::vector<std::int32_t>> shapes;
    auto layer = pvq_hand_layer(shapes);
    const float s2 = std::sqrt(2.0f);
    vqlib::MatrixXf expected(2, 4);
    expected << 4 * 0.5f, 0, 4 * 0.25f / s2, -4 * 0.25f / s2,
                2 * 0.25f / s2, 2 * 0.25f / s2, 0, -2 * 0.5f;
    CHECK(layer.dequantize_rotated().isApprox(expected, 1e-6f));
    CHECK(layer.dequantize() == layer.dequantize_rotated());
    // Act-order: stored column k is original column perm[k].
    layer.perm = {3, 2, 1, 0};
    const vqlib::MatrixXf Q = layer.dequantize();
    for (vqlib::Index k = 0; k < 4; ++k) CHECK(Q.col(3 - k) == layer.dequantize_rotated().col(k));
    layer.gain_codes[0] = 2;
    CHECK_THROWS_AS(layer.dequantize(), vqlib::invalid_argument);
}

TEST_CASE("formats/pvq_layer: the rotation is undone at decode and counted") {
    std::vector<std::vector<std::int32_t>> shapes;
    auto layer = pvq_hand_layer(shapes);
    const vqlib::MatrixXf plain = layer.dequantize();
    layer.incoherence = vqlib::transform::IncoherenceOptions{5};
    layer.incoherence->rotate_outputs = false;  // 2 rows: rotate the inputs only
    vqlib::MatrixXf Q = layer.dequantize();
    const vqlib::transform::IncoherenceTransform rotation(2, 4, *layer.incoherence);
    rotation.transform_weights(Q);
    CHECK(Q.isApprox(plain, 1e-5f));
    // V(2, 2) = 8 shapes: 3 bits each, 1-bit gains, fp16 row norms, the 64-bit rotation seed.
    const auto b = layer.bits();
    CHECK(b.codes == 4 * 3.0 + 4 * 1.0);
    CHECK(b.parameters == 2 * 16.0 + 64.0);
    CHECK(b.indices == 0.0);
}

TEST_CASE("formats/pvq_layer: the domain maps are inverse and adjoint") {
    vqlib::PvqDomain domain{4, 8, {5, 2, 7, 0, 1, 6, 3, 4}, vqlib::transform::IncoherenceOptions{9}};
    vqlib::MatrixXf A = vqlib::MatrixXf::Random(4, 8), B = vqlib::MatrixXf::Random(4, 8);
    vqlib::MatrixXf RA = A, QB = B;
    domain.restore(RA);
    domain.to_quantized(QB);
    // <restore(A), B> = <A, to_quantized(B)>, and to_quantized undoes restore.
    CHECK(std::abs(RA.cwiseProduct(B).sum() - A.cwiseProduct(QB).sum()) < 1e-5f);
    vqlib::MatrixXf back = RA;
    domain.to_quantized(back);
    CHECK(back.isApprox(A, 1e-5f));
    // Stored column k is original column perm[k] (without the rotation).
    domain.incoherence.reset();
    vqlib::MatrixXf P = A;
    domain.restore(P);
    for (vqlib::Index k = 0; k < 8; ++k) CHECK(P.col(domain.perm[static_cast<std::size_t>(k)]) == A.col(k));
}
