#pragma once
// The fast Walsh-Hadamard transform (FWHT) of a contiguous power-of-two-length vector.
//
// fwht(x, n) computes x <- H_n x / sqrt(n), with H_n the Sylvester-ordered Hadamard matrix
// H_n(i, j) = (-1)^popcount(i & j). The normalized transform is orthogonal and symmetric, hence its
// own inverse. It runs in place in O(n log n) additions (iterative radix-4 butterflies, done block
// by block in L1-sized pieces, vectorized for the widest instruction set the CPU offers); the
// result is bit-identical whatever the instruction set.
#include <vqlib/core/error.hpp>
#include <vqlib/transform/kernels.hpp>

#include <cmath>
#include <cstddef>

namespace vqlib::transform {

/// True if n is a power of two (1, 2, 4, ...).
constexpr bool is_power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

namespace detail {

inline void check_fwht_size(std::size_t n) {
    VQLIB_CHECK(is_power_of_two(n), invalid_argument, "fwht: n = ", n, ": expected a power of two");
}

template <class T>
void fwht_scaled(T* data, std::size_t n, bool normalize) {
    check_fwht_size(n);
    const auto& kernels = kernel_table<T>();
    kernels.fwht(data, n, 1);
    if (!normalize || n == 1) return;
    kernels.multiply_scalar(data, data, static_cast<T>(1.0 / std::sqrt(static_cast<double>(n))), n);
}

}  // namespace detail

/// In-place normalized FWHT: data[0, n) <- H_n data / sqrt(n). n must be a power of two
/// (invalid_argument otherwise). Applying it twice gives the input back (up to rounding).
inline void fwht(float* data, std::size_t n) { detail::fwht_scaled(data, n, true); }

/// In-place normalized FWHT in double precision (see the float overload).
inline void fwht(double* data, std::size_t n) { detail::fwht_scaled(data, n, true); }

/// In-place unnormalized FWHT: data[0, n) <- H_n data (entries grow by up to a factor n).
inline void fwht_unnormalized(float* data, std::size_t n) { detail::fwht_scaled(data, n, false); }

/// In-place unnormalized FWHT in double precision.
inline void fwht_unnormalized(double* data, std::size_t n) { detail::fwht_scaled(data, n, false); }

}  // namespace vqlib::transform
