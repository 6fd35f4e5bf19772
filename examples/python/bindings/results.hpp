#pragma once
// The result core every recipe returns (solver/result.hpp), bound once for every result type.
#include "common.hpp"

#include <vqlib/solver/result.hpp>

namespace vqlib::python {

/// Adds QuantizationResult's fields to a result class: layer (a reference into the result), Q
/// (a read-only view), proxy_loss, bits_per_weight, seconds, stats, damping, attempts, update.
template <class Result, class Class>
void def_result_core(Class& cls) {
    cls.def_property_readonly(
           "layer", [](const Result& r) -> const decltype(r.layer)& { return r.layer; },
           py::return_value_policy::reference_internal, "the quantized layer in its storage format")
        .def_property_readonly(
            "Q", [](py::handle self) { return view_of(self.cast<const Result&>().Q, self); },
            "the dequantized weight (R x C, float32, a read-only view of the result)")
        .def_readonly("proxy_loss", &Result::proxy_loss, "tr((W - Q) H (W - Q)^T), undamped H")
        .def_readonly("bits_per_weight", &Result::bits_per_weight)
        .def_readonly("seconds", &Result::seconds, "wall-clock seconds of the call")
        .def_readonly("stats", &Result::stats)
        .def_readonly("percdamp_used", &Result::percdamp_used)
        .def_readonly("cholesky_attempts", &Result::cholesky_attempts)
        .def_readonly("update", &Result::update);
}

/// Adds a layer's common methods: shape, dequantize() (a new float32 array), bits_per_weight().
template <class Layer, class Class>
void def_layer_core(Class& cls) {
    // rows/cols are members of some layers and accessors of others.
    constexpr auto rows = [](const Layer& l) -> Index {
        if constexpr (requires { l.rows(); }) return l.rows(); else return l.rows;
    };
    constexpr auto cols = [](const Layer& l) -> Index {
        if constexpr (requires { l.cols(); }) return l.cols(); else return l.cols;
    };
    cls.def_property_readonly("rows", rows)
        .def_property_readonly("cols", cols)
        .def_property_readonly("shape", [rows, cols](const Layer& l) { return py::make_tuple(rows(l), cols(l)); })
        .def(
            "dequantize",
            [](const Layer& l) {
                MatrixXf w;
                {
                    py::gil_scoped_release release;
                    w = l.dequantize();
                }
                return to_numpy(std::move(w));
            },
            "The dequantized weight (rows x cols, float32).")
        .def("bits_per_weight", [](const Layer& l) { return l.bits().per_weight(); },
             "Everything the layer stores, per weight.");
}

/// A read-only property viewing a matrix or vector member of T (no copy; keeps the owner alive).
template <class T, class Class, class Member>
Class& def_view(Class& cls, const char* name, Member T::*member, const char* doc = "") {
    cls.def_property_readonly(
        name, [member](py::handle self) { return view_of(self.cast<const T&>().*member, self); },
        doc);
    return cls;
}

/// Binds a recipe run(W, H, config): W converted once if needed, H used in place in its own
/// dtype and order, the GIL released while it runs.
template <class Config, class Run>
void def_recipe(py::module_& m, const char* name, Run run, const char* doc) {
    m.def(
        name,
        [run](py::handle W, py::handle H, const Config& config) {
            const FloatMatrix w(W, "W");
            return visit_matrix(H, "H", [&](const auto& h) {
                py::gil_scoped_release release;
                return run(w.map(), h, config);
            });
        },
        py::arg("W"), py::arg("H"), py::arg("config"), doc);
}

}  // namespace vqlib::python
