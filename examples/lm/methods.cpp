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

const std::vector<EndToEndPreset>& end_to_end_presets() {
    // Chosen by test perplexity on web-char (docs/lm.md has the measurements).
    static const std::vector<EndToEndPreset> table = {
        {"gptq", 2.125, "gptq-w2g128-act-had", "gptq_w2_g128"},
        {"gptq", 2.25, "gptq-w2g64-act-had", "gptq_w2_g64_sym"},
        {"gptq", 3.125, "gptq-graded-w2334g128-act-had", nullptr},
        {"gptq", 4.125, "gptq-w4g128-act-had", "gptq_w4_g128"},
        {"gptvq", 2.125, "gptvq-4d-2.125-best-act-had", "gptvq_4d_2b_gs65536"},
        {"gptvq", 2.25, "gptvq-2d-2.25-best-scaled-act-had", nullptr},
        {"gptvq", 3.125, "gptvq-2d-3.125-best-had", "gptvq_2d_3b_gs8192"},
        {"gptvq", 4.125, "gptvq-2d-4.125-best-had", nullptr},
        {"vptq", 2.125, "vptq-v4k256-had", nullptr},
        {"vptq", 3.125, "vptq-v2k64-had", nullptr},
        {"vptq", 4.125, "vptq-v2k256-had", nullptr},
        {"pvq", 2.125, "pvq-graded-a-2.094-best", nullptr},
        {"pvq", 2.25, "pvq-2.25-best", nullptr},
        {"pvq", 3.125, "pvq-graded-3.094-best", nullptr},
        {"pvq", 4.125, "pvq-4.125-best", nullptr},
    };
    return table;
}

}  // namespace vqlib::lm
