#pragma once
// The part of spec.hpp each family's translation unit instantiates.
#include "spec.hpp"

#include <vqlib/transform/incoherent_recipe.hpp>

#include <type_traits>
#include <utility>

namespace vqlib::quantize::detail {

/// The result of a recipe as an Outcome.
template <class Result>
Outcome outcome_of(Result&& r) {
    Outcome o{io::QuantizedLayer(std::move(r.layer))};
    o.bits_per_weight = r.bits_per_weight;
    o.proxy_loss = r.proxy_loss;
    o.percdamp = r.percdamp_used;
    o.seconds = r.seconds;
    return o;
}

/// Runs run(W, H), under incoherence processing with rotations of `seed` when given.
template <class Run>
Outcome run_recipe(const MatrixXf& W, const MatrixXd& H, std::optional<std::uint64_t> seed, const Run& run) {
    if (!seed) return outcome_of(run(W, H));
    transform::IncoherenceOptions options;
    options.seed = *seed;
    auto r = vqlib::incoherent(W, H, options, run);
    Outcome o = outcome_of(std::move(r.result));
    o.rotation = options;
    return o;
}

}  // namespace vqlib::quantize::detail
