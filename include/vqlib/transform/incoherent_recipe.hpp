#pragma once
// Incoherence processing around any recipe (QuIP#-style): a pre- and post-processing step that
// composes with gptq(), gptvq(), vptq(), pvq() or a user's own method without touching it.
//
//   auto r = vqlib::incoherent(W, H, {.seed = 7}, [&](const vqlib::MatrixXf& Wr, const vqlib::MatrixXd& Hr) {
//       return vqlib::gptvq(Wr, Hr, config);
//   });
//   r.result.layer      the quantized layer, in the rotated basis (W' = R_out W R_in^T)
//   r.result.Q          restored to the original basis: R_out^T Q' R_in
//   r.result.proxy_loss tr((W - Q) H (W - Q)^T) with the caller's W and H
//   r.rotation          the rotations, regenerated from the seed (no stored bits): a decode runs
//                       y = R_out^T (Q' (R_in x)) (rotation.transform_inputs / restore_outputs)
//
// The rotations are orthogonal, so the proxy loss of the rotated problem is the loss of the
// restored Q; what changes is what the quantizer sees: weights without outlier columns or rows
// and a Hessian without dominant diagonal entries, which grids and codebooks fit more evenly.
#include <vqlib/core.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/transform/incoherence.hpp>

#include <chrono>
#include <utility>

namespace vqlib {

/// A recipe's result on the rotated problem, restored, and the rotations its layer needs.
template <class Result>
struct IncoherentResult {
    Result result;
    transform::IncoherenceTransform rotation;
};

/// Runs recipe(W', H') on the rotated W' = R_out W R_in^T, H' = R_in H R_in^T (W: R x C float,
/// H: C x C float or double) and restores the result's Q; proxy_loss and seconds are recomputed
/// against the caller's W and H (rotations included). The recipe returns a result with Q,
/// proxy_loss and seconds members (every vqlib recipe's QuantizationResult). Sizes without a
/// Hadamard transform throw invalid_argument from IncoherenceTransform, naming the size.
template <class DerivedH, class Recipe>
auto incoherent(ConstMatrixRef W, const Eigen::MatrixBase<DerivedH>& H,
                const transform::IncoherenceOptions& options, Recipe&& recipe)
    -> IncoherentResult<std::decay_t<decltype(recipe(std::declval<const MatrixXf&>(),
                                                     std::declval<const MatrixXd&>()))>> {
    const auto start = std::chrono::steady_clock::now();
    check_square("H", H);
    check_shape("H", H, W.cols(), W.cols());
    transform::IncoherenceTransform rotation(W.rows(), W.cols(), options);
    MatrixXf Wr = W;
    MatrixXd Hr = H.template cast<double>();
    rotation.transform_weights(Wr);
    rotation.transform_hessian(Hr);
    auto result = recipe(std::as_const(Wr), std::as_const(Hr));
    VQLIB_CHECK(result.Q.rows() == W.rows() && result.Q.cols() == W.cols(), shape_error,
                "incoherent: the recipe returned Q of ", result.Q.rows(), "x", result.Q.cols(),
                ": expected ", W.rows(), "x", W.cols());
    rotation.restore_weights(result.Q);
    result.proxy_loss = proxy_loss(W, result.Q, H);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return {std::move(result), std::move(rotation)};
}

}  // namespace vqlib
