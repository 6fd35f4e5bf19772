#pragma once
// Weights of a weighted clustering problem: a non-owning view that says which of four forms it is.
//
// For N points of dimension D (an N x D matrix X), the weight of coordinate j of point n is
//   none            omega_nj = 1
//   per_point       omega_nj = w_n            (N values: a point's whole distance is scaled)
//   per_coordinate  omega_nj = lambda_j       (D values: one diagonal metric for all points, as
//                                              GPTVQ's in-loop lookup with 1/U_jj)
//   elementwise     omega_nj = W(n, j)        (N x D: GPTVQ's codebook-initialization weights)
// and the weighted distance of point n to centroid c is sum_j omega_nj (x_nj - c_j)^2.
//
// Like std::span, a Weights only points at memory the caller owns: keep that memory alive while
// the view is used.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>
#include <type_traits>

namespace vqlib {

enum class WeightKind { none, per_point, per_coordinate, elementwise };

inline const char* to_string(WeightKind kind) {
    switch (kind) {
    case WeightKind::none: return "none";
    case WeightKind::per_point: return "per_point";
    case WeightKind::per_coordinate: return "per_coordinate";
    case WeightKind::elementwise: return "elementwise";
    }
    return "?";
}

namespace detail {

// Eigen objects that Weights can view without a copy: direct access, column-major, unit inner
// stride checked at run time.
template <class Derived>
constexpr bool is_viewable_float_storage = std::is_same_v<typename Derived::Scalar, float>&& bool(
                                               Derived::Flags& Eigen::DirectAccessBit) &&
                                           (!bool(Derived::Flags & Eigen::RowMajorBit) ||
                                            Derived::ColsAtCompileTime == 1 ||
                                            Derived::RowsAtCompileTime == 1);

}  // namespace detail

class Weights {
public:
    /// Unweighted (every omega_nj = 1).
    Weights() = default;

    static Weights none() { return {}; }

    /// One weight per point (N values).
    static Weights per_point(std::span<const float> w) {
        return Weights(WeightKind::per_point, w.data(), static_cast<Index>(w.size()), 1,
                       static_cast<Index>(w.size()));
    }
    template <class Derived>
    static Weights per_point(const Eigen::DenseBase<Derived>& w) {
        return per_point(vector_span(w, "Weights::per_point"));
    }

    /// One weight per coordinate (D values), shared by all points.
    static Weights per_coordinate(std::span<const float> w) {
        return Weights(WeightKind::per_coordinate, w.data(), 1, static_cast<Index>(w.size()), 1);
    }
    template <class Derived>
    static Weights per_coordinate(const Eigen::DenseBase<Derived>& w) {
        return per_coordinate(vector_span(w, "Weights::per_coordinate"));
    }

    /// One weight per coordinate of every point: an N x D column-major matrix (a MatrixXf, a Map
    /// or a block of one). Expressions and row-major matrices are refused at compile time:
    /// evaluate them into a MatrixXf first.
    template <class Derived>
    static Weights elementwise(const Eigen::DenseBase<Derived>& w) {
        static_assert(detail::is_viewable_float_storage<Derived> &&
                          !bool(Derived::Flags & Eigen::RowMajorBit),
                      "vqlib: Weights::elementwise needs column-major float storage with direct "
                      "access (MatrixXf, Map, block); evaluate expressions into a MatrixXf first");
        VQLIB_CHECK(w.derived().innerStride() == 1, invalid_argument,
                    "Weights::elementwise: inner stride = ", w.derived().innerStride(),
                    ": expected contiguous columns");
        return Weights(WeightKind::elementwise, w.derived().data(), w.rows(), w.cols(),
                       w.derived().outerStride());
    }

    WeightKind kind() const { return kind_; }
    bool is_none() const { return kind_ == WeightKind::none; }
    const float* data() const { return data_; }
    /// N for per_point and elementwise, 1 otherwise.
    Index rows() const { return rows_; }
    /// D for per_coordinate and elementwise, 1 otherwise.
    Index cols() const { return cols_; }
    /// Distance between consecutive columns of an elementwise matrix.
    Index outer_stride() const { return outer_stride_; }

