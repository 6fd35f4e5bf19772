#include "methods_common.hpp"

#include <vqlib/gptvq.hpp>

namespace vqlib::lm {

void add_gptvq_methods(std::vector<Method>& out) {
    struct Row {
        Index dim;
        double bpv;
        const char* label;
    };
    const Row rows[] = {{1, 2.125, "1d-2.125"}, {2, 2.125, "2d-2.125"}, {2, 2.25, "2d-2.25"},
                        {4, 2.125, "4d-2.125"}, {1, 3.125, "1d-3.125"}, {2, 3.125, "2d-3.125"},
                        {1, 4.125, "1d-4.125"}, {2, 4.125, "2d-4.125"}};
    // Ablations of the best choices at 2D 2.125 (each under incoherence processing).
    {
        struct Variant {
            const char* suffix;
            const char* what;
            void (*apply)(GptvqConfig&);
        };
        const Variant variants[] = {
            {"-noupdate", "no codebook update", [](GptvqConfig& c) { c.codebook_update.method = CodebookUpdateMethod::none; }},
            {"-diagonal", "diagonal error update", [](GptvqConfig& c) { c.update = ErrorUpdateKind::diagonal; }},
            {"-invu", "lookups weighted by 1/U_jj", [](GptvqConfig& c) { c.vq.lookup = LookupMetric::inverse_u; }},
        };
        for (const Variant& v : variants) {
            GptvqConfig config = gptvq_presets::paper(2, 2.125, true);
            v.apply(config);
            out.push_back({std::string("gptvq-2d-2.125-best-had") + v.suffix, "gptvq",
                           config.name + ", Hadamard incoherence, " + v.what,
                           rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return gptvq(Wr, Hr, config); })});
        }
    }
    for (const Row& r : rows) {
        for (bool best : {false, true}) {
            const GptvqConfig config = gptvq_presets::paper(r.dim, r.bpv, best);
            out.push_back({std::string("gptvq-") + r.label + (best ? "-best" : "-ref"), "gptvq", config.name,
                           direct([config](const MatrixXf& W, const MatrixXd& H) { return gptvq(W, H, config); })});
            if (!best) continue;
            out.push_back({std::string("gptvq-") + r.label + "-best-had", "gptvq", config.name + ", Hadamard incoherence",
                           rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return gptvq(Wr, Hr, config); })});
        }
    }
}

}  // namespace vqlib::lm
