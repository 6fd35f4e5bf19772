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
#include <vector>

namespace vqlib {

struct HessianOptions {
    /// Relative damping: damp = percdamp * mean(diag H) is added to the diagonal (GPTQ: 0.01).
    double percdamp = 0.01;
    /// Order the columns by descending diagonal of H (GPTQ's --act-order).
    bool act_order = false;
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

/// Inverse of a lower-triangular matrix, computed by independent column blocks (each block only
/// touches the rows at and below it), in parallel and deterministically.
inline MatrixXd lower_triangular_inverse(const MatrixXd& L) {
    const Index n = L.rows();
    constexpr Index block = 64;
    MatrixXd X = MatrixXd::Zero(n, n);
    const Index blocks = (n + block - 1) / block;
    parallel_for(blocks, [&](Index b) {
        // Largest blocks (leftmost) first, for load balance under dynamic scheduling.
        const Index j0 = b * block;
        const Index w = std::min(block, n - j0);
        auto x = X.block(j0, j0, n - j0, w);
        x.topRows(w).setIdentity();
        L.block(j0, j0, n - j0, n - j0).triangularView<Eigen::Lower>().solveInPlace(x);
    });
    return X;
}

/// Checks what can be checked cheaply before factorizing: finite, square, symmetric, a
/// non-negative diagonal, |H_ij| <= sqrt(H_ii H_jj) (every 2x2 principal minor PSD).
inline void validate_hessian(const MatrixXd& H, double symmetry_tolerance) {
    check_square("H", H);
    VQLIB_CHECK(H.rows() > 0, shape_error, "H is 0x0: expected at least one column");
    check_finite("H", H);
    const Index n = H.rows();
    const double max_diag = H.diagonal().cwiseAbs().maxCoeff();
    VQLIB_CHECK(max_diag > 0.0, numerical_error, "H (", n, "x", n,
                ") is all zero on its diagonal: no column has calibration signal");
    for (Index j = 0; j < n; ++j) {
        VQLIB_CHECK(H(j, j) >= 0.0, numerical_error, "H(", j, ", ", j, ") = ", H(j, j),
                    ": a Hessian is positive semi-definite, its diagonal cannot be negative");
    }
    const double tol = symmetry_tolerance * max_diag;
    for (Index j = 0; j < n; ++j) {
        for (Index i = j + 1; i < n; ++i) {
            VQLIB_CHECK(std::abs(H(i, j) - H(j, i)) <= tol, numerical_error, "H(", i, ", ", j,
                        ") = ", H(i, j), " but H(", j, ", ", i, ") = ", H(j, i),
                        ": expected a symmetric matrix");
            const double bound = std::sqrt(H(i, i) * H(j, j)) * (1.0 + 1e-6) + tol;
            VQLIB_CHECK(std::abs(H(i, j)) <= bound, numerical_error, "H(", i, ", ", j, ") = ",
                        H(i, j), " exceeds sqrt(H(", i, ",", i, ") * H(", j, ",", j, ")) = ",
                        std::sqrt(H(i, i) * H(j, j)),
                        ": H is not positive semi-definite");
        }
    }
}

}  // namespace detail

/// Validates and prepares H (C x C, float or double) for the solver.
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
    const auto start = std::chrono::steady_clock::now();

    MatrixXd H = H_in.template cast<double>();
    detail::validate_hessian(H, options.symmetry_tolerance);
    const Index n = H.rows();
    H = 0.5 * (H + H.transpose()).eval();

    PreparedHessian out;
    out.dead.assign(static_cast<std::size_t>(n), false);
    for (Index j = 0; j < n; ++j) {
        if (H(j, j) == 0.0) {
            out.dead[static_cast<std::size_t>(j)] = true;
            H(j, j) = 1.0;
        }
    }

    out.perm.resize(static_cast<std::size_t>(n));
    std::iota(out.perm.begin(), out.perm.end(), Index{0});
    if (options.act_order) {
        std::stable_sort(out.perm.begin(), out.perm.end(),
                         [&](Index a, Index b) { return H(a, a) > H(b, b); });
        MatrixXd P(n, n);
        for (Index k = 0; k < n; ++k)
            for (Index l = 0; l < n; ++l) P(l, k) = H(out.perm[l], out.perm[k]);
        H.swap(P);
    }

    const double mean_diag = H.diagonal().mean();
    // Reversed order: J H J, whose lower Cholesky factor gives the upper factor of H.
    const MatrixXd Hrev = H.reverse();
    double percdamp = options.percdamp;
    const double max_percdamp = std::max(options.max_percdamp, options.percdamp);
    for (int attempt = 1;; ++attempt) {
        const double damp = percdamp * mean_diag;
        MatrixXd A = Hrev;
        A.diagonal().array() += damp;
        Eigen::LLT<Eigen::Ref<MatrixXd>> llt(A);  // in place: A's lower triangle becomes L
        bool ok = llt.info() == Eigen::Success;
        if (ok) {
            const MatrixXd Linv = detail::lower_triangular_inverse(A);
            // U = (J L J)^-1 = J L^-1 J.
            MatrixXd U = Linv.reverse();
            ok = U.allFinite() && (U.diagonal().array() > 0.0).all();
            if (ok) {
                out.U = U.template triangularView<Eigen::Upper>().toDenseMatrix().template cast<float>();
                out.damp = damp;
                out.percdamp = percdamp;
                out.attempts = attempt;
                break;
            }
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

}  // namespace vqlib
