#pragma once
// Dequantization on the GPU: grouped scalar codes (the Backend trait's dequantize), GPTVQ's
// VqLayer and VPTQ's layer in its packed format. Every value is computed with the same float32
// operations as the CPU code (no FMA contraction: __fmul_rn / __fadd_rn / __fsub_rn), so the
// results are bit-identical to GroupedScalarView's CpuBackend::dequantize, VqLayer::dequantize()
// and VptqLayer::dequantize().
//
// Device-resident layers (DeviceVqLayer, DeviceVptqLayer) are uploaded once and then decoded or
// multiplied (gemv.cuh) many times; the free functions dequantize(layer) upload, run and copy the
// result back.
//
// VPTQ's packed codes: each row [g, r, :] of the int32 word stream holds group_size merged codes
// of T = b + b_r bits (formats/packed_indices.hpp). Code j of a row is read as
//   s = j*T; w = s >> 5; o = s & 31; v = words[w] >> o;
//   if (o + T > 32) v |= words[w + 1] << (32 - o);  code = v & mask
// and split into idx = code & (2^b - 1), res = code >> b.
#include <vqlib/backend/cuda/common.cuh>

#if defined(__CUDACC__)
#include <vqlib/backend/backend.hpp>
#include <vqlib/formats/packed_indices.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/formats/vq_layer.hpp>

#include <cstdint>
#include <span>
#include <vector>

namespace vqlib::cuda {

namespace kernels {

/// out(r, j) = scale[g * rows + r] * (lut[codes(r, j)] - zero[g * rows + r]), g = g_idx[j];
/// codes and out column-major (ld rows / ld_out), columns already offset by the caller.
static __global__ void dequantize_grouped(const std::uint16_t* __restrict__ codes, std::int64_t rows,
                                   std::int64_t cols, const float* __restrict__ lut,
                                   const float* __restrict__ scales,
                                   const float* __restrict__ zeros,
                                   const std::int32_t* __restrict__ g_idx, float* __restrict__ out,
                                   std::int64_t ld_out) {
    const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= rows * cols) return;
    const std::int64_t r = e % rows, j = e / rows;
    const std::int64_t g = g_idx[j];
    out[j * ld_out + r] =
        __fmul_rn(scales[g * rows + r], __fsub_rn(lut[codes[j * rows + r]], zeros[g * rows + r]));
}

/// Reads merged code j of one packed row (T bits, mask = 2^T - 1).
__device__ __forceinline__ std::uint32_t read_packed_code(const std::uint32_t* __restrict__ row,
                                                          std::int64_t j, int T,
                                                          std::uint32_t mask) {
    const std::int64_t s = j * T;
    const std::int64_t w = s >> 5;
    const int o = static_cast<int>(s & 31);
    std::uint32_t v = row[w] >> o;
    if (o + T > 32) v |= row[w + 1] << (32 - o);
    return v & mask;
}

}  // namespace kernels

// ---- GPTVQ ------------------------------------------------------------------------------------

/// A VqLayer in device memory: codebooks row-major (one centroid of D floats per row), indices
/// column-major rows x vectors_per_row (uint16), normalization scales column-major.
struct DeviceVqLayer {
    VqLayout layout;
    Index codebook_rows = 0;
    Index scale_block = 0;
    DeviceBuffer<float> codebooks;
    DeviceBuffer<std::uint16_t> indices;
    DeviceBuffer<float> scales;

    DeviceVqLayer() = default;
    explicit DeviceVqLayer(const VqLayer& layer) { upload(layer); }

    Index rows() const { return layout.rows; }
    Index cols() const { return layout.cols; }

