#pragma once
// Wall-clock seconds for the statistics the algorithms report.
#include <chrono>

namespace vqlib::detail {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace vqlib::detail
