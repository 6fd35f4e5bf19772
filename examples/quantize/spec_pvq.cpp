#include "spec_common.hpp"

#include <vqlib/pvq.hpp>

namespace vqlib::quantize {

// [d<D>-]<bits per weight>[@best|@paper]
MethodSpec parse_pvq(const std::string& text, std::string_view config) {
    bool best = true;
    if (const auto at = config.rfind('@'); at != std::string_view::npos) {
        const std::string_view preset = config.substr(at + 1);
        if (preset == "paper") best = false;
        else if (preset != "best") detail::bad_spec(text, ::vqlib::detail::concat("preset \"@", preset, "\""), "@best or @paper");
        config = config.substr(0, at);
    }
    long dim = 32;
    if (config.starts_with("d")) {
        const auto dash = config.find('-');
        const auto parsed = detail::parse_integer(config.substr(1, dash == std::string_view::npos ? dash : dash - 1));
        if (!parsed || dash == std::string_view::npos || *parsed < 2 || *parsed > 256)
            detail::bad_spec(text, ::vqlib::detail::concat("configuration \"", config, "\""),
                             "[d<D>-]<bits per weight>, D in [2, 256], e.g. 3.25 or d64-2.125");
        dim = *parsed;
        config = config.substr(dash + 1);
    }
    const auto bpw = detail::parse_number(config);
    if (!bpw || *bpw <= 0 || *bpw > 16)
        detail::bad_spec(text, ::vqlib::detail::concat("bits per weight \"", config, "\""), "a number in (0, 16], e.g. 3.25");
    PvqConfig c;
    try {
        c = best ? pvq_presets::best(dim, *bpw) : pvq_presets::paper(dim, *bpw);
    } catch (const invalid_argument& e) {
        detail::bad_spec(text, e.what(), "a rate with bits left for the shape");
    }
    MethodSpec spec;
    spec.description = "PVQ " + c.name;
    spec.work_per_weight = 6;
    detail::set_recipe(
        spec, [c](const MatrixXf& W, const MatrixXd& H) { return pvq(W, H, c); },
        [c](const MatrixXd& H) { return pvq_prepare_hessian(H, c); },
        [c](const MatrixXf& W, const MatrixXd& H, const PvqHessian& p) { return pvq(W, H, p, c); });
    return spec;
}

}  // namespace vqlib::quantize
