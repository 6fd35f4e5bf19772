#pragma once
// PvqCodec<Idx>: the bijection between the PVQ codewords P(N, K) = { y ∈ Z^N : ||y||_1 = K } and
// the integers [0, V(N, K)), for runtime (N, K), in any index type (docs/pvq.md).
//
// Two enumeration orders:
//   EnumerationOrder::opus     the Opus/CELT order (icwrs / cwrsi): index 0 = (K, 0, ..., 0),
//                              1 = (K-1, 1, 0, ...), V/2 = (0, ..., 0, -K), V-1 = (-1, -1, ...).
//   EnumerationOrder::fischer  Fischer's lexicographic order, coordinates compared in the order
//                              0 < +1 < -1 < +2 < -2 < ...: index 0 = (0, ..., 0, K),
//                              1 = (0, ..., 0, -K), V-1 = (-K, 0, ..., 0).
// Both directions use only additions, subtractions and comparisons of Idx values on a table of
// U(n, k), n <= N, k <= K+1 (O(N + K) steps per vector), so wide index types stay cheap.
#include <vqlib/core/error.hpp>
#include <vqlib/lattice/counting.hpp>
#include <vqlib/lattice/index_types.hpp>

#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

namespace vqlib::lattice {

/// Which bijection between codewords and indices a PvqCodec uses.
enum class EnumerationOrder {
    opus,     ///< Opus/CELT icwrs/cwrsi order (the default).
    fischer,  ///< Fischer's lexicographic order.
};

/// Encoder/decoder of PVQ codewords of dimension N with K pulses, indices of type Idx.
///
/// The constructor builds a table of U(n, k) for n <= N, k <= K+1 ((N+1)(K+2) values of Idx) and
/// throws vqlib::invalid_argument when V(N, K) does not fit in Idx or when that table would exceed
/// 512 MiB. encode/decode are const and thread-safe; they allocate nothing.
template <PvqIndex Idx>
class PvqCodec {
public:
    /// Largest table the constructor accepts, in bytes.
    static constexpr std::size_t max_table_bytes = std::size_t{512} << 20;

    /// Codec for dimension N >= 1 and K >= 0 pulses.
    PvqCodec(int N, int K) : n_(N), k_(K), stride_(static_cast<std::size_t>(K) + 2) {
        VQLIB_CHECK(N >= 1, invalid_argument, "PvqCodec: N = ", N, ": expected N >= 1");
        VQLIB_CHECK(K >= 0, invalid_argument, "PvqCodec: K = ", K, ": expected K >= 0");
        size_ = pvq_v<Idx>(N, K);  // throws, naming N, K and the width, when V does not fit
        const std::size_t rows = static_cast<std::size_t>(N) + 1;
        VQLIB_CHECK(stride_ <= max_table_bytes / sizeof(Idx) / rows, invalid_argument,
                    "PvqCodec: the U table for N = ", N, ", K = ", K, " would need ", rows, " x ",
                    stride_, " entries of ", sizeof(Idx), " bytes, more than ", max_table_bytes,
                    " bytes");
        u_.assign(rows * stride_, Idx(0));
        // U(0, 0) = 1, U(0, k > 0) = 0, U(n > 0, 0) = 0,
        // U(n, k) = U(n-1, k) + U(n, k-1) + U(n-1, k-1).
        u_[0] = Idx(1);
        for (std::size_t n = 1; n < rows; ++n) {
            const Idx* prev = &u_[(n - 1) * stride_];
            Idx* row = &u_[n * stride_];
            for (std::size_t k = 1; k < stride_; ++k) {
                Idx t{};
                const bool ok = detail::checked_add(prev[k], row[k - 1], t) &&
                                detail::checked_add(t, prev[k - 1], row[k]);
                // Every entry is <= U(N, K+1) <= V(N, K), which fits: this cannot fail.
                VQLIB_CHECK(ok, numerical_error, "PvqCodec: U(", n, ", ", k, ") overflowed");
            }
        }
        log2_size_ = log2_pvq_size(N, K);
        index_bits_ = bit_length(static_cast<Idx>(size_ - Idx(1)));
    }

    /// Dimension N.
    int dim() const noexcept { return n_; }
    /// Number of pulses K.
    int pulses() const noexcept { return k_; }
    /// Number of codewords V(N, K); indices are in [0, size()).
    const Idx& size() const noexcept { return size_; }
    /// log2 V(N, K).
    double log2_size() const noexcept { return log2_size_; }
    /// Bits of a fixed-width index: ceil(log2 V(N, K)) (0 when V = 1).
    int index_bits() const noexcept { return index_bits_; }