    void upload(const VqLayer& layer) {
        const VqLayout& L = layer.layout;
        require_device("cuda::DeviceVqLayer");
        VQLIB_CHECK(L.dim >= 1 && L.rows >= 1 && L.cols >= 1 && L.cols % L.dim == 0,
                    shape_error, "cuda::DeviceVqLayer: ", L.rows, "x", L.cols, " with D = ", L.dim,
                    ": expected a non-empty layer whose columns are a multiple of D");
        VQLIB_CHECK(L.k >= 1 && L.rows_per_codebook >= 1 && L.columns_per_group >= 1, shape_error,
                    "cuda::DeviceVqLayer: k = ", L.k, ", rows_per_codebook = ",
                    L.rows_per_codebook, ", columns_per_group = ", L.columns_per_group);
        VQLIB_CHECK(layer.codebooks.cols() == L.dim, shape_error, "cuda::DeviceVqLayer: codebooks ",
                    "have ", layer.codebooks.cols(), " columns: expected D = ", L.dim);
        const Index V = L.vectors_per_row();
        VQLIB_CHECK(layer.indices.rows() == L.rows && layer.indices.cols() == V, shape_error,
                    "cuda::DeviceVqLayer: indices are ", layer.indices.rows(), "x",
                    layer.indices.cols(), ": expected ", L.rows, "x", V);
        // The last codebook the decoder reads (the same formula as VqLayer::dequantize()).
        const Index last = L.codebook_of(L.rows - 1, (V - 1) * L.dim / L.columns_per_group);
        VQLIB_CHECK((last + 1) * L.k <= layer.codebooks.rows(), shape_error,
                    "cuda::DeviceVqLayer: ", layer.codebooks.rows(), " codebook rows: the layout "
                    "reads up to codebook ", last, " of ", L.k, " entries");
        for (Index v = 0; v < V; ++v)
            for (Index r = 0; r < L.rows; ++r)
                VQLIB_CHECK(layer.indices(r, v) < L.k, invalid_argument,
                            "cuda::DeviceVqLayer: index ", layer.indices(r, v), " at (", r, ", ",
                            v, ") is out of range for K = ", L.k);
        if (layer.scale_block > 0)
            VQLIB_CHECK(layer.scales.rows() == L.rows &&
                            layer.scales.cols() * layer.scale_block >= L.cols,
                        shape_error, "cuda::DeviceVqLayer: scales are ", layer.scales.rows(), "x",
                        layer.scales.cols(), " for blocks of ", layer.scale_block);
        layout = L;
        codebook_rows = layer.codebooks.rows();
        scale_block = layer.scale_block;
        std::vector<float> rowmajor(static_cast<std::size_t>(codebook_rows * L.dim));
        for (Index c = 0; c < codebook_rows; ++c)
            for (Index j = 0; j < L.dim; ++j)
                rowmajor[static_cast<std::size_t>(c * L.dim + j)] = layer.codebooks(c, j);
        codebooks = DeviceBuffer<float>(std::span<const float>(rowmajor));
        indices = DeviceBuffer<std::uint16_t>(std::span<const std::uint16_t>(
            layer.indices.data(), static_cast<std::size_t>(layer.indices.size())));
        if (scale_block > 0)
            scales = DeviceBuffer<float>(std::span<const float>(
                layer.scales.data(), static_cast<std::size_t>(layer.scales.size())));
        else
            scales = DeviceBuffer<float>();
    }

    /// Compressed bytes a decode reads: indices at 16 bits, fp32 codebooks and scales as stored
    /// on the device.
    std::size_t bytes() const { return indices.bytes() + codebooks.bytes() + scales.bytes(); }

    /// W (rows x cols, column-major, leading dimension ld) into device memory.
    void dequantize_device(float* w, Index ld, cudaStream_t stream = nullptr) const;
};

namespace kernels {

/// One thread per weight (r fastest): W(r, col) = codebook row (cb*K + idx)[j] [* scale].
static __global__ void dequantize_vq(const float* __restrict__ codebooks,
                              const std::uint16_t* __restrict__ indices,
                              const float* __restrict__ scales, std::int64_t scale_block,
                              std::int64_t rows, std::int64_t cols, int dim, std::int64_t k,
                              std::int64_t rows_per_codebook, std::int64_t columns_per_group,
                              std::int64_t bands, float* __restrict__ out, std::int64_t ld) {
    const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= rows * cols) return;
    const std::int64_t r = e % rows, col = e / rows;
    const std::int64_t v = col / dim, j = col % dim;
    const std::int64_t cg = v * dim / columns_per_group;
    const std::int64_t cb = cg * bands + r / rows_per_codebook;
    float w = codebooks[(cb * k + indices[v * rows + r]) * dim + j];
    if (scale_block > 0) w = __fmul_rn(w, scales[(col / scale_block) * rows + r]);
    out[col * ld + r] = w;
}

}  // namespace kernels

