#include "methods_common.hpp"

#include <vqlib/gptvq.hpp>

namespace vqlib::lm {

namespace {

Method gptvq_method(std::string name, const GptvqConfig& config) {
    return {std::move(name), "gptvq", config.name,
            direct([config](const MatrixXf& W, const MatrixXd& H) { return gptvq(W, H, config); })};
}

/// The same configuration under incoherence processing.
Method gptvq_rotated_method(std::string name, const GptvqConfig& config) {
    return {std::move(name), "gptvq", config.name + ", Hadamard incoherence",
            rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return gptvq(Wr, Hr, config); })};
}

/// `name` (the configuration as is) and `name-had` (under incoherence processing).
void add_with_rotated(std::vector<Method>& out, const std::string& name, const GptvqConfig& config) {
    out.push_back(gptvq_method(name, config));
    out.push_back(gptvq_rotated_method(name + "-had", config));
}

}  // namespace

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
            {"-act-invu", "act-order, lookups weighted by 1/U_jj", [](GptvqConfig& c) {
                 c.hessian.act_order = true;
                 c.vq.lookup = LookupMetric::inverse_u;
             }},
        };
        for (const Variant& v : variants) {
            GptvqConfig config = gptvq_presets::paper(2, 2.125, true);
            v.apply(config);
            out.push_back({std::string("gptvq-2d-2.125-best-had") + v.suffix, "gptvq",
                           config.name + ", Hadamard incoherence, " + v.what,
                           rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return gptvq(Wr, Hr, config); })});
        }
    }
    // Act-order over whole vectors and the paper's scaled configurations (blockwise normalization
    // inside the solve, tiles twice as large), each alone and under incoherence processing.
    {
        struct Extra {
            const char* label;
            Index dim;
            double bpv;
            bool scaled;
            bool act;
        };
        const Extra extras[] = {
            {"2d-2.125-best-act", 2, 2.125, false, true},     {"2d-2.125-best-scaled", 2, 2.125, true, false},
            {"2d-2.125-best-scaled-act", 2, 2.125, true, true}, {"4d-2.125-best-act", 4, 2.125, false, true},
            {"2d-2.25-best-scaled-act", 2, 2.25, true, true},   {"2d-3.125-best-act", 2, 3.125, false, true},
            {"2d-3.125-best-scaled-act", 2, 3.125, true, true},
        };
        for (const Extra& e : extras) {
            GptvqConfig config = e.scaled ? gptvq_presets::paper_scaled(e.dim, e.bpv) : gptvq_presets::paper(e.dim, e.bpv);
            config.hessian.act_order = e.act;
            if (e.act) config.name += ", act-order";
            add_with_rotated(out, std::string("gptvq-") + e.label, config);
        }
    }
    // SVD codebook compression (1-D, App. G): twice the codebooks at the INT8 presets' rate.
    for (double bpv : {2.125, 3.125}) {
        const GptvqConfig config = gptvq_presets::paper_svd(bpv);
        add_with_rotated(out, std::string("gptvq-1d-") + (bpv == 2.125 ? "2.125" : "3.125") + "-best-svd", config);
    }
    for (const Row& r : rows) {
        for (bool best : {false, true}) {
            const GptvqConfig config = gptvq_presets::paper(r.dim, r.bpv, best);
            if (best)
                add_with_rotated(out, std::string("gptvq-") + r.label + "-best", config);
            else
                out.push_back(gptvq_method(std::string("gptvq-") + r.label + "-ref", config));
        }
    }
}

}  // namespace vqlib::lm
