#pragma once
// Hadamard matrices of order m (m x m, entries +-1, H H^T = m I) built in code, and the real
// Hartley matrix used as an orthogonal stand-in when no Hadamard matrix is available.
//
// Constructions, tried in this order for an order m (1, 2, or a multiple of 4):
//   - Sylvester:            m a power of two, H_2m = [H H; H -H].
//   - Paley I:              q = m - 1 prime (q = 3 mod 4): H = I + [0 1^T; -1 Q], Q the
//                           Jacobsthal matrix Q[i][j] = chi(j - i) of the quadratic character.
//                           Orders 12, 20, 24, 32, 44, 48, 60, 68, 72, 80, 84, 104, 108, 132,
//                           140...
//   - Paley II:             q = m/2 - 1 prime (q = 1 mod 4): the symmetric conference matrix
//                           C = [0 1^T; 1 Q] with 0 -> [1 -1; -1 -1] and +-1 -> +-[1 1; 1 -1].
//                           Orders 12, 28, 36, 60, 76, 108, 124, 148, 196...
//   - Goethals-Seidel:      m = 4n from four +-1 circulant matrices A, B, C, D of order n with
//                           A A^T + B B^T + C C^T + D D^T = 4n I, plugged into the
//                           Goethals-Seidel array. The first rows for n = 13, 23, 25, 29, 39, 43
//                           (orders 52, 92, 100, 116, 156, 172) are embedded below.
//   - Sylvester doubling:   m = 2 m' with a constructible m' that is a multiple of 4 (40 = 2 x 20).
//
// The embedded circulants were found for this library by a computer search (a meet-in-the-middle
// match of periodic autocorrelations, over sequences constant on the orbits of a small subgroup of
// the units of Z_n); those of orders 13, 23, 25, 29 and 43 are symmetric, i.e. Williamson
// matrices. The tests check H H^T = m I for every order this file can build up to 256 (all
// multiples of 4 except 188 = 4 * 47, 236 = 4 * 59 and 244 = 4 * 61) and for 344.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