inline void DeviceVqLayer::dequantize_device(float* w, Index ld, cudaStream_t stream) const {
    const VqLayout& L = layout;
    constexpr int threads = 256;
    kernels::dequantize_vq<<<blocks_for(L.rows * L.cols, threads), threads, 0, stream>>>(
        codebooks.data(), indices.data(), scales.data(), scale_block, L.rows, L.cols,
        static_cast<int>(L.dim), L.k, L.rows_per_codebook, L.columns_per_group, L.bands(), w, ld);
    VQLIB_CUDA_CHECK_LAUNCH();
}

/// VqLayer::dequantize() on the GPU (uploads the layer, decodes, copies W back).
inline MatrixXf dequantize(const VqLayer& layer) {
    const DeviceVqLayer device(layer);
    DeviceBuffer<float> w(static_cast<std::size_t>(layer.rows() * layer.cols()));
    device.dequantize_device(w.data(), layer.rows());
    VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
    MatrixXf out(layer.rows(), layer.cols());
    w.download(std::span<float>(out.data(), static_cast<std::size_t>(out.size())));
    return out;
}

// ---- VPTQ -------------------------------------------------------------------------------------

/// The packed layout of a VPTQ layer's merged codes: [group_num, row_blocks, group_size] codes of
/// index_bits + res_index_bits bits.
inline io::PackedLayout vptq_packed_layout(const VptqLayout& L) {
    io::PackedLayout p;
    p.groups = L.group_num;
    p.rows = L.row_blocks();
    p.codes_per_row = L.group_size;
    p.index_bits = L.index_bits();
    p.residual_bits = L.res_index_bits();
    p.num_centroids = static_cast<std::uint64_t>(L.num_centroids);
    p.num_res_centroids = L.has_residual() ? static_cast<std::uint64_t>(L.num_res_centroids) : 0;
    return p;
}

/// A VPTQ layer in device memory, codes in the packed int32 word stream of VPTQ's checkpoints;
/// codebooks row-major (one v-dimensional centroid per row); permutation as int32.
struct DeviceVptqLayer {
    VptqLayout layout;
    Index words_per_row = 0;
    DeviceBuffer<std::uint32_t> words;      // [G, R, W]
    DeviceBuffer<float> centroids;          // (g*k + i) * v + t
    DeviceBuffer<float> res_centroids;      // (g*k_res + j) * v + t
    DeviceBuffer<float> outlier_centroids;  // i * v0 + t
    DeviceBuffer<std::uint32_t> outlier_indices;  // r0 * outlier_size + c
    DeviceBuffer<std::int32_t> perm;        // stored column p -> original column (empty: none)
    DeviceBuffer<float> weight_scale;       // per original column (enable_norm)
    DeviceBuffer<float> weight_bias;

    DeviceVptqLayer() = default;
    /// Packs the layer's indices (io::pack_codes) and uploads everything.
    explicit DeviceVptqLayer(const VptqLayer& layer) {
        upload(layer, io::pack_codes(vptq_packed_layout(layer.layout), layer.indices,
                                     layer.res_indices)
                          .words);
    }
    /// Uploads the layer with codes given as packed words (as read from a checkpoint, each the
    /// uint32 bits of an int32 element); layer.indices / res_indices are not used. The words are
    /// checked on the host first (io::unpack_codes: word count, zero padding, every index within
    /// its codebook), so a kernel never reads past a codebook.
    DeviceVptqLayer(const VptqLayer& layer, std::span<const std::uint32_t> packed_words) {
        layer.layout.validate();
        (void)io::unpack_codes(vptq_packed_layout(layer.layout), packed_words);
        upload(layer, packed_words);
    }

    Index rows() const { return layout.out_features; }
    Index cols() const { return layout.in_features; }

