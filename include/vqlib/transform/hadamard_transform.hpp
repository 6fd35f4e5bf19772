#pragma once
// The normalized Hadamard transform of any length n = m * 2^k for which a Hadamard matrix of
// order m can be built (see hadamard_matrix.hpp), e.g. 4096 = 2^12, 14336 = 28 * 512,
// 11008 = 172 * 64, 13824 = 108 * 128.
//
// With P = 2^k and index t = i * P + j (i < m, j < P), the transform is
//     T = (M kron H_P) / sqrt(n),
// M the m x m Hadamard matrix and H_P the Sylvester matrix. It is computed as: view the vector as
// an m x P row-major array, FWHT each of its m rows (length P), then multiply by M across the
// rows; cost O(n (log P + m)). sqrt(n) T has entries +-1, i.e. is itself a Hadamard matrix of
// order n, and T is orthogonal: apply_transpose is its inverse.
//
// Optionally (OddFactorPolicy::hartley_fallback) a length whose odd part has no Hadamard matrix
// uses M = the real Hartley matrix of the odd part instead. That T is still orthogonal, but it is
// NOT a Hadamard matrix: its largest entry is up to sqrt(2) times larger than 1/sqrt(n).
//
// Matrices are transformed column by column (A <- T A) or row by row (A <- A T^T) in parallel;
// every vector is computed by the same sequence of operations, so the results do not depend on
// the thread count, and a row transform equals the column transform of the transpose bit for bit.
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/transform/fwht.hpp>
#include <vqlib/transform/hadamard_matrix.hpp>
#include <vqlib/transform/kernels.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace vqlib::transform {

/// What to do when the odd part of n has no Hadamard matrix of order (odd part) * 2^t.
enum class OddFactorPolicy {
    hadamard_only,    ///< refuse such n (invalid_argument)
    hartley_fallback  ///< use the Hartley matrix of the odd part (orthogonal, not Hadamard)
};

/// n = base_order * power_of_two, the split a HadamardTransform of length n uses.
struct HadamardFactorization {
    Index n = 0;
    Index base_order = 1;    ///< m: 1 for a pure FWHT, else the order of the m x m matrix
    Index power_of_two = 1;  ///< P = 2^k, the FWHT length
    bool hartley = false;    ///< true if the m x m matrix is the Hartley fallback
};

/// The factorization of n: a power of two is a pure FWHT (m = 1); otherwise, with n = o * 2^j
/// (o odd), m = o * 2^t for the smallest t <= j with a Hadamard matrix of that order. Without
/// one, the Hartley fallback (m = o, P = 2^j) if `policy` allows it, else nullopt (also n < 1).
inline std::optional<HadamardFactorization> factor_hadamard_size(
    Index n, OddFactorPolicy policy = OddFactorPolicy::hadamard_only) {
    if (n < 1) return std::nullopt;
    Index odd = n, j = 0;
    while (odd % 2 == 0) {
        odd /= 2;
        ++j;
    }
    if (odd == 1) return HadamardFactorization{n, 1, n, false};
    for (Index t = 2; t <= j; ++t) {
        const Index m = odd << t;
        if (has_hadamard_matrix(m)) return HadamardFactorization{n, m, n / m, false};
    }
    if (policy == OddFactorPolicy::hartley_fallback)
        return HadamardFactorization{n, odd, Index{1} << j, true};
    return std::nullopt;
}

/// True if HadamardTransform(n) (with Hadamard matrices only) is available.
inline bool is_hadamard_size(Index n) { return factor_hadamard_size(n).has_value(); }

class RandomizedHadamard;

