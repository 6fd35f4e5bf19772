// The CUDA kernels' time next to the bandwidth floor and next to cuBLAS.
//
//   assignment  nearest_centroid for k-means-sized problems (N points, D, K)
//   gemv        fused dequant-GEMV (GPTVQ 2D / 4D, VPTQ v8/k65536 and v8/k256) on 4096x4096 and
//               4096x11008 layers, batch 1 and 8, next to cuBLAS SGEMV / SGEMM on the fp32 layer
//
// The bandwidth floor of a kernel is the bytes it must move (compressed weights + codebooks +
// input + output for the GEMV; points + centroids + indices for the assignment) divided by the
// device's copy bandwidth, measured here with a device-to-device cudaMemcpy of the same size
// (counting its read and its write). Without a CUDA device the program says so and exits 0.
//
// Usage: vqlib_bench_cuda_kernels [iterations=50]
#include <vqlib/backend/cuda.cuh>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <cublas_v2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace vqlib;

namespace {

#define BENCH_CUBLAS_CHECK(call)                                                         \
    do {                                                                                 \
        const cublasStatus_t status_ = (call);                                           \
        if (status_ != CUBLAS_STATUS_SUCCESS)                                            \
            throw vqlib::error(vqlib::detail::concat("cuBLAS call ", #call, " failed: ", \
                                                     static_cast<int>(status_)));        \
    } while (false)

int g_iterations = 50;

/// Median time of one call of f, in microseconds (CUDA events, after 3 warm-up calls).
double time_us(const std::function<void()>& f) {
    for (int i = 0; i < 3; ++i) f();
    VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
    cudaEvent_t start, stop;
    VQLIB_CUDA_CHECK(cudaEventCreate(&start));
    VQLIB_CUDA_CHECK(cudaEventCreate(&stop));
    std::vector<double> times;
    for (int i = 0; i < g_iterations; ++i) {
        VQLIB_CUDA_CHECK(cudaEventRecord(start));
        f();
        VQLIB_CUDA_CHECK(cudaEventRecord(stop));
        VQLIB_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0.0f;
        VQLIB_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        times.push_back(1000.0 * ms);
    }
    VQLIB_CUDA_CHECK(cudaEventDestroy(start));
    VQLIB_CUDA_CHECK(cudaEventDestroy(stop));
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

/// Device copy bandwidth (bytes read + written per second) for a copy of `bytes` bytes.
double copy_bandwidth(std::size_t bytes) {
    bytes = std::max<std::size_t>(bytes, 4);
    cuda::DeviceBuffer<char> a(bytes), b(bytes);
    a.zero();
    const double us = time_us([&] {
        VQLIB_CUDA_CHECK(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    });
    return 2.0 * static_cast<double>(bytes) / (us * 1e-6);
}

MatrixXf random_matrix(Index rows, Index cols, std::mt19937& rng) {
    std::normal_distribution<float> normal;
    MatrixXf m(rows, cols);
    for (Index e = 0; e < m.size(); ++e) m.data()[e] = normal(rng);
    return m;
}

VqLayer make_vq(Index rows, Index cols, Index dim, Index k, std::mt19937& rng) {
    VqLayer layer;
    VqLayout& L = layer.layout;
    L.rows = rows;
    L.cols = cols;
    L.dim = dim;
    L.k = k;
    L.rows_per_codebook = rows;  // one codebook per column group of 256 columns (GPTVQ-like)
    L.columns_per_group = 256;
    if (cols % 256 != 0) L.columns_per_group = cols;  // 11008 = 43 * 256, kept general
    layer.codebooks = random_matrix(L.codebook_count() * k, dim, rng);
    layer.indices.resize(rows, L.vectors_per_row());
    std::uniform_int_distribution<int> pick(0, static_cast<int>(k - 1));
    for (Index e = 0; e < layer.indices.size(); ++e)
        layer.indices.data()[e] = static_cast<std::uint16_t>(pick(rng));
    return layer;
}

VptqLayer make_vptq(Index rows, Index cols, Index v, Index k, std::mt19937& rng) {
    VptqLayer layer;
    VptqLayout& L = layer.layout;
    L.out_features = rows;
    L.in_features = cols;
    L.vector_len = v;
    L.num_centroids = k;
    L.group_num = 1;
    L.group_size = cols;
    layer.centroids = random_matrix(k, v, rng);
    layer.indices.resize(static_cast<std::size_t>(L.row_blocks() * cols));
    std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(k - 1));
    for (auto& i : layer.indices) i = pick(rng);
    return layer;
}

void header(const char* what) {
    std::printf("\n%s\n", what);
    std::printf("%-28s %6s %10s %10s %10s %8s %12s %10s\n", "kernel", "batch", "time_us",
                "MB_moved", "GB/s", "floor_us", "%_of_floor", "cublas_us");
}

void row(const std::string& name, int batch, double us, double bytes, double copy_bw,
         double cublas_us) {
    const double floor_us = bytes / copy_bw * 1e6;
    std::printf("%-28s %6d %10.1f %10.2f %10.1f %8.1f %11.0f%% ", name.c_str(), batch, us,
                bytes / 1e6, bytes / (us * 1e-6) / 1e9, floor_us, 100.0 * floor_us / us);
    if (cublas_us > 0)
        std::printf("%10.1f\n", cublas_us);
    else
        std::printf("%10s\n", "-");
}

void bench_assignment(std::mt19937& rng) {
    header("nearest_centroid (float32 direct distances, ties to the lowest index)");
    struct Case {
        Index n, d, k;
    };
    for (const Case c : {Case{1 << 20, 1, 16}, Case{1 << 20, 2, 256}, Case{1 << 19, 4, 256},
                         Case{1 << 18, 8, 256}, Case{1 << 16, 8, 4096}, Case{1 << 14, 8, 65536}}) {
        const MatrixXf points = random_matrix(c.n, c.d, rng);
        const MatrixXf centroids = random_matrix(c.k, c.d, rng);
        cuda::DeviceBuffer<float> dp(std::span<const float>(points.data(), points.size()));
        cuda::DeviceBuffer<float> dc(std::span<const float>(centroids.data(), centroids.size()));
        cuda::DeviceBuffer<std::int32_t> out(static_cast<std::size_t>(c.n));
        const double us = time_us([&] {
            cuda::nearest_centroid_device(dp.data(), c.n, c.n, c.d, dc.data(), c.k, nullptr,
                                          out.data());
        });
        const double bytes = 4.0 * (c.n * c.d + c.k * c.d + c.n);
        const std::string name = "assign N=" + std::to_string(c.n) + " D=" + std::to_string(c.d) +
                                 " K=" + std::to_string(c.k);
        row(name, 1, us, bytes, copy_bandwidth(static_cast<std::size_t>(bytes / 2)), 0.0);
    }
}

void bench_gemv(Index rows, Index cols, std::mt19937& rng, cublasHandle_t handle) {
    char title[128];
    std::snprintf(title, sizeof title, "fused dequant-GEMV, %ldx%ld (fp32 accumulation)",
                  static_cast<long>(rows), static_cast<long>(cols));
    header(title);
    // cuBLAS on the fp32 layer, for reference.
    const MatrixXf dense = random_matrix(rows, cols, rng);
    cuda::DeviceBuffer<float> dw(std::span<const float>(dense.data(), dense.size()));
    cuda::DeviceBuffer<float> x(static_cast<std::size_t>(cols * cuda::kMaxGemvBatch));
    cuda::DeviceBuffer<float> y(static_cast<std::size_t>(rows * cuda::kMaxGemvBatch));
    {
        std::vector<float> hx(x.size());
        for (auto& v : hx) v = std::normal_distribution<float>()(rng);
        x.upload(hx);
    }
    double cublas_us[cuda::kMaxGemvBatch + 1] = {};
    const float one = 1.0f, zero = 0.0f;
    for (int batch : {1, 8}) {
        // x is row-major N x batch = column-major batch x N: y = W * x^T via SGEMM (op(B) = T).
        cublas_us[batch] = time_us([&] {
            if (batch == 1)
                BENCH_CUBLAS_CHECK(cublasSgemv(handle, CUBLAS_OP_N, static_cast<int>(rows),
                                               static_cast<int>(cols), &one, dw.data(),
                                               static_cast<int>(rows), x.data(), 1, &zero,
                                               y.data(), 1));
            else
                BENCH_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T,
                                               static_cast<int>(rows), batch,
                                               static_cast<int>(cols), &one, dw.data(),
                                               static_cast<int>(rows), x.data(), batch, &zero,
                                               y.data(), static_cast<int>(rows)));
        });
        const double bytes = 4.0 * (double(rows) * cols + double(cols) * batch + double(rows) * batch);
        row("cuBLAS fp32", batch, cublas_us[batch], bytes,
            copy_bandwidth(static_cast<std::size_t>(bytes / 2)), cublas_us[batch]);
    }

