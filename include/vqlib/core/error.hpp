#pragma once
// vqlib's exception hierarchy and the check macros that raise it.
//
// Every exception derives from vqlib::error (itself a std::runtime_error), so a caller can catch
// all of vqlib's failures in one place, or a single category:
//   invalid_argument  - a value outside its documented range (bits = 9, group size 0, ...)
//   shape_error       - dimensions that do not agree (H not C x C, group size not dividing C, ...)
//   numerical_error   - NaN/Inf in the data, a Hessian that is not positive semi-definite, ...
//   io_error          - unreadable, truncated or malformed files
// Messages name the argument, its value and what was expected.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace vqlib {

class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error("vqlib: " + what) {}
};

class invalid_argument : public error {
public:
    using error::error;
};

class shape_error : public error {
public:
    using error::error;
};

class numerical_error : public error {
public:
    using error::error;
};

class io_error : public error {
public:
    using error::error;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    out.precision(9);
    (out << ... << parts);
    return out.str();
}

}  // namespace detail
}  // namespace vqlib

/// Throws `exception_type` with a message built from the remaining arguments unless `condition`
/// holds. Example:
///   VQLIB_CHECK(bits >= 1 && bits <= 8, vqlib::invalid_argument,
///               "bits = ", bits, ": expected 1..8");
#define VQLIB_CHECK(condition, exception_type, ...)                        \
    do {                                                                   \
        if (!(condition)) {                                                \
            throw exception_type(::vqlib::detail::concat(__VA_ARGS__));    \
        }                                                                  \
    } while (false)

/// Checks a value against a range. The message names the argument and the expected range:
///   "group_size = 0: expected a value in [1, 512]".
#define VQLIB_CHECK_RANGE(name, value, lo, hi)                                                   \
    VQLIB_CHECK((value) >= (lo) && (value) <= (hi), ::vqlib::invalid_argument, name, " = ",     \
                (value), ": expected a value in [", (lo), ", ", (hi), "]")
