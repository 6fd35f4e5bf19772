#pragma once
// Shared by the fuzz targets: a small VPTQ layer for their seeds, a tensor edit (its operands from an EditInput), and the decode step they take a
// layer read from a file on to, as an inference stack would: the CPU decode backend must refuse it with a vqlib::error, or prepare it to the same
// dequantized values and multiply (gemv, batch 3; matmul, batch 9) to the dequantized product
// within fp32 rounding; the fast backend must refuse it, or multiply (gemv, batch 3) to the product
// of its own dequantized weights within the int8 activations' bound. Anything else aborts.
#include <vqlib/backend/cpu_decode.hpp>
#include <vqlib/backend/cpu_fast_decode.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/io/safetensors.hpp>

#include "edit_input.hpp"

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <optional>

namespace vqlib::fuzz {

inline void require(const char* target, bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "%s: %s\n", target, what);
        std::abort();
    }
}

/// The fast decode path of one layer: refused with a vqlib::error, or its gemv within the int8
/// activations' bound (plus fp32 rounding) of its own dequantized weights times x.
template <class Layer>
void check_fast_decode(const Layer& layer, const char* target) {
    if constexpr (vqlib::DecodeBackend<vqlib::CpuFastDecodeBackend, Layer>) {
        using B = vqlib::CpuFastDecodeBackend;
        std::optional<vqlib::decode_prepared_t<B, Layer>> p;
        try {
            p.emplace(B::prepare(layer));
        } catch (const vqlib::error&) {
            return;
        }
        const vqlib::MatrixXf w = B::dequantize(*p);
        require(target, w.rows() == layer.rows() && w.cols() == layer.cols(), "a fast layer has another shape");
        vqlib::MatrixXf x(w.cols(), 3);
        for (vqlib::Index k = 0; k < x.size(); ++k) x.data()[k] = static_cast<float>(k % 7) / 4.0f - 0.75f;
        const vqlib::MatrixXf y = B::gemv(*p, x);
        require(target, y.rows() == w.rows() && y.cols() == 3, "a fast decode product has another shape");
        // |x - x_q| <= d / 2 <= max|x| / 254 = 0.75 / 254 for every input; the layers' own
        // transforms (VPTQ's scale) can scale that, so allow the weights' magnitudes times 1 / 100.
        const vqlib::MatrixXd wd = w.cast<double>(), xd = x.cast<double>();
        const vqlib::MatrixXd exact = wd * xd, bound = wd.cwiseAbs() * xd.cwiseAbs();
        const vqlib::VectorXd wsum = wd.cwiseAbs().rowwise().sum();
        for (vqlib::Index b = 0; b < 3; ++b)
            for (vqlib::Index r = 0; r < w.rows(); ++r) {
                if (!(bound(r, b) < 1e30) || !(wsum(r) < 1e30)) continue;
                const double tolerance = wsum(r) / 100.0 + 1e-5 * static_cast<double>(w.cols()) * bound(r, b) + 1e-30;
                require(target, std::abs(static_cast<double>(y(r, b)) - exact(r, b)) <= tolerance,
                        "a fast decode product differs from its dequantized product beyond the int8 bound");
            }
    }
}

