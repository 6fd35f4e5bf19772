#pragma once
// Incoherence processing of a linear layer with randomized Hadamard rotations (QuIP#/QuaRot):
//     W' = R_out W R_in^T        (W: rows = output features x cols = input features)
//     H' = R_in H R_in^T         (H: the cols x cols proxy Hessian, 2/n X X^T)
//     X' = R_in X                (inputs, cols x tokens), so that W' X' = R_out W X
// with R_out = RandomizedHadamard(rows), R_in = RandomizedHadamard(cols). Both rotations are
// orthogonal, so the proxy loss is invariant: tr((W - Q) H (W - Q)^T) =
// tr((W' - Q') H' (W' - Q')^T) for Q' = R_out Q R_in^T. After quantizing W' to Q' in the rotated
// basis, restore_weights gives Q = R_out^T Q' R_in back in the original basis (or the rotations are
// kept and fused into the network instead).
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/transform/randomized_hadamard.hpp>

#include <cstdint>
#include <optional>

namespace vqlib::transform {

/// Settings of an IncoherenceTransform.
struct IncoherenceOptions {
    /// Seed of the random signs. R_out uses the seed derived as detail::derive_seed(seed, 1),
    /// R_in detail::derive_seed(seed, 2), so the two rotations differ even when rows = cols.
    std::uint64_t seed = 0;
    /// Rotate the input side (columns of W, the Hessian, the inputs X).
    bool rotate_inputs = true;
    /// Rotate the output side (rows of W).
    bool rotate_outputs = true;
    /// Sizes whose odd part has no Hadamard matrix: refuse them, or use the Hartley fallback.
    OddFactorPolicy odd_factor = OddFactorPolicy::hadamard_only;
};

namespace detail {
/// A seed for one of several streams derived from a user seed (splitmix64 of seed ^ stream mix).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t z = seed ^ (0xd1b54a32d192ed03ULL * stream);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
}  // namespace detail

/// The rotations of one rows x cols layer. Disabled sides act as the identity.
class IncoherenceTransform {
public:
    /// Throws invalid_argument if rows or cols (on a rotated side) is not a supported
    /// Hadamard size (see HadamardTransform), naming it.
    IncoherenceTransform(Index rows, Index cols, IncoherenceOptions options = {})
        : rows_(rows), cols_(cols), options_(options) {
        VQLIB_CHECK(rows >= 1 && cols >= 1, invalid_argument, "IncoherenceTransform: layer is ",
                    rows, "x", cols, ": expected positive dimensions");
        if (options.rotate_outputs)
            out_.emplace(rows, detail::derive_seed(options.seed, 1), options.odd_factor);
        if (options.rotate_inputs)
            in_.emplace(cols, detail::derive_seed(options.seed, 2), options.odd_factor);
    }

    Index rows() const { return rows_; }
    Index cols() const { return cols_; }
    const IncoherenceOptions& options() const { return options_; }
    /// R_out (rows x rows), or nullptr when the output side is not rotated.
    const RandomizedHadamard* output_rotation() const { return out_ ? &*out_ : nullptr; }
    /// R_in (cols x cols), or nullptr when the input side is not rotated.
    const RandomizedHadamard* input_rotation() const { return in_ ? &*in_ : nullptr; }

    /// W <- R_out W R_in^T. Throws shape_error unless W is rows x cols.
    void transform_weights(Eigen::Ref<MatrixXf> w) const { weights<float>(w, false); }
    void transform_weights(Eigen::Ref<MatrixXd> w) const { weights<double>(w, false); }
    /// Q <- R_out^T Q R_in, the inverse of transform_weights.
    void restore_weights(Eigen::Ref<MatrixXf> q) const { weights<float>(q, true); }
    void restore_weights(Eigen::Ref<MatrixXd> q) const { weights<double>(q, true); }

    /// H <- R_in H R_in^T. Throws shape_error unless H is cols x cols.
    void transform_hessian(Eigen::Ref<MatrixXd> h) const { hessian<double>(h, false); }
    void transform_hessian(Eigen::Ref<MatrixXf> h) const { hessian<float>(h, false); }
    /// H <- R_in^T H R_in, the inverse of transform_hessian.
    void restore_hessian(Eigen::Ref<MatrixXd> h) const { hessian<double>(h, true); }
    void restore_hessian(Eigen::Ref<MatrixXf> h) const { hessian<float>(h, true); }

    /// X <- R_in X for layer inputs X (cols x tokens, one token per column), so that the rotated
    /// layer computes W' X' = R_out W X. Throws shape_error unless X has cols rows.
    void transform_inputs(Eigen::Ref<MatrixXf> x) const {
        check_rows("X", x.rows(), x.cols(), cols_);
        if (in_) in_->apply_columns(x);
    }
    /// Y <- R_out^T Y for outputs Y = W' X' of the rotated layer (rows x tokens): gives W X.
    void restore_outputs(Eigen::Ref<MatrixXf> y) const {
        check_rows("Y", y.rows(), y.cols(), rows_);
        if (out_) out_->apply_inverse_columns(y);
    }

private:
    static void check_rows(const char* name, Index r, Index c, Index expected) {
        VQLIB_CHECK(r == expected, shape_error, "IncoherenceTransform: ", name, " is ", r, "x", c,
                    ": expected ", expected, " rows");
    }

    template <class T>
    void weights(Eigen::Ref<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>> w,
                 bool inverse) const {
        VQLIB_CHECK(w.rows() == rows_ && w.cols() == cols_, shape_error,
                    "IncoherenceTransform: weights are ", w.rows(), "x", w.cols(), ": expected ",
                    rows_, "x", cols_, " (rows = output features, cols = input features)");
        if (inverse) {
            if (out_) out_->apply_inverse_columns(w);
            if (in_) in_->apply_inverse_rows(w);
        } else {
            if (out_) out_->apply_columns(w);
            if (in_) in_->apply_rows(w);
        }
    }

    template <class T>
    void hessian(Eigen::Ref<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>> h,
                 bool inverse) const {
        VQLIB_CHECK(h.rows() == cols_ && h.cols() == cols_, shape_error,
                    "IncoherenceTransform: Hessian is ", h.rows(), "x", h.cols(), ": expected ",
                    cols_, "x", cols_);
        if (!in_) return;
        if (inverse) {
            in_->apply_inverse_columns(h);
            in_->apply_inverse_rows(h);
        } else {
            in_->apply_columns(h);
            in_->apply_rows(h);
        }
    }

    Index rows_, cols_;
    IncoherenceOptions options_;
    std::optional<RandomizedHadamard> out_, in_;
};

}  // namespace vqlib::transform
