// Tests of vqlib/io/xtensor.hpp: views both ways, copies of xtensor expressions, and NPY loading
// into xtensor.
#include <vqlib/io/xtensor.hpp>

#include <catch2/catch.hpp>

#include <xtensor/xarray.hpp>
#include <xtensor/xmanipulation.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <type_traits>

#ifndef VQLIB_FIXTURES_DIR
#error "VQLIB_FIXTURES_DIR (tests/data) must be defined by the build (tests/CMakeLists.txt)"
#endif

namespace fs = std::filesystem;

namespace {

vqlib::MatrixXf uniform_matrix(vqlib::Index rows, vqlib::Index cols, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    vqlib::MatrixXf m(rows, cols);
    for (vqlib::Index k = 0; k < m.size(); ++k) m.data()[k] = uniform(rng);
    return m;
}

template <class View, class Matrix>
void check_same_elements(const View& view, const Matrix& m) {
    REQUIRE(view.dimension() == 2);
    REQUIRE(view.shape()[0] == static_cast<std::size_t>(m.rows()));
    REQUIRE(view.shape()[1] == static_cast<std::size_t>(m.cols()));
    for (vqlib::Index i = 0; i < m.rows(); ++i)
        for (vqlib::Index j = 0; j < m.cols(); ++j) {
            CAPTURE(i, j);
            CHECK(view(static_cast<std::size_t>(i), static_cast<std::size_t>(j)) == m(i, j));
        }
}

}  // namespace

TEST_CASE("io/xtensor: as_xtensor views an Eigen matrix with Eigen's indexing", "[io][xtensor]") {
    for (const auto& [rows, cols] : {std::pair{3, 4}, std::pair{1, 5}, std::pair{5, 1},
                                     std::pair{1, 1}, std::pair{0, 3}}) {
        CAPTURE(rows, cols);
        vqlib::MatrixXf m = uniform_matrix(rows, cols, 1);
        check_same_elements(vqlib::as_xtensor(m), m);
        // A copy into an xtensor container goes through xtensor's own assignment.
        const xt::xtensor<float, 2> copy = vqlib::as_xtensor(m);
        check_same_elements(copy, m);
    }
}

TEST_CASE("io/xtensor: as_xtensor is a view: writes go both ways", "[io][xtensor]") {
    vqlib::MatrixXf m = uniform_matrix(3, 4, 2);
    auto view = vqlib::as_xtensor(m);
    view(1, 2) = 42.0f;
    CHECK(m(1, 2) == 42.0f);
    m(2, 3) = -7.0f;
    CHECK(view(2, 3) == -7.0f);
    CHECK(view.data() == m.data());

    view = xt::xtensor<float, 2>({{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}});
    vqlib::MatrixXf expected(3, 4);
    expected << 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;
    CHECK(m == expected);

    view *= 2.0f;
    CHECK(m == 2.0f * expected);
}

TEST_CASE("io/xtensor: as_xtensor handles blocks, row-major, const and Ref arguments",
          "[io][xtensor]") {
    vqlib::MatrixXf m = uniform_matrix(6, 7, 3);

    SECTION("a block of a larger matrix") {
        auto view = vqlib::as_xtensor(m.block(1, 2, 3, 4));
        check_same_elements(view, m.block(1, 2, 3, 4));
        view(2, 3) = 100.0f;
        CHECK(m(3, 5) == 100.0f);
        const xt::xtensor<float, 2> copy = view;
        check_same_elements(copy, m.block(1, 2, 3, 4));

        // Assigning an expression writes the block and nothing around it.
        const vqlib::MatrixXf before = m;
        view = xt::xtensor<float, 2>({{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}});
        vqlib::MatrixXf expected = before;
        expected.block(1, 2, 3, 4) << 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;
        CHECK(m == expected);
        view += 1.0f;
        expected.block(1, 2, 3, 4).array() += 1.0f;
        CHECK(m == expected);
    }

    SECTION("a row of a column-major matrix") {
        auto view = vqlib::as_xtensor(m.row(4));
        check_same_elements(view, m.row(4));
    }

    SECTION("a row-major matrix") {
        vqlib::RowMajorMatrixXf r = m;
        auto view = vqlib::as_xtensor(r);
        check_same_elements(view, m);
        view(0, 6) = 5.0f;
        CHECK(r(0, 6) == 5.0f);
    }

    SECTION("a const matrix gives a read-only view") {
        const vqlib::MatrixXf& c = m;
        auto view = vqlib::as_xtensor(c);
        static_assert(std::is_const_v<std::remove_reference_t<decltype(view(0, 0))>>);
        check_same_elements(view, m);
    }

    SECTION("Eigen::Ref arguments") {
        vqlib::MatrixRef ref = m.middleCols(1, 3);
        auto view = vqlib::as_xtensor(ref);
        check_same_elements(view, m.middleCols(1, 3));
        view(0, 0) = 9.0f;
        CHECK(m(0, 1) == 9.0f);

        const vqlib::ConstMatrixRef cref = m;
        check_same_elements(vqlib::as_xtensor(cref), m);
    }
}