    /// Uploads `packed_words` as they are (the caller vouches for them: codes within the
    /// codebooks, as io::pack_codes writes them).
    void upload(const VptqLayer& layer, std::span<const std::uint32_t> packed_words) {
        const VptqLayout& L = layer.layout;
        L.validate();
        require_device("cuda::DeviceVptqLayer");
        const io::PackedLayout P = vptq_packed_layout(L);
        VQLIB_CHECK(packed_words.size() == static_cast<std::size_t>(P.total_words()), shape_error,
                    "cuda::DeviceVptqLayer: ", packed_words.size(), " packed words: expected ",
                    P.total_words());
        VQLIB_CHECK(layer.centroids.rows() == L.group_num * L.num_centroids &&
                        layer.centroids.cols() == L.vector_len,
                    shape_error, "cuda::DeviceVptqLayer: centroids are ", layer.centroids.rows(),
                    "x", layer.centroids.cols());
        if (L.has_residual())
            VQLIB_CHECK(layer.res_centroids.rows() == L.group_num * L.num_res_centroids &&
                            layer.res_centroids.cols() == L.vector_len,
                        shape_error, "cuda::DeviceVptqLayer: residual centroids are ",
                        layer.res_centroids.rows(), "x", layer.res_centroids.cols());
        if (L.has_outliers()) {
            VQLIB_CHECK(layer.outlier_centroids.rows() == L.outlier_centroids &&
                            layer.outlier_centroids.cols() == L.outlier_vector_len &&
                            layer.outlier_indices.size() ==
                                static_cast<std::size_t>(L.outlier_row_blocks() * L.outlier_size),
                        shape_error, "cuda::DeviceVptqLayer: outlier codebook or indices do not "
                        "match the layout");
            for (auto i : layer.outlier_indices)
                VQLIB_CHECK(Index(i) < L.outlier_centroids, invalid_argument,
                            "cuda::DeviceVptqLayer: outlier index ", i, " out of range");
        }
        VQLIB_CHECK(layer.perm.empty() || layer.perm.size() == static_cast<std::size_t>(L.in_features),
                    shape_error, "cuda::DeviceVptqLayer: permutation of length ", layer.perm.size());
        if (L.enable_norm)
            VQLIB_CHECK(layer.weight_scale.size() == L.in_features &&
                            layer.weight_bias.size() == L.in_features,
                        shape_error, "cuda::DeviceVptqLayer: ", layer.weight_scale.size(),
                        " scales and ", layer.weight_bias.size(), " biases for ", L.in_features,
                        " columns");
        layout = L;
        words_per_row = P.words_per_row();
        words = DeviceBuffer<std::uint32_t>(packed_words);
        centroids = upload_rowmajor(layer.centroids);
        res_centroids = L.has_residual() ? upload_rowmajor(layer.res_centroids) : DeviceBuffer<float>();
        outlier_centroids =
            L.has_outliers() ? upload_rowmajor(layer.outlier_centroids) : DeviceBuffer<float>();
        outlier_indices = DeviceBuffer<std::uint32_t>(std::span<const std::uint32_t>(layer.outlier_indices));
        std::vector<std::int32_t> p32(layer.perm.size());
        for (std::size_t p = 0; p < p32.size(); ++p) {
            VQLIB_CHECK(layer.perm[p] >= 0 && layer.perm[p] < L.in_features, invalid_argument,
                        "cuda::DeviceVptqLayer: perm[", p, "] = ", layer.perm[p]);
            p32[p] = static_cast<std::int32_t>(layer.perm[p]);
        }
        perm = DeviceBuffer<std::int32_t>(std::span<const std::int32_t>(p32));
        if (L.enable_norm) {
            weight_scale = DeviceBuffer<float>(std::span<const float>(
                layer.weight_scale.data(), static_cast<std::size_t>(L.in_features)));
            weight_bias = DeviceBuffer<float>(std::span<const float>(
                layer.weight_bias.data(), static_cast<std::size_t>(L.in_features)));
        } else {
            weight_scale = DeviceBuffer<float>();
            weight_bias = DeviceBuffer<float>();
        }
    }

    /// Compressed bytes a decode reads: packed words, outlier indices (uint32 here), fp32
    /// codebooks, permutation and normalization.
    std::size_t bytes() const {
        return words.bytes() + centroids.bytes() + res_centroids.bytes() +
               outlier_centroids.bytes() + outlier_indices.bytes() + perm.bytes() +
               weight_scale.bytes() + weight_bias.bytes();
    }

    /// W (M x N in the original column order, column-major, leading dimension ld) into device
    /// memory.
    void dequantize_device(float* w, Index ld, cudaStream_t stream = nullptr) const;

private:
    static DeviceBuffer<float> upload_rowmajor(const MatrixXf& m) {
        std::vector<float> rm(static_cast<std::size_t>(m.size()));
        for (Index r = 0; r < m.rows(); ++r)
            for (Index c = 0; c < m.cols(); ++c)
                rm[static_cast<std::size_t>(r * m.cols() + c)] = m(r, c);
        return DeviceBuffer<float>(std::span<const float>(rm));
    }
};

