#pragma once
// The part of spec.hpp each family's translation unit instantiates.
#include "spec.hpp"

#include <vqlib/transform/incoherent_recipe.hpp>

#include <memory>
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

/// Sets spec.run (run(W, H) under an optional rotation) and the shared-preparation pair
/// (spec.prepare / spec.run_prepared) of a recipe that exists in both forms:
/// run(W, H) and prepared_run(W, H, prepare(H)) with the same result.
template <class Run, class Prepare, class PreparedRun>
void set_recipe(MethodSpec& spec, Run run, Prepare prepare, PreparedRun prepared_run) {
    spec.run = [run](const MatrixXf& W, const MatrixXd& H, std::optional<std::uint64_t> seed) {
        return run_recipe(W, H, seed, run);
    };
    using Prepared = std::decay_t<decltype(prepare(std::declval<const MatrixXd&>()))>;
    spec.prepare = [prepare](const MatrixXd& H) -> std::shared_ptr<const void> {
        return std::make_shared<const Prepared>(prepare(H));
    };
    spec.run_prepared = [prepared_run](const MatrixXf& W, const MatrixXd& H, const void* p) {
        return outcome_of(prepared_run(W, H, *static_cast<const Prepared*>(p)));
    };
}

}  // namespace vqlib::quantize::detail
