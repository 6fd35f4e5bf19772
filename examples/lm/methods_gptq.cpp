#include "methods_common.hpp"

#include <vqlib/gptq.hpp>

#include <functional>

namespace vqlib::lm {

void add_gptq_methods(std::vector<Method>& out) {
    {
        // INT2 in groups of 64 (2.28 bpw), act-order with static groups, incoherence processing.
        GptqConfig<IntGrid> config{IntGrid(2, /*symmetric=*/false, {}, ScaleStorage::fp16)};
        config.groups.size = 64;
        config.hessian.act_order = true;
        config.groups.static_groups = true;
        out.push_back({"gptq-w2g64-act-had", "gptq",
                       "INT2 asymmetric, groups of 64, act-order with static groups, randomized Hadamard incoherence",
                       rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return gptq(Wr, Hr, config); })});
    }
    {
        // Bits graded by depth (docs/lm.md, "Rates graded by depth"): INT2 / INT3 / INT3 / INT4 per
        // block in groups of 128, act-order with static groups and incoherence: the rate of
        // gptq-w3g128-act-had on average.
        using Run = std::function<LinearOutcome(const MatrixXf&, const MatrixXd&)>;
        std::vector<Run> per_block;
        for (int bits : {2, 3, 3, 4}) {
            GptqConfig<IntGrid> config{IntGrid(bits, /*symmetric=*/false, {}, ScaleStorage::fp16)};
            config.groups.size = 128;
            config.hessian.act_order = true;
            config.groups.static_groups = true;
            per_block.push_back(rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return gptq(Wr, Hr, config); }));
        }
        out.push_back(graded("gptq-graded-w2334g128-act-had", "gptq",
                             "INT2 / INT3 / INT3 / INT4 by block, groups of 128, act-order with static groups, "
                             "randomized Hadamard incoherence",
                             per_block));
    }
    for (int bits : {2, 3, 4}) {
        for (bool act : {false, true}) {
            // fp16 scales and integer zero points, as GPTQ's packed checkpoints store them.
            GptqConfig<IntGrid> config{IntGrid(bits, /*symmetric=*/false, {}, ScaleStorage::fp16)};
            config.groups.size = 128;
            config.hessian.act_order = act;
            config.groups.static_groups = act;  // the group of each column stays implicit
            const std::string name = "gptq-w" + std::to_string(bits) + "g128" + (act ? "-act" : "");
            out.push_back({name, "gptq",
                           "INT" + std::to_string(bits) + " asymmetric, groups of 128" +
                               (act ? ", act-order with static groups" : ""),
                           direct([config](const MatrixXf& W, const MatrixXd& H) { return gptq(W, H, config); })});
            if (!act) continue;
            out.push_back({name + "-had", "gptq",
                           "INT" + std::to_string(bits) +
                               " asymmetric, groups of 128, act-order with static groups, randomized Hadamard "
                               "incoherence",
                           rotated([config](const MatrixXf& Wr, const MatrixXd& Hr) { return gptq(Wr, Hr, config); })});
        }
    }
}

}  // namespace vqlib::lm
