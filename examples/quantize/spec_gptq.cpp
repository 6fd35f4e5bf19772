#include "spec_common.hpp"

#include <vqlib/gptq.hpp>

namespace vqlib::quantize {

// w<bits>[g<group>][-act][-sym]
MethodSpec parse_gptq(const std::string& text, std::string_view config) {
    const std::string_view whole = config;
    bool act = false, sym = false;
    for (;;) {
        if (config.ends_with("-act")) act = true, config.remove_suffix(4);
        else if (config.ends_with("-sym")) sym = true, config.remove_suffix(4);
        else break;
    }
    if (!config.starts_with("w"))
        detail::bad_spec(text, ::vqlib::detail::concat("configuration \"", whole, "\""),
                         "w<bits>[g<group size>][-act][-sym], e.g. w4g128 or w3-act");
    config.remove_prefix(1);
    const auto g = config.find('g');
    const auto bits = detail::parse_integer(config.substr(0, g));
    if (!bits || *bits < 2 || *bits > 8)
        detail::bad_spec(text, ::vqlib::detail::concat("bits \"", config.substr(0, g), "\""), "an integer in [2, 8]");
    long group = 0;
    if (g != std::string_view::npos) {
        const auto parsed = detail::parse_integer(config.substr(g + 1));
        if (!parsed || *parsed < 1)
            detail::bad_spec(text, ::vqlib::detail::concat("group size \"", config.substr(g + 1), "\""),
                             "a positive integer (omit g for one group per row)");
        group = *parsed;
    }
    GptqConfig<IntGrid> c{IntGrid(static_cast<int>(*bits), sym, {}, ScaleStorage::fp16)};
    c.groups.size = group;
    c.hessian.act_order = act;
    c.groups.static_groups = act;  // the group of each column stays implicit (no g_idx)
    MethodSpec spec;
    spec.description = ::vqlib::detail::concat("GPTQ INT", *bits, sym ? " symmetric" : " asymmetric",
                                               group > 0 ? ::vqlib::detail::concat(", groups of ", group) : ", per row",
                                               act ? ", act-order with static groups" : "", ", fp16 scales");
    spec.work_per_weight = 1;
    detail::set_recipe(
        spec, [c](const MatrixXf& W, const MatrixXd& H) { return gptq(W, H, c); },
        [c](const MatrixXd& H) { return prepare_hessian(H, c.hessian); },
        [c](const MatrixXf& W, const MatrixXd&, const PreparedHessian& p) { return gptq(W, p, c); });
    return spec;
}

}  // namespace vqlib::quantize