namespace vqlib::transform {

/// A matrix of small integers (+-1 for Hadamard matrices), column-major like vqlib's matrices.
using SignMatrix = Eigen::Matrix<std::int8_t, Eigen::Dynamic, Eigen::Dynamic>;

namespace detail {

/// Four circulant +-1 matrices of order n given by their first rows ('+' = 1, '-' = -1), with
/// A A^T + B B^T + C C^T + D D^T = 4n I.
struct CirculantQuadruple {
    int n;
    std::array<std::string_view, 4> rows;
};

inline const std::array<CirculantQuadruple, 6>& embedded_quadruples() {
    static const std::array<CirculantQuadruple, 6> quadruples{{
        {13, {"--++++++++++-", "--+--++++--+-", "+-+-++--++-+-", "--++-+--+-++-"}},
        {23,
         {"+--+-+-++++++++++-+-+--", "-++-++---++++++---++-++", "---+++--++----++--+++--",
          "-++--+-+-+----+-+-+--++"}},
        {25,
         {"+-++---++++++++++++---++-", "+-+---+---++++++---+---+-", "-+-++-+--++----++--+-++-+",
          "++--+--++-+----+-++--+--+"}},
        {29,
         {"+++---+++-+-+----+-+-+++---++", "+++-++-+--+++-++-+++--+-++-++",
          "---++--+-+-++++++++-+-+--++--", "+--+-+++++--++--++--+++++-+--"}},
        {39,
         {"------++-+--+++--+++-+-+--++++++-+++-++", "------++-+--+++--+++-+-+--++++++-+++-++",
          "+---+-+--+--++----+-+++---++--+-++-----", "+-+-+-++-+++----++-++-+-------+-++-+---"}},
        {43,
         {"-+-+-++++-+--+--+++--++--+++--+--+-++++-+-+",
          "--+--+--+-+-+++-++--------++-+++-+-+--+--+-",
          "---+-----+++----+++-++++-+++----+++-----+--",
          "+++---++-++++-+-++--+--+--++-+-++++-++---++"}},
    }};
    return quadruples;
}

inline bool is_prime(Index q) {
    if (q < 2) return false;
    for (Index d = 2; d * d <= q; ++d)
        if (q % d == 0) return false;
    return true;
}

/// chi[a] for a in [0, q): the quadratic character of the prime field F_q (chi[0] = 0).
inline std::vector<int> quadratic_character(Index q) {
    std::vector<int> chi(static_cast<std::size_t>(q), -1);
    chi[0] = 0;
    for (Index x = 1; x < q; ++x) chi[static_cast<std::size_t>(x * x % q)] = 1;
    return chi;
}

inline SignMatrix sylvester_matrix(Index n) {
    SignMatrix h(n, n);
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < n; ++j)
            h(i, j) = static_cast<std::int8_t>(
                (std::popcount(static_cast<std::uint64_t>(i & j)) & 1) ? -1 : 1);
    return h;
}

/// Paley I, order q + 1 (q prime, q = 3 mod 4).
inline SignMatrix paley1_matrix(Index q) {
    const auto chi = quadratic_character(q);
    const Index m = q + 1;
    SignMatrix h(m, m);
    for (Index i = 0; i < m; ++i) {
        for (Index j = 0; j < m; ++j) {
            int s;
            if (i == 0)
                s = j == 0 ? 0 : 1;
            else if (j == 0)
                s = -1;
            else
                s = chi[static_cast<std::size_t>(((j - i) % q + q) % q)];
            h(i, j) = static_cast<std::int8_t>(s + (i == j ? 1 : 0));
        }
    }
    return h;
}

/// Paley II, order 2(q + 1) (q prime, q = 1 mod 4).
inline SignMatrix paley2_matrix(Index q) {
    const auto chi = quadratic_character(q);
    const Index c = q + 1;
    SignMatrix h(2 * c, 2 * c);
    for (Index i = 0; i < c; ++i) {
        for (Index j = 0; j < c; ++j) {
            int s;
            if (i == 0 || j == 0)
                s = (i == j) ? 0 : 1;
            else
                s = chi[static_cast<std::size_t>(((j - i) % q + q) % q)];
            for (int a = 0; a < 2; ++a)
                for (int b = 0; b < 2; ++b) {
                    // 0 -> [1 -1; -1 -1], +-1 -> +-[1 1; 1 -1]
                    const int entry =
                        s == 0 ? ((a == 0 && b == 0) ? 1 : -1) : s * ((a == 1 && b == 1) ? -1 : 1);
                    h(2 * i + a, 2 * j + b) = static_cast<std::int8_t>(entry);
                }
        }
    }
    return h;
}

/// The Goethals-Seidel array
///   [  A    BR    CR    DR  ]
///   [ -BR   A    D^TR -C^TR ]
///   [ -CR -D^TR   A    B^TR ]
///   [ -DR  C^TR -B^TR   A   ]
/// with R the back-diagonal identity, for four circulants of order n given by their first rows.
inline SignMatrix goethals_seidel_matrix(const CirculantQuadruple& quad) {
    const Index n = quad.n;
    auto circ = [&](int which, Index i, Index j) -> int {
        return quad.rows[static_cast<std::size_t>(which)]
                        [static_cast<std::size_t>(((j - i) % n + n) % n)] == '+'
                   ? 1
                   : -1;
    };
    // X R (i, j) = X(i, n-1-j); X^T R (i, j) = X(n-1-j, i).
    auto xr = [&](int which, Index i, Index j) { return circ(which, i, n - 1 - j); };
    auto xtr = [&](int which, Index i, Index j) { return circ(which, n - 1 - j, i); };
    SignMatrix h(4 * n, 4 * n);
    for (Index i = 0; i < n; ++i) {
        for (Index j = 0; j < n; ++j) {
            const int a = circ(0, i, j);
            const int block[4][4] = {
                {a, xr(1, i, j), xr(2, i, j), xr(3, i, j)},
                {-xr(1, i, j), a, xtr(3, i, j), -xtr(2, i, j)},
                {-xr(2, i, j), -xtr(3, i, j), a, xtr(1, i, j)},
                {-xr(3, i, j), xtr(2, i, j), -xtr(1, i, j), a},
            };
            for (Index bi = 0; bi < 4; ++bi)
                for (Index bj = 0; bj < 4; ++bj)
                    h(bi * n + i, bj * n + j) = static_cast<std::int8_t>(block[bi][bj]);
        }
    }
    return h;
}

enum class Construction { none, sylvester, paley1, paley2, goethals_seidel, doubling };

/// How an order m is built (parameter: q for Paley, n for Goethals-Seidel, m/2 for doubling).
struct ConstructionPlan {
    Construction kind = Construction::none;
    Index parameter = 0;
};

inline ConstructionPlan construction_plan(Index m) {
    if (m == 1 || m == 2) return {Construction::sylvester, m};
    if (m < 4 || m % 4 != 0) return {};
    if ((m & (m - 1)) == 0) return {Construction::sylvester, m};
    if (is_prime(m - 1)) return {Construction::paley1, m - 1};
    if (m % 8 == 4 && is_prime(m / 2 - 1)) return {Construction::paley2, m / 2 - 1};
    for (const auto& quad : embedded_quadruples())
        if (4 * quad.n == m) return {Construction::goethals_seidel, quad.n};
    if (m % 8 == 0 && construction_plan(m / 2).kind != Construction::none)
        return {Construction::doubling, m / 2};
    return {};
}

}  // namespace detail

