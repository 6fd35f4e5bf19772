#pragma once
// The VPTQ quantizer policy of the block solver: one column per step (channel-independent
// second-order optimization); the column's M values are cut into vectors of v consecutive rows
// and each vector becomes its nearest centroid (plain Euclidean: every vector of a column shares
// the same U_jj, so the second-order loss reduces to it), optionally plus the nearest residual
// centroid of what is left (greedy two-stage lookup, as VPTQ).
//
// The policy works in the stored column order of VptqLayer (outlier columns first, then the
// groups); the recipe (vptq.hpp) permutes and normalizes W and H before the solve, so the solver
// runs without act-order of its own. Codebooks are fixed during the sweep.
#include <vqlib/backend/assignment.hpp>
#include <vqlib/backend/cpu_assignment.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/vptq_layer.hpp>
#include <vqlib/solver/context.hpp>
#include <vqlib/solver/policies.hpp>

#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

namespace vqlib {

/// `Assign` is the nearest-centroid backend of the lookups (backend/assignment.hpp).
template <AssignmentBackend Assign = CpuAssignment>
class VptqQuantizer {
public:
    /// `layer` supplies the layout and the codebooks (centroids, res_centroids when
    /// `use_residual`, outlier_centroids); its index arrays are (re)filled by the sweep. With
    /// `record_error`, error() holds w - q of every quantized entry (VPTQ's qerror), which the
    /// residual codebook is fitted on.
    VptqQuantizer(VptqLayer& layer, bool use_residual, bool record_error = false, Assign assign = {})
        : layer_(layer),
          use_residual_(use_residual),
          record_error_(record_error),
          assign_(std::move(assign)) {
        const VptqLayout& L = layer.layout;
        L.validate();
        VQLIB_CHECK(!use_residual || L.has_residual(), invalid_argument,
                    "use_residual = true but the layout has no residual codebook");
        granularity_ = L.vector_len;
        if (L.has_outliers()) granularity_ = std::lcm(granularity_, L.outlier_vector_len);
    }

    Index step_width() const { return 1; }
    /// Rows are handled in whole vectors: v rows (lcm(v, v0) with outlier columns).
    Index row_granularity() const { return granularity_; }

    void begin(const SolveSetup& setup) {
        const VptqLayout& L = layer_.layout;
        for (std::size_t k = 0; k < setup.perm.size(); ++k)
            VQLIB_CHECK(setup.perm[k] == static_cast<Index>(k), invalid_argument,
                        "the VPTQ policy expects W already in stored column order: run the solver "
                        "without act_order (vptq() applies the permutation itself)");
        VQLIB_CHECK(setup.W_input.cols() == L.in_features, shape_error, "W has ",
                    setup.W_input.cols(), " columns: the VPTQ layout has ", L.in_features);
        padded_rows_ = setup.W_input.rows();
        VQLIB_CHECK(padded_rows_ >= L.out_features && padded_rows_ % granularity_ == 0, shape_error,
                    "W has ", padded_rows_, " rows: expected out_features = ", L.out_features,
                    " padded to a multiple of ", granularity_);
        const Index R = L.row_blocks();
        layer_.indices.assign(static_cast<std::size_t>(L.group_num * R * L.group_size), 0);
        layer_.res_indices.assign(use_residual_ ? layer_.indices.size() : 0, 0);
        layer_.outlier_indices.assign(static_cast<std::size_t>(L.outlier_row_blocks() * L.outlier_size), 0);
        if (record_error_) error_.setZero(padded_rows_, L.in_features);
    }

    void begin_block(const BlockView&) {}

    void quantize(const StepView& step, Index row_begin, ConstMatrixRef w, MatrixRef out) {
        const VptqLayout& L = layer_.layout;
        const Index p = step.column;
        const bool outlier = p < L.outlier_size;
        const Index v = outlier ? L.outlier_vector_len : L.vector_len;
        const Index n = w.rows() / v;
        const Index g = outlier ? 0 : (p - L.outlier_size) / L.group_size;
        const Index c = outlier ? p : (p - L.outlier_size) % L.group_size;
        const Index first_block = row_begin / v;

        // The column's vectors as points (n x v), row-major: vector b is rows [b*v, b*v + v).
        MatrixXf pts(n, v);
        for (Index b = 0; b < n; ++b)
            for (Index t = 0; t < v; ++t) pts(b, t) = w(b * v + t, 0);
        std::vector<std::int32_t> idx(static_cast<std::size_t>(n));
        const auto codebook = outlier ? ConstMatrixRef(layer_.outlier_centroids)
                                      : ConstMatrixRef(layer_.centroids.middleRows(
                                            g * L.num_centroids, L.num_centroids));
        assign_.nearest_centroid(pts, codebook, Weights{}, idx);
        MatrixXf q(n, v);
        for (Index b = 0; b < n; ++b) q.row(b) = codebook.row(idx[static_cast<std::size_t>(b)]);

        std::vector<std::int32_t> ridx;
        if (!outlier && use_residual_) {
            const auto res = ConstMatrixRef(layer_.res_centroids.middleRows(
                g * L.num_res_centroids, L.num_res_centroids));
            MatrixXf left = pts - q;
            ridx.resize(static_cast<std::size_t>(n));
            assign_.nearest_centroid(left, res, Weights{}, ridx);
            for (Index b = 0; b < n; ++b) q.row(b) += res.row(ridx[static_cast<std::size_t>(b)]);
        }

        for (Index b = 0; b < n; ++b)
            for (Index t = 0; t < v; ++t) out(b * v + t, 0) = q(b, t);
        if (record_error_) error_.block(row_begin, p, w.rows(), 1) = w - out;

        // Record the indices of the stored row blocks (blocks entirely in the padding are not
        // stored).
        const Index stored_blocks = outlier ? L.outlier_row_blocks() : L.row_blocks();
        for (Index b = 0; b < n; ++b) {
            const Index r = first_block + b;
            if (r >= stored_blocks) break;
            if (outlier) {
                layer_.outlier_indices[static_cast<std::size_t>(r * L.outlier_size + c)] =
                    static_cast<std::uint32_t>(idx[static_cast<std::size_t>(b)]);
            } else {
                const auto at = static_cast<std::size_t>((g * L.row_blocks() + r) * L.group_size + c);
                layer_.indices[at] = static_cast<std::uint32_t>(idx[static_cast<std::size_t>(b)]);
                if (use_residual_)
                    layer_.res_indices[at] = static_cast<std::uint32_t>(ridx[static_cast<std::size_t>(b)]);
            }
        }
    }

    /// w - q of every entry (padded rows x columns, stored order), when recorded.
    const MatrixXf& error() const { return error_; }

private:
    VptqLayer& layer_;
    bool use_residual_;
    bool record_error_;
    Assign assign_;
    Index granularity_ = 1;
    Index padded_rows_ = 0;
    MatrixXf error_;
};

}  // namespace vqlib
