#include "spec_common.hpp"

#include <vqlib/vptq.hpp>

namespace vqlib::quantize {

// v<vector length>k<centroids>[r<residual centroids>]
MethodSpec parse_vptq(const std::string& text, std::string_view config) {
    const auto k = config.find('k');
    const auto r = config.find('r');
    const auto bad = [&] {
        detail::bad_spec(text, ::vqlib::detail::concat("configuration \"", config, "\""),
                         "v<vector length>k<centroids>[r<residual centroids>], e.g. v8k65536 or v8k65536r256");
    };
    if (!config.starts_with("v") || k == std::string_view::npos || (r != std::string_view::npos && r < k)) bad();
    const auto v = detail::parse_integer(config.substr(1, k - 1));
    const auto centroids = detail::parse_integer(config.substr(k + 1, r == std::string_view::npos ? r : r - k - 1));
    const auto res = r == std::string_view::npos ? std::optional<long>(0) : detail::parse_integer(config.substr(r + 1));
    if (!v || !centroids || !res) bad();
    if (*v < 1 || *v > 32) detail::bad_spec(text, ::vqlib::detail::concat("vector length ", *v), "1 to 32");
    if (*centroids < 2 || *centroids > (1L << 24))
        detail::bad_spec(text, ::vqlib::detail::concat("centroids ", *centroids), "2 to 2^24");
    if (*res < 0 || *res == 1 || *res > (1L << 24))
        detail::bad_spec(text, ::vqlib::detail::concat("residual centroids ", *res), "2 to 2^24 (or no r)");
    const VptqConfig c = vptq_presets::make(*v, *centroids, *res);
    MethodSpec spec;
    spec.description = "VPTQ " + c.name;
    spec.work_per_weight = 2.0 + std::log2(static_cast<double>(*centroids)) * 2.0;
    detail::set_recipe(
        spec, [c](const MatrixXf& W, const MatrixXd& H) { return vptq(W, H, c); },
        [c](const MatrixXd& H) { return vptq_prepare_hessian(H, c); },
        [c](const MatrixXf& W, const MatrixXd& H, const VptqHessian& p) { return vptq(W, H, p, c); });
    if (c.enable_norm) spec.prepare = nullptr, spec.run_prepared = nullptr;  // a shared VptqHessian needs it off
    return spec;
}

}  // namespace vqlib::quantize