    /// U(n, k) from the table, for 0 <= n <= N and 0 <= k <= K+1 (throws outside).
    const Idx& u(int n, int k) const {
        VQLIB_CHECK(n >= 0 && n <= n_ && k >= 0 && k <= k_ + 1, invalid_argument, "PvqCodec::u(",
                    n, ", ", k, "): expected n in [0, ", n_, "] and k in [0, ", k_ + 1, "]");
        return u_at(n, k);
    }
    /// V(n, k) = U(n, k) + U(n, k+1), for 0 <= n <= N and 0 <= k <= K (throws outside).
    Idx v(int n, int k) const {
        VQLIB_CHECK(n >= 0 && n <= n_ && k >= 0 && k <= k_, invalid_argument, "PvqCodec::v(", n,
                    ", ", k, "): expected n in [0, ", n_, "] and k in [0, ", k_, "]");
        return v_at(n, k);
    }

    /// Index of codeword y. Throws vqlib::shape_error when y.size() != N and
    /// vqlib::invalid_argument when ||y||_1 != K.
    Idx encode(std::span<const std::int32_t> y,
               EnumerationOrder order = EnumerationOrder::opus) const {
        return order == EnumerationOrder::opus ? encode_opus(y) : encode_fischer(y);
    }

    /// Writes the codeword of index i to y. Throws vqlib::shape_error when y.size() != N and
    /// vqlib::invalid_argument when i >= V(N, K). Reads only inside its table for every input.
    void decode(const Idx& i, std::span<std::int32_t> y,
                EnumerationOrder order = EnumerationOrder::opus) const {
        if (order == EnumerationOrder::opus) decode_opus(i, y);
        else decode_fischer(i, y);
    }

    /// Opus/CELT order (icwrs).
    Idx encode_opus(std::span<const std::int32_t> y) const {
        check_size(y.size(), "encode");
        const int N = n_;
        // Walk from the last coordinate to the first; k = pulses in y[j+1..N-1].
        std::int64_t a = magnitude(y[static_cast<std::size_t>(N - 1)]);
        if (a > k_) throw_bad_norm(y);
        int k = static_cast<int>(a);
        Idx i = Idx(y[static_cast<std::size_t>(N - 1)] < 0 ? 1u : 0u);
        for (int j = N - 2; j >= 0; --j) {
            const Idx* row = &u_[static_cast<std::size_t>(N - j) * stride_];
            i = static_cast<Idx>(i + row[k]);
            const std::int32_t yj = y[static_cast<std::size_t>(j)];
            a = magnitude(yj);
            if (a > k_ - k) throw_bad_norm(y);
            k += static_cast<int>(a);
            if constexpr (detail::is_big_uint<Idx>::value) {
                if (yj < 0) i = static_cast<Idx>(i + row[k + 1]);
            } else {
                i = static_cast<Idx>(i + (yj < 0 ? row[k + 1] : Idx(0)));  // branch-free select
            }
        }
        if (k != k_) throw_bad_norm(y);
        return i;
    }

    /// Opus/CELT order (cwrsi).
    void decode_opus(const Idx& index, std::span<std::int32_t> y) const {
        check_size(y.size(), "decode");
        check_index(index);
        Idx i = index;
        int k = k_;
        for (int j = 0; j < n_; ++j) {
            const Idx* row = &u_[static_cast<std::size_t>(n_ - j) * stride_];
            // Vectors with this coordinate >= 0 come first: U(n, k+1) of them.
            const Idx& p = row[k + 1];
            const bool negative = !(i < p);
            const int k0 = k;
            if constexpr (detail::is_big_uint<Idx>::value) {
                if (negative) i = static_cast<Idx>(i - p);
                // U(n, 0) = 0 for n >= 1, so this stops at k >= 0.
                while (i < row[k]) --k;
            } else {
                // Built-in types: branch-free select and a branch-free first four steps of the
                // scan (the row is nondecreasing, so the steps taken are a prefix); most
                // coordinates are small, so the loop after them rarely runs.
                i = static_cast<Idx>(i - (negative ? p : Idx(0)));
                const int steps = static_cast<int>(i < row[k]) +
                                  static_cast<int>(i < row[k > 1 ? k - 1 : 0]) +
                                  static_cast<int>(i < row[k > 2 ? k - 2 : 0]) +
                                  static_cast<int>(i < row[k > 3 ? k - 3 : 0]);
                k -= steps;
                if (steps == 4)
                    while (i < row[k]) --k;
            }
            i = static_cast<Idx>(i - row[k]);
            const int value = k0 - k;
            y[static_cast<std::size_t>(j)] = negative ? -value : value;
        }
    }