/// The orthogonal transform T = (M kron H_P) / sqrt(n) of length n (see the top of this file).
class HadamardTransform {
public:
    /// Throws invalid_argument naming n if n < 1 or n has no supported factorization.
    explicit HadamardTransform(Index n, OddFactorPolicy policy = OddFactorPolicy::hadamard_only) {
        const auto f = factor_hadamard_size(n, policy);
        VQLIB_CHECK(f.has_value(), invalid_argument, "HadamardTransform: n = ", n,
                    n < 1 ? ": expected n >= 1"
                          : ": unsupported size; expected m * 2^k with a Hadamard matrix of "
                            "order m (powers of two; 12, 20, 28, 36, 40, 52, 60, 108, 140, 156, "
                            "172, ... times 2^k), or pass OddFactorPolicy::hartley_fallback");
        f_ = *f;
        if (f_.base_order > 1) {
            const Index m = f_.base_order;
            base_ = f_.hartley ? hartley_matrix(m) : hadamard_matrix(m).cast<double>();
            const std::size_t mm = static_cast<std::size_t>(m * m);
            mix_d_.resize(mm);
            mix_t_d_.resize(mm);
            for (Index i = 0; i < m; ++i)
                for (Index k = 0; k < m; ++k) {
                    mix_d_[static_cast<std::size_t>(i * m + k)] = base_(i, k);
                    mix_t_d_[static_cast<std::size_t>(i * m + k)] = base_(k, i);
                }
            mix_f_.assign(mix_d_.begin(), mix_d_.end());
            mix_t_f_.assign(mix_t_d_.begin(), mix_t_d_.end());
        }
        scale_d_ = 1.0 / std::sqrt(static_cast<double>(n));
        scale_f_ = static_cast<float>(scale_d_);
    }

    /// n, the length of the vectors transformed.
    Index size() const { return f_.n; }
    /// m, the order of the dense factor (1 for a pure FWHT).
    Index base_order() const { return f_.base_order; }
    /// P = 2^k, the FWHT length.
    Index power_of_two() const { return f_.power_of_two; }
    /// The factorization used.
    const HadamardFactorization& factorization() const { return f_; }
    /// True if sqrt(n) T is a Hadamard matrix (always, unless the Hartley fallback is in use).
    bool is_hadamard() const { return !f_.hartley; }
    /// The unnormalized m x m factor M (+-1 entries, or Hartley's); empty when m = 1.
    const MatrixXd& base_matrix() const { return base_; }
    /// How the transform is built, e.g. "172 (Goethals-Seidel ...) x FWHT(64)".
    std::string description() const {
        using ::vqlib::detail::concat;
        if (f_.base_order == 1) return concat("FWHT(", f_.power_of_two, ")");
        return concat(f_.base_order, " (",
                      f_.hartley ? std::string("Hartley, not Hadamard")
                                 : hadamard_construction(f_.base_order),
                      ") x FWHT(", f_.power_of_two, ")");
    }

    /// x <- T x. Throws shape_error unless x has n elements.
    void apply(std::span<float> x) const { vector_impl(x, false, {}); }
    void apply(std::span<double> x) const { vector_impl(x, false, {}); }
    /// x <- T^T x (the inverse).
    void apply_transpose(std::span<float> x) const { vector_impl(x, true, {}); }
    void apply_transpose(std::span<double> x) const { vector_impl(x, true, {}); }

    /// A <- T A: every column (n rows required) is transformed.
    void apply_columns(Eigen::Ref<MatrixXf> a) const { columns_impl<float>(a, false, {}); }
    void apply_columns(Eigen::Ref<MatrixXd> a) const { columns_impl<double>(a, false, {}); }
    /// A <- T^T A.
    void apply_transpose_columns(Eigen::Ref<MatrixXf> a) const { columns_impl<float>(a, true, {}); }
    void apply_transpose_columns(Eigen::Ref<MatrixXd> a) const {
        columns_impl<double>(a, true, {});
    }
    /// A <- A T^T: every row (n columns required) x is replaced by T x.
    void apply_rows(Eigen::Ref<MatrixXf> a) const { rows_impl<float>(a, false, {}); }
    void apply_rows(Eigen::Ref<MatrixXd> a) const { rows_impl<double>(a, false, {}); }
    /// A <- A T: every row x is replaced by T^T x.
    void apply_transpose_rows(Eigen::Ref<MatrixXf> a) const { rows_impl<float>(a, true, {}); }
    void apply_transpose_rows(Eigen::Ref<MatrixXd> a) const { rows_impl<double>(a, true, {}); }

    /// T as a dense n x n matrix (for tests and small n: O(n^2) memory).
    MatrixXd dense() const {
        MatrixXd t = MatrixXd::Identity(f_.n, f_.n);
        apply_columns(t);
        return t;
    }

private:
    friend class RandomizedHadamard;

