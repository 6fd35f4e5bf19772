#pragma once
// Helpers shared by the preset tables of the lm tool (methods_*.cpp).
#include "lm_quantize.hpp"

#include <vqlib/transform.hpp>

#include <utility>

namespace vqlib::lm {

/// A recipe's result as the lm tool reports it.
template <class Result>
LinearOutcome outcome(Result&& r) {
    LinearOutcome o;
    o.Q = std::move(r.Q);
    o.bits_per_weight = r.bits_per_weight;
    o.proxy_loss = r.proxy_loss;
    o.percdamp = r.percdamp_used;
    o.seconds = r.seconds;
    if constexpr (requires { io::QuantizedLayer(std::move(r.layer)); }) o.layer.emplace(std::move(r.layer));
    return o;
}

/// Any recipe run in a randomized-Hadamard basis (QuIP#'s incoherence processing): W' = R_out W
/// R_in^T and H' = R_in H R_in^T are quantized, Q = R_out^T Q' R_in is returned and the loss is
/// measured against the original W and H. The rotations are regenerated from the seed, so they
/// cost no stored bits; the decode applies them (or multiplies with the restored Q, as here).
template <class Recipe>
LinearOutcome incoherent(const MatrixXf& W, const MatrixXd& H, const transform::IncoherenceOptions& options,
                         Recipe&& recipe) {
    const auto start = std::chrono::steady_clock::now();
    const transform::IncoherenceTransform rotation(W.rows(), W.cols(), options);
    MatrixXf Wt = W;
    MatrixXd Ht = H;
    rotation.transform_weights(Wt);
    rotation.transform_hessian(Ht);
    LinearOutcome o = recipe(Wt, Ht);
    rotation.restore_weights(o.Q);
    o.proxy_loss = proxy_loss(W, o.Q, H);
    o.layer.reset();  // the stored layer lives in the rotated basis
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return o;
}

void add_gptq_methods(std::vector<Method>& out);
void add_gptvq_methods(std::vector<Method>& out);
void add_vptq_methods(std::vector<Method>& out);
void add_pvq_methods(std::vector<Method>& out);

}  // namespace vqlib::lm