    /// Fischer's lexicographic order.
    Idx encode_fischer(std::span<const std::int32_t> y) const {
        check_size(y.size(), "encode_fischer");
        Idx b = Idx(0);
        int k = k_;  // pulses left for y[j..N-1]
        for (int j = 0; j < n_; ++j) {
            const int rem = n_ - j - 1;
            const std::int32_t yj = y[static_cast<std::size_t>(j)];
            const std::int64_t a = magnitude(yj);
            if (a > k) throw_bad_norm(y);
            if (a > 0) {
                // Codewords with y_j = 0, then ±1, ..., ±(a-1), then +a (if y_j < 0) precede y.
                b = static_cast<Idx>(b + v_at(rem, k));
                for (int m = 1; m < a; ++m) {
                    const Idx t = v_at(rem, k - m);
                    b = static_cast<Idx>(b + t);
                    b = static_cast<Idx>(b + t);
                }
                if (yj < 0) b = static_cast<Idx>(b + v_at(rem, k - static_cast<int>(a)));
                k -= static_cast<int>(a);
            }
        }
        if (k != 0) throw_bad_norm(y);
        return b;
    }

    /// Fischer's lexicographic order.
    void decode_fischer(const Idx& index, std::span<std::int32_t> y) const {
        check_size(y.size(), "decode_fischer");
        check_index(index);
        Idx b = index;
        int k = k_;
        for (int j = 0; j < n_; ++j) {
            const int rem = n_ - j - 1;
            int value = 0;
            if (k > 0) {
                const Idx v0 = v_at(rem, k);
                if (!(b < v0)) {
                    b = static_cast<Idx>(b - v0);
                    int m = 1;
                    for (; m <= k; ++m) {
                        const Idx t = v_at(rem, k - m);
                        if (b < t) {
                            value = m;
                            break;
                        }
                        b = static_cast<Idx>(b - t);
                        if (b < t) {
                            value = -m;
                            break;
                        }
                        b = static_cast<Idx>(b - t);
                    }
                    // Unreachable for b < V(N, K): the counts add up to V(rem + 1, k).
                    VQLIB_CHECK(m <= k, numerical_error,
                                "PvqCodec::decode_fischer: inconsistent table");
                    k -= m;
                }
            }
            y[static_cast<std::size_t>(j)] = value;
        }
    }

private:
    const Idx& u_at(int n, int k) const noexcept {
        return u_[static_cast<std::size_t>(n) * stride_ + static_cast<std::size_t>(k)];
    }
    Idx v_at(int n, int k) const noexcept {
        const Idx* row = &u_[static_cast<std::size_t>(n) * stride_];
        return static_cast<Idx>(row[k] + row[k + 1]);
    }
    static std::int64_t magnitude(std::int32_t v) noexcept {
        return v < 0 ? -static_cast<std::int64_t>(v) : static_cast<std::int64_t>(v);
    }
    void check_size(std::size_t size, const char* what) const {
        VQLIB_CHECK(size == static_cast<std::size_t>(n_), shape_error, "PvqCodec::", what,
                    ": the vector has ", size, " coordinates, expected N = ", n_);
    }
    void check_index(const Idx& i) const {
        VQLIB_CHECK(i < size_, invalid_argument, "PvqCodec::decode: index ", to_string(i),
                    " out of range: expected i < V(", n_, ", ", k_, ") = ", to_string(size_));
    }
    [[noreturn]] void throw_bad_norm(std::span<const std::int32_t> y) const {
        std::int64_t norm = 0;
        for (auto v : y) norm += magnitude(v);
        throw invalid_argument(::vqlib::detail::concat("PvqCodec::encode: ||y||_1 = ", norm,
                                                       ", expected K = ", k_, " (N = ", n_, ")"));
    }

    int n_;
    int k_;
    std::size_t stride_;
    std::vector<Idx> u_;
    Idx size_{};
    double log2_size_ = 0.0;
    int index_bits_ = 0;
};

}  // namespace vqlib::lattice
