#pragma once
// The PVQ quantizer policy of the block solver: each step takes D columns; every row's group of D
// weights becomes gain * y / ||y|| with y a PVQ pulse vector (||y||_1 = K).
//
// Per group:
//   1. shape: the Opus pulse search (projection + greedy), optionally refined by pulse swaps,
//      either in the Euclidean metric or in the group's Hessian metric (ShapeSearch);
//   2. gain: refit in a metric M after the shape is fixed, s = yhat' M w / yhat' M yhat (a negative
//      s flips the shape, which is also a PVQ point), then quantized relative to the row norm with
//      the layer's GainCodebook;
//   3. the dequantized group is returned to the solver, which feeds the error back (GPTQ).
//
// Metrics (GainMetric):
//   euclidean    M = I: the plain least-squares gain;
//   hessian      M = H_BB, the group's block of the Hessian (docs/pvq.md);
//   conditional  M = (U_BB' U_BB)^-1 with U = chol(H^-1): the block's Hessian conditioned on the
//                columns already quantized, i.e. the exact increase of the proxy loss when the
//                later columns compensate (the LDLQ "D_k" block). Default.
#include <vqlib/core/error.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/lattice.hpp>
#include <vqlib/quantizers/gain_quantizer.hpp>
#include <vqlib/formats/pvq_layer.hpp>
#include <vqlib/solver/context.hpp>
#include <vqlib/solver/policies.hpp>

#include <Eigen/Cholesky>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace vqlib {

enum class GainMetric { euclidean, hessian, conditional };

enum class ShapeSearch {
    /// Opus: projection and greedy pulse placement.
    greedy,
    /// greedy, then single-pulse moves while they raise the Euclidean cosine.
    greedy_swap,
    /// greedy, then single-pulse moves while they lower the error in the gain metric M (with the
    /// gain refit exactly): a PVQ point chosen for the Hessian, not only for the weights.
    metric_swap,
};

struct PvqOptions {
    /// Group dimension D (consecutive columns of one row).
    Index dim = 32;
    /// Pulses K.
    int pulses = 50;
    ShapeSearch search = ShapeSearch::metric_swap;
    GainMetric gain_metric = GainMetric::conditional;
    /// Storage of the per-row norms.
    ScaleStorage norm_storage = ScaleStorage::fp16;
    /// Upper bound on the refinement passes per group (each pass tries every single-pulse move).
    int max_swap_passes = 16;
};

template <lattice::PvqIndex Idx>
class PvqQuantizer {
public:
    /// `gains` are the relative-amplitude levels (see gain_quantizer.hpp); `hessian` (C x C, in
    /// the solver's column space before permutation) is needed only for GainMetric::hessian.
    PvqQuantizer(PvqOptions options, GainCodebook gains, const MatrixXd* hessian = nullptr)
        : options_(options), gains_(std::move(gains)), hessian_(hessian),
          codec_(static_cast<int>(options.dim), options.pulses) {
        VQLIB_CHECK(options.dim >= 2 && options.dim <= 256, invalid_argument, "dim = ", options.dim,
                    ": expected a group dimension in [2, 256]");
        VQLIB_CHECK(options.pulses >= 1, invalid_argument, "pulses = ", options.pulses,
                    ": expected K >= 1");
        VQLIB_CHECK(!gains_.levels.empty() && gains_.levels.size() <= 65536, invalid_argument,
                    "gain codebook with ", gains_.levels.size(), " levels: expected 1..65536");
        for (std::size_t i = 0; i < gains_.levels.size(); ++i)
            VQLIB_CHECK(gains_.levels[i] > 0 && std::isfinite(gains_.levels[i]) &&
                            (i == 0 || gains_.levels[i] > gains_.levels[i - 1]),
                        invalid_argument, "gain level ", i, " = ", gains_.levels[i],
                        ": expected positive, finite, strictly ascending levels");
        VQLIB_CHECK(options.gain_metric != GainMetric::hessian || hessian != nullptr,
                    invalid_argument, "gain_metric = hessian needs the Hessian");
        VQLIB_CHECK(options.max_swap_passes >= 0, invalid_argument, "max_swap_passes = ",
                    options.max_swap_passes, ": expected >= 0");
    }

    Index step_width() const { return options_.dim; }
    Index row_granularity() const { return 1; }
    const PvqOptions& options() const { return options_; }

