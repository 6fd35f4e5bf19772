# vqlib's CUDA tests and benchmarks (the CUDA backend lives in include/vqlib/backend/cuda/*.cuh,
# header-only and compiled only by nvcc; the library target itself never needs CUDA).
#
# Include this file after enable_language(CUDA) (top-level CMakeLists.txt, under
# VQLIB_ENABLE_CUDA); then call
#   vqlib_add_cuda_tests()       from tests/CMakeLists.txt (needs vqlib_catch_main)
#   vqlib_add_cuda_benchmarks()  from benchmarks/CMakeLists.txt
# Both do nothing when no CUDA compiler was found. The executables build on machines without a
# GPU; the tests then pass, each with the warning "no CUDA device: skipped", and the benchmarks
# print that they need a GPU and exit 0.

include_guard(GLOBAL)

# Options every vqlib CUDA translation unit needs, for the CUDA language only:
#   EIGEN_NO_CUDA  Eigen stays host-only (the .cuh device code uses raw pointers); without it
#                  nvcc warns (#20012) on Eigen's defaulted __host__ __device__ members.
#   host warnings  -Wall -Wextra for the host compiler; unknown pragmas are Eigen's nvcc-only
#                  "#pragma diag_suppress" lines, which gcc does not know.
function(vqlib_cuda_setup_target target)
    # C++20 for nvcc: CMake before 3.26 (or so) does not know nvcc's C++20 flag, so pass it
    # ourselves where CMake cannot.
    if("cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
        set_target_properties(${target} PROPERTIES
            CUDA_STANDARD 20
            CUDA_STANDARD_REQUIRED ON
            CUDA_EXTENSIONS OFF)
    else()
        target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
    endif()
    target_compile_definitions(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:EIGEN_NO_CUDA>)
    # --diag-suppress=1675: nvcc's front end does not know `#pragma GCC unroll` (the host
    # kernels' loop hints, kept for the host compiler).
    target_compile_options(${target} PRIVATE
        $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>
        $<$<COMPILE_LANGUAGE:CUDA>:--diag-suppress=1675>)
    # vqlib::vqlib brings OpenMP to the C++ compiler only; give nvcc's host pass the same flag,
    # so that the inline parallel loops (core/threading.hpp) are one definition in .cu and .cpp
    # translation units alike.
    if(VQLIB_WITH_OPENMP AND OpenMP_CXX_FLAGS)
        target_compile_options(${target} PRIVATE
            "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${OpenMP_CXX_FLAGS}>")
    endif()
    target_link_libraries(${target} PRIVATE vqlib::vqlib CUDA::cudart)
endfunction()

# vqlib_tests_cuda from tests/cuda/*.cu plus the host-only tests/cuda/cpu_reference.cpp (the CPU
# backend's results; nvcc cannot compile vqlib/backend/cpu.hpp), labelled "cuda" for ctest.
function(vqlib_add_cuda_tests)
    if(NOT CMAKE_CUDA_COMPILER)
        return()
    endif()
    find_package(CUDAToolkit REQUIRED)
    file(GLOB cuda_test_sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/cuda/*.cu")
    file(GLOB cuda_test_host_sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/cuda/*.cpp")
    if(NOT cuda_test_sources)
        return()
    endif()
    add_executable(vqlib_tests_cuda ${cuda_test_sources} ${cuda_test_host_sources})
    vqlib_cuda_setup_target(vqlib_tests_cuda)
    target_link_libraries(vqlib_tests_cuda PRIVATE vqlib_catch_main Catch2::Catch2)
    target_compile_options(vqlib_tests_cuda PRIVATE
        $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU,Clang,AppleClang>>:-Wall -Wextra>)
    add_test(NAME vqlib_tests_cuda COMMAND vqlib_tests_cuda)
    if(DEFINED VQLIB_TEST_TIMEOUT)
        set_tests_properties(vqlib_tests_cuda PROPERTIES TIMEOUT ${VQLIB_TEST_TIMEOUT})
    endif()
    set_tests_properties(vqlib_tests_cuda PROPERTIES LABELS cuda)
endfunction()

# One executable per file: benchmarks/cuda/<name>.cu -> vqlib_bench_cuda_<name>, each with its
# own main, linked with cuBLAS (the reference GEMV).
function(vqlib_add_cuda_benchmarks)
    if(NOT CMAKE_CUDA_COMPILER)
        return()
    endif()
    find_package(CUDAToolkit REQUIRED)
    file(GLOB cuda_benchmark_sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/benchmarks/cuda/*.cu")
    foreach(source IN LISTS cuda_benchmark_sources)
        get_filename_component(name "${source}" NAME_WE)
        set(target vqlib_bench_cuda_${name})
        add_executable(${target} "${source}")
        vqlib_cuda_setup_target(${target})
        target_link_libraries(${target} PRIVATE CUDA::cublas)
    endforeach()
endfunction()
