#pragma once
// vqlib example: a new method in one policy and one header (docs/architecture.md, section 9).
//
// A sign-magnitude vector quantizer: each vector of D consecutive (solver-order) columns of a row
// becomes sign(w) times one shared magnitude, one of L = 2^b levels scale[r] * (2k + 1) / 2L with
// an fp16 scale per row. For fixed signs the best shared magnitude is mean |w|, so keeping the
// signs of w and the level nearest to mean |w| gives the Euclidean-nearest codeword. The header
// includes only core/, hessian/ and solver/: the solver, the Hessian preparation, the error
// updates and the result core are vqlib's. examples/new_method.cpp runs and checks it.
#include <vqlib/core/bits.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/hessian/prepare.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/solver/context.hpp>
#include <vqlib/solver/policies.hpp>
#include <vqlib/solver/result.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace mine {

using vqlib::Index;
using Bytes = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic>;

/// The format: vector v of row r (solver columns [v*dim, v*dim + dim)) is sign(w) times
/// magnitude(r, level(r, v)).
struct SignMagnitudeLayer {
    Index dim = 4;
    int level_bits = 2;
    std::vector<float> scale;  // per row, fp16 values
    Bytes negative;            // R x C, solver order: 1 where the weight is negative
    Bytes level;               // R x C/dim, solver order
    vqlib::Permutation perm;   // solver column k is original column perm[k]

    Index rows() const { return negative.rows(); }
    Index cols() const { return negative.cols(); }
    float magnitude(Index r, int k) const {
        return scale[r] * float(2 * k + 1) / float(2 << level_bits);
    }
    /// R x C in the original column order; the same floats as the solver's Q.
    vqlib::MatrixXf dequantize() const {
        vqlib::MatrixXf Q(rows(), cols());
        for (Index k = 0; k < cols(); ++k)
            for (Index r = 0; r < rows(); ++r) {
                const float m = magnitude(r, level(r, k / dim));
                Q(r, perm[k]) = negative(r, k) ? -m : m;
            }
        return Q;
    }
    vqlib::BitsBreakdown bits() const {
        vqlib::BitsBreakdown b;
        b.weights = rows() * cols();
        b.codes = double(b.weights) + double(level.size()) * level_bits;  // signs + levels
        b.parameters = 16.0 * double(rows());                             // fp16 scales
        return b;
    }
    double bits_per_weight() const { return bits().per_weight(); }
};

/// The quantizer policy: dim columns per step, rows independent.
class SignMagnitudeQuantizer {
public:
    SignMagnitudeQuantizer(Index dim, int level_bits) {
        VQLIB_CHECK(dim >= 1, vqlib::invalid_argument, "dim = ", dim, ": expected >= 1");
        VQLIB_CHECK_RANGE("level_bits", level_bits, 1, 8);
        layer_.dim = dim;
        layer_.level_bits = level_bits;
    }

    Index step_width() const { return layer_.dim; }
    Index row_granularity() const { return 1; }

    // Once per solve: reset everything, copy what outlives the call, fit the per-row scales.
    void begin(const vqlib::SolveSetup& setup) {
        const Index R = setup.W_live.rows(), C = setup.W_live.cols();
        layer_.perm = setup.perm;
        layer_.negative.setZero(R, C);
        layer_.level.setZero(R, C / layer_.dim);
        layer_.scale.assign(std::size_t(R), 1.0f);
        for (Index r = 0; r < R; ++r) {
            const float absmax = setup.W_live.row(r).cwiseAbs().maxCoeff();
            if (absmax > 0.0f)
                layer_.scale[r] = vqlib::round_scale(absmax, vqlib::ScaleStorage::fp16);
        }
    }
    void begin_block(const vqlib::BlockView&) {}  // nothing is fitted per block

    // Called concurrently for disjoint row ranges: writes only the codes of its own rows.
    void quantize(const vqlib::StepView& step, Index row_begin, vqlib::ConstMatrixRef w,
                  vqlib::MatrixRef q) {
        const int L = 1 << layer_.level_bits;
        for (Index i = 0; i < w.rows(); ++i) {
            const Index r = row_begin + i;
            const float t = w.row(i).cwiseAbs().mean() / layer_.scale[r] * float(L) - 0.5f;
            const int k = std::clamp(static_cast<int>(std::lround(t)), 0, L - 1);
            layer_.level(r, step.column / layer_.dim) = static_cast<std::uint8_t>(k);
            const float m = layer_.magnitude(r, k);
            for (Index j = 0; j < step.width; ++j) {
                const bool negative = w(i, j) < 0.0f;
                layer_.negative(r, step.column + j) = negative;
                q(i, j) = negative ? -m : m;
            }
        }
    }

    const SignMagnitudeLayer& layer() const { return layer_; }

private:
    SignMagnitudeLayer layer_;
};
static_assert(vqlib::QuantizerPolicy<SignMagnitudeQuantizer>);

/// The recipe.
struct SignMagnitudeConfig {
    Index dim = 4;
    int level_bits = 2;
    vqlib::HessianOptions hessian{};
    vqlib::SolverOptions solver{};
    vqlib::ErrorUpdateKind update = vqlib::ErrorUpdateKind::exact;
};

struct SignMagnitudeResult : vqlib::QuantizationResult<SignMagnitudeLayer> {};

template <class DerivedH>
SignMagnitudeResult sign_magnitude(vqlib::ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                                   const SignMagnitudeConfig& config) {
    const auto start = std::chrono::steady_clock::now();
    const vqlib::PreparedHessian prepared = vqlib::prepare_hessian(H, config.hessian);
    SignMagnitudeQuantizer quantizer(config.dim, config.level_bits);
    vqlib::SolveResult solved = vqlib::solve(config.update, config.solver, W, prepared, quantizer);

    SignMagnitudeResult out;
    out.layer = quantizer.layer();
    out.Q = std::move(solved.Q);  // == out.layer.dequantize()
    out.stats = solved.stats;
    out.update = config.update;
    out.record(prepared);         // percdamp_used, cholesky_attempts
    out.proxy_loss = vqlib::proxy_loss(W, out.Q, H);
    out.bits_per_weight = out.layer.bits_per_weight();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

}  // namespace mine
