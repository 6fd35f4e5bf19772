#pragma once
// Scalar grids: the per-element formats that GPTQ-style scalar quantizers round to.
//
// A grid is fitted to a group of weights (one set of parameters per row of the group) and then
// encodes single values to integer codes and decodes them back. The ScalarGrid concept states what
// a grid must provide; IntGrid (here) and MinifloatGrid (minifloat_grid.hpp) are the two families.
#include <vqlib/core/checks.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

namespace vqlib {

/// Parameters of one row of one group: value = scale * (code - zero) for integer grids,
/// value = scale * minifloat(code) for floating-point grids (zero unused, 0).
struct GridParams {
    float scale = 1.0f;
    float zero = 0.0f;
};

/// Options of the MSE grid search (GPTQ's `mse=True`): shrink the range by p = 1 - i/grid for
/// i < maxshrink*grid and keep, per row, the p minimizing sum |q - x|^norm.
struct MseSearch {
    bool enabled = false;
    double norm = 2.4;
    int grid = 100;
    double maxshrink = 0.8;
};

/// What every scalar grid provides. Beyond the signatures, decode must have the form
/// decode(code, p) == p.scale * (decode(code, GridParams{}) - p.zero), computed in that order:
/// layers dequantize through a per-code table built from decode at unit scale (the tests check
/// that dequantize() reproduces the solver's values bit for bit).
template <class G>
concept ScalarGrid = requires(const G& g, ConstMatrixRef x, std::span<GridParams> params, float v,
                              std::uint32_t code, const GridParams& p) {
    { g.fit(x, params) } -> std::same_as<void>;          // one GridParams per row of x
    { g.encode(v, p) } -> std::convertible_to<std::uint32_t>;
    { g.decode(code, p) } -> std::convertible_to<float>;
    { g.code_bits() } -> std::convertible_to<int>;       // stored bits per code
    { g.param_bits() } -> std::convertible_to<int>;      // stored bits per GridParams
    { g.name() } -> std::convertible_to<std::string>;
};

namespace detail {

/// Validates MSE search options (only when enabled).
inline void check_mse_search(const MseSearch& mse) {
    VQLIB_CHECK(!mse.enabled ||
                    (mse.grid > 0 && mse.maxshrink > 0 && mse.maxshrink <= 1 && mse.norm > 0),
                invalid_argument, "mse = {norm ", mse.norm, ", grid ", mse.grid, ", maxshrink ",
                mse.maxshrink, "}: expected norm > 0, grid > 0 and maxshrink in (0, 1]");
}

/// Runs the MSE shrink search of GPTQ's quantizer for one row: `candidate(p)` returns the
/// parameters for shrink factor p; the best by sum |decode(encode(x)) - x|^norm is kept.
template <class Grid, class Candidate>
GridParams mse_search_row(const Grid& grid, const MseSearch& mse,
                          const Eigen::Ref<const Eigen::RowVectorXf>& row, GridParams initial,
                          Candidate&& candidate) {
    GridParams best_params = initial;
    float best = std::numeric_limits<float>::infinity();
    const int steps = static_cast<int>(mse.maxshrink * mse.grid);
    for (int i = 0; i < steps; ++i) {
        const float p = 1.0f - static_cast<float>(i) / static_cast<float>(mse.grid);
        const GridParams trial = candidate(p);
        float err = 0.0f;
        for (Index k = 0; k < row.size(); ++k) {
            const float q = grid.decode(grid.encode(row[k], trial), trial);
            err += std::pow(std::abs(q - row[k]), static_cast<float>(mse.norm));
        }
        if (err < best) {
            best = err;
            best_params = trial;
        }
    }
    return best_params;
}

}  // namespace detail

/// b-bit integer grid with min/max range per row, exactly as GPTQ's reference quantizer:
/// the range always contains 0; asymmetric grids store an integer zero point; symmetric grids use
/// zero = (2^b)/2 (the reference's convention). Rounding is half-to-even (torch.round).
class IntGrid {
public:
    IntGrid(int bits, bool symmetric, MseSearch mse = {}, ScaleStorage storage = ScaleStorage::fp32)
        : bits_(bits), symmetric_(symmetric), mse_(mse), storage_(storage) {
        VQLIB_CHECK_RANGE("bits", bits, 1, 16);
        detail::check_mse_search(mse);
        maxq_ = static_cast<float>((1u << bits) - 1u);
    }

    int bits() const { return bits_; }
    bool symmetric() const { return symmetric_; }
    float maxq() const { return maxq_; }
    int code_bits() const { return bits_; }
    /// The width the fitted scales are rounded to.
    ScaleStorage storage() const { return storage_; }
    /// The stored scale, plus a `bits`-wide zero point for asymmetric grids (the symmetric zero is
    /// implied by the format).
    int param_bits() const { return scale_bits(storage_) + (symmetric_ ? 0 : bits_); }
    std::string name() const {
        return std::string("INT") + std::to_string(bits_) + (symmetric_ ? "-sym" : "-asym");
    }

    void fit(ConstMatrixRef x, std::span<GridParams> params) const {
        VQLIB_CHECK(static_cast<Index>(params.size()) == x.rows(), shape_error,
                    "params has ", params.size(), " entries: expected one per row (", x.rows(),
                    ")");
        for (Index r = 0; r < x.rows(); ++r) {
            float xmin = std::min(x.row(r).minCoeff(), 0.0f);
            float xmax = std::max(x.row(r).maxCoeff(), 0.0f);
            if (symmetric_) {
                xmax = std::max(std::abs(xmin), xmax);
                if (xmin < 0) xmin = -xmax;
            }
            if (xmin == 0.0f && xmax == 0.0f) {
                xmin = -1.0f;
                xmax = 1.0f;
            }
            const GridParams initial = from_range(xmin, xmax);
            params[static_cast<std::size_t>(r)] =
                mse_.enabled ? detail::mse_search_row(*this, mse_, x.row(r), initial,
                                                      [&](float p) {
                                                          return from_range(p * xmin, p * xmax);
                                                      })
                             : initial;
        }
    }

    std::uint32_t encode(float v, const GridParams& p) const {
        const float q = std::nearbyint(v / p.scale) + p.zero;
        return static_cast<std::uint32_t>(std::clamp(q, 0.0f, maxq_));
    }

    float decode(std::uint32_t code, const GridParams& p) const {
        return p.scale * (static_cast<float>(code) - p.zero);
    }

private:
    GridParams from_range(float xmin, float xmax) const {
        GridParams p;
        p.scale = round_scale((xmax - xmin) / maxq_, storage_);
        p.zero = symmetric_ ? (maxq_ + 1.0f) / 2.0f : std::nearbyint(-xmin / p.scale);
        return p;
    }

    int bits_;
    bool symmetric_;
    MseSearch mse_;
    ScaleStorage storage_;
    float maxq_;
};

static_assert(ScalarGrid<IntGrid>);

}  // namespace vqlib
