// PVQ for LLMs: configuration (gain designs, incoherence), layer, result, recipe and presets.
#include "results.hpp"

#include <vqlib/pvq.hpp>

namespace vqlib::python {

void register_pvq(py::module_& m) {
    using Layer = PvqLayer<unsigned __int128>;
    using Result = PvqResult<unsigned __int128>;

    py::enum_<ShapeSearch>(m, "ShapeSearch")
        .value("greedy", ShapeSearch::greedy)
        .value("greedy_swap", ShapeSearch::greedy_swap)
        .value("metric_swap", ShapeSearch::metric_swap);
    py::enum_<GainMetric>(m, "GainMetric")
        .value("euclidean", GainMetric::euclidean)
        .value("hessian", GainMetric::hessian)
        .value("conditional", GainMetric::conditional);
    py::enum_<PvqIndexPacking>(m, "PvqIndexPacking")
        .value("fixed_width", PvqIndexPacking::fixed_width)
        .value("mixed_radix", PvqIndexPacking::mixed_radix);
    py::enum_<transform::OddFactorPolicy>(m, "OddFactorPolicy")
        .value("hadamard_only", transform::OddFactorPolicy::hadamard_only)
        .value("hartley_fallback", transform::OddFactorPolicy::hartley_fallback);
    {
        py::class_<PvqOptions> c(m, "PvqOptions", "Group dimension, pulses, searches.");
        def_fields_init<PvqOptions>(c, "PvqOptions");
        field(c, "dim", &PvqOptions::dim);
        field(c, "pulses", &PvqOptions::pulses);
        field(c, "search", &PvqOptions::search);
        field(c, "gain_metric", &PvqOptions::gain_metric);
        field(c, "norm_storage", &PvqOptions::norm_storage);
        field(c, "max_swap_passes", &PvqOptions::max_swap_passes);
        def_repr<PvqOptions>(c, "PvqOptions");
    }
    {
        py::class_<BetaLloydMaxGain> c(m, "BetaLloydMaxGain", "Lloyd-Max gains for the Beta law.");
        def_fields_init<BetaLloydMaxGain>(c, "BetaLloydMaxGain");
        field(c, "gain_bits", &BetaLloydMaxGain::gain_bits);
        field(c, "max_iterations", &BetaLloydMaxGain::max_iterations);
        field(c, "tolerance", &BetaLloydMaxGain::tolerance);
        def_repr<BetaLloydMaxGain>(c, "BetaLloydMaxGain");
    }
    {
        py::class_<BetaQuantileGain> c(m, "BetaQuantileGain", "Quantiles of the Beta law.");
        def_fields_init<BetaQuantileGain>(c, "BetaQuantileGain");
        field(c, "gain_bits", &BetaQuantileGain::gain_bits);
        def_repr<BetaQuantileGain>(c, "BetaQuantileGain");
    }
    {
        py::class_<LogUniformGain> c(m, "LogUniformGain", "Log-uniform levels in [lo, hi].");
        def_fields_init<LogUniformGain>(c, "LogUniformGain");
        field(c, "gain_bits", &LogUniformGain::gain_bits);
        field(c, "lo", &LogUniformGain::lo);
        field(c, "hi", &LogUniformGain::hi);
        def_repr<LogUniformGain>(c, "LogUniformGain");
    }
    {
        using transform::IncoherenceOptions;
        py::class_<IncoherenceOptions> c(m, "IncoherenceOptions", "Randomized Hadamard rotations.");
        def_fields_init<IncoherenceOptions>(c, "IncoherenceOptions");
        field(c, "seed", &IncoherenceOptions::seed);
        field(c, "rotate_inputs", &IncoherenceOptions::rotate_inputs);
        field(c, "rotate_outputs", &IncoherenceOptions::rotate_outputs);
        field(c, "odd_factor", &IncoherenceOptions::odd_factor);
        def_repr<IncoherenceOptions>(c, "IncoherenceOptions");
    }
    {
        py::class_<PvqConfig> c(m, "PvqConfig", "PVQ's configuration (pvq.hpp).");
        def_fields_init<PvqConfig>(c, "PvqConfig");
        field(c, "name", &PvqConfig::name);
        field(c, "pvq", &PvqConfig::pvq);
        ref_field(c, "gain", &PvqConfig::gain, "BetaLloydMaxGain, BetaQuantileGain or LogUniformGain");
        ref_field(c, "incoherence", &PvqConfig::incoherence, "IncoherenceOptions, or None");
        field(c, "update", &PvqConfig::update);
        field(c, "loss", &PvqConfig::loss);
        field(c, "packing", &PvqConfig::packing);
        field(c, "groups_per_chunk", &PvqConfig::groups_per_chunk);
        field(c, "hessian", &PvqConfig::hessian);
        field(c, "solver", &PvqConfig::solver);
        def_repr<PvqConfig>(c, "PvqConfig");
    }
    {
        py::class_<Layer> c(m, "PvqLayer", "A PVQ layer: shape indices, gains, row norms.");
        def_layer_core<Layer>(c);
        c.def_readonly("dim", &Layer::dim)
            .def_readonly("pulses", &Layer::pulses)
            .def_property_readonly("gain_codes", [](py::handle self) {
                return view_of(self.cast<const Layer&>().gain_codes, self);
            })
            .def_property_readonly("gain_levels", [](py::handle self) {
                return view_of(self.cast<const Layer&>().gains.levels, self);
            })
            .def_property_readonly("row_norms", [](py::handle self) {
                return view_of(self.cast<const Layer&>().row_norms, self);
            })
            .def_readonly("perm", &Layer::perm)
            .def("packed_indices", [](const Layer& l) {
                const auto bytes = l.packed_indices();
                return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            }, "The shape indices as stored (bytes).");
    }
    {
        py::class_<Result> c(m, "PvqResult", "PVQ's result.");
        def_result_core<Result>(c);
    }
    def_recipe<PvqConfig>(
        m, "pvq", [](const auto& W, const auto& H, const PvqConfig& c) { return pvq(W, H, c); },
        "PVQ on W (R x C) with the undamped Hessian H (C x C).");

    auto presets = m.def_submodule("pvq_presets", "PVQ presets: (dim, bits_per_weight), as in C++.");
    presets.def("make", &pvq_presets::make, py::arg("dim"), py::arg("bits_per_weight"),
                py::arg("gain_bits") = 8);
    presets.def("paper", py::overload_cast<Index, double>(&pvq_presets::paper), py::arg("dim"),
                py::arg("bits_per_weight"));
    presets.def("paper", py::overload_cast<double>(&pvq_presets::paper),
                py::arg("bits_per_weight") = 3.25);
    presets.def("best", py::overload_cast<Index, double>(&pvq_presets::best), py::arg("dim"),
                py::arg("bits_per_weight"));
    presets.def("best", py::overload_cast<double>(&pvq_presets::best),
                py::arg("bits_per_weight") = 3.25);
    presets.def("pulses_for", &pvq_presets::pulses_for, py::arg("dim"), py::arg("index_bits"));
}

}  // namespace vqlib::python
