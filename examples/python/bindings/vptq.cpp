// VPTQ: configuration, layer, result, recipe and presets.
#include "results.hpp"

#include <vqlib/vptq.hpp>

namespace vqlib::python {

void register_vptq(py::module_& m) {
    {
        py::class_<VptqConfig> c(m, "VptqConfig", "VPTQ's configuration (vptq.hpp).");
        def_fields_init<VptqConfig>(c, "VptqConfig");
        field(c, "name", &VptqConfig::name);
        field(c, "vector_len", &VptqConfig::vector_len);
        field(c, "num_centroids", &VptqConfig::num_centroids);
        field(c, "num_res_centroids", &VptqConfig::num_res_centroids);
        field(c, "outlier_percent", &VptqConfig::outlier_percent);
        field(c, "outlier_vector_len", &VptqConfig::outlier_vector_len);
        field(c, "outlier_centroids", &VptqConfig::outlier_centroids);
        field(c, "group_num", &VptqConfig::group_num);
        field(c, "enable_perm", &VptqConfig::enable_perm);
        field(c, "enable_norm", &VptqConfig::enable_norm);
        field(c, "kmeans", &VptqConfig::kmeans);
        field(c, "hessian", &VptqConfig::hessian);
        field(c, "solver", &VptqConfig::solver);
        field(c, "loss", &VptqConfig::loss);
        def_repr<VptqConfig>(c, "VptqConfig");
    }
    {
        py::class_<VptqLayout> c(m, "VptqLayout");
        c.def_readonly("out_features", &VptqLayout::out_features)
            .def_readonly("in_features", &VptqLayout::in_features)
            .def_readonly("vector_len", &VptqLayout::vector_len)
            .def_readonly("num_centroids", &VptqLayout::num_centroids)
            .def_readonly("num_res_centroids", &VptqLayout::num_res_centroids)
            .def_readonly("outlier_vector_len", &VptqLayout::outlier_vector_len)
            .def_readonly("outlier_centroids", &VptqLayout::outlier_centroids)
            .def_readonly("outlier_size", &VptqLayout::outlier_size)
            .def_readonly("group_num", &VptqLayout::group_num)
            .def_readonly("group_size", &VptqLayout::group_size)
            .def_readonly("enable_norm", &VptqLayout::enable_norm)
            .def_readonly("enable_perm", &VptqLayout::enable_perm);
    }
    {
        py::class_<VptqLayer> c(m, "VptqLayer", "A VPTQ layer: codebooks, indices, perm, norm.");
        def_layer_core<VptqLayer>(c);
        c.def_readonly("layout", &VptqLayer::layout);
        def_view<VptqLayer>(c, "centroids", &VptqLayer::centroids);
        def_view<VptqLayer>(c, "res_centroids", &VptqLayer::res_centroids);
        def_view<VptqLayer>(c, "outlier_centroids", &VptqLayer::outlier_centroids);
        def_view<VptqLayer>(c, "indices", &VptqLayer::indices);
        def_view<VptqLayer>(c, "res_indices", &VptqLayer::res_indices);
        def_view<VptqLayer>(c, "outlier_indices", &VptqLayer::outlier_indices);
        c.def_readonly("perm", &VptqLayer::perm);
        def_view<VptqLayer>(c, "weight_scale", &VptqLayer::weight_scale);
        def_view<VptqLayer>(c, "weight_bias", &VptqLayer::weight_bias);
    }
    {
        py::class_<VptqResult> c(m, "VptqResult", "VPTQ's result (+ first-pass loss, time split).");
        def_result_core<VptqResult>(c);
        c.def_readonly("proxy_loss_first_pass", &VptqResult::proxy_loss_first_pass)
            .def_readonly("seconds_kmeans", &VptqResult::seconds_kmeans)
            .def_readonly("seconds_solve", &VptqResult::seconds_solve);
    }
    def_recipe<VptqConfig>(
        m, "vptq", [](const auto& W, const auto& H, const VptqConfig& c) { return vptq(W, H, c); },
        "VPTQ on W (R x C) with the undamped Hessian H (C x C).");

    auto presets = m.def_submodule(
        "vptq_presets", "VPTQ presets: rate(v, bits, residual bits), make(v, k, ...), by name.");
    presets.def("make", &vptq_presets::make, py::arg("v"), py::arg("k"), py::arg("k_res") = 0,
                py::arg("outlier_percent") = 0.0, py::arg("v0") = 4, py::arg("k0") = 8192,
                py::arg("group_num") = 1);
    presets.def("rate", &vptq_presets::rate, py::arg("v"), py::arg("bits_per_weight"),
                py::arg("residual_bits_per_weight") = 0.0);
    presets.def("v8_k65536", &vptq_presets::v8_k65536);
    presets.def("v8_k65536_res256", &vptq_presets::v8_k65536_res256);
    presets.def("v6_k4096", &vptq_presets::v6_k4096);
    presets.def("v12_k4096_res4096_outliers", &vptq_presets::v12_k4096_res4096_outliers);
    presets.def("v4_k256", &vptq_presets::v4_k256);
    presets.def("v4_k256_res16", &vptq_presets::v4_k256_res16);
    presets.def("v2_k64", &vptq_presets::v2_k64);
}

}  // namespace vqlib::python