    /// Per-element factors multiplied in before the transform (`in`: the signs of R) or after it
    /// (`out`: the signs of R^T; `out_scaled` = out / sqrt(n), used when the scale is not already
    /// applied by the mixing product). Null pointers: no factor.
    template <class T>
    struct Factors {
        const T* in = nullptr;
        const T* out = nullptr;
        const T* out_scaled = nullptr;
    };

    template <class T>
    const T* mixing(bool transpose) const {
        if constexpr (std::is_same_v<T, float>)
            return transpose ? mix_t_f_.data() : mix_f_.data();
        else
            return transpose ? mix_t_d_.data() : mix_d_.data();
    }
    template <class T>
    T scale() const {
        if constexpr (std::is_same_v<T, float>)
            return scale_f_;
        else
            return scale_d_;
    }

    /// Group stride of a work buffer holding m groups of `len` elements: padded by a cache line so
    /// that the m rows read together by the mixing product do not share cache sets.
    template <class T>
    std::size_t group_stride(std::size_t len) const {
        return f_.base_order > 1 ? len + 64 / sizeof(T) : len;
    }

    /// Vectors per parallel chunk: one chunk per thread (each allocates its buffers once), in
    /// multiples of `granule`. Every vector is computed the same way whatever the chunking, so
    /// this depending on the thread count does not make results depend on it.
    static Index chunk_size(Index count, Index granule) {
        const Index threads = std::max(1, num_threads());
        const Index per_thread = (count + threads - 1) / threads;
        return std::max<Index>(granule, (per_thread + granule - 1) / granule * granule);
    }

    template <class T>
    void mix(const T* x, std::size_t ldx, T* y, std::size_t ldy, std::size_t len,
             bool transpose) const {
        const auto& k = detail::kernel_table<T>();
        const auto fn = f_.hartley ? k.mix_rounded : k.mix_exact;
        fn(x, ldx, y, ldy, mixing<T>(transpose), static_cast<std::size_t>(f_.base_order), len,
           scale<T>());
    }

    /// The transform of one contiguous vector x (n elements); `work` holds
    /// m * group_stride(P) elements (unused when m = 1).
    template <class T>
    void run_contiguous(T* x, T* work, bool transpose, const Factors<T>& factors) const {
        const auto& k = detail::kernel_table<T>();
        const std::size_t n = static_cast<std::size_t>(f_.n);
        const std::size_t p = static_cast<std::size_t>(f_.power_of_two);
        const std::size_t m = static_cast<std::size_t>(f_.base_order);
        if (m == 1) {
            if (factors.in) k.multiply(x, x, factors.in, n);
            k.fwht(x, p, 1);
            if (factors.out_scaled)
                k.multiply(x, x, factors.out_scaled, n);
            else
                k.multiply_scalar(x, x, scale<T>(), n);
            return;
        }
        const std::size_t gs = group_stride<T>(p);
        for (std::size_t i = 0; i < m; ++i) {
            if (factors.in)
                k.multiply(work + i * gs, x + i * p, factors.in + i * p, p);
            else
                std::memcpy(work + i * gs, x + i * p, p * sizeof(T));
            k.fwht(work + i * gs, p, 1);
        }
        mix(work, gs, x, p, p, transpose);
        if (factors.out) k.multiply(x, x, factors.out, n);
    }

    template <class T>
    void vector_impl(std::span<T> x, bool transpose, const Factors<T>& factors) const {
        VQLIB_CHECK(static_cast<Index>(x.size()) == f_.n, shape_error, "Hadamard transform: x has ",
                    x.size(), " elements: expected n = ", f_.n);
        const std::size_t p = static_cast<std::size_t>(f_.power_of_two);
        const std::unique_ptr<T[]> work(
            new T[f_.base_order > 1 ? static_cast<std::size_t>(f_.base_order) * group_stride<T>(p)
                                    : 0]);
        run_contiguous(x.data(), work.get(), transpose, factors);
    }

