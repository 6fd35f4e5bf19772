// The decode kernels: decode formats built from layers, their GEMV/matmul and dequantization.
// Activations come as PyTorch holds them: x of shape (in,) or (batch, in), C order, and the
// result has shape (out,) or (batch, out) (y = x W^T, as torch.nn.functional.linear).
#include "common.hpp"

#include <vqlib/formats/scalar_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>
#include <vqlib/kernels.hpp>

#include <cstring>

namespace vqlib::python {
namespace {

/// x as a column-major cols x batch float32 matrix, in place for a C-ordered float32 array.
class Activations {
public:
    Activations(py::handle obj, Index cols) : array_(as_array(obj, "x")) {
        vector_ = array_.ndim() == 1;
        const Index in = static_cast<Index>(array_.shape(array_.ndim() - 1));
        batch_ = vector_ ? 1 : static_cast<Index>(array_.shape(0));
        VQLIB_CHECK(in == cols, shape_error, "x has ", in, " features in its last dimension: expected ",
                    cols, " (the layer's input features)");
        if (array_.itemsize() == 4 && is_c_contiguous(array_)) {
            data_ = static_cast<const float*>(array_.data());
            return;
        }
        copy_.resize(cols, batch_);
        const py::array_t<float, py::array::c_style | py::array::forcecast> c(array_);
        std::memcpy(copy_.data(), c.data(), sizeof(float) * static_cast<std::size_t>(cols * batch_));
        data_ = copy_.data();
        ++input_copies();
    }
    Eigen::Map<const MatrixXf> map(Index cols) const { return {data_, cols, batch_}; }
    /// y (rows x batch, column-major) in the caller's shape: (rows,) or (batch, rows).
    py::array output(MatrixXf&& y) const {
        const Index rows = y.rows();
        py::array a = to_numpy(std::move(y));
        if (vector_) return a.attr("reshape")(rows);
        return a.attr("T");
    }

private:
    py::array array_;
    MatrixXf copy_;
    const float* data_ = nullptr;
    Index batch_ = 1;
    bool vector_ = false;
};

template <class Matrix, class Layer>
void bind_decode(py::module_& m, const char* name, const char* doc) {
    py::class_<Matrix>(m, name, doc)
        .def_static("from_layer", [](const Layer& layer) { return Matrix::from_layer(layer); },
                    py::arg("layer"), "Re-lays out a quantized layer for the kernels.")
        .def_property_readonly("rows", &Matrix::rows)
        .def_property_readonly("cols", &Matrix::cols)
        .def(
            "gemv",
            [](const Matrix& w, py::handle x, const kernels::GemvOptions& options) {
                const Activations a(x, w.cols());
                MatrixXf y;
                {
                    py::gil_scoped_release release;
                    y = kernels::gemv(w, a.map(w.cols()), options);
                }
                return a.output(std::move(y));
            },
            py::arg("x"), py::arg("options") = kernels::GemvOptions{},
            "Fused decode GEMV, batch 1..8: x (in,) or (batch, in) -> (out,) or (batch, out).")
        .def(
            "matmul",
            [](const Matrix& w, py::handle x, const kernels::GemvOptions& options) {
                const Activations a(x, w.cols());
                MatrixXf y;
                {
                    py::gil_scoped_release release;
                    y = kernels::matmul(w, a.map(w.cols()), options);
                }
                return a.output(std::move(y));
            },
            py::arg("x"), py::arg("options") = kernels::GemvOptions{},
            "Any batch: the fused GEMV up to 8 rows of x, dequantize-then-GEMM above.")
        .def("dequantize", [](const Matrix& w) { return to_numpy(kernels::dequantize(w)); },
             "The weight this format decodes to (rows x cols, float32).");
}

}  // namespace

void register_kernels(py::module_& m) {
    auto k = m.def_submodule("kernels", "CPU decode kernels (vqlib/kernels.hpp).");
    py::enum_<kernels::Isa>(k, "Isa")
        .value("automatic", kernels::Isa::automatic)
        .value("portable", kernels::Isa::portable)
        .value("avx2", kernels::Isa::avx2)
        .value("avx512", kernels::Isa::avx512);
    py::enum_<kernels::VqStrategy>(k, "VqStrategy")
        .value("automatic", kernels::VqStrategy::automatic)
        .value("lut", kernels::VqStrategy::lut)
        .value("gather", kernels::VqStrategy::gather);
    {
        py::class_<kernels::GemvOptions> c(k, "GemvOptions");
        def_fields_init<kernels::GemvOptions>(c, "GemvOptions");
        field(c, "isa", &kernels::GemvOptions::isa);
        field(c, "strategy", &kernels::GemvOptions::strategy);
        field(c, "parallel", &kernels::GemvOptions::parallel);
        field(c, "byte_planes", &kernels::GemvOptions::byte_planes);
        def_repr<kernels::GemvOptions>(c, "GemvOptions");
    }
    k.def("isa_supported", &kernels::isa_supported, py::arg("isa"));
    k.def("best_isa", &kernels::best_isa);
    bind_decode<kernels::VqGemvMatrix, VqLayer>(k, "VqGemvMatrix", "GPTVQ layers (VqLayer).");
    bind_decode<kernels::VptqGemvMatrix, VptqLayer>(k, "VptqGemvMatrix", "VPTQ layers (VptqLayer).");
    bind_decode<kernels::Int4GemvMatrix, ScalarLayer<IntGrid>>(k, "Int4GemvMatrix",
                                                               "4-bit GPTQ layers (ScalarLayer).");
}

}  // namespace vqlib::python
