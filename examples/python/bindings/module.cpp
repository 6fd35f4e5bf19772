// The vqlib Python module: vqlib's C++ errors as Python exceptions, then each area's bindings.
#include "common.hpp"

#include <vqlib/version.hpp>

namespace py = pybind11;
using namespace vqlib::python;

PYBIND11_MODULE(vqlib, m) {
    m.doc() =
        "vqlib: vector quantization of LLM weights (GPTQ, GPTVQ, VPTQ, PVQ) from Python. "
        "See docs/python.md.";
    m.attr("__version__") = VQLIB_VERSION_STRING;

    // vqlib::error and its categories. vqlib.Error is a ValueError; the message is the C++ one.
    // One translator maps each C++ category to its Python type, the most derived first.
    // The exception types live as long as the process (never released after finalization).
    static auto& error = *new py::exception<vqlib::error>(m, "Error", PyExc_ValueError);
    error.doc() = "Every vqlib failure (a ValueError); the categories below derive from it.";
    static auto& invalid =
        *new py::exception<vqlib::invalid_argument>(m, "InvalidArgumentError", error.ptr());
    static auto& shape = *new py::exception<vqlib::shape_error>(m, "ShapeError", error.ptr());
    static auto& numerical =
        *new py::exception<vqlib::numerical_error>(m, "NumericalError", error.ptr());
    static auto& io = *new py::exception<vqlib::io_error>(m, "IoError", error.ptr());
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const vqlib::invalid_argument& e) {
            invalid(e.what());
        } catch (const vqlib::shape_error& e) {
            shape(e.what());
        } catch (const vqlib::numerical_error& e) {
            numerical(e.what());
        } catch (const vqlib::io_error& e) {
            io(e.what());
        } catch (const vqlib::error& e) {
            error(e.what());
        }
    });

    m.def("_input_copies", [] { return input_copies().load(); },
          "How many input arrays the bindings have copied so far (the zero-copy tests read it).");

    register_core(m);
    register_io(m);
    register_gptq(m);
    register_gptvq(m);
    register_vptq(m);
    register_pvq(m);
    register_kernels(m);
}
