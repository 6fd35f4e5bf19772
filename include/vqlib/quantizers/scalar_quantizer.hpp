#pragma once
// The scalar quantizer policy: GPTQ's grids with groups, exactly as the reference runs them.
//
// Groups (docs/gptvq.md):
//  - group_size 0: one grid per row, fitted on the input weight before dead columns are zeroed.
//  - dynamic groups: the grid of the group starting at solver column c is fitted when the block
//    containing c starts, on the working weight as it stands at that block start (so a group that
//    starts inside a block misses that block's earlier updates, as in the reference). Under
//    act-order the groups are contiguous in the permuted order and g_idx records them.
//  - static groups: every group's grid is fitted up front on the dead-zeroed weight in the
//    original order; under act-order column perm[k] uses the group of its original position.
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/scalar_grid.hpp>
#include <vqlib/formats/scalar_layer.hpp>
#include <vqlib/solver/context.hpp>
#include <vqlib/solver/policies.hpp>

#include <span>
#include <vector>

namespace vqlib {

struct GroupOptions {
    /// Columns per group; 0 (or -1, the reference's spelling) means one group per row.
    Index size = 0;
    /// Fit every group's grid before the solve, in the original column order.
    bool static_groups = false;
};

template <ScalarGrid G>
class ScalarQuantizer {
public:
    explicit ScalarQuantizer(G grid, GroupOptions groups = {})
        : grid_(std::move(grid)), group_size_(groups.size < 0 ? 0 : groups.size),
          static_groups_(groups.static_groups) {
        VQLIB_CHECK(grid_.code_bits() >= 1 && grid_.code_bits() <= 16, invalid_argument,
                    "grid ", grid_.name(), " has ", grid_.code_bits(),
                    "-bit codes: expected 1..16 (codes are stored as 16-bit integers)");
        VQLIB_CHECK(groups.size >= -1, invalid_argument, "group size = ", groups.size,
                    ": expected a positive number of columns, or 0 / -1 for one group per row");
    }

    Index step_width() const { return 1; }
    Index row_granularity() const { return 1; }
    const G& grid() const { return grid_; }

    void begin(const SolveSetup& setup) {
        rows_ = setup.W_input.rows();
        cols_ = setup.W_input.cols();
        perm_ = setup.perm;
        if (group_size_ > 0) {
            VQLIB_CHECK(cols_ % group_size_ == 0, shape_error, "group size = ", group_size_,
                        " does not divide the number of columns C = ", cols_);
        }
        const Index groups = group_size_ > 0 ? cols_ / group_size_ : 1;
        params_.assign(static_cast<std::size_t>(groups * rows_), GridParams{});
        codes_.resize(rows_, cols_);
        if (group_size_ == 0) {
            grid_.fit(setup.W_input, group_params(0));
        } else if (static_groups_) {
            for (Index g = 0; g < groups; ++g)
                grid_.fit(setup.W_live.middleCols(g * group_size_, group_size_), group_params(g));
        }
    }

    void begin_block(const BlockView& block) {
        if (group_size_ == 0 || static_groups_) return;
        const Index first = (block.begin + group_size_ - 1) / group_size_ * group_size_;
        for (Index c = first; c < block.end; c += group_size_)
            grid_.fit(block.W.middleCols(c, group_size_), group_params(c / group_size_));
    }

    void quantize(const StepView& step, Index row_begin, ConstMatrixRef w, MatrixRef q) {
        const Index g = group_of(step.column);
        const GridParams* p = params_.data() + g * rows_ + row_begin;
        for (Index r = 0; r < w.rows(); ++r) {
            const auto code = grid_.encode(w(r, 0), p[r]);
            codes_(row_begin + r, step.column) = static_cast<std::uint16_t>(code);
            q(r, 0) = grid_.decode(code, p[r]);
        }
    }

    /// The quantized layer in the original column order (after a solve).
    ScalarLayer<G> layer() const {
        ScalarLayer<G> out{grid_, group_size_, {}, params_, {}, false};
        out.codes.resize(rows_, cols_);
        out.g_idx.resize(static_cast<std::size_t>(cols_));
        for (Index k = 0; k < cols_; ++k) {
            const Index j = perm_[static_cast<std::size_t>(k)];
            out.codes.col(j) = codes_.col(k);
            out.g_idx[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(group_of(k));
            if (group_size_ > 0 && group_of(k) != j / group_size_) out.stores_g_idx = true;
        }
        return out;
    }

private:
    std::span<GridParams> group_params(Index g) {
        return {params_.data() + g * rows_, static_cast<std::size_t>(rows_)};
    }

    /// Group of solver column k.
    Index group_of(Index k) const {
        if (group_size_ == 0) return 0;
        if (static_groups_) return perm_[static_cast<std::size_t>(k)] / group_size_;
        return k / group_size_;
    }

    G grid_;
    Index group_size_;
    bool static_groups_;
    Index rows_ = 0;
    Index cols_ = 0;
    Permutation perm_;
    std::vector<GridParams> params_;
    typename ScalarLayer<G>::Codes codes_;
};

static_assert(QuantizerPolicy<ScalarQuantizer<IntGrid>>);

}  // namespace vqlib