/// The decode path of one layer read back (dequantized to w): refused with a vqlib::error, or
/// prepared to the same values and multiplied to w x within fp32 rounding.
template <class Layer>
void check_decode(const Layer& layer, const vqlib::MatrixXf& w, const char* target) {
    if constexpr (vqlib::DecodeBackend<vqlib::CpuDecodeBackend, Layer>) {
        using B = vqlib::CpuDecodeBackend;
        std::optional<vqlib::decode_prepared_t<B, Layer>> p;
        try {
            p.emplace(B::prepare(layer));
        } catch (const vqlib::error&) {
            return;  // refused by the backend: fine, as long as it was a vqlib::error
        }
        require(target, p->rows() == w.rows() && p->cols() == w.cols(), "a prepared layer has another shape");
        require(target, B::dequantize(*p) == w, "a prepared layer dequantizes to other values");
        for (const vqlib::Index batch : {3, 9}) {
            vqlib::MatrixXf x(w.cols(), batch);
            for (vqlib::Index k = 0; k < x.size(); ++k) x.data()[k] = static_cast<float>(k % 7) / 4.0f - 0.75f;
            const vqlib::MatrixXf y = batch <= vqlib::max_decode_gemv_batch ? B::gemv(*p, x) : B::matmul(*p, x);
            require(target, y.rows() == w.rows() && y.cols() == batch, "a decode product has another shape");
            const vqlib::MatrixXd wd = w.cast<double>(), xd = x.cast<double>();
            const vqlib::MatrixXd exact = wd * xd, bound = wd.cwiseAbs() * xd.cwiseAbs();
            for (vqlib::Index k = 0; k < y.size(); ++k) {
                if (!(bound.data()[k] < 1e30)) continue;  // near float overflow: no bound to check
                const double tolerance = 1e-5 * static_cast<double>(w.cols()) * bound.data()[k] + 1e-30;
                require(target, std::abs(static_cast<double>(y.data()[k]) - exact.data()[k]) <= tolerance,
                        "a decode product differs from the dequantized product beyond fp32 rounding");
            }
        }
    }
    check_fast_decode(layer, target);
}

/// A small VPTQ layer with every part (residual and outlier codebooks, normalization, a
/// permutation), contents drawn from next() (uniform integers) and uniform() (floats in [-1, 1]).
template <class Next, class Uniform>
VptqLayer small_vptq_layer(Next& next, Uniform& uniform) {
    VptqLayer p;
    auto& L = p.layout;
    L.out_features = 6;
    L.in_features = 6;
    L.vector_len = 2;
    L.num_centroids = 4;
    L.num_res_centroids = 2;
    L.outlier_vector_len = 2;
    L.outlier_centroids = 2;
    L.outlier_size = 2;
    L.group_num = 2;
    L.group_size = 2;
    L.enable_norm = true;
    L.enable_perm = true;
    p.centroids.resize(8, 2);
    p.res_centroids.resize(4, 2);
    p.outlier_centroids.resize(2, 2);
    for (auto* m : {&p.centroids, &p.res_centroids, &p.outlier_centroids})
        for (Index k = 0; k < m->size(); ++k) m->data()[k] = uniform();
    for (int k = 0; k < 2 * 3 * 2; ++k) {
        p.indices.push_back(next() % 4);
        p.res_indices.push_back(next() % 2);
    }
    for (int k = 0; k < 3 * 2; ++k) p.outlier_indices.push_back(next() % 2);
    p.perm = {5, 4, 3, 2, 1, 0};
    p.weight_scale = VectorXf::Constant(6, 2.0f);
    p.weight_bias = VectorXf::Constant(6, -0.5f);
    return p;
}

/// One edit of a tensor of `tensors` (none when empty), its operands read from `in`: op 5
/// overwrites one byte of its data, op 6 changes its dtype, any other op one dimension of its shape
/// (to a value below `max_dim`); the data is resized to what the dtype and shape call for.
inline void edit_tensor(io::TensorMap& tensors, int op, int max_dim, EditInput& in) {
    if (tensors.empty()) return;
    auto it = tensors.begin();
    std::advance(it, in.byte() % tensors.size());
    io::Tensor& t = it->second;
    if (op == 5 && !t.data.empty()) {
        t.data[static_cast<std::size_t>(in.word()) % t.data.size()] = in.byte();
    } else if (op == 6) {
        t.dtype = io::all_dtypes[in.byte() % io::all_dtypes.size()];
        t.data.resize(t.expected_bytes());
    } else if (!t.shape.empty()) {
        t.shape[in.byte() % t.shape.size()] = in.byte() % max_dim;
        t.data.resize(t.expected_bytes());
    }
}

}  // namespace vqlib::fuzz