/// True if hadamard_matrix(m) can build a Hadamard matrix of order m.
inline bool has_hadamard_matrix(Index m) {
    return detail::construction_plan(m).kind != detail::Construction::none;
}

/// A Hadamard matrix of order m (entries +-1, H H^T = m I), built by the first construction in
/// the list at the top of this file that applies. Throws invalid_argument naming m when none does
/// (m not 1, 2 or a multiple of 4, or an order such as 188 that this library cannot build).
inline SignMatrix hadamard_matrix(Index m) {
    const auto plan = detail::construction_plan(m);
    switch (plan.kind) {
        case detail::Construction::sylvester: return detail::sylvester_matrix(m);
        case detail::Construction::paley1: return detail::paley1_matrix(plan.parameter);
        case detail::Construction::paley2: return detail::paley2_matrix(plan.parameter);
        case detail::Construction::goethals_seidel:
            for (const auto& quad : detail::embedded_quadruples())
                if (quad.n == plan.parameter) return detail::goethals_seidel_matrix(quad);
            break;
        case detail::Construction::doubling: {
            const SignMatrix half = hadamard_matrix(plan.parameter);
            const Index k = plan.parameter;
            SignMatrix h(m, m);
            h.topLeftCorner(k, k) = half;
            h.topRightCorner(k, k) = half;
            h.bottomLeftCorner(k, k) = half;
            h.bottomRightCorner(k, k) = -half;
            return h;
        }
        case detail::Construction::none: break;
    }
    throw invalid_argument(::vqlib::detail::concat(
        "hadamard_matrix: m = ", m,
        ": no construction available (supported: 1, 2, powers of two, Paley I/II orders, "
        "52, 92, 100, 116, 156, 172, and doublings of these)"));
}

/// A description of how hadamard_matrix(m) is built, e.g. "Paley I (q = 11)"; "none" if it is
/// not available.
inline std::string hadamard_construction(Index m) {
    const auto plan = detail::construction_plan(m);
    using ::vqlib::detail::concat;
    switch (plan.kind) {
        case detail::Construction::sylvester: return "Sylvester";
        case detail::Construction::paley1: return concat("Paley I (q = ", plan.parameter, ")");
        case detail::Construction::paley2: return concat("Paley II (q = ", plan.parameter, ")");
        case detail::Construction::goethals_seidel:
            return concat("Goethals-Seidel array of four circulants of order ", plan.parameter);
        case detail::Construction::doubling:
            return concat("Sylvester doubling of order ", plan.parameter, " (",
                          hadamard_construction(plan.parameter), ")");
        case detail::Construction::none: break;
    }
    return "none";
}

/// The real Hartley matrix of order m (m >= 1): C(j, k) = cos(2 pi jk/m) + sin(2 pi jk/m).
/// It is symmetric with C C^T = m I, so C / sqrt(m) is orthogonal (and its own inverse). It is not
/// a Hadamard matrix: its entries range over [-sqrt(2), sqrt(2)] instead of being +-1, so the
/// largest entry of C / sqrt(m) is up to sqrt(2) times that of a normalized Hadamard matrix (a
/// weaker incoherence bound).
inline MatrixXd hartley_matrix(Index m) {
    VQLIB_CHECK(m >= 1, invalid_argument, "hartley_matrix: m = ", m, ": expected m >= 1");
    MatrixXd c(m, m);
    for (Index j = 0; j < m; ++j)
        for (Index k = 0; k < m; ++k) {
            const double angle =
                2.0 * std::numbers::pi * static_cast<double>((j * k) % m) / static_cast<double>(m);
            c(j, k) = std::cos(angle) + std::sin(angle);
        }
    return c;
}

}  // namespace vqlib::transform