/// The device pointers and sizes a VPTQ kernel needs (passed by value to kernels).
struct VptqKernelArgs {
    const std::uint32_t* words;
    const float* centroids;
    const float* res_centroids;
    const float* outlier_centroids;
    const std::uint32_t* outlier_indices;
    const std::int32_t* perm;  // nullptr: identity
    const float* scale;        // nullptr: no normalization
    const float* bias;
    std::int64_t M, N, v, k, k_res, v0, outlier_size, group_size, group_num, R, R0, W;
    int T, b;
    std::uint32_t mask;
};

inline VptqKernelArgs kernel_args(const DeviceVptqLayer& d) {
    const VptqLayout& L = d.layout;
    VptqKernelArgs a{};
    a.words = d.words.data();
    a.centroids = d.centroids.data();
    a.res_centroids = L.has_residual() ? d.res_centroids.data() : nullptr;
    a.outlier_centroids = d.outlier_centroids.data();
    a.outlier_indices = d.outlier_indices.data();
    a.perm = d.perm.empty() ? nullptr : d.perm.data();
    a.scale = L.enable_norm ? d.weight_scale.data() : nullptr;
    a.bias = L.enable_norm ? d.weight_bias.data() : nullptr;
    a.M = L.out_features;
    a.N = L.in_features;
    a.v = L.vector_len;
    a.k = L.num_centroids;
    a.k_res = L.num_res_centroids;
    a.v0 = L.outlier_vector_len;
    a.outlier_size = L.outlier_size;
    a.group_size = L.group_size;
    a.group_num = L.group_num;
    a.R = L.row_blocks();
    a.R0 = L.outlier_row_blocks();
    a.W = d.words_per_row;
    a.T = L.index_bits() + L.res_index_bits();
    a.b = L.index_bits();
    a.mask = a.T >= 32 ? 0xffffffffu : ((1u << a.T) - 1u);
    return a;
}

namespace kernels {

/// One thread per (row block, stored column): writes v rows of original column perm[p].
static __global__ void dequantize_vptq(VptqKernelArgs a, std::int64_t blocks_per_column,
                                float* __restrict__ out, std::int64_t ld) {
    const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= blocks_per_column * a.N) return;
    const std::int64_t r = e % blocks_per_column, p = e / blocks_per_column;
    const std::int64_t n = a.perm != nullptr ? a.perm[p] : p;
    float* col = out + n * ld;
    const float s = a.scale != nullptr ? a.scale[n] : 1.0f;
    const float bias = a.scale != nullptr ? a.bias[n] : 0.0f;
    if (p < a.outlier_size) {
        if (r >= a.R0) return;
        const std::uint32_t i = a.outlier_indices[r * a.outlier_size + p];
        for (std::int64_t t = 0; t < a.v0 && r * a.v0 + t < a.M; ++t) {
            float value = a.outlier_centroids[i * a.v0 + t];
            if (a.scale != nullptr) value = __fadd_rn(__fmul_rn(value, s), bias);
            col[r * a.v0 + t] = value;
        }
        return;
    }
    if (r >= a.R) return;
    const std::int64_t q = p - a.outlier_size;
    const std::int64_t g = q / a.group_size, c = q % a.group_size;
    const std::uint32_t code = read_packed_code(a.words + (g * a.R + r) * a.W, c, a.T, a.mask);
    const std::uint32_t idx = a.b >= 32 ? code : (code & ((1u << a.b) - 1u));
    const std::uint32_t res = a.b >= 32 ? 0u : (code >> a.b);
    const float* cent = a.centroids + (g * a.k + idx) * a.v;
    const float* rcent = a.res_centroids != nullptr ? a.res_centroids + (g * a.k_res + res) * a.v
                                                    : nullptr;
    for (std::int64_t t = 0; t < a.v && r * a.v + t < a.M; ++t) {
        float value = cent[t];
        if (rcent != nullptr) value = __fadd_rn(value, rcent[t]);
        if (a.scale != nullptr) value = __fadd_rn(__fmul_rn(value, s), bias);
        col[r * a.v + t] = value;
    }
}

}  // namespace kernels

