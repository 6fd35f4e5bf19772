#pragma once
// Shared pieces of the Python bindings (examples/python): NumPy arrays in and out, keyword
// constructors for the configuration structs, and the registration functions of each area.
//
// Inputs: a float32 matrix the library takes as ConstMatrixRef (column-major) is used in place
// when the array is float32 and Fortran-ordered (or a row or column vector); anything else
// (C order, float64, strided) is converted once into a column-major float32 copy. Matrices the
// library takes as any Eigen expression (H, calibration batches) are used in place for float32
// and float64 in C or Fortran order; only strided arrays are copied. Every copy is counted
// (vqlib._input_copies()), so the tests can check the zero-copy promise.
// Outputs: matrices a result owns are returned as read-only views of the result (no copy, the
// result stays alive while the view does); new matrices are handed to NumPy without a copy.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <Eigen/Core>

#include <atomic>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <algorithm>
#include <vector>

namespace vqlib::python {

namespace py = pybind11;

inline std::atomic<long>& input_copies() {
    static std::atomic<long> copies{0};
    return copies;
}

/// The array an argument refers to (numpy.asarray of it: zero-copy for arrays, CPU tensors and
/// anything with the buffer protocol), checked to be a 1-D or 2-D floating-point array.
inline py::array as_array(py::handle obj, const char* name, int max_dims = 2) {
    // Never destroyed: a Python object must not be released after the interpreter has finalized.
    static const py::object* asarray = new py::object(py::module_::import("numpy").attr("asarray"));
    py::array array = py::reinterpret_borrow<py::object>(
        py::isinstance<py::array>(obj) ? py::reinterpret_borrow<py::object>(obj) : (*asarray)(obj));
    const auto kind = array.dtype().kind();
    VQLIB_CHECK(kind == 'f' && (array.itemsize() == 4 || array.itemsize() == 8), invalid_argument,
                name, " has dtype ", std::string(py::str(array.dtype())),
                ": expected float32 or float64");
    VQLIB_CHECK(array.ndim() >= 1 && array.ndim() <= max_dims, shape_error, name, " has ",
                array.ndim(), " dimensions: expected ",
                max_dims == 2 ? "a 2-D array (or a 1-D vector)" : "a 1-D array");
    return array;
}

/// The (rows, cols) of a 1-D or 2-D array; a 1-D array of n entries is n x 1 by default.
inline std::pair<Index, Index> matrix_shape(const py::array& a, bool vector_is_row = false) {
    if (a.ndim() == 1) {
        const Index n = static_cast<Index>(a.shape(0));
        return vector_is_row ? std::pair<Index, Index>{1, n} : std::pair<Index, Index>{n, 1};
    }
    return {static_cast<Index>(a.shape(0)), static_cast<Index>(a.shape(1))};
}

inline bool is_f_contiguous(const py::array& a) {
    return (a.flags() & py::array::f_style) != 0 || a.ndim() == 1 && (a.flags() & py::array::c_style);
}
inline bool is_c_contiguous(const py::array& a) { return (a.flags() & py::array::c_style) != 0; }

/// A float32 column-major view of a 2-D argument (W, X, ...), in place when the layout allows.
class FloatMatrix {
public:
    FloatMatrix(py::handle obj, const char* name) : array_(as_array(obj, name)) {
        std::tie(rows_, cols_) = matrix_shape(array_);
        if (array_.itemsize() == 4 && is_f_contiguous(array_) && rows_ * cols_ > 0) {
            data_ = static_cast<const float*>(array_.data());
            return;
        }
        copy_.resize(rows_, cols_);
        visit_any(array_, [&](const auto& m) { copy_ = m.template cast<float>(); });
        data_ = copy_.data();
        if (rows_ * cols_ > 0) ++input_copies();
    }

    Eigen::Map<const MatrixXf> map() const { return {data_, rows_, cols_}; }

