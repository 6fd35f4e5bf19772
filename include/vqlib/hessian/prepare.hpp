#pragma once
// Preparation of a layer Hessian for GPTQ-style solvers.
//
// Steps, in the reference order (GPTQ's fasterquant): validate H; mark dead columns (zero
// diagonal) and set their diagonal to 1; optionally permute the columns by descending diagonal
// (act-order); add relative damping percdamp * mean(diag H); compute U, the upper Cholesky factor
// of the damped inverse (H^-1 = U^T U), which holds every OBS update direction.
//
// Cholesky failures are the most common complaint of GPTQ users on real models. When the damped H
// is not numerically positive definite, the damping is raised step by step (multiplied by
// `damp_growth`) up to `max_percdamp`; the damping actually used is reported. Beyond the limit a
// numerical_error names the layer size and the damping tried.
//
// U is computed with one Cholesky factorization and one triangular inverse: if J reverses the
// column order and J H J = L L^T, then H = R R^T with R = J L J upper triangular, and U = R^-1.
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

namespace vqlib {

struct HessianOptions {
    /// Relative damping: damp = percdamp * mean(diag H) is added to the diagonal (GPTQ: 0.01).
    double percdamp = 0.01;
    /// Order the columns by descending diagonal of H (GPTQ's --act-order).
    bool act_order = false;
    /// Columns that move together under act-order: the columns are taken in consecutive units of
    /// this many (C must be a multiple), each unit keeps its internal order and is ranked by the
    /// sum of its diagonal entries. 1 is GPTQ's column order; GPTVQ sets its vector dimension D,
    /// so that every D-column vector stays whole and the layer's storage order is unchanged.
    Index act_order_unit = 1;
    /// When the Cholesky factorization fails, percdamp is multiplied by damp_growth and the
    /// factorization retried, as long as percdamp <= max(max_percdamp, percdamp) (the last try
    /// uses exactly that limit; from percdamp = 0 the first retry uses 1e-6). Set max_percdamp = percdamp to disable the retries. The default limit, 0.1,
    /// is the value GPTQ users resort to by hand; more damping would hide an H that is genuinely
    /// indefinite (a bug upstream) rather than one that is indefinite by rounding.
    double damp_growth = 2.0;
    double max_percdamp = 0.1;
    /// Relative tolerance of the symmetry check |H_ij - H_ji| <= tol * max|diag H|.
    double symmetry_tolerance = 1e-4;
};

/// A Hessian ready for the block solver. Everything is in the solver's (possibly permuted) column
/// order except `dead`, which is in the original order.
struct PreparedHessian {
    /// Upper Cholesky factor of the damped inverse: H_damp^-1 = U^T U (permuted order).
    MatrixXf U;
    /// perm[k] = original column at position k (identity without act-order).
    Permutation perm;
    /// dead[j]: original column j had a zero diagonal (no calibration signal); its weights are
    /// zeroed by the solver, as in the reference.
    std::vector<bool> dead;
    /// Damping actually used: absolute value and relative to mean(diag H).
    double damp = 0.0;
    double percdamp = 0.0;
    /// Number of Cholesky attempts (1 when the requested damping sufficed).
    int attempts = 0;
    /// Seconds spent preparing.
    double seconds = 0.0;

