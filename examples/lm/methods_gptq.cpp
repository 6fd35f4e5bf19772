#include "methods_common.hpp"

#include <vqlib/gptq.hpp>

namespace vqlib::lm {

void add_gptq_methods(std::vector<Method>& out) {
    for (int bits : {2, 3, 4}) {
        for (bool act : {false, true}) {
            GptqConfig<IntGrid> config{IntGrid(bits, /*symmetric=*/false)};
            config.groups.size = 128;
            config.hessian.act_order = act;
            config.groups.static_groups = act;  // the group of each column stays implicit
            const std::string name = "gptq-w" + std::to_string(bits) + "g128" + (act ? "-act" : "");
            out.push_back({name, "gptq",
                           "INT" + std::to_string(bits) + " asymmetric, groups of 128" +
                               (act ? ", act-order with static groups" : ""),
                           [config](const MatrixXf& W, const MatrixXd& H) { return outcome(gptq(W, H, config)); }});
        }
    }
}

}  // namespace vqlib::lm
