#include "methods_common.hpp"

#include <vqlib/pvq.hpp>

#include <array>
#include <functional>
#include <utility>

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
    // Rates graded by depth (later blocks get more bits: on web-char quantizing block 3 alone costs
    // 40x the perplexity of block 0, docs/lm.md), at the average rate of pvq-d64-2.094-best (and
    // one at 3.094): (D, bits per weight) per block; D = 64 holds up to 2.125 bpw (a 128-bit
    // shape index).
    struct Graded {
        const char* name;
        std::array<std::pair<Index, double>, 4> blocks;
    };
    const Graded graded_rows[] = {
        {"pvq-graded-a-2.094-best", {{{64, 1.75}, {64, 2.0}, {64, 2.125}, {32, 2.5}}}},
        {"pvq-graded-b-2.094-best", {{{64, 1.625}, {64, 1.875}, {32, 2.25}, {32, 2.625}}}},
        {"pvq-graded-c-2.094-best", {{{64, 1.875}, {64, 1.875}, {64, 2.125}, {32, 2.5}}}},
        {"pvq-graded-d-2.094-best", {{{64, 1.75}, {64, 2.0}, {64, 2.125}, {32, 2.59375}}}},
        {"pvq-graded-e-2.094-best", {{{64, 1.75}, {64, 2.0}, {32, 2.21875}, {32, 2.5}}}},
        {"pvq-graded-f-2.094-best", {{{64, 1.796875}, {64, 2.0}, {64, 2.125}, {32, 2.53125}}}},
        {"pvq-graded-3.094-best", {{{32, 2.75}, {32, 3.0}, {32, 3.125}, {32, 3.5}}}},
    };
    for (const Graded& g : graded_rows) {
        using Run = std::function<LinearOutcome(const MatrixXf&, const MatrixXd&)>;
        std::vector<Run> per_block;
        std::string what = "pvq-best graded by block:";
        for (const auto& [dim, bpw] : g.blocks) {
            const PvqConfig config = pvq_presets::best(dim, bpw);
            per_block.push_back(direct([config](const MatrixXf& W, const MatrixXd& H) { return pvq(W, H, config); }));
            what += " " + config.name;
        }
        out.push_back(graded(g.name, "pvq", what, per_block));
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
