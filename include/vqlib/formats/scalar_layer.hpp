#pragma once
// A scalar-quantized layer: integer codes, per-(row, group) grid parameters, the group of every
// column, and the grid that decodes them; with exact bits-per-weight accounting.
#include <vqlib/core/bits.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/grouped_scalar.hpp>
#include <vqlib/formats/scalar_grid.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace vqlib {

template <ScalarGrid G>
struct ScalarLayer {
    using Codes = CodeMatrix;

    G grid;
    /// Columns per group (0: one group per row).
    Index group_size = 0;
    /// Codes, rows x columns in the original column order.
    Codes codes;
    /// params[g * rows + r]: the grid parameters of row r in group g.
    std::vector<GridParams> params;
    /// g_idx[j]: the group of original column j.
    std::vector<std::int32_t> g_idx;
    /// True when g_idx cannot be derived from j / group_size (act-order with dynamic groups), so
    /// a deployment must store it.
    bool stores_g_idx = false;

    Index rows() const { return codes.rows(); }
    Index cols() const { return codes.cols(); }
    Index groups() const {
        return rows() > 0 ? static_cast<Index>(params.size()) / rows() : 0;
    }

    const GridParams& param(Index row, Index group) const {
        return params[static_cast<std::size_t>(group * rows() + row)];
    }

    /// The decode view (formats/grouped_scalar.hpp) of this layer: its codes, the grid's decode
    /// at scale 1 as the lut, and the per-(row, group) scales and zeros. The vectors it refers
    /// to are written into `lut`, `scales` and `zeros`, which must outlive the view.
    GroupedScalarView view(std::vector<float>& lut, std::vector<float>& scales,
                           std::vector<float>& zeros) const {
        const Index levels = Index{1} << grid.code_bits();
        lut.resize(static_cast<std::size_t>(levels));
        for (Index c = 0; c < levels; ++c)
            lut[static_cast<std::size_t>(c)] = grid.decode(static_cast<std::uint32_t>(c), GridParams{});
        scales.resize(params.size());
        zeros.resize(params.size());
        for (std::size_t k = 0; k < params.size(); ++k) {
            scales[k] = params[k].scale;
            zeros[k] = params[k].zero;
        }
        return GroupedScalarView{codes, lut, scales, zeros, g_idx};
    }

    /// The dequantized weight, rows x columns (value = scale * (lut[code] - zero), with the
    /// grid's decode at scale 1 as the lut: the same float operations as the grid's own decode,
    /// so the result equals the solver's Q). `Dequantize` is a dequantization backend
    /// (backend/dequantize.hpp, e.g. CpuDequantize or CudaBackend); by default the decode rule
    /// runs here.
    template <class Dequantize = void>
    MatrixXf dequantize() const {
        std::vector<float> lut, scales, zeros;
        const GroupedScalarView v = view(lut, scales, zeros);
        MatrixXf W(rows(), cols());
        parallel_for_ranges(cols(), 256, [&](Index j0, Index j1) {
            if constexpr (std::is_void_v<Dequantize>) {
                dequantize_columns(v, j0, W.middleCols(j0, j1 - j0));
            } else {
                Dequantize::dequantize(v, j0, W.middleCols(j0, j1 - j0));
            }
        });
        return W;
    }

    /// Codes at grid.code_bits() each; per (row, group) grid.param_bits() (the scale at its
    /// ScaleStorage width plus, for asymmetric integer grids, a code_bits-wide zero point); and,
    /// only under act-order with dynamic groups, a group index per column stored as int32 (the
    /// GPTQ checkpoint convention).
    BitsBreakdown bits() const {
        BitsBreakdown b;
        b.weights = rows() * cols();
        b.codes = static_cast<double>(b.weights) * grid.code_bits();
        b.parameters = static_cast<double>(params.size()) * grid.param_bits();
        b.indices = stores_g_idx ? 32.0 * static_cast<double>(cols()) : 0.0;
        return b;
    }

    double bits_per_weight() const { return bits().per_weight(); }
};

}  // namespace vqlib
