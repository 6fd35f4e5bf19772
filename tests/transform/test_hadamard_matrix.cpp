#include <vqlib/core/error.hpp>
#include <vqlib/transform/hadamard_matrix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {

using vqlib::Index;

/// H H^T == m I exactly (integer entries; float GEMM is exact for these sizes).
bool is_hadamard(const vqlib::transform::SignMatrix& h) {
    const Index m = h.rows();
    if (h.cols() != m) return false;
    if ((h.array() != 1 && h.array() != -1).any()) return false;
    const Eigen::MatrixXf f = h.cast<float>();
    const Eigen::MatrixXf g = f * f.transpose();
    return g == static_cast<float>(m) * Eigen::MatrixXf::Identity(m, m);
}

}  // namespace

TEST_CASE("transform/hadamard_matrix: the orders QuIP#-style transforms need are available") {
    for (Index m :
         {1, 2, 4, 8, 12, 20, 28, 36, 40, 44, 52, 60, 92, 100, 108, 116, 124, 140, 156, 172, 344}) {
        INFO("m = " << m << ": " << vqlib::transform::hadamard_construction(m));
        REQUIRE(vqlib::transform::has_hadamard_matrix(m));
        CHECK(is_hadamard(vqlib::transform::hadamard_matrix(m)));
    }
    CHECK(vqlib::transform::hadamard_construction(12) == "Paley I (q = 11)");
    CHECK(vqlib::transform::hadamard_construction(28) == "Paley II (q = 13)");
    CHECK(vqlib::transform::hadamard_construction(172) ==
          "Goethals-Seidel array of four circulants of order 43");
    CHECK(vqlib::transform::hadamard_construction(40).rfind("Sylvester doubling of order 20", 0) ==
          0);
    CHECK(vqlib::transform::hadamard_construction(64) == "Sylvester");
}

TEST_CASE("transform/hadamard_matrix: every constructible order up to 256 gives H H^T = m I") {
    std::vector<Index> missing;
    int built = 0;
    for (Index m = 1; m <= 256; ++m) {
        if (!vqlib::transform::has_hadamard_matrix(m)) {
            if (m % 4 == 0) missing.push_back(m);
            continue;
        }
        INFO("m = " << m << ": " << vqlib::transform::hadamard_construction(m));
        CHECK(is_hadamard(vqlib::transform::hadamard_matrix(m)));
        ++built;
    }
    // 1, 2 and every multiple of 4 up to 256 except 4 * 47, 4 * 59 and 4 * 61.
    CHECK(built == 63);
    CHECK(missing == std::vector<Index>{188, 236, 244});
}

TEST_CASE("transform/hadamard_matrix: the embedded circulants satisfy the four-square condition") {
    for (const auto& quad : vqlib::transform::detail::embedded_quadruples()) {
        INFO("n = " << quad.n);
        int sum_of_squares = 0;
        for (const auto& row : quad.rows) {
            REQUIRE(static_cast<int>(row.size()) == quad.n);
            int s = 0;
            for (char c : row) s += c == '+' ? 1 : -1;
            sum_of_squares += s * s;
        }
        CHECK(sum_of_squares == 4 * quad.n);  // row sums: (A + B + C + D) J
        for (int shift = 1; shift < quad.n; ++shift) {
            int paf = 0;
            for (const auto& row : quad.rows)
                for (int i = 0; i < quad.n; ++i)
                    paf += (row[static_cast<std::size_t>(i)] == '+' ? 1 : -1) *
                           (row[static_cast<std::size_t>((i + shift) % quad.n)] == '+' ? 1 : -1);
            CHECK(paf == 0);
        }
        CHECK(is_hadamard(vqlib::transform::detail::goethals_seidel_matrix(quad)));
    }
}

TEST_CASE("transform/hadamard_matrix: orders without a construction are rejected") {
    for (Index m : {0, 3, 5, 6, 10, 12 + 2, 188}) {
        INFO("m = " << m);
        CHECK_FALSE(vqlib::transform::has_hadamard_matrix(m));
        CHECK(vqlib::transform::hadamard_construction(m) == "none");
        CHECK_THROWS_AS(vqlib::transform::hadamard_matrix(m), vqlib::invalid_argument);
    }
    CHECK_THROWS_WITH(vqlib::transform::hadamard_matrix(188), Catch::Contains("m = 188"));
}

TEST_CASE("transform/hadamard_matrix: the Hartley matrix is symmetric with C C^T = m I") {
    for (Index m : {1, 3, 5, 7, 43, 47, 64}) {
        const vqlib::MatrixXd c = vqlib::transform::hartley_matrix(m);
        INFO("m = " << m);
        CHECK((c - c.transpose()).cwiseAbs().maxCoeff() < 1e-12);
        const vqlib::MatrixXd g = c * c.transpose();
        CHECK((g - static_cast<double>(m) * vqlib::MatrixXd::Identity(m, m)).cwiseAbs().maxCoeff() <
              1e-10 * static_cast<double>(m));
        CHECK(c.cwiseAbs().maxCoeff() <= std::sqrt(2.0) + 1e-12);
    }
    CHECK_THROWS_AS(vqlib::transform::hartley_matrix(0), vqlib::invalid_argument);
}
