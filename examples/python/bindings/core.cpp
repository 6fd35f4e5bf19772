// Threads, Hessians (accumulation, preparation, the proxy loss) and the solver's options.
#include "common.hpp"

#include <vqlib/core/threading.hpp>
#include <vqlib/hessian.hpp>
#include <vqlib/solver/block_solver.hpp>
#include <vqlib/solver/policies.hpp>
#include <vqlib/core/scale_storage.hpp>

namespace vqlib::python {

void register_core(py::module_& m) {
    m.def("set_num_threads", &set_num_threads, py::arg("threads"),
          "Threads vqlib uses (0 = all hardware threads). Results do not depend on it.");
    m.def("num_threads", &num_threads, "The number of threads vqlib uses.");

    py::enum_<ErrorUpdateKind>(m, "ErrorUpdateKind",
                               "The solver's error feedback: diagonal (GPTQ's), exact "
                               "(D-column OBS), none (round-to-nearest).")
        .value("diagonal", ErrorUpdateKind::diagonal)
        .value("exact", ErrorUpdateKind::exact)
        .value("none", ErrorUpdateKind::none);
    py::enum_<LossEvaluation>(m, "LossEvaluation",
                              "What result.proxy_loss holds: solver (from the solver's error sum, "
                              "O(R C), exact update only, else the product), exact (the float64 "
                              "product), none (NaN).")
        .value("solver", LossEvaluation::solver)
        .value("exact", LossEvaluation::exact)
        .value("none", LossEvaluation::none);
    py::enum_<ScaleStorage>(m, "ScaleStorage", "Width of stored scales.")
        .value("fp32", ScaleStorage::fp32)
        .value("fp16", ScaleStorage::fp16);

    {
        py::class_<HessianOptions> c(m, "HessianOptions",
                                     "Damping, act-order and the Cholesky retry policy.");
        def_fields_init<HessianOptions>(c, "HessianOptions");
        field(c, "percdamp", &HessianOptions::percdamp, "relative damping (GPTQ: 0.01)");
        field(c, "act_order", &HessianOptions::act_order, "columns by descending diag(H)");
        field(c, "act_order_unit", &HessianOptions::act_order_unit,
              "columns moved together by act-order (GPTVQ: its vector dimension)");
        field(c, "damp_growth", &HessianOptions::damp_growth);
        field(c, "max_percdamp", &HessianOptions::max_percdamp);
        field(c, "symmetry_tolerance", &HessianOptions::symmetry_tolerance);
        def_repr<HessianOptions>(c, "HessianOptions");
    }
    {
        py::class_<SolverOptions> c(m, "SolverOptions", "The block solver's block and row chunk.");
        def_fields_init<SolverOptions>(c, "SolverOptions");
        field(c, "block_size", &SolverOptions::block_size);
        field(c, "row_chunk", &SolverOptions::row_chunk);
        def_repr<SolverOptions>(c, "SolverOptions");
    }
    {
        py::class_<SolveStats> c(m, "SolveStats", "Statistics of one solve (seconds, sums).");
        c.def_readonly("error_sum", &SolveStats::error_sum)
            .def_readonly("seconds_prepare", &SolveStats::seconds_prepare)
            .def_readonly("seconds_policy_setup", &SolveStats::seconds_policy_setup)
            .def_readonly("seconds_row_phase", &SolveStats::seconds_row_phase)
            .def_readonly("thread_seconds_quantize", &SolveStats::thread_seconds_quantize)
            .def_readonly("thread_seconds_update", &SolveStats::thread_seconds_update)
            .def_readonly("seconds_total", &SolveStats::seconds_total)
            .def_readonly("blocks", &SolveStats::blocks)
            .def_readonly("steps", &SolveStats::steps);
    }
    {
        py::class_<PreparedHessian> c(
            m, "PreparedHessian",
            "A Hessian ready for the solver (prepare_hessian): one preparation serves every "
            "linear that reads the same input.");
        c.def_property_readonly("U", [](py::handle self) {
             return view_of(self.cast<const PreparedHessian&>().U, self);
         }, "upper Cholesky factor of the damped inverse (solver order)")
            .def_readonly("perm", &PreparedHessian::perm)
            .def_readonly("dead", &PreparedHessian::dead)
            .def_readonly("damp", &PreparedHessian::damp)
            .def_readonly("percdamp", &PreparedHessian::percdamp)
            .def_readonly("attempts", &PreparedHessian::attempts)
            .def_readonly("seconds", &PreparedHessian::seconds)
            .def_property_readonly("columns", &PreparedHessian::columns);
    }
    m.def(
        "prepare_hessian",
        [](py::handle H, const HessianOptions& options) {
            return visit_matrix(H, "H", [&](const auto& h) {
                py::gil_scoped_release release;
                return prepare_hessian(h, options);
            });
        },
        py::arg("H"), py::arg("options") = HessianOptions{},
        "Validates and prepares H (C x C, undamped) for gptq(W, prepared, config).");
    m.def(
        "proxy_loss",
        [](py::handle W, py::handle Q, py::handle H) {
            const FloatMatrix w(W, "W"), q(Q, "Q");
            return visit_matrix(H, "H", [&](const auto& h) {
                py::gil_scoped_release release;
                return proxy_loss(w.map(), q.map(), h);
            });
        },
        py::arg("W"), py::arg("Q"), py::arg("H"), "tr((W - Q) H (W - Q)^T) in float64.");

    py::class_<HessianAccumulator>(
        m, "HessianAccumulator",
        "Streaming H = 2/n sum x x^T in float64 (GPTQ's convention), deterministic for any "
        "thread count.")
        .def(py::init<Index>(), py::arg("columns"))
        .def_property_readonly("columns", &HessianAccumulator::columns)
        .def_property_readonly("tokens", &HessianAccumulator::tokens)
        .def(
            "add",
            [](HessianAccumulator& self, py::handle X) {
                visit_matrix(X, "X", [&](const auto& x) {
                    py::gil_scoped_release release;
                    self.add(x);
                    return 0;
                });
            },
            py::arg("X"), "Adds a batch, one token per column (columns x tokens).")
        .def(
            "add_rows",
            [](HessianAccumulator& self, py::handle A) {
                const py::array a = as_array(A, "A");
                // One token (a 1-D vector) is a 1 x columns row.
                const py::array rows = a.ndim() == 1 ? py::array(a.attr("reshape")(1, a.shape(0))) : a;
                visit_matrix(rows, "A", [&](const auto& x) {
                    py::gil_scoped_release release;
                    self.add_rows(x);
                    return 0;
                });
            },
            py::arg("A"),
            "Adds a batch, one token per row (tokens x columns: activations as PyTorch holds "
            "them, flattened to 2-D).")
        .def("merge", &HessianAccumulator::merge, py::arg("other"),
             "Adds the statistics of an accumulator built on another shard.")
        .def("gram", [](const HessianAccumulator& self) { return to_numpy(self.gram()); },
             "The raw sum X X^T (float64).")
        .def("finalize", [](const HessianAccumulator& self) {
                 MatrixXd h;
                 {
                     py::gil_scoped_release release;
                     h = self.finalize();
                 }
                 return to_numpy(std::move(h));
             },
             "H = 2/n X X^T (float64, C x C).")
        .def("reset", &HessianAccumulator::reset);
}

}  // namespace vqlib::python
