#include "methods_common.hpp"

namespace vqlib::lm {

const std::vector<Method>& methods() {
    static const std::vector<Method> all = [] {
        std::vector<Method> out;
        add_gptq_methods(out);
        add_gptvq_methods(out);
        add_vptq_methods(out);
        add_pvq_methods(out);
        return out;
    }();
    return all;
}

const Method& find_method(const std::string& name) {
    std::string known;
    for (const Method& m : methods()) {
        if (m.name == name) return m;
        known += (known.empty() ? "" : ", ") + m.name;
    }
    throw invalid_argument(vqlib::detail::concat("method \"", name, "\": expected one of ", known));
}

}  // namespace vqlib::lm