    Index columns() const { return U.cols(); }
    bool permuted() const {
        for (std::size_t k = 0; k < perm.size(); ++k)
            if (perm[k] != static_cast<Index>(k)) return true;
        return false;
    }
};

namespace detail {

/// Tile and block sizes of the preparation. Every task's shape depends on n alone, never on the
/// thread count, so the result is bit-identical for any number of threads.
inline constexpr Index prepare_tile = 64;    // element-wise passes (validation, building A)
inline constexpr Index cholesky_block = 192;  // blocked Cholesky: panel width
inline constexpr Index panel_rows = 384;     // blocked Cholesky: rows per panel-solve task
inline constexpr Index inverse_block = 192;   // triangular inverse: columns per task

/// Calls f(i, j) for every i > j of an n x n matrix, by 64 x 64 tiles (a column of tiles per
/// parallel chunk, tiles top to bottom, each tile column by column): the element and its mirror
/// H(j, i) stay in cache together.
template <class F>
void for_each_strictly_lower(Index n, F&& f) {
    constexpr Index t = prepare_tile;
    parallel_for((n + t - 1) / t, [&](Index tj) {
        const Index j0 = tj * t, j1 = std::min(n, j0 + t);
        for (Index i0 = j0; i0 < n; i0 += t) {
            const Index i1 = std::min(n, i0 + t);
            for (Index j = j0; j < j1; ++j)
                for (Index i = std::max(i0, j + 1); i < i1; ++i) f(i, j);
        }
    });
}

/// Checks what can be checked cheaply before factorizing: finite, square, symmetric, a
/// non-negative diagonal, |H_ij| <= sqrt(H_ii H_jj) (every 2x2 principal minor PSD). The
/// off-diagonal checks run over 64 x 64 tiles of the lower triangle in parallel; with several
/// violations the one reported is the first of the lowest-numbered column tile.
template <class Scalar>
void validate_hessian(const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& H,
                      double symmetry_tolerance) {
    check_square("H", H);
    VQLIB_CHECK(H.rows() > 0, shape_error, "H is 0x0: expected at least one column");
    check_finite("H", H);
    const Index n = H.rows();
    std::vector<double> d(static_cast<std::size_t>(n));
    for (Index j = 0; j < n; ++j) d[static_cast<std::size_t>(j)] = static_cast<double>(H(j, j));
    double max_diag = 0.0;  // max |H_jj|
    for (double v : d) max_diag = std::max(max_diag, std::abs(v));
    VQLIB_CHECK(max_diag > 0.0, numerical_error, "H (", n, "x", n,
                ") is all zero on its diagonal: no column has calibration signal");
    for (Index j = 0; j < n; ++j) {
        VQLIB_CHECK(d[static_cast<std::size_t>(j)] >= 0.0, numerical_error, "H(", j, ", ", j,
                    ") = ", d[static_cast<std::size_t>(j)],
                    ": a Hessian is positive semi-definite, its diagonal cannot be negative");
    }
    const double tol = symmetry_tolerance * max_diag;
    for_each_strictly_lower(n, [&](Index i, Index j) {
        const double hij = static_cast<double>(H(i, j));
        const double hji = static_cast<double>(H(j, i));
        const double di = d[static_cast<std::size_t>(i)];
        const double dj = d[static_cast<std::size_t>(j)];
        const double bound = std::sqrt(di * dj) * (1.0 + 1e-6) + tol;
        if (std::abs(hij - hji) <= tol && std::abs(hij) <= bound) [[likely]]
            return;
        VQLIB_CHECK(std::abs(hij - hji) <= tol, numerical_error, "H(", i, ", ", j, ") = ", hij,
                    " but H(", j, ", ", i, ") = ", hji, ": expected a symmetric matrix");
        VQLIB_CHECK(false, numerical_error, "H(", i, ", ", j, ") = ", hij, " exceeds sqrt(H(", i,
                    ",", i, ") * H(", j, ",", j, ")) = ", std::sqrt(di * dj),
                    ": H is not positive semi-definite");
    });
}

/// Fills the lower triangle of A (n x n) with J P (H + H^T)/2 P^T J + damp I, where P orders the
/// columns by `perm`, J reverses them, and the diagonal of a dead column is taken as 1. The
/// strict upper triangle is left as it is. Parallel over 64 x 64 tiles.
template <class Scalar>
void build_damped_reversed(const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& H,
                           const Permutation& perm, const std::vector<bool>& dead, double damp,
                           MatrixXd& A) {
    const Index n = H.rows();
    A.resize(n, n);
    std::vector<Index> q(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) q[static_cast<std::size_t>(i)] = perm[static_cast<std::size_t>(n - 1 - i)];
    for_each_strictly_lower(n, [&](Index i, Index j) {
        const Index qi = q[static_cast<std::size_t>(i)];
        const Index qj = q[static_cast<std::size_t>(j)];
        A(i, j) = 0.5 * (static_cast<double>(H(qi, qj)) + static_cast<double>(H(qj, qi)));
    });
    for (Index j = 0; j < n; ++j) {
        const Index qj = q[static_cast<std::size_t>(j)];
        A(j, j) = (dead[static_cast<std::size_t>(qj)] ? 1.0 : static_cast<double>(H(qj, qj))) + damp;
    }
}

/// Lower Cholesky factor of the symmetric positive definite matrix whose lower triangle is in A,
/// in place: right-looking and blocked (panel width 192). The diagonal block is factored with
/// Eigen's LLT, the panel below it solved in 384-row tasks, and the trailing matrix updated by one
/// GEMM task per 192-column block, all in parallel. The strict upper triangle of the diagonal
/// blocks is used as scratch. Returns false when a pivot is not positive (not positive definite).
inline bool blocked_cholesky(MatrixXd& A) {
    const Index n = A.rows();
    constexpr Index nb = cholesky_block;
    for (Index k0 = 0; k0 < n; k0 += nb) {
        const Index kb = std::min(nb, n - k0);
        auto Akk = A.block(k0, k0, kb, kb);
        Eigen::LLT<Eigen::Ref<MatrixXd>> llt(Akk);
        if (llt.info() != Eigen::Success || !Akk.diagonal().allFinite()) return false;
        const Index r0 = k0 + kb;
        const Index rest = n - r0;
        if (rest == 0) break;
        const auto Lkk = A.block(k0, k0, kb, kb).triangularView<Eigen::Lower>();
        // Panel: A[r0:, k0:k0+kb] <- A[r0:, k0:k0+kb] L_kk^-T.
        parallel_for((rest + panel_rows - 1) / panel_rows, [&](Index c) {
            const Index p0 = r0 + c * panel_rows;
            auto P = A.block(p0, k0, std::min(panel_rows, n - p0), kb);
            Lkk.transpose().template solveInPlace<Eigen::OnTheRight>(P);
        });
        // Trailing update, column block by column block (the leftmost, largest, first):
        // A[j0:, j0:j0+jb] -= P[j0:] P[j0:j0+jb]^T.
        parallel_for((rest + nb - 1) / nb, [&](Index c) {
            const Index j0 = r0 + c * nb;
            const Index jb = std::min(nb, n - j0);
            A.block(j0, j0, n - j0, jb).noalias() -=
                A.block(j0, k0, n - j0, kb) * A.block(j0, k0, jb, kb).transpose();
        });
    }
    return true;
}

/// U = J L^-1 J as float, for the lower Cholesky factor L (lower triangle of A) of J H J: the
/// upper factor of H^-1. Computed by 192-column blocks of L^-1 (block b solves the rows at and
/// below it), in parallel; each block is written straight to U. Returns false when U has a
/// non-finite entry or a non-positive diagonal.
inline bool reversed_inverse_to_float(const MatrixXd& A, MatrixXf& U) {
    const Index n = A.rows();
    U.setZero(n, n);
    constexpr Index nb = inverse_block;
    std::vector<char> ok(static_cast<std::size_t>((n + nb - 1) / nb), 1);
    parallel_for((n + nb - 1) / nb, [&](Index b) {
        const Index j0 = b * nb;
        const Index w = std::min(nb, n - j0);
        MatrixXd X = MatrixXd::Zero(n - j0, w);
        X.topRows(w).setIdentity();
        A.block(j0, j0, n - j0, n - j0).triangularView<Eigen::Lower>().solveInPlace(X);
        bool good = X.allFinite();
        for (Index c = 0; c < w; ++c) {
            good = good && X(c, c) > 0.0;
            // Column j0 + c of L^-1, rows j0 + c ..: U(n-1-i, n-1-j) = X(i - j0, c).
            const Index j = j0 + c;
            float* u = U.col(n - 1 - j).data();
            for (Index i = j; i < n; ++i) u[n - 1 - i] = static_cast<float>(X(i - j0, c));
        }
        ok[static_cast<std::size_t>(b)] = good ? 1 : 0;
    });
    return std::all_of(ok.begin(), ok.end(), [](char c) { return c != 0; });
}

template <class Scalar>
PreparedHessian prepare_hessian_impl(
    const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& H,
    const HessianOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    validate_hessian<Scalar>(H, options.symmetry_tolerance);
    const Index n = H.rows();

    PreparedHessian out;
    out.dead.assign(static_cast<std::size_t>(n), false);
    std::vector<double> diag(static_cast<std::size_t>(n));
    for (Index j = 0; j < n; ++j) {
        const double h = static_cast<double>(H(j, j));
        out.dead[static_cast<std::size_t>(j)] = h == 0.0;
        diag[static_cast<std::size_t>(j)] = h == 0.0 ? 1.0 : h;
    }
    out.perm.resize(static_cast<std::size_t>(n));
    std::iota(out.perm.begin(), out.perm.end(), Index{0});
    if (options.act_order) {
        const Index unit = options.act_order_unit;
        VQLIB_CHECK(n % unit == 0, shape_error, "act_order_unit = ", unit,
                    " does not divide the number of columns C = ", n);
        // Rank the units by their summed diagonal (a unit of one column: GPTQ's order).
        std::vector<double> key(static_cast<std::size_t>(n / unit), 0.0);
        for (Index j = 0; j < n; ++j) key[static_cast<std::size_t>(j / unit)] += diag[static_cast<std::size_t>(j)];
        Permutation units(static_cast<std::size_t>(n / unit));
        std::iota(units.begin(), units.end(), Index{0});
        std::stable_sort(units.begin(), units.end(), [&](Index a, Index b) {
            return key[static_cast<std::size_t>(a)] > key[static_cast<std::size_t>(b)];
        });
        for (Index u = 0; u < n / unit; ++u)
            for (Index j = 0; j < unit; ++j)
                out.perm[static_cast<std::size_t>(u * unit + j)] = units[static_cast<std::size_t>(u)] * unit + j;
    }
    Eigen::VectorXd ordered_diag(n);
    for (Index k = 0; k < n; ++k)
        ordered_diag(k) = diag[static_cast<std::size_t>(out.perm[static_cast<std::size_t>(k)])];
    const double mean_diag = ordered_diag.mean();

    double percdamp = options.percdamp;
    const double max_percdamp = std::max(options.max_percdamp, options.percdamp);
    MatrixXd A;
    for (int attempt = 1;; ++attempt) {
        const double damp = percdamp * mean_diag;
        build_damped_reversed<Scalar>(H, out.perm, out.dead, damp, A);
        if (blocked_cholesky(A) && reversed_inverse_to_float(A, out.U)) {
            out.damp = damp;
            out.percdamp = percdamp;
            out.attempts = attempt;
            break;
        }
        VQLIB_CHECK(percdamp < max_percdamp, numerical_error,
                    "Cholesky factorization of the damped Hessian (", n, "x", n,
                    ") failed with percdamp up to ", percdamp, " (damp = ", damp,
                    ", mean diagonal ", mean_diag, ", ", attempt,
                    " attempts): H is not positive semi-definite, or needs more calibration "
                    "data; raise HessianOptions::max_percdamp to allow more damping");
        percdamp = std::min(std::max(percdamp * options.damp_growth, 1e-6), max_percdamp);
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

}  // namespace detail

/// Validates and prepares H (C x C, float or double) for the solver.
///
/// Cost: about C^3/3 flops of Cholesky and C^3/3 of triangular inverse in float64, on all threads
/// (blocked; every task's shape depends on C only, so U is bit-identical for any thread count).
/// Memory: one C x C float64 work matrix and U (C x C float) besides H; a float or double H is
/// read in place, any other expression is evaluated to float64 first.
template <class Derived>
PreparedHessian prepare_hessian(const Eigen::MatrixBase<Derived>& H_in,
                                const HessianOptions& options = {}) {
    VQLIB_CHECK(options.percdamp >= 0.0 && std::isfinite(options.percdamp), invalid_argument,
                "percdamp = ", options.percdamp, ": expected a finite value >= 0");
    VQLIB_CHECK(options.max_percdamp >= 0.0 && std::isfinite(options.max_percdamp),
                invalid_argument, "max_percdamp = ", options.max_percdamp,
                ": expected a finite value >= 0");
    VQLIB_CHECK(options.damp_growth > 1.0, invalid_argument, "damp_growth = ",
                options.damp_growth, ": expected > 1");
    VQLIB_CHECK(options.act_order_unit >= 1, invalid_argument, "act_order_unit = ",
                options.act_order_unit, ": expected >= 1");
    using Scalar = typename Derived::Scalar;
    if constexpr (std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>) {
        return detail::prepare_hessian_impl<Scalar>(H_in, options);
    } else {
        return detail::prepare_hessian_impl<double>(H_in.template cast<double>(), options);
    }
}

}  // namespace vqlib
