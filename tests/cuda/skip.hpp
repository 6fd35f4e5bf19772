#pragma once
// The CUDA tests' guard: without a CUDA device a test passes with the warning
// "no CUDA device: skipped" (catch_discover_tests lists tests after the build, so a GPU test
// decides at run time).
#include <vqlib/backend/cuda/common.cuh>

#include <catch2/catch.hpp>

#define VQLIB_SKIP_WITHOUT_CUDA_DEVICE()          \
    do {                                          \
        if (!::vqlib::cuda::device_available()) { \
            WARN("no CUDA device: skipped");      \
            SUCCEED("no CUDA device: skipped");   \
            return;                               \
        }                                         \
    } while (false)
