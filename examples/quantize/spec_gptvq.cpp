#include "spec_common.hpp"

#include <vqlib/gptvq.hpp>

namespace vqlib::quantize {

namespace {
/// "@best" / "@ref" (or none: best) at the end of `config`.
bool take_gptvq_preset(const std::string& text, std::string_view& config) {
    const auto at = config.rfind('@');
    if (at == std::string_view::npos) return true;
    const std::string_view preset = config.substr(at + 1);
    config = config.substr(0, at);
    if (preset == "best") return true;
    if (preset == "ref") return false;
    detail::bad_spec(text, ::vqlib::detail::concat("preset \"@", preset, "\""), "@best or @ref");
}
}  // namespace

// <D>d-<bits per value>[@best|@ref]
MethodSpec parse_gptvq(const std::string& text, std::string_view config) {
    const bool best = take_gptvq_preset(text, config);
    const auto d = config.find("d-");
    const auto dim = detail::parse_integer(config.substr(0, d));
    const auto bpv = d == std::string_view::npos ? std::nullopt : detail::parse_number(config.substr(d + 2));
    if (!dim || !bpv)
        detail::bad_spec(text, ::vqlib::detail::concat("configuration \"", config, "\""),
                         "<D>d-<bits per value>[@best|@ref], e.g. 2d-2.125 (1D/2D at 2.125, 2.25, 3.125, 4.125; "
                         "4D at 2.125, 2.25)");
    GptvqConfig c;
    try {
        c = gptvq_presets::paper(*dim, *bpv, best);
    } catch (const invalid_argument& e) {
        detail::bad_spec(text, e.what(), "one of the paper's configurations");
    }
    MethodSpec spec;
    spec.description = "GPTVQ " + c.name;
    spec.work_per_weight = 4.0 * static_cast<double>(*dim);
    detail::set_recipe(
        spec, [c](const MatrixXf& W, const MatrixXd& H) { return gptvq(W, H, c); },
        [c](const MatrixXd& H) { return gptvq_prepare_hessian(H, c); },
        [c](const MatrixXf& W, const MatrixXd& H, const PreparedHessian& p) { return gptvq(W, H, p, c); });
    return spec;
}

}  // namespace vqlib::quantize
