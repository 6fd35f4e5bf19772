// GPTQ and round-to-nearest over integer and minifloat grids.
#include "results.hpp"

#include <vqlib/gptq.hpp>

namespace vqlib::python {
namespace {

template <class G>
void bind_gptq(py::module_& m, const std::string& suffix) {
    using Config = GptqConfig<G>;
    using Result = GptqResult<G>;
    using Layer = ScalarLayer<G>;
    const std::string config_name = "Gptq" + suffix + "Config";
    const std::string layer_name = suffix + "ScalarLayer";
    const std::string result_name = "Gptq" + suffix + "Result";

    {
        py::class_<Layer> c(m, layer_name.c_str(),
                            "A scalar-quantized layer: codes, per (row, group) scale and zero.");
        def_layer_core<Layer>(c);
        c.def_readonly("grid", &Layer::grid)
            .def_readonly("group_size", &Layer::group_size)
            .def_property_readonly(
                "codes", [](py::handle self) { return view_of(self.cast<const Layer&>().codes, self); },
                "codes (rows x cols, uint16, original column order)")
            .def_property_readonly("scales", [](const Layer& l) {
                MatrixXf s(l.rows(), l.groups());
                for (Index g = 0; g < l.groups(); ++g)
                    for (Index r = 0; r < l.rows(); ++r) s(r, g) = l.param(r, g).scale;
                return to_numpy(std::move(s));
            }, "scales, rows x groups (float32, as stored)")
            .def_property_readonly("zeros", [](const Layer& l) {
                MatrixXf z(l.rows(), l.groups());
                for (Index g = 0; g < l.groups(); ++g)
                    for (Index r = 0; r < l.rows(); ++r) z(r, g) = l.param(r, g).zero;
                return to_numpy(std::move(z));
            }, "zero points, rows x groups")
            .def_property_readonly("groups", &Layer::groups)
            .def_readonly("g_idx", &Layer::g_idx, "group of each original column")
            .def_readonly("stores_g_idx", &Layer::stores_g_idx);
    }
    {
        py::class_<Config> c(m, config_name.c_str(), "GPTQ's configuration (gptq.hpp).");
        c.def(py::init([config_name](G grid, const py::kwargs& kwargs) {
                  Config value{std::move(grid)};
                  apply_kwargs(value, kwargs, config_name.c_str());
                  return value;
              }),
              py::arg("grid"));
        field(c, "grid", &Config::grid);
        field(c, "groups", &Config::groups);
        field(c, "hessian", &Config::hessian);
        field(c, "solver", &Config::solver);
        field(c, "update", &Config::update);
        field(c, "loss", &Config::loss);
        def_repr<Config>(c, config_name.c_str());
    }
    {
        py::class_<Result> c(m, result_name.c_str(), "GPTQ's result.");
        def_result_core<Result>(c);
    }

    m.def(
        "gptq",
        [](py::handle W, const PreparedHessian& prepared, const Config& config) {
            const FloatMatrix w(W, "W");
            py::gil_scoped_release release;
            return gptq(w.map(), prepared, config);
        },
        py::arg("W"), py::arg("prepared"), py::arg("config"));
    m.def(
        "gptq",
        [](py::handle W, py::handle H, const Config& config) {
            const FloatMatrix w(W, "W");
            return visit_matrix(H, "H", [&](const auto& h) {
                py::gil_scoped_release release;
                return gptq(w.map(), h, config);
            });
        },
        py::arg("W"), py::arg("H"), py::arg("config"),
        "GPTQ on W (R x C) with the undamped Hessian H (C x C), or with a PreparedHessian.");
    m.def(
        "rtn",
        [](py::handle W, const Config& config, py::handle H) {
            const FloatMatrix w(W, "W");
            if (H.is_none()) {
                py::gil_scoped_release release;
                return rtn(w.map(), config);
            }
            return visit_matrix(H, "H", [&](const auto& h) {
                py::gil_scoped_release release;
                return rtn(w.map(), h, config);
            });
        },
        py::arg("W"), py::arg("config"), py::arg("H") = py::none(),
        "Round-to-nearest on the same grids and groups (H optional: dead columns, act-order, "
        "proxy loss).");
}

}  // namespace

void register_gptq(py::module_& m) {
    {
        py::class_<MseSearch> c(m, "MseSearch", "GPTQ's shrink search of the grid range.");
        def_fields_init<MseSearch>(c, "MseSearch");
        field(c, "enabled", &MseSearch::enabled);
        field(c, "norm", &MseSearch::norm);
        field(c, "grid", &MseSearch::grid);
        field(c, "maxshrink", &MseSearch::maxshrink);
        def_repr<MseSearch>(c, "MseSearch");
    }
    {
        py::class_<GroupOptions> c(m, "GroupOptions", "Columns per group (0: per row), static groups.");
        def_fields_init<GroupOptions>(c, "GroupOptions");
        field(c, "size", &GroupOptions::size);
        field(c, "static_groups", &GroupOptions::static_groups);
        def_repr<GroupOptions>(c, "GroupOptions");
    }
    py::class_<IntGrid>(m, "IntGrid", "b-bit integer grid, min/max range per row (GPTQ's).")
        .def(py::init<int, bool, MseSearch, ScaleStorage>(), py::arg("bits"),
             py::arg("symmetric") = false, py::arg("mse") = MseSearch{},
             py::arg("scale_storage") = ScaleStorage::fp32)
        .def_property_readonly("bits", &IntGrid::bits)
        .def_property_readonly("symmetric", &IntGrid::symmetric)
        .def_property_readonly("name", &IntGrid::name)
        .def("__repr__", [](const IntGrid& g) { return "IntGrid(" + g.name() + ")"; });

    py::enum_<MinifloatSpecials>(m, "MinifloatSpecials")
        .value("ieee", MinifloatSpecials::ieee)
        .value("finite_with_nan", MinifloatSpecials::finite_with_nan)
        .value("finite", MinifloatSpecials::finite);
    py::class_<MinifloatFormat>(m, "MinifloatFormat", "A minifloat (FP8/FP4/...) number format.")
        .def(py::init<int, int, MinifloatSpecials, int>(), py::arg("exponent_bits"),
             py::arg("mantissa_bits"), py::arg("specials"), py::arg("bias"))
        .def_static("fp8_e4m3", &MinifloatFormat::fp8_e4m3)
        .def_static("fp8_e5m2", &MinifloatFormat::fp8_e5m2)
        .def_static("fp4_e2m1", &MinifloatFormat::fp4_e2m1)
        .def_property_readonly("name", &MinifloatFormat::name)
        .def_property_readonly("bits", &MinifloatFormat::bits)
        .def("__repr__", [](const MinifloatFormat& f) { return "MinifloatFormat(" + f.name() + ")"; });
    py::class_<MinifloatGrid>(m, "MinifloatGrid", "A minifloat with one scale per row of a group.")
        .def(py::init<MinifloatFormat, MseSearch, ScaleStorage>(), py::arg("format"),
             py::arg("mse") = MseSearch{}, py::arg("scale_storage") = ScaleStorage::fp32)
        .def_property_readonly("format", &MinifloatGrid::format)
        .def_property_readonly("name", &MinifloatGrid::name)
        .def("__repr__", [](const MinifloatGrid& g) { return "MinifloatGrid(" + g.name() + ")"; });

    bind_gptq<IntGrid>(m, "");
    bind_gptq<MinifloatGrid>(m, "Minifloat");
}

}  // namespace vqlib::python