    /// Calls f with an Eigen map of any 1-D/2-D float32/float64 array (strided ones as a copy).
    template <class F>
    static void visit_any(const py::array& a, F&& f);

private:
    py::array array_;
    MatrixXf copy_;
    const float* data_ = nullptr;
    Index rows_ = 0, cols_ = 0;
};

template <class Scalar, int Order>
using MatrixMap = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Order>>;

/// Calls f with an Eigen map of the argument in its own dtype and order (float32/float64, C or
/// Fortran order: no copy); a strided array is copied into a float64 column-major matrix.
template <class F>
decltype(auto) visit_matrix(py::handle obj, const char* name, F&& f) {
    const py::array a = as_array(obj, name);
    const auto [rows, cols] = matrix_shape(a);
    const bool single = a.itemsize() == 4;
    if (is_f_contiguous(a)) {
        if (single)
            return f(MatrixMap<float, Eigen::ColMajor>(static_cast<const float*>(a.data()), rows, cols));
        return f(MatrixMap<double, Eigen::ColMajor>(static_cast<const double*>(a.data()), rows, cols));
    }
    if (is_c_contiguous(a)) {
        if (single)
            return f(MatrixMap<float, Eigen::RowMajor>(static_cast<const float*>(a.data()), rows, cols));
        return f(MatrixMap<double, Eigen::RowMajor>(static_cast<const double*>(a.data()), rows, cols));
    }
    // Strided (a slice with steps, a transposed view of a view, ...): one float64 copy.
    ++input_copies();
    const py::array_t<double, py::array::f_style | py::array::forcecast> copy(a);
    const auto [r, c] = matrix_shape(copy);
    return f(MatrixMap<double, Eigen::ColMajor>(copy.data(), r, c));
}

template <class F>
void FloatMatrix::visit_any(const py::array& a, F&& f) {
    visit_matrix(a, "array", [&](const auto& m) {
        f(m);
        return 0;
    });
}

/// A read-only NumPy view of a column-major Eigen matrix owned by `owner` (kept alive by the view).
template <class Derived>
py::array view_of(const Eigen::PlainObjectBase<Derived>& m, py::handle owner) {
    using Scalar = typename Derived::Scalar;
    static_assert(!Derived::IsRowMajor);
    py::array out(py::dtype::of<Scalar>(), {m.rows(), m.cols()},
                  {static_cast<py::ssize_t>(sizeof(Scalar)),
                   static_cast<py::ssize_t>(sizeof(Scalar) * m.rows())},
                  m.data(), owner);
    py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return out;
}

/// A read-only view of a vector owned by `owner`.
template <class T>
py::array view_of(const std::vector<T>& v, py::handle owner) {
    py::array out(py::dtype::of<T>(), {static_cast<py::ssize_t>(v.size())},
                  {static_cast<py::ssize_t>(sizeof(T))}, v.data(), owner);
    py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return out;
}
template <class Scalar>
py::array view_of(const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& v, py::handle owner) {
    py::array out(py::dtype::of<Scalar>(), {v.size()}, {static_cast<py::ssize_t>(sizeof(Scalar))},
                  v.data(), owner);
    py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return out;
}

/// Hands a matrix to NumPy without copying it (a Fortran-ordered array owning the matrix).
template <class M>
py::array to_numpy(M&& m) {
    using Plain = std::decay_t<M>;
    using Scalar = typename Plain::Scalar;
    auto* heap = new Plain(std::forward<M>(m));
    py::capsule owner(heap, [](void* p) { delete static_cast<Plain*>(p); });
    if constexpr (Plain::ColsAtCompileTime == 1) {
        return py::array(py::dtype::of<Scalar>(), {heap->size()},
                         {static_cast<py::ssize_t>(sizeof(Scalar))}, heap->data(), owner);
    } else {
        static_assert(!Plain::IsRowMajor);
        return py::array(py::dtype::of<Scalar>(), {heap->rows(), heap->cols()},
                         {static_cast<py::ssize_t>(sizeof(Scalar)),
                          static_cast<py::ssize_t>(sizeof(Scalar) * heap->rows())},
                         heap->data(), owner);
    }
}

/// The field names of each bound configuration struct, for keyword constructors and repr.
template <class T>
std::vector<std::string>& field_names() {
    static std::vector<std::string> names;
    return names;
}

/// def_readwrite that also records the field for keyword construction and repr.
template <class T, class Class, class Member>
Class& field(Class& cls, const char* name, Member T::*member, const char* doc = "") {
    field_names<T>().emplace_back(name);
    cls.def_readwrite(name, member, doc);
    return cls;
}

/// A field holding std::optional<T> or std::variant<...>: reading it gives the contained object
/// by reference (so `config.codebooks.integer.bits = 4` changes the configuration, not a copy)
/// or None; assigning replaces it (None empties an optional).
template <class T, class Class, class Member>
Class& ref_field(Class& cls, const char* name, Member T::*member, const char* doc = "") {
    field_names<T>().emplace_back(name);
    cls.def_property(
        name,
        [member](py::handle self) -> py::object {
            auto& value = self.cast<T&>().*member;
            if constexpr (requires { value.has_value(); value.value(); }) {
                if (!value) return py::none();
                return py::cast(&*value, py::return_value_policy::reference_internal, self);
            } else {
                return std::visit(
                    [&](auto& alternative) {
                        return py::cast(&alternative, py::return_value_policy::reference_internal,
                                        self);
                    },
                    value);
            }
        },
        [member](T& self, Member value) { self.*member = std::move(value); }, doc);
    return cls;
}

/// Sets the fields named by keywords on an existing object; an unknown name is a TypeError that
/// lists the fields.
template <class T>
void apply_kwargs(T& value, const py::kwargs& kwargs, const char* type_name) {
    py::object self = py::cast(&value, py::return_value_policy::reference);
    const auto& names = field_names<T>();
    for (const auto& [key, item] : kwargs) {
        const std::string name = py::str(key);
        if (std::find(names.begin(), names.end(), name) == names.end()) {
            std::string known;
            for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
            throw py::type_error(std::string(type_name) + "(): unknown field '" + name +
                                 "': expected one of " + known);
        }
        py::setattr(self, key, item);
    }
}

/// A keyword constructor T(**fields) from the default value, and a repr listing every field.
template <class T, class Class>
void def_fields_init(Class& cls, std::string type_name) {
    cls.def(py::init([type_name](const py::kwargs& kwargs) {
                T value{};
                apply_kwargs(value, kwargs, type_name.c_str());
                return value;
            }),
            "Default fields, overridden by keyword (each keyword names a field).");
}

template <class T, class Class>
void def_repr(Class& cls, std::string type_name) {
    cls.def("__repr__", [type_name](py::handle self) {
        std::string out = type_name + "(";
        bool first = true;
        for (const auto& name : field_names<T>()) {
            out += (first ? "" : ", ") + name + "=" + std::string(py::repr(self.attr(name.c_str())));
            first = false;
        }
        return out + ")";
    });
}

void register_core(py::module_& m);
void register_io(py::module_& m);
void register_gptq(py::module_& m);
void register_gptvq(py::module_& m);
void register_vptq(py::module_& m);
void register_pvq(py::module_& m);
void register_kernels(py::module_& m);

}  // namespace vqlib::python
