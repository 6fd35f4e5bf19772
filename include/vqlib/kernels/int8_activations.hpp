#pragma once
// Activations quantized to int8 for the fast decode kernels (kernels/int4_fast.hpp,
// kernels/vq_fast.hpp), in blocks of 32 consecutive inputs per batch column, as ggml's Q8_0
// activations are: per block d = max|x| / 127, q = round(x / d) in -127..127, and the block's
// sum of q (for the kernels' zero-point and offset corrections).
//
// The kernels then multiply integer codes or int8 weights with q exactly (32-bit integer sums)
// and scale each block's sum by d once, so the only error of the fast mode beyond its weight
// format is that of q: |x - d q| <= d / 2 per input, hence for an output
//   |y_fast - sum_c w_c x_c| <= sum_blocks (d_blk / 2) sum_{c in blk} |w_c|  (+ fp32 rounding).
// Quantize once and pass the result to every layer that reads the same input (q/k/v, gate/up).
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace vqlib::kernels {

/// x (cols x B) in int8 blocks of 32 inputs. Column b's values are q[b * padded_cols() + c]
/// (zero past cols), its block scales d[b * blocks() + k] and block sums sums[b * blocks() + k].
class Int8Activations {
public:
    static constexpr Index block = 32;

    Int8Activations() = default;

    /// Quantizes x. Throws numerical_error, naming the element, for a non-finite input.
    explicit Int8Activations(const ConstMatrixRef& x) { assign(x); }

    /// As the constructor, reusing this object's storage.
    void assign(const ConstMatrixRef& x) {
        cols_ = x.rows();
        batch_ = x.cols();
        blocks_ = (cols_ + block - 1) / block;
        const std::size_t n = static_cast<std::size_t>(blocks_ * batch_);
        q_.assign(static_cast<std::size_t>(padded_cols() * batch_), 0);
        d_.assign(n, 0.0f);
        sums_.assign(n, 0);
        for (Index b = 0; b < batch_; ++b) {
            for (Index k = 0; k < blocks_; ++k) {
                const Index c0 = k * block, c1 = std::min(cols_, c0 + block);
                float amax = 0.0f;
                bool finite = true;
                for (Index c = c0; c < c1; ++c) {
                    const float a = std::abs(x(c, b));
                    finite = finite && a <= 3.4028235e38f;  // false for Inf and NaN
                    amax = std::max(amax, a);
                }
                if (!finite) report_non_finite(x);
                const std::size_t at = static_cast<std::size_t>(b * blocks_ + k);
                if (amax == 0.0f) continue;  // q = 0, d = 0
                const float d = amax / 127.0f;
                const float inv = 127.0f / amax;
                std::int8_t* q = q_.data() + b * padded_cols() + c0;
                int sum = 0;
                for (Index c = c0; c < c1; ++c) {
                    const float v = std::clamp(std::nearbyint(x(c, b) * inv), -127.0f, 127.0f);
                    q[c - c0] = static_cast<std::int8_t>(v);
                    sum += static_cast<int>(v);
                }
                d_[at] = d;
                sums_[at] = sum;
            }
        }
    }

    Index cols() const { return cols_; }
    Index batch() const { return batch_; }
    Index blocks() const { return blocks_; }
    /// cols rounded up to whole blocks.
    Index padded_cols() const { return blocks_ * block; }
    const std::int8_t* q() const { return q_.data(); }
    const float* d() const { return d_.data(); }
    const std::int32_t* sums() const { return sums_.data(); }

    /// The values the kernels multiply with: d * q (cols x B).
    MatrixXf dequantize() const {
        MatrixXf x(cols_, batch_);
        for (Index b = 0; b < batch_; ++b)
            for (Index c = 0; c < cols_; ++c)
                x(c, b) = d_[static_cast<std::size_t>(b * blocks_ + c / block)] *
                          static_cast<float>(q_[static_cast<std::size_t>(b * padded_cols() + c)]);
        return x;
    }

private:
    [[noreturn]] static void report_non_finite(const ConstMatrixRef& x) {
        for (Index b = 0; b < x.cols(); ++b)
            for (Index c = 0; c < x.rows(); ++c)
                if (!std::isfinite(x(c, b)))
                    throw numerical_error(::vqlib::detail::concat(
                        "Int8Activations: x(", c, ", ", b, ") = ", x(c, b),
                        ": the fast decode mode needs finite inputs"));
        throw numerical_error("Int8Activations: x has a non-finite value");
    }

    Index cols_ = 0;
    Index batch_ = 0;
    Index blocks_ = 0;
    std::vector<std::int8_t> q_;
    std::vector<float> d_;
    std::vector<std::int32_t> sums_;
};

}  // namespace vqlib::kernels