    struct VqCase {
        const char* name;
        Index dim, k;
    };
    for (const VqCase c : {VqCase{"GPTVQ 2D k256 (4 bpw)", 2, 256},
                           VqCase{"GPTVQ 2D k64 (3 bpw)", 2, 64},
                           VqCase{"GPTVQ 4D k256 (2 bpw)", 4, 256}}) {
        const VqLayer layer = make_vq(rows, cols, c.dim, c.k, rng);
        const cuda::DeviceVqLayer device(layer);
        cuda::DeviceBuffer<float> workspace;
        for (int batch : {1, 8}) {
            const double us = time_us(
                [&] { cuda::gemv_device(device, x.data(), y.data(), batch, workspace); });
            // Indices stored as uint16 on the device (the bits a decode reads).
            const double bytes = double(device.bytes()) + 4.0 * (double(cols) + rows) * batch;
            row(c.name, batch, us, bytes, copy_bandwidth(static_cast<std::size_t>(bytes / 2)),
                cublas_us[batch]);
        }
    }
    struct VptqCase {
        const char* name;
        Index v, k;
    };
    for (const VptqCase c : {VptqCase{"VPTQ v8 k65536 (2 bpw)", 8, 65536},
                             VptqCase{"VPTQ v8 k256 (1 bpw)", 8, 256}}) {
        const VptqLayer layer = make_vptq(rows, cols, c.v, c.k, rng);
        const cuda::DeviceVptqLayer device(layer);
        cuda::VptqGemvWorkspace ws;
        for (int batch : {1, 8}) {
            const double us =
                time_us([&] { cuda::gemv_device(device, x.data(), y.data(), batch, ws); });
            const double bytes = double(device.bytes()) + 4.0 * (double(cols) + rows) * batch;
            row(c.name, batch, us, bytes, copy_bandwidth(static_cast<std::size_t>(bytes / 2)),
                cublas_us[batch]);
        }
        // The decode alone: packed codes to a dense fp32 W.
        cuda::DeviceBuffer<float> w(static_cast<std::size_t>(rows * cols));
        const double us = time_us([&] { device.dequantize_device(w.data(), rows); });
        const double bytes = double(device.bytes()) + 4.0 * double(rows) * cols;
        row(std::string(c.name) + " dequant", 0, us, bytes,
            copy_bandwidth(static_cast<std::size_t>(bytes / 2)), 0.0);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (!cuda::device_available()) {
        std::printf("no CUDA device: the CUDA benchmarks need a GPU (nothing was measured)\n");
        return 0;
    }
    if (argc > 1) g_iterations = std::max(1, std::atoi(argv[1]));
    try {
        std::printf("device: %s, %d iterations per measurement (median)\n",
                    cuda::device_name().c_str(), g_iterations);
        std::mt19937 rng(2024);
        bench_assignment(rng);
        cublasHandle_t handle;
        BENCH_CUBLAS_CHECK(cublasCreate(&handle));
        bench_gemv(4096, 4096, rng, handle);
        bench_gemv(4096, 11008, rng, handle);
        BENCH_CUBLAS_CHECK(cublasDestroy(handle));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
    return 0;
}
