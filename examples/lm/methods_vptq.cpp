#include "methods_common.hpp"

#include <vqlib/vptq.hpp>

namespace vqlib::lm {

void add_vptq_methods(std::vector<Method>& out) {
    struct Row {
        const char* name;
        VptqConfig config;
    };
    const Row rows[] = {{"vptq-v4k256", vptq_presets::v4_k256()},
                        {"vptq-v4k256-res16", vptq_presets::v4_k256_res16()},
                        {"vptq-v6k4096", vptq_presets::v6_k4096()},
                        {"vptq-v2k64", vptq_presets::v2_k64()},
                        {"vptq-v4k4096", vptq_presets::make(4, 4096)},
                        {"vptq-v2k256", vptq_presets::make(2, 256)}};
    for (const Row& r : rows) {
        const VptqConfig config = r.config;
        out.push_back({r.name, "vptq", config.name,
                       direct([config](const MatrixXf& W, const MatrixXd& H) { return vptq(W, H, config); })});
        out.push_back({std::string(r.name) + "-had", "vptq", config.name + ", Hadamard incoherence",
                       rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return vptq(Wr, Hr, config); })});
    }
}

}  // namespace vqlib::lm
