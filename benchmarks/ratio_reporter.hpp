#pragma once
// A console reporter that also prints, at the end, each benchmark's time as a ratio to its
// baseline run in the same process. Benchmarks name their baseline with a label
// "baseline=<benchmark name>". Ratios survive a noisy machine far better than absolute times.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace vqlib::bench {

class RatioReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& run : runs) {
            // Repeated benchmarks: the median of the repetitions (then the single runs are skipped).
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if ((run.run_type != Run::RT_Iteration && !median) || run.error_occurred) continue;
            // A benchmark with arguments is named "function/args"; a baseline label may name
            // either form.
            const std::string function = run.run_name.function_name;
            const std::string name =
                run.run_name.args.empty() ? function : function + "/" + run.run_name.args;
            if (!median && medians_.count(name)) continue;
            if (median) medians_.insert(name);
            const bool seen = times_.count(name) != 0;
            times_[name] = run.GetAdjustedRealTime();
            if (!times_.count(function) || function == name) times_[function] = times_[name];
            if (!seen) order_.push_back(name);
            const std::string prefix = "baseline=";
            if (run.report_label.rfind(prefix, 0) == 0) baseline_[name] = run.report_label.substr(prefix.size());
        }
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        if (baseline_.empty()) return;
        std::printf("\nRatios to the baseline of the same run (time / baseline time):\n");
        for (const auto& name : order_) {
            auto b = baseline_.find(name);
            if (b == baseline_.end()) continue;
            auto t = times_.find(b->second);
            if (t == times_.end()) continue;
            std::printf("  %-48s / %-40s = %6.2fx\n", name.c_str(), b->second.c_str(),
                        times_[name] / t->second);
        }
    }

private:
    std::map<std::string, double> times_;
    std::map<std::string, std::string> baseline_;
    std::set<std::string> medians_;
    std::vector<std::string> order_;
};

/// main() for benchmark files that use RatioReporter.
inline int run_with_ratios(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}

}  // namespace vqlib::bench
