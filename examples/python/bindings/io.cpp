// Files: vqlib's layer checkpoints (any mix of layer formats, reloaded bit for bit), safetensors
// (read/write any tensors), VPTQ checkpoints (the layers the HF + vptq stack loads).
#include "common.hpp"

#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/io/safetensors.hpp>
#include <vqlib/io/vptq_checkpoint.hpp>

#include <cstring>

namespace vqlib::python {
namespace {

py::dtype numpy_dtype(io::Dtype dtype) {
    switch (dtype) {
    case io::Dtype::F64: return py::dtype("float64");
    case io::Dtype::F32: return py::dtype("float32");
    case io::Dtype::F16: return py::dtype("float16");
    case io::Dtype::BF16: return py::dtype("float32");  // widened exactly (NumPy has no bfloat16)
    case io::Dtype::I64: return py::dtype("int64");
    case io::Dtype::I32: return py::dtype("int32");
    case io::Dtype::I16: return py::dtype("int16");
    case io::Dtype::I8: return py::dtype("int8");
    case io::Dtype::U64: return py::dtype("uint64");
    case io::Dtype::U32: return py::dtype("uint32");
    case io::Dtype::U16: return py::dtype("uint16");
    case io::Dtype::U8: return py::dtype("uint8");
    }
    throw invalid_argument("safetensors: unknown dtype");
}

io::Dtype safetensors_dtype(const py::array& a, const std::string& name) {
    const char kind = a.dtype().kind();
    const auto size = a.itemsize();
    if (kind == 'f' && size == 8) return io::Dtype::F64;
    if (kind == 'f' && size == 4) return io::Dtype::F32;
    if (kind == 'f' && size == 2) return io::Dtype::F16;
    if (kind == 'i' && size == 8) return io::Dtype::I64;
    if (kind == 'i' && size == 4) return io::Dtype::I32;
    if (kind == 'i' && size == 2) return io::Dtype::I16;
    if (kind == 'i' && size == 1) return io::Dtype::I8;
    if (kind == 'u' && size == 8) return io::Dtype::U64;
    if (kind == 'u' && size == 4) return io::Dtype::U32;
    if (kind == 'u' && size == 2) return io::Dtype::U16;
    if (kind == 'u' && size == 1) return io::Dtype::U8;
    throw invalid_argument(detail::concat("tensors['", name, "'] has dtype ",
                                          std::string(py::str(a.dtype())),
                                          ": expected a float (16/32/64-bit) or integer dtype"));
}

py::array to_array(const io::Tensor& t) {
    std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    if (t.dtype == io::Dtype::BF16) {
        const std::vector<float> values = t.to_floats();
        py::array_t<float> out(shape);
        std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(float));
        return out;
    }
    py::array out(numpy_dtype(t.dtype), shape);
    std::memcpy(out.mutable_data(), t.data.data(), t.data.size());
    return out;
}

io::Dtype parse_dtype(const std::string& name, const char* argument) {
    const auto d = io::dtype_from_name(name);
    VQLIB_CHECK(d.has_value(), invalid_argument, argument, " = '", name,
                "': expected a safetensors dtype name (F32, F16, BF16, ...)");
    return *d;
}

}  // namespace

void register_io(py::module_& m) {
    m.def(
        "read_safetensors",
        [](const std::string& path) {
            io::SafetensorsFile file;
            {
                py::gil_scoped_release release;
                file = io::read_safetensors(path);
            }
            py::dict tensors;
            for (const auto& [name, t] : file.tensors) tensors[py::str(name)] = to_array(t);
            return py::make_tuple(tensors, file.metadata);
        },
        py::arg("path"),
        "Reads a safetensors file: (dict of name -> array, metadata dict). BF16 tensors are "
        "widened to float32 exactly.");
    m.def(
        "write_safetensors",
        [](const std::string& path, const py::dict& tensors, const io::Metadata& metadata) {
            io::TensorMap map;
            for (const auto& [key, value] : tensors) {
                const std::string name = py::str(key);
                const py::array a = py::array::ensure(value, py::array::c_style);
                VQLIB_CHECK(a, invalid_argument, "tensors['", name, "'] is not an array");
                io::Tensor t;
                t.dtype = safetensors_dtype(a, name);
                t.shape.assign(a.shape(), a.shape() + a.ndim());
                const auto* bytes = static_cast<const std::uint8_t*>(a.data());
                t.data.assign(bytes, bytes + a.nbytes());
                map.emplace(name, std::move(t));
            }
            py::gil_scoped_release release;
            io::write_safetensors(path, map, metadata);
        },
        py::arg("path"), py::arg("tensors"), py::arg("metadata") = io::Metadata{},
        "Writes arrays (float16/32/64, integers) as a safetensors file, atomically.");

    m.def(
        "save_checkpoint",
        [](const std::string& path, const std::map<std::string, io::QuantizedLayer>& layers,
           const io::Metadata& metadata) {
            py::gil_scoped_release release;
            io::save_layer_checkpoint(path, layers, metadata);
        },
        py::arg("path"), py::arg("layers"), py::arg("metadata") = io::Metadata{},
        "Writes {name: layer} (any of ScalarLayer, MinifloatScalarLayer, VqLayer, VptqLayer, "
        "PvqLayer) as one vqlib checkpoint (safetensors), atomically; `metadata` is stored "
        "beside it (the key 'vqlib' is reserved).");
    m.def(
        "load_checkpoint",
        [](const std::string& path) {
            py::gil_scoped_release release;
            return io::load_layer_checkpoint(path);
        },
        py::arg("path"),
        "Reads a vqlib checkpoint: {name: layer}, each dequantizing to exactly what was saved.");
    m.def(
        "save_vptq_model",
        [](const std::string& dir, const std::map<std::string, const VptqLayer*>& layers,
           const std::string& dtype) {
            std::map<std::string, VptqLayer> copy;
            for (const auto& [name, layer] : layers) {
                VQLIB_CHECK(layer != nullptr, invalid_argument, "layers['", name, "'] is None");
                copy.emplace(name, *layer);
            }
            const io::Dtype d = parse_dtype(dtype, "dtype");
            py::gil_scoped_release release;
            io::save_vptq_model(dir, copy, d);
        },
        py::arg("dir"), py::arg("layers"), py::arg("dtype") = "F16",
        "Writes dir/model.safetensors and dir/config.json in VPTQ's layout (quantization_config "
        "with config_for_layers), from a dict of module name -> VptqLayer.");
    m.def(
        "load_vptq_model",
        [](const std::string& dir) {
            py::gil_scoped_release release;
            return io::load_vptq_model(dir);
        },
        py::arg("dir"), "Reads a VPTQ checkpoint directory: dict of module name -> VptqLayer.");
}

}  // namespace vqlib::python
