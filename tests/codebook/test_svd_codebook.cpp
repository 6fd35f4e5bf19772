#include <vqlib/codebook/svd_codebook.hpp>
#include <vqlib/core/rng.hpp>

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cmath>
#include <limits>

using Catch::Matchers::WithinAbs;
using vqlib::Index;
using vqlib::MatrixXf;
using vqlib::SvdCodebookOptions;

namespace {

/// `count` 1-D codebooks of `k` random scalars, stacked (count*k) x 1.
MatrixXf random_codebooks(Index count, Index k, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    MatrixXf c(count * k, 1);
    for (Index i = 0; i < c.rows(); ++i) c(i, 0) = static_cast<float>(rng.normal());
    return c;
}

/// Checks that codebook g of `svd` holds the entries of `original` in ascending order, and that
/// the permutation maps every original entry to its place.
void check_sorted_and_remapped(const vqlib::SvdCodebooks& svd, const MatrixXf& original,
                               const MatrixXf& reconstructed, double tolerance) {
    const Index k = svd.k;
    for (Index g = 0; g < svd.count; ++g) {
        for (Index j = 0; j + 1 < k; ++j)
            CHECK(original(g * k + svd.original_index(g, j), 0) <=
                  original(g * k + svd.original_index(g, j + 1), 0));
        for (Index i = 0; i < k; ++i) {
            const Index j = svd.sorted_index(g, i);
            CHECK(svd.original_index(g, j) == i);
            CHECK_THAT(reconstructed(g * k + j, 0), WithinAbs(original(g * k + i, 0), tolerance));
        }
    }
}

}  // namespace

TEST_CASE("codebook/svd: full rank reconstructs the sorted codebooks") {
    const Index count = 12, k = 8;
    const MatrixXf c = random_codebooks(count, k, 3);
    const auto svd = vqlib::compress_codebooks_svd(c, k, {.rank_fraction = 1.0});
    CHECK(svd.rank == k);
    CHECK(svd.u.rows() == count);
    CHECK(svd.u.cols() == k);
    CHECK(svd.v.rows() == k);
    CHECK(svd.v.cols() == k);
    CHECK_FALSE(svd.u_integer.has_value());
    const MatrixXf rec = svd.codebooks();
    REQUIRE(rec.rows() == count * k);
    REQUIRE(rec.cols() == 1);
    check_sorted_and_remapped(svd, c, rec, 1e-5);
    // V' has orthonormal rows.
    CHECK((svd.v * svd.v.transpose() - MatrixXf::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-5f);
}

TEST_CASE("codebook/svd: rank 1 recovers codebooks that are multiples of one sorted row") {
    // Codebook g = a_g * v (a_g > 0) with the entries shuffled: sorted, C = a v_sorted has rank 1.
    const Index count = 5, k = 4;
    const float v[] = {0.3f, -1.0f, 2.0f, 0.5f};
    const float a[] = {1.0f, 0.5f, 2.0f, 3.0f, 0.25f};
    const Index shuffle[5][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}, {0, 2, 1, 3}};
    MatrixXf c(count * k, 1);
    for (Index g = 0; g < count; ++g)
        for (Index i = 0; i < k; ++i) c(g * k + i, 0) = a[g] * v[shuffle[g][i]];
    const auto svd = vqlib::compress_codebooks_svd(c, k, {.rank_fraction = 0.25});  // int(4*0.25)=1
    CHECK(svd.rank == 1);
    const MatrixXf rec = svd.codebooks();
    check_sorted_and_remapped(svd, c, rec, 1e-5);
    // Sorted ascending: codebook 1 is 0.5 * {-1, 0.3, 0.5, 2}.
    CHECK_THAT(rec(1 * k + 0, 0), WithinAbs(-0.5, 1e-6));
    CHECK_THAT(rec(1 * k + 3, 0), WithinAbs(1.0, 1e-6));
    CHECK(svd.original_index(1, 0) == 2);  // shuffle {3, 2, 1, 0}: v[1] = -1 sits at index 2
    CHECK(svd.sorted_index(1, 2) == 0);
}