inline void DeviceVptqLayer::dequantize_device(float* w, Index ld, cudaStream_t stream) const {
    const VptqKernelArgs a = kernel_args(*this);
    const std::int64_t per_column = a.R > a.R0 ? a.R : a.R0;
    constexpr int threads = 256;
    kernels::dequantize_vptq<<<blocks_for(per_column * a.N, threads), threads, 0, stream>>>(
        a, per_column, w, ld);
    VQLIB_CUDA_CHECK_LAUNCH();
}

/// VptqLayer::dequantize() on the GPU: packs the codes, uploads, decodes from the packed words,
/// copies W (original column order, normalized) back.
inline MatrixXf dequantize(const VptqLayer& layer) {
    layer.check_consistent();
    const DeviceVptqLayer device(layer);
    DeviceBuffer<float> w(static_cast<std::size_t>(layer.rows() * layer.cols()));
    device.dequantize_device(w.data(), layer.rows());
    VQLIB_CUDA_CHECK(cudaDeviceSynchronize());
    MatrixXf out(layer.rows(), layer.cols());
    w.download(std::span<float>(out.data(), static_cast<std::size_t>(out.size())));
    return out;
}

// ---- grouped scalar (the dequantization role) -------------------------------------------------

/// CpuDequantize::dequantize on the GPU: out = the columns [column_begin, column_begin +
/// out.cols()) of the dequantized grouped scalar layer.
inline void dequantize(const GroupedScalarView& layer, Index column_begin, MatrixRef out) {
    const Index rows = layer.codes.rows();
    check_column_range(layer, column_begin, out);
    VQLIB_CHECK(static_cast<Index>(layer.g_idx.size()) >= layer.codes.cols(), shape_error,
                "g_idx has ", layer.g_idx.size(), " entries for ", layer.codes.cols(), " columns");
    const Index cols = out.cols();
    if (rows == 0 || cols == 0) return;
    std::int32_t max_group = 0;
    for (Index j = 0; j < cols; ++j) {
        const std::int32_t g = layer.g_idx[static_cast<std::size_t>(column_begin + j)];
        VQLIB_CHECK(g >= 0, invalid_argument, "g_idx[", column_begin + j, "] = ", g);
        max_group = g > max_group ? g : max_group;
    }
    VQLIB_CHECK(static_cast<Index>(layer.scales.size()) >= (max_group + 1) * rows &&
                    static_cast<Index>(layer.zeros.size()) >= (max_group + 1) * rows,
                shape_error, "scales / zeros hold ", layer.scales.size(), " / ",
                layer.zeros.size(), " values: group ", max_group, " needs ", (max_group + 1) * rows);
    require_device("cuda::dequantize");
    const auto count = static_cast<std::size_t>(rows * cols);
    DeviceBuffer<std::uint16_t> codes(std::span<const std::uint16_t>(
        layer.codes.data() + column_begin * rows, count));
    for (Index e = 0; e < rows * cols; ++e)
        VQLIB_CHECK(static_cast<std::size_t>(layer.codes.data()[column_begin * rows + e]) <
                        layer.lut.size(),
                    invalid_argument, "code ", layer.codes.data()[column_begin * rows + e],
                    " past a table of ", layer.lut.size());
    DeviceBuffer<float> lut(layer.lut), scales(layer.scales), zeros(layer.zeros);
    DeviceBuffer<std::int32_t> g_idx(layer.g_idx.subspan(static_cast<std::size_t>(column_begin),
                                                         static_cast<std::size_t>(cols)));
    DeviceBuffer<float> w(count);
    constexpr int threads = 256;
    kernels::dequantize_grouped<<<blocks_for(rows * cols, threads), threads>>>(
        codes.data(), rows, cols, lut.data(), scales.data(), zeros.data(), g_idx.data(), w.data(),
        rows);
    VQLIB_CUDA_CHECK_LAUNCH();
    VQLIB_CUDA_CHECK(cudaMemcpy2D(out.data(), out.outerStride() * sizeof(float), w.data(),
                                  rows * sizeof(float), rows * sizeof(float),
                                  static_cast<std::size_t>(cols), cudaMemcpyDeviceToHost));
}

}  // namespace vqlib::cuda

#endif  // __CUDACC__