    template <class T>
    void columns_impl(Eigen::Ref<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>> a,
                      bool transpose, const Factors<T>& factors) const {
        VQLIB_CHECK(a.rows() == f_.n, shape_error, "Hadamard transform of columns: matrix is ",
                    a.rows(), "x", a.cols(), ": expected ", f_.n, " rows");
        const Index ld = a.outerStride();
        T* data = a.data();
        const std::size_t p = static_cast<std::size_t>(f_.power_of_two);
        const std::size_t work_size =
            f_.base_order > 1 ? static_cast<std::size_t>(f_.base_order) * group_stride<T>(p) : 0;
        parallel_for_ranges(a.cols(), chunk_size(a.cols(), 1), [&](Index c0, Index c1) {
            const std::unique_ptr<T[]> work(new T[work_size]);
            for (Index c = c0; c < c1; ++c)
                run_contiguous(data + c * ld, work.get(), transpose, factors);
        });
    }

    /// Rows of a column-major matrix are strided: a block of rows is gathered, one visit per
    /// column, into slabs of interleaved rows (element t of row v at t * lanes + v, groups
    /// padded), each slab is transformed on its own (cache-sized), and all are scattered back in
    /// one visit per column. Block and slab sizes only change the memory layout, never results.
    template <class T>
    void rows_impl(Eigen::Ref<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>> a, bool transpose,
                   const Factors<T>& factors) const {
        VQLIB_CHECK(a.cols() == f_.n, shape_error, "Hadamard transform of rows: matrix is ",
                    a.rows(), "x", a.cols(), ": expected ", f_.n, " columns");
        const std::size_t p = static_cast<std::size_t>(f_.power_of_two);
        const std::size_t m = static_cast<std::size_t>(f_.base_order);
        // A block reads 256 bytes of each column (each column visit may be a separate page);
        // a slab keeps one group (p x slab rows) within ~2 MB (L2/L3), at least 8 rows.
        constexpr std::size_t block = 256 / sizeof(T);
        std::size_t slab = block;
        while (slab > 8 && slab * p * sizeof(T) > (2u << 20)) slab /= 2;
        const std::size_t pad = m > 1 ? 64 / sizeof(T) : 0;
        // + a cache line: slabs whose size is a multiple of 4 KB must not share cache sets.
        const std::size_t slab_stride = m * (p * slab + pad) + 64 / sizeof(T);
        const std::size_t mixed_stride = m * p * slab + 64 / sizeof(T);
        const std::size_t ld = static_cast<std::size_t>(a.outerStride());
        T* data = a.data();
        const auto& k = detail::kernel_table<T>();
        parallel_for_ranges(
            a.rows(), chunk_size(a.rows(), static_cast<Index>(block)), [&](Index r0, Index r1) {
                // Uninitialized (no zeroing pass over megabytes per chunk).
                const std::unique_ptr<T[]> buffer(new T[(block / slab) * slab_stride]);
                const std::unique_ptr<T[]> mixed(new T[m > 1 ? (block / slab) * mixed_stride : 0]);
                for (Index rb = r0; rb < r1; rb += static_cast<Index>(block)) {
                    const std::size_t rows = static_cast<std::size_t>(
                        std::min<Index>(static_cast<Index>(block), r1 - rb));
                    T* src = data + rb;
                    k.gather(buffer.get(), slab_stride, pad, src, ld, p, m, rows, slab, factors.in);
                    for (std::size_t s0 = 0, s = 0; s0 < rows; s0 += slab, ++s) {
                        const std::size_t lanes = std::min(slab, rows - s0);
                        T* x = buffer.get() + s * slab_stride;
                        const std::size_t gs = p * lanes + pad;
                        for (std::size_t i = 0; i < m; ++i) k.fwht(x + i * gs, p, lanes);
                        if (m > 1)
                            mix(x, gs, mixed.get() + s * mixed_stride, p * lanes, p * lanes,
                                transpose);
                    }
                    if (m == 1)
                        k.scatter(src, ld, buffer.get(), slab_stride, pad, p, 1, rows, slab,
                                  factors.out_scaled, scale<T>());
                    else
                        k.scatter(src, ld, mixed.get(), mixed_stride, 0, p, m, rows, slab,
                                  factors.out, T(1));
                }
            });
    }

    HadamardFactorization f_;
    MatrixXd base_;
    std::vector<float> mix_f_, mix_t_f_;
    std::vector<double> mix_d_, mix_t_d_;
    double scale_d_ = 1.0;
    float scale_f_ = 1.0f;
};

}  // namespace vqlib::transform