    /// omega_nj in any form.
    float operator()(Index n, Index j) const {
        switch (kind_) {
        case WeightKind::none: return 1.0f;
        case WeightKind::per_point: return data_[n];
        case WeightKind::per_coordinate: return data_[j];
        case WeightKind::elementwise: return data_[j * outer_stride_ + n];
        }
        return 1.0f;
    }

    /// The total weight of point n: sum_j omega_nj.
    double point_total(Index n, Index d) const {
        switch (kind_) {
        case WeightKind::none: return static_cast<double>(d);
        case WeightKind::per_point: return static_cast<double>(d) * data_[n];
        case WeightKind::per_coordinate:
        case WeightKind::elementwise: {
            double total = 0.0;
            for (Index j = 0; j < d; ++j) total += (*this)(n, j);
            return total;
        }
        }
        return 0.0;
    }

private:
    Weights(WeightKind kind, const float* data, Index rows, Index cols, Index outer_stride)
        : kind_(kind), data_(data), rows_(rows), cols_(cols), outer_stride_(outer_stride) {}

    template <class Derived>
    static std::span<const float> vector_span(const Eigen::DenseBase<Derived>& w,
                                              const char* what) {
        static_assert(detail::is_viewable_float_storage<Derived>,
                      "vqlib: Weights::per_point/per_coordinate need float storage with direct "
                      "access (VectorXf, Map, a column); evaluate expressions first");
        VQLIB_CHECK(w.rows() == 1 || w.cols() == 1, shape_error, what, ": weights are ", w.rows(),
                    "x", w.cols(), ": expected a vector");
        VQLIB_CHECK(w.size() <= 1 || w.derived().innerStride() == 1, invalid_argument, what,
                    ": inner stride = ", w.derived().innerStride(), ": expected contiguous values");
        return {w.derived().data(), static_cast<std::size_t>(w.size())};
    }

    WeightKind kind_ = WeightKind::none;
    const float* data_ = nullptr;
    Index rows_ = 1;
    Index cols_ = 1;
    Index outer_stride_ = 1;
};

/// Checks `weights` against N points of dimension D: the shape of its form (shape_error), finite
/// values (numerical_error naming the first bad entry) and no negative weight (invalid_argument).
inline void check_weights(const Weights& weights, Index n, Index d) {
    const auto check_value = [&](float v, Index row, Index col) {
        if (!std::isfinite(v))
            throw numerical_error(detail::concat("weights(", row, ", ", col, ") = ", v, " (",
                                                 to_string(weights.kind()),
                                                 "): expected finite values only"));
        if (v < 0.0f)
            throw invalid_argument(detail::concat("weights(", row, ", ", col, ") = ", v, " (",
                                                  to_string(weights.kind()),
                                                  "): expected weights >= 0"));
    };
    switch (weights.kind()) {
    case WeightKind::none: return;
    case WeightKind::per_point:
        VQLIB_CHECK(weights.rows() == n, shape_error, "per-point weights have ", weights.rows(),
                    " entries: expected one per point, n = ", n);
        for (Index i = 0; i < n; ++i) check_value(weights.data()[i], i, 0);
        return;
    case WeightKind::per_coordinate:
        VQLIB_CHECK(weights.cols() == d, shape_error, "per-coordinate weights have ",
                    weights.cols(), " entries: expected one per coordinate, d = ", d);
        for (Index j = 0; j < d; ++j) check_value(weights.data()[j], 0, j);
        return;
    case WeightKind::elementwise:
        VQLIB_CHECK(weights.rows() == n && weights.cols() == d, shape_error,
                    "elementwise weights are ", weights.rows(), "x", weights.cols(),
                    ": expected n x d = ", n, "x", d);
        for (Index j = 0; j < d; ++j)
            for (Index i = 0; i < n; ++i) check_value(weights(i, j), i, j);
        return;
    }
}

}  // namespace vqlib