    void begin(const SolveSetup& setup) {
        const Index R = setup.W_input.rows();
        const Index C = setup.W_input.cols();
        VQLIB_CHECK(C % options_.dim == 0, shape_error, "dim = ", options_.dim,
                    " does not divide the number of columns C = ", C);
        if (hessian_) {
            VQLIB_CHECK(hessian_->rows() == C && hessian_->cols() == C, shape_error,
                        "the PVQ policy's Hessian is ", hessian_->rows(), "x", hessian_->cols(),
                        ": expected ", C, "x", C);
        }
        perm_ = &setup.perm;
        layer_ = PvqLayer<Idx>{};
        layer_.rows = R;
        layer_.cols = C;
        layer_.dim = options_.dim;
        layer_.pulses = options_.pulses;
        layer_.gains = gains_;
        layer_.norm_storage = options_.norm_storage;
        const auto n = static_cast<std::size_t>(R * (C / options_.dim));
        layer_.indices.assign(n, Idx{});
        layer_.gain_codes.assign(n, 0);
        layer_.row_norms.resize(static_cast<std::size_t>(R));
        for (Index r = 0; r < R; ++r) {
            const double norm = setup.W_live.row(r).template cast<double>().norm();
            layer_.row_norms[static_cast<std::size_t>(r)] =
                norm > 0 ? round_scale(static_cast<float>(norm), options_.norm_storage) : 0.0f;
        }
        bool identity = true;
        for (std::size_t k = 0; k < setup.perm.size(); ++k)
            identity = identity && setup.perm[k] == static_cast<Index>(k);
        if (!identity) layer_.perm = setup.perm;
    }

    void begin_block(const BlockView&) {}

    void quantize(const StepView& step, Index row_begin, ConstMatrixRef w, MatrixRef out) {
        const Index D = options_.dim;
        const Index G = layer_.groups();
        const Index g = step.column / D;
        const Eigen::MatrixXd M = metric(step);
        const bool euclidean = options_.gain_metric == GainMetric::euclidean;

        std::vector<float> x(static_cast<std::size_t>(D));
        std::vector<std::int32_t> y(static_cast<std::size_t>(D));
        Eigen::VectorXd wd(D), yd(D), Mw(D), My(D);
        lattice::PulseSearchOptions search;
        search.refinement = options_.search == ShapeSearch::greedy_swap
                                ? lattice::PulseRefinement::swap
                                : lattice::PulseRefinement::none;

        for (Index i = 0; i < w.rows(); ++i) {
            const Index r = row_begin + i;
            for (Index j = 0; j < D; ++j) x[static_cast<std::size_t>(j)] = w(i, j);
            lattice::pvq_search(x, options_.pulses, y, search);
            for (Index j = 0; j < D; ++j) {
                wd[j] = w(i, j);
                yd[j] = y[static_cast<std::size_t>(j)];
            }
            if (euclidean) {
                Mw = wd;
            } else {
                Mw.noalias() = M * wd;
            }
            if (options_.search == ShapeSearch::metric_swap) refine_in_metric(M, euclidean, Mw, y, yd);
            if (euclidean) {
                My = yd;
            } else {
                My.noalias() = M * yd;
            }
            const double yMy = yd.dot(My);
            double c = yd.dot(Mw);  // s = c / sqrt(yMy) * ||y|| / ... see below
            if (c < 0) {
                for (auto& v : y) v = -v;
                yd = -yd;
                c = -c;
            }
            // q = s * y / ||y||; the error (w - q)' M (w - q) is least at s = ||y|| c / yMy.
            const double ynorm = yd.norm();
            const double s = yMy > 0 ? ynorm * c / yMy : 0.0;
            const float norm_r = layer_.row_norms[static_cast<std::size_t>(r)];
            std::uint32_t code = 0;
            double sq = 0.0;
            if (norm_r > 0) {
                code = gains_.nearest(static_cast<float>(s / norm_r));
                sq = double(norm_r) * double(gains_.levels[code]);
            }
            for (Index j = 0; j < D; ++j) out(i, j) = static_cast<float>(sq * yd[j] / ynorm);
            const auto at = static_cast<std::size_t>(r * G + g);
            layer_.indices[at] = codec_.encode(y);
            layer_.gain_codes[at] = static_cast<std::uint16_t>(code);
        }
    }

