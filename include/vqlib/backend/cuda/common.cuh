#pragma once
// The CUDA backend's plumbing: error checking, device detection and RAII device buffers.
//
// Every header under vqlib/backend/cuda/ (and vqlib/backend/cuda.cuh) is CUDA C++: it holds
// __global__ kernels and is compiled only by nvcc. Including one from a translation unit that
// nvcc does not compile stops with #error (the guard below), so a host-only build never sees
// device code; the rest of vqlib never includes these headers (the header self-check of
// tests/CMakeLists.txt leaves backend/cuda/ out).
//
// Compile with nvcc -std=c++20 -DEIGEN_NO_CUDA (Eigen is used by the host wrappers only; with
// EIGEN_NO_CUDA it does not annotate its functions __host__ __device__, which avoids nvcc's
// warnings #20012 on Eigen's defaulted members). Device code uses raw pointers only.
//
// Kernels that are not templates are declared `static`: each .cu translation unit gets its own
// copy, so a program may include these headers from several of them (nvcc ignores `inline` on
// a __global__ function, and an external one would be defined twice at link time).
//
// The solver, k-means and the method headers compile in a .cu file (tests/cuda/
// test_cuda_solver.cu runs them on the CUDA roles); their CPU kernels are then compiled by
// nvcc's host pass. The tests compare with CPU results computed in a separate host translation
// unit (tests/cuda/cpu_reference.cpp), built with the C++ compiler's own flags.
#if !defined(__CUDACC__)
#error "vqlib/backend/cuda/*.cuh are CUDA headers: compile this translation unit with nvcc (a .cu file)"
#else

#include <vqlib/core/error.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

namespace vqlib::cuda {

namespace detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                          int line) {
    throw ::vqlib::error(::vqlib::detail::concat("CUDA call ", call, " failed at ", file, ":",
                                                 line, ": ", cudaGetErrorName(status), " (",
                                                 cudaGetErrorString(status), ")"));
}

}  // namespace detail

/// Throws vqlib::error naming the call, the place and CUDA's error name and string unless the
/// call returns cudaSuccess.
#define VQLIB_CUDA_CHECK(call)                                                       \
    do {                                                                             \
        const cudaError_t vqlib_cuda_status_ = (call);                               \
        if (vqlib_cuda_status_ != cudaSuccess)                                       \
            ::vqlib::cuda::detail::throw_cuda_error(vqlib_cuda_status_, #call, __FILE__, \
                                                    __LINE__);                       \
    } while (false)

/// Checks the launch of the kernel just queued (configuration errors, sticky faults).
#define VQLIB_CUDA_CHECK_LAUNCH() VQLIB_CUDA_CHECK(cudaGetLastError())

/// True when a CUDA device can be used: a driver is installed and at least one device is
/// visible. Never throws and never aborts; the answer is computed once per process.
inline bool device_available() noexcept {
    static const bool available = [] {
        int count = 0;
        const cudaError_t status = cudaGetDeviceCount(&count);
        if (status != cudaSuccess) {
            (void)cudaGetLastError();  // clear the (non-sticky) error for later calls
            return false;
        }
        return count > 0;
    }();
    return available;
}

/// Name of the current device ("" without one).
inline std::string device_name() {
    if (!device_available()) return "";
    int device = 0;
    VQLIB_CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    VQLIB_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    return prop.name;
}

/// An owning, move-only array of `T` in device memory (cudaMalloc / cudaFree).
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t count) : size_(count) {
        if (count > 0) VQLIB_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), bytes()));
    }
    /// A buffer holding a copy of `host`.
    explicit DeviceBuffer(std::span<const T> host) : DeviceBuffer(host.size()) { upload(host); }

    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ~DeviceBuffer() { release(); }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }
    bool empty() const { return size_ == 0; }

    /// Copies host[0, host.size()) to the start of the buffer (synchronous).
    void upload(std::span<const T> host) {
        VQLIB_CHECK(host.size() <= size_, ::vqlib::shape_error, "DeviceBuffer::upload: ",
                    host.size(), " elements into a buffer of ", size_);
        if (!host.empty())
            VQLIB_CUDA_CHECK(cudaMemcpy(data_, host.data(), host.size() * sizeof(T),
                                        cudaMemcpyHostToDevice));
    }
    /// Copies the start of the buffer to host[0, host.size()) (synchronous).
    void download(std::span<T> host) const {
        VQLIB_CHECK(host.size() <= size_, ::vqlib::shape_error, "DeviceBuffer::download: ",
                    host.size(), " elements from a buffer of ", size_);
        if (!host.empty())
            VQLIB_CUDA_CHECK(cudaMemcpy(host.data(), data_, host.size() * sizeof(T),
                                        cudaMemcpyDeviceToHost));
    }
    /// Sets every byte to zero (synchronous).
    void zero() {
        if (size_ > 0) VQLIB_CUDA_CHECK(cudaMemset(data_, 0, bytes()));
    }

private:
    void release() noexcept {
        if (data_ != nullptr) (void)cudaFree(data_);
        data_ = nullptr;
        size_ = 0;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Throws vqlib::error unless a device is available (the host wrappers call it first, so that
/// a machine without a GPU gets one clear message instead of a driver error).
inline void require_device(const char* what) {
    VQLIB_CHECK(device_available(), ::vqlib::error, what,
                ": no CUDA device is available (check vqlib::cuda::device_available() first)");
}

/// Blocks of `threads` threads covering `n` items.
inline unsigned blocks_for(std::int64_t n, int threads) {
    return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace vqlib::cuda

#endif  // __CUDACC__
