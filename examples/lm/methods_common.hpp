#pragma once
// Helpers shared by the preset tables of the lm tool (methods_*.cpp).
#include "lm_quantize.hpp"

#include <vqlib/transform.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>
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

/// The same with the recipe run in a randomized-Hadamard basis (vqlib::incoherent): the layer
/// stays in the rotated basis and the rotation goes with it, for the decode kernels.
template <class Recipe>
LinearOutcome incoherent_outcome(const MatrixXf& W, const MatrixXd& H, std::uint64_t seed, Recipe&& recipe) {
    transform::IncoherenceOptions options;
    options.seed = seed;
    auto r = vqlib::incoherent(W, H, options, recipe);
    LinearOutcome o = outcome(std::move(r.result));
    o.rotation.emplace(std::move(r.rotation));
    return o;
}

/// Seed of the rotations of a linear: from its shape and weights' first entries, so that every
/// linear gets its own signs and reruns the same ones.
inline std::uint64_t rotation_seed(const MatrixXf& W) {
    std::uint64_t seed = static_cast<std::uint64_t>(W.rows()) * 1000003u + static_cast<std::uint64_t>(W.cols());
    std::uint32_t bits = 0;
    std::memcpy(&bits, W.data(), sizeof bits);
    return seed ^ (std::uint64_t{bits} << 20);
}

/// Method::run for a recipe call run(W, H): its result as is, or under incoherence processing
/// with the linear's own rotation seed.
template <class Run>
auto direct(Run run) {
    return [run](const MatrixXf& W, const MatrixXd& H) { return outcome(run(W, H)); };
}
template <class Run>
auto rotated(Run run) {
    return [run](const MatrixXf& W, const MatrixXd& H) { return incoherent_outcome(W, H, rotation_seed(W), run); };
}

/// A preset whose configuration depends on the block (rates graded by depth): per_block[b] runs
/// the linears of block b (the last entry also any deeper block); a lone layer gets per_block[1]
/// (the second block's, a middle rate).
template <class Run>
Method graded(std::string name, std::string family, std::string description, std::vector<Run> per_block) {
    Method m{std::move(name), std::move(family), std::move(description), per_block.at(1)};
    m.run_in_block = [per_block](Index block, const MatrixXf& W, const MatrixXd& H) {
        return per_block[static_cast<std::size_t>(std::min<Index>(block, static_cast<Index>(per_block.size()) - 1))](W, H);
    };
    return m;
}

void add_gptq_methods(std::vector<Method>& out);
void add_gptvq_methods(std::vector<Method>& out);
void add_vptq_methods(std::vector<Method>& out);
void add_pvq_methods(std::vector<Method>& out);

}  // namespace vqlib::lm
