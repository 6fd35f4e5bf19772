#pragma once
// The randomized Hadamard transform R = T diag(s) of QuIP#/QuaRot: random +-1 signs s followed by
// the orthogonal Hadamard transform T of hadamard_transform.hpp. R is orthogonal; R^-1 = R^T =
// diag(s) T^T.
//
// The signs are a pure function of (seed, index) (counter-based, see RandomizedHadamard::sign), so
// (n, seed) is all that needs storing to rebuild R; the object caches them as a vector.
#include <vqlib/core/types.hpp>
#include <vqlib/transform/hadamard_transform.hpp>

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace vqlib::transform {

/// R = T diag(s) with T = HadamardTransform(n) and signs s_i = sign(seed, i).
class RandomizedHadamard {
public:
    /// Throws invalid_argument naming n when HadamardTransform(n, policy) does.
    RandomizedHadamard(Index n, std::uint64_t seed,
                       OddFactorPolicy policy = OddFactorPolicy::hadamard_only)
        : hadamard_(n, policy), seed_(seed) {
        const std::size_t size = static_cast<std::size_t>(n);
        signs_.resize(size);
        signs_d_.resize(size);
        scaled_f_.resize(size);
        scaled_d_.resize(size);
        for (std::size_t i = 0; i < size; ++i) {
            signs_[i] = sign(seed, static_cast<Index>(i));
            signs_d_[i] = signs_[i];
            scaled_f_[i] = hadamard_.scale<float>() * signs_[i];
            scaled_d_[i] = hadamard_.scale<double>() * signs_d_[i];
        }
    }

    /// The sign s_i for a seed: +1 or -1 from the top bit of the splitmix64 finalizer applied to
    /// seed + (i + 1) * 0x9e3779b97f4a7c15 (counter-based: any s_i is computable on its own, the
    /// same on every platform).
    static float sign(std::uint64_t seed, Index i) {
        std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(i) + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        return (z >> 63) ? -1.0f : 1.0f;
    }

    Index size() const { return hadamard_.size(); }
    std::uint64_t seed() const { return seed_; }
    /// The Hadamard transform T.
    const HadamardTransform& hadamard() const { return hadamard_; }
    /// The signs s (n entries, +-1).
    const std::vector<float>& signs() const { return signs_; }

    /// x <- R x = T (s .* x). Throws shape_error unless x has n elements.
    void apply(std::span<float> x) const { hadamard_.vector_impl(x, false, forward<float>()); }
    void apply(std::span<double> x) const { hadamard_.vector_impl(x, false, forward<double>()); }
    /// x <- R^T x = s .* (T^T x), the inverse.
    void apply_inverse(std::span<float> x) const {
        hadamard_.vector_impl(x, true, inverse<float>());
    }
    void apply_inverse(std::span<double> x) const {
        hadamard_.vector_impl(x, true, inverse<double>());
    }

    /// A <- R A (every column, n rows required).
    void apply_columns(Eigen::Ref<MatrixXf> a) const {
        hadamard_.columns_impl<float>(a, false, forward<float>());
    }
    void apply_columns(Eigen::Ref<MatrixXd> a) const {
        hadamard_.columns_impl<double>(a, false, forward<double>());
    }
    /// A <- R^T A.
    void apply_inverse_columns(Eigen::Ref<MatrixXf> a) const {
        hadamard_.columns_impl<float>(a, true, inverse<float>());
    }
    void apply_inverse_columns(Eigen::Ref<MatrixXd> a) const {
        hadamard_.columns_impl<double>(a, true, inverse<double>());
    }
    /// A <- A R^T: every row x (n columns required) becomes R x.
    void apply_rows(Eigen::Ref<MatrixXf> a) const {
        hadamard_.rows_impl<float>(a, false, forward<float>());
    }
    void apply_rows(Eigen::Ref<MatrixXd> a) const {
        hadamard_.rows_impl<double>(a, false, forward<double>());
    }
    /// A <- A R: every row x becomes R^T x.
    void apply_inverse_rows(Eigen::Ref<MatrixXf> a) const {
        hadamard_.rows_impl<float>(a, true, inverse<float>());
    }
    void apply_inverse_rows(Eigen::Ref<MatrixXd> a) const {
        hadamard_.rows_impl<double>(a, true, inverse<double>());
    }

    /// R as a dense n x n matrix (tests and small n only).
    MatrixXd dense() const {
        MatrixXd r = MatrixXd::Identity(size(), size());
        apply_columns(r);
        return r;
    }

private:
    template <class T>
    HadamardTransform::Factors<T> forward() const {
        HadamardTransform::Factors<T> f;
        if constexpr (std::is_same_v<T, float>)
            f.in = signs_.data();
        else
            f.in = signs_d_.data();
        return f;
    }
    template <class T>
    HadamardTransform::Factors<T> inverse() const {
        HadamardTransform::Factors<T> f;
        if constexpr (std::is_same_v<T, float>) {
            f.out = signs_.data();
            f.out_scaled = scaled_f_.data();
        } else {
            f.out = signs_d_.data();
            f.out_scaled = scaled_d_.data();
        }
        return f;
    }

    HadamardTransform hadamard_;
    std::uint64_t seed_;
    std::vector<float> signs_, scaled_f_;  // s and s / sqrt(n)
    std::vector<double> signs_d_, scaled_d_;
};

}  // namespace vqlib::transform
