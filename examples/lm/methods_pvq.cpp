#include "methods_common.hpp"

#include <vqlib/pvq.hpp>

namespace vqlib::lm {

void add_pvq_methods(std::vector<Method>& out) {
    // Lower rates, and D = 64 where its shape index fits 128 bits (up to 2.125 bpw with 8 gain bits).
    struct Row {
        Index dim;
        double bpw;
        const char* name;
    };
    const Row rows[] = {{32, 2.125, "pvq-2.125-best"}, {64, 2.125, "pvq-d64-2.125-best"},
                        {64, 2.09375, "pvq-d64-2.094-best"}, {32, 3.125, "pvq-3.125-best"},
                        {32, 4.125, "pvq-4.125-best"}};
    for (const Row& r : rows) {
        const PvqConfig config = pvq_presets::best(r.dim, r.bpw);
        out.push_back({r.name, "pvq", config.name,
                       direct([config](const MatrixXf& W, const MatrixXd& H) { return pvq(W, H, config); })});
    }
    for (double bpw : {2.25, 3.25, 4.25}) {
        for (bool best : {false, true}) {
            const PvqConfig config = best ? pvq_presets::best(32, bpw) : pvq_presets::paper(32, bpw);
            const std::string rate = bpw == 2.25 ? "2.25" : bpw == 3.25 ? "3.25" : "4.25";
            out.push_back({"pvq-" + rate + (best ? "-best" : "-paper"), "pvq", config.name,
                           direct([config](const MatrixXf& W, const MatrixXd& H) { return pvq(W, H, config); })});
        }
    }
}

}  // namespace vqlib::lm