TEST_CASE("io/xtensor: as_eigen maps an xtensor without copying", "[io][xtensor]") {
    xt::xtensor<float, 2> t = {{1, 2, 3}, {4, 5, 6}};
    auto map = vqlib::as_eigen(t);
    static_assert(std::is_same_v<decltype(map), Eigen::Map<vqlib::RowMajorMatrixXf>>);
    REQUIRE(map.rows() == 2);
    REQUIRE(map.cols() == 3);
    check_same_elements(t, map);
    map(1, 0) = 40.0f;
    CHECK(t(1, 0) == 40.0f);
    CHECK(map.data() == t.data());

    const xt::xtensor<float, 2>& c = t;
    const auto cmap = vqlib::as_eigen(c);
    static_assert(std::is_same_v<std::remove_const_t<decltype(cmap)>,
                                 Eigen::Map<const vqlib::RowMajorMatrixXf>>);
    check_same_elements(t, cmap);

    xt::xtensor<double, 2, xt::layout_type::column_major> d = {{1, 2}, {3, 4}, {5, 6}};
    auto dmap = vqlib::as_eigen(d);
    static_assert(std::is_same_v<decltype(dmap), Eigen::Map<vqlib::MatrixXd>>);
    check_same_elements(d, dmap);

    // Round trip: Eigen -> xtensor view -> Eigen map.
    vqlib::MatrixXf m = uniform_matrix(4, 5, 4);
    xt::xtensor<float, 2> from_view = vqlib::as_xtensor(m);
    CHECK(vqlib::as_eigen(from_view) == m);
}

TEST_CASE("io/xtensor: to_matrix copies 2-D expressions of any kind", "[io][xtensor]") {
    const xt::xtensor<float, 2> t = {{1, 2, 3}, {4, 5, 6}};
    vqlib::MatrixXf expected(2, 3);
    expected << 1, 2, 3, 4, 5, 6;

    CHECK(vqlib::to_matrix(t) == expected);
    CHECK(vqlib::to_matrix(t * 2.0f + 1.0f) == (expected.array() * 2.0f + 1.0f).matrix());
    CHECK(vqlib::to_matrix(xt::transpose(t)) == expected.transpose());

    const xt::xarray<double> a = {{1, 2, 3}, {4, 5, 6}};
    CHECK(vqlib::to_matrix(a) == expected);

    const xt::xtensor<float, 2> empty(std::array<std::size_t, 2>{0, 4});
    const vqlib::MatrixXf m = vqlib::to_matrix(empty);
    CHECK(m.rows() == 0);
    CHECK(m.cols() == 4);
}

TEST_CASE("io/xtensor: to_matrix of a tensor that is not 2-D is a shape_error",
          "[io][xtensor][errors]") {
    const xt::xtensor<float, 3> cube(std::array<std::size_t, 3>{2, 3, 4}, 1.0f);
    CHECK_THROWS_AS(vqlib::to_matrix(cube), vqlib::shape_error);
    CHECK_THROWS_WITH(vqlib::to_matrix(cube), Catch::Matchers::Contains("3-D"));

    const xt::xarray<float> line = {1, 2, 3};
    CHECK_THROWS_AS(vqlib::to_matrix(line), vqlib::shape_error);
    const xt::xtensor<float, 1> vec = {1, 2, 3};
    CHECK_THROWS_AS(vqlib::to_matrix(vec), vqlib::shape_error);
}

TEST_CASE("io/xtensor: load_npy_xtensor reads what load_npy_matrix reads", "[io][xtensor]") {
    const fs::path w_path =
        fs::path(VQLIB_FIXTURES_DIR) / "reference" / "layer_256x512" / "W.npy";
    const xt::xtensor<float, 2> w = vqlib::load_npy_xtensor(w_path);
    const vqlib::MatrixXf expected = vqlib::load_npy_matrix(w_path);
    REQUIRE(w.shape()[0] == 256);
    REQUIRE(w.shape()[1] == 512);
    CHECK(vqlib::as_eigen(w) == expected);

    // A '<f8' file is converted to float on the way in.
    const fs::path path = fs::temp_directory_path() /
                          ("vqlib_test_xtensor_" + std::to_string(std::random_device{}()) + ".npy");
    const vqlib::MatrixXd d = uniform_matrix(300, 200, 5).cast<double>() / 3.0;
    vqlib::save_npy(path, d);
    const xt::xtensor<float, 2> t = vqlib::load_npy_xtensor(path);
    CHECK(vqlib::as_eigen(t) == d.cast<float>());
    fs::remove(path);

    CHECK_THROWS_AS(vqlib::load_npy_xtensor(path), vqlib::io_error);
}
