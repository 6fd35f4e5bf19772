#pragma once
// The Llama-2-7B-shaped synthetic model of model_7b.cpp: the 7 linear shapes of one decoder block
// (rows = output features) and LLM-like synthetic weights and Hessians, seeded by name.
#include <vqlib/core/rng.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/hessian.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace vqlib::bench::llama7b {

inline constexpr Index kHidden = 4096, kIntermediate = 11008, kVocab = 32000;
/// Calibration tokens behind each synthetic Hessian.
inline constexpr Index kTokens = 4096;

struct Shape {
    const char* name;    // Llama's name of the linear within its block
    const char* parent;  // self_attn or mlp
    Index rows, cols;
    const char* input;   // linears with the same input share a Hessian
};

inline const std::vector<Shape>& shapes() {
    static const std::vector<Shape> s = {
        {"q_proj", "self_attn", kHidden, kHidden, "attn_in"},   {"k_proj", "self_attn", kHidden, kHidden, "attn_in"},
        {"v_proj", "self_attn", kHidden, kHidden, "attn_in"},   {"o_proj", "self_attn", kHidden, kHidden, "attn_out"},
        {"gate_proj", "mlp", kIntermediate, kHidden, "mlp_in"}, {"up_proj", "mlp", kIntermediate, kHidden, "mlp_in"},
        {"down_proj", "mlp", kHidden, kIntermediate, "mlp_mid"}};
    return s;
}

/// FNV-1a of a name: the seed of its synthetic values.
inline std::uint64_t seed_of(const std::string& s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return h;
}

/// Student-t (4 degrees of freedom) entries of scale 0.02, every 509th row 4x (outlier rows).
inline MatrixXf synthetic_weight(Index rows, Index cols, std::uint64_t seed) {
    Rng rng(seed);
    MatrixXf W(rows, cols);
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i)
            W(i, j) = static_cast<float>(0.02 * rng.student_t(4) * (i % 509 == 0 ? 4.0 : 1.0));
    return W;
}

/// 2/n X X^T of n = kTokens tokens whose channels have log-normal scales, 1 in 256 of them 20x.
inline MatrixXd synthetic_hessian(Index cols, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<double> scale(static_cast<std::size_t>(cols));
    for (auto& v : scale) v = std::exp(0.5 * rng.normal());
    for (Index i = 0; i < cols; i += 256) scale[static_cast<std::size_t>(i)] *= 20.0;
    MatrixXf X(cols, kTokens);
    for (Index t = 0; t < kTokens; ++t)
        for (Index i = 0; i < cols; ++i) X(i, t) = static_cast<float>(scale[static_cast<std::size_t>(i)] * rng.normal());
    HessianAccumulator acc(cols);
    acc.add(X);
    return acc.finalize();
}

}  // namespace vqlib::bench::llama7b
