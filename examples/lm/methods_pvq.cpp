#include "methods_common.hpp"

#include <vqlib/pvq.hpp>

namespace vqlib::lm {

void add_pvq_methods(std::vector<Method>& out) {
    for (double bpw : {2.25, 3.25, 4.25}) {
        for (bool best : {false, true}) {
            const PvqConfig config = best ? pvq_presets::best(32, bpw) : pvq_presets::paper(32, bpw);
            const std::string rate = bpw == 2.25 ? "2.25" : bpw == 3.25 ? "3.25" : "4.25";
            out.push_back({"pvq-" + rate + (best ? "-best" : "-paper"), "pvq", config.name,
                           [config](const MatrixXf& W, const MatrixXd& H) { return outcome(pvq(W, H, config)); }});
        }
    }
}

}  // namespace vqlib::lm