    /// The quantized layer (valid after the solve).
    const PvqLayer<Idx>& layer() const { return layer_; }
    PvqLayer<Idx>& layer() { return layer_; }

private:
    /// The metric of the step's group (D x D), identity for the Euclidean metric.
    Eigen::MatrixXd metric(const StepView& step) const {
        const Index D = options_.dim;
        switch (options_.gain_metric) {
        case GainMetric::euclidean: return Eigen::MatrixXd::Identity(D, D);
        case GainMetric::hessian: {
            Eigen::MatrixXd M(D, D);
            for (Index a = 0; a < D; ++a)
                for (Index b = 0; b < D; ++b)
                    M(a, b) = (*hessian_)((*perm_)[static_cast<std::size_t>(step.column + a)],
                                          (*perm_)[static_cast<std::size_t>(step.column + b)]);
            return M;
        }
        case GainMetric::conditional: {
            // M = U^-1 U^-T with U the step's upper-triangular block of chol(H^-1).
            const Eigen::MatrixXd U = step.U_step.template cast<double>();
            Eigen::MatrixXd A = Eigen::MatrixXd::Identity(D, D);
            U.triangularView<Eigen::Upper>().solveInPlace(A);  // A = U^-1
            return A * A.transpose();
        }
        }
        return Eigen::MatrixXd::Identity(D, D);
    }

    /// Local search over single-pulse moves (one unit taken from a non-zero coordinate a, one
    /// unit added at b with either sign), accepting a move when it raises c^2 / n, where
    /// c = y' M w and n = y' M y: the error left after the exact gain refit is w'Mw - c^2/n.
    /// Every quantity is updated in O(1) per candidate from u = M y and m = M w.
    void refine_in_metric(const Eigen::MatrixXd& M, bool euclidean, const Eigen::VectorXd& m,
                          std::vector<std::int32_t>& y, Eigen::VectorXd& yd) const {
        const Index D = options_.dim;
        Eigen::VectorXd u = euclidean ? Eigen::VectorXd(yd) : Eigen::VectorXd(M * yd);
        double c = yd.dot(m);
        double n = yd.dot(u);
        const auto Mab = [&](Index a, Index b) { return euclidean ? (a == b ? 1.0 : 0.0) : M(a, b); };
        // Compare c^2/n by cross-multiplication; only c >= 0 matters (a sign flip of y is free).
        const auto better = [](double c1, double n1, double c0, double n0) {
            return c1 * c1 * n0 > c0 * c0 * n1 * (1.0 + 1e-12);
        };
        if (c < 0) {
            for (auto& v : y) v = -v;
            yd = -yd;
            u = -u;
            c = -c;
        }
        for (int pass = 0; pass < options_.max_swap_passes; ++pass) {
            bool moved = false;
            for (Index a = 0; a < D; ++a) {
                const std::int32_t ya = y[static_cast<std::size_t>(a)];
                if (ya == 0) continue;
                const double sa = ya > 0 ? 1.0 : -1.0;
                double best_c = c, best_n = n;
                Index best_b = -1;
                double best_sigma = 0;
                for (Index b = 0; b < D; ++b) {
                    if (b == a) continue;
                    for (double sigma : {1.0, -1.0}) {
                        // A unit of the wrong sign at b would cancel a pulse: not a move of one
                        // pulse (||y||_1 would drop); skip it.
                        const std::int32_t yb = y[static_cast<std::size_t>(b)];
                        if ((yb > 0 && sigma < 0) || (yb < 0 && sigma > 0)) continue;
                        const double c1 = c - sa * m[a] + sigma * m[b];
                        const double n1 = n + 2.0 * (-sa * u[a] + sigma * u[b]) + Mab(a, a) +
                                          Mab(b, b) - 2.0 * sa * sigma * Mab(a, b);
                        if (c1 > 0 && n1 > 0 && better(c1, n1, best_c, best_n)) {
                            best_c = c1;
                            best_n = n1;
                            best_b = b;
                            best_sigma = sigma;
                        }
                    }
                }
                if (best_b < 0) continue;
                y[static_cast<std::size_t>(a)] -= static_cast<std::int32_t>(sa);
                y[static_cast<std::size_t>(best_b)] += static_cast<std::int32_t>(best_sigma);
                yd[a] -= sa;
                yd[best_b] += best_sigma;
                if (euclidean) {
                    u[a] -= sa;
                    u[best_b] += best_sigma;
                } else {
                    u += -sa * M.col(a) + best_sigma * M.col(best_b);
                }
                c = best_c;
                n = best_n;
                moved = true;
            }
            if (!moved) break;
        }
    }

    PvqOptions options_;
    GainCodebook gains_;
    const MatrixXd* hessian_ = nullptr;
    lattice::PvqCodec<Idx> codec_;
    const Permutation* perm_ = nullptr;
    PvqLayer<Idx> layer_;
};

}  // namespace vqlib