TEST_CASE("codebook/svd: the rank is capped at the number of codebooks") {
    const Index count = 2, k = 8;
    const MatrixXf c = random_codebooks(count, k, 5);
    const auto svd = vqlib::compress_codebooks_svd(c, k, {.rank_fraction = 1.0});
    CHECK(svd.rank == 2);
    CHECK(svd.v.rows() == 2);
    check_sorted_and_remapped(svd, c, svd.codebooks(), 1e-5);
}

TEST_CASE("codebook/svd: integer quantization of U'' only, and bit accounting") {
    const Index count = 8, k = 16;
    const MatrixXf c = random_codebooks(count, k, 11);
    SECTION("per codebook, fp32 factors") {
        SvdCodebookOptions options{.rank_fraction = 0.5, .u_quantization = vqlib::IntegerCodebookOptions{.bits = 8}};
        const auto svd = vqlib::compress_codebooks_svd(c, k, options);
        REQUIRE(svd.rank == 8);
        REQUIRE(svd.u_integer.has_value());
        const auto& ui = *svd.u_integer;
        CHECK(ui.count == count);
        CHECK(ui.k == svd.rank);
        CHECK(ui.dim == 1);
        CHECK(ui.scales.size() == static_cast<std::size_t>(count));
        const MatrixXf values = ui.dequantize();
        for (Index g = 0; g < count; ++g)
            for (Index t = 0; t < svd.rank; ++t) CHECK(svd.u(g, t) == values(g * svd.rank + t, 0));
        // Against the float factorization at the same rank, INT8 U'' costs little.
        const auto exact = vqlib::compress_codebooks_svd(c, k, {.rank_fraction = 0.5});
        const float diff = (svd.codebooks() - exact.codebooks()).cwiseAbs().maxCoeff();
        CHECK(diff < 0.05f);
        CHECK(svd.u_bits() == static_cast<double>(count * 8 * 8 + count * 32));
        CHECK(svd.v_bits() == static_cast<double>(8 * k * 32));
        CHECK(svd.total_bits() == svd.u_bits() + svd.v_bits());
        CHECK(exact.u_bits() == static_cast<double>(count * 8 * 32));
    }
    SECTION("shared scales per run of rows, fp16 factors") {
        SvdCodebookOptions options{
            .rank_fraction = 0.25,
            .u_quantization = vqlib::IntegerCodebookOptions{.bits = 6, .scope = vqlib::CodebookScaleScope::shared},
            .rows_per_shared_scale = 2,
            .factor_storage = vqlib::ScaleStorage::fp16};
        const auto svd = vqlib::compress_codebooks_svd(c, k, options);
        REQUIRE(svd.rank == 4);
        CHECK(svd.u_integer->scales.size() == 4);
        CHECK(svd.u_integer->scale_of(2) == svd.u_integer->scale_of(3));
        for (Index t = 0; t < svd.v.rows(); ++t)
            for (Index j = 0; j < k; ++j)
                CHECK(svd.v(t, j) == static_cast<float>(Eigen::half(svd.v(t, j))));
        CHECK(svd.v_bits() == static_cast<double>(4 * k * 16));
        CHECK(svd.u_bits() == static_cast<double>(count * 4 * 6 + 4 * 32));
        options.rows_per_shared_scale = 3;
        CHECK_THROWS_AS(vqlib::compress_codebooks_svd(c, k, options), vqlib::invalid_argument);
    }
}

TEST_CASE("codebook/svd: rank_fraction and shape validation") {
    const Index k = 4;
    const MatrixXf c = random_codebooks(3, k, 1);
    for (const double rho : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()})
        CHECK_THROWS_AS(vqlib::compress_codebooks_svd(c, k, {.rank_fraction = rho}),
                        vqlib::invalid_argument);
    // int(4 * 0.2) = 0: no rank left.
    CHECK_THROWS_AS(vqlib::compress_codebooks_svd(c, k, {.rank_fraction = 0.2}),
                    vqlib::invalid_argument);
    CHECK_NOTHROW(vqlib::compress_codebooks_svd(c, k, {.rank_fraction = 0.25}));
    CHECK_THROWS_AS(vqlib::compress_codebooks_svd(MatrixXf::Zero(12, 2), k), vqlib::shape_error);
    CHECK_THROWS_AS(vqlib::compress_codebooks_svd(c, 5), vqlib::shape_error);
    MatrixXf bad = c;
    bad(5, 0) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(vqlib::compress_codebooks_svd(bad, k), vqlib::numerical_error);
}
