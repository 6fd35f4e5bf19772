#pragma once
// The vector quantizer policy of GPTVQ for the block solver.
//
// Vectors are D consecutive columns of one row. Columns are split into column groups of
// `columns_per_group`; each group gets one codebook per band of rows_per_codebook rows, so a
// codebook covers a rows_per_codebook x columns_per_group tile (weights_per_codebook weights).
// When a block starts, the codebooks of every column group starting in it are fitted on the
// working weights as they stand at that block start (the reference's timing), each from the
// tile's vectors with optional per-coordinate weights derived from diag(U); then `storage`
// quantizes them (e.g. INT8 with one scale per codebook). Each solver step looks up, for every
// row, the nearest codeword under the chosen metric.
//
// Act-order (HessianOptions::act_order with act_order_unit = D): the solver visits the D-column
// vectors by descending diagonal of H. Codebook tiles stay the original column groups (GPTQ's
// static groups), so the layer and its decode are unchanged: a group's codebooks are fitted at
// the start of the first block that reaches one of its columns, from the working weights as they
// stand then.
//
// Blockwise normalization inside the solve (GPTVQ App. H, VqOptions::normalization): when a
// column group is fitted, its R x c weights are normalized per row and sub-block of bs columns
// (codebook/blockwise_normalization.hpp); the codebooks are fitted to the normalized vectors
// (each weighted by its squared scale, so that the fit minimizes the error of the weights
// themselves), and every lookup divides the current, updated vector by its fixed scale s and
// stores c * s. (The reference normalizes a block once and looks up stale copies: docs/gptvq.md.)
//
// Metrics and weights follow docs/gptvq.md:
//   lookup  : euclidean | inverse_u (1/U_jj, the reference) | inverse_u_squared (1/U_jj^2, OBS
//             diagonal) | exact (M = (U_PP^T U_PP)^-1, the exact joint OBS metric)
//   init    : none | u (U_jj, the reference code) | inverse_u (1/U_jj, the paper and AIMET)
#include <vqlib/backend/assignment.hpp>
#include <vqlib/backend/cpu_assignment.hpp>
#include <vqlib/codebook/blockwise_normalization.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/half.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/formats/vq_layer.hpp>
#include <vqlib/solver/context.hpp>
#include <vqlib/solver/policies.hpp>

#include <Eigen/Cholesky>

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace vqlib {

enum class LookupMetric { euclidean, inverse_u, inverse_u_squared, exact };
enum class InitWeighting { none, u, inverse_u };

struct VqOptions {
    /// Vector dimension D and centroids per codebook K.
    Index dim = 2;
    Index k = 16;
    /// Weights sharing one codebook (l) and the width of a column group (c). l >= c gives tiles
    /// of l/c rows x c columns; l < c gives one row x l columns (c becomes l).
    Index weights_per_codebook = 2048;
    Index columns_per_group = 256;
    LookupMetric lookup = LookupMetric::inverse_u;
    InitWeighting init_weighting = InitWeighting::u;
    /// Blockwise normalization inside the solve (none by default). block_size must be a multiple
    /// of dim and divide the column group; the offsets are stored as fp16 (VqLayer's accounting).
    std::optional<BlockwiseNormalizationOptions> normalization{};
    /// With normalization: weight each vector's fit by its squared scale (the error of a weight
    /// is s times the error of its normalized value). false fits the normalized vectors as they
    /// are, as the reference does.
    bool scale_weighted_fit = true;
};

/// Fits K centroids (K x D) to points (N x D) with per-coordinate weights (N x D, or 0 x 0 for
/// none). Called concurrently for different tiles: it must not modify shared state.
template <class F>
concept CodebookFitter = requires(const F& f, ConstMatrixRef points, ConstMatrixRef weights, Index k) {
    { f(points, weights, k) } -> std::convertible_to<MatrixXf>;
};

/// How codebooks are stored: quantize(codebooks, k) rounds the stacked codebooks of one column
/// group (count*K x D) in place to the storage format; the rest is for bit accounting.
template <class S>
concept CodebookStorage = requires(const S& s, MatrixRef codebooks, Index k, Index count) {
    s.quantize(codebooks, k);
    { s.entry_bits() } -> std::convertible_to<int>;          // bits per codebook entry
    { s.scale_bits() } -> std::convertible_to<int>;          // bits per stored scale
    { s.scales_for(count) } -> std::convertible_to<Index>;   // scales for `count` codebooks
};

/// Codebooks stored as fp16 floats (entries rounded to half precision).
struct HalfCodebooks {
    void quantize(MatrixRef codebooks, Index) const {
        for (Index j = 0; j < codebooks.cols(); ++j)
            for (Index i = 0; i < codebooks.rows(); ++i)
                codebooks(i, j) = round_to_half(codebooks(i, j));
    }
    int entry_bits() const { return 16; }
    int scale_bits() const { return 0; }
    Index scales_for(Index) const { return 0; }
};

/// Re-applies a storage format to every codebook of a layer, one column group at a time (the
/// scope in which VqQuantizer applies it), e.g. after a codebook update.
template <CodebookStorage Storage>
void requantize_codebooks(VqLayer& layer, const Storage& storage) {
    const Index per_group = layer.layout.bands() * layer.layout.k;
    for (Index cg = 0; cg < layer.layout.column_groups(); ++cg)
        storage.quantize(layer.codebooks.middleRows(cg * per_group, per_group), layer.layout.k);
}

/// `Assign` is the nearest-centroid backend of the lookups (backend/assignment.hpp); each call
/// covers the rows of one band segment inside one of the solver's parallel row chunks.
template <CodebookFitter Fitter, CodebookStorage Storage = HalfCodebooks,
          AssignmentBackend Assign = CpuAssignment>
class VqQuantizer {
public:
    VqQuantizer(VqOptions options, Fitter fitter, Storage storage = {}, Assign assign = {})
        : options_(options),
          fitter_(std::move(fitter)),
          storage_(std::move(storage)),
          assign_(std::move(assign)) {
        VQLIB_CHECK(options.dim >= 1 && options.dim <= 16, invalid_argument, "dim = ",
                    options.dim, ": expected a vector dimension in [1, 16]");
        VQLIB_CHECK(options.k >= 1 && options.k <= 65536, invalid_argument, "k = ", options.k,
                    ": expected 1..65536 centroids");
        VQLIB_CHECK(options.weights_per_codebook >= 1 && options.columns_per_group >= 1,
                    invalid_argument, "weights_per_codebook = ", options.weights_per_codebook,
                    ", columns_per_group = ", options.columns_per_group,
                    ": expected positive sizes");
    }

    Index step_width() const { return options_.dim; }
    Index row_granularity() const { return 1; }
    const VqOptions& options() const { return options_; }

    void begin(const SolveSetup& setup) {
        const Index R = setup.W_input.rows();
        const Index C = setup.W_input.cols();
        const Index D = options_.dim;
        VQLIB_CHECK(static_cast<Index>(setup.perm.size()) == C, shape_error, "the solver order has ",
                    setup.perm.size(), " columns: expected C = ", C);
        // The solver may reorder whole vectors (act-order with act_order_unit = dim), never split one.
        for (Index k = 0; k < C; ++k) {
            const Index p = setup.perm[static_cast<std::size_t>(k)];
            const Index first = setup.perm[static_cast<std::size_t>(k - k % D)];
            VQLIB_CHECK(first % D == 0 && p == first + k % D, invalid_argument,
                        "act-order moved column ", p, " to solver position ", k,
                        ": GPTVQ's vectors are D = ", D, " consecutive columns; prepare the "
                        "Hessian with HessianOptions::act_order_unit = ", D);
        }
        perm_ = setup.perm;
        position_.assign(static_cast<std::size_t>(C), 0);
        for (Index k = 0; k < C; ++k) position_[static_cast<std::size_t>(perm_[static_cast<std::size_t>(k)])] = k;
        VqLayout L;
        L.rows = R;
        L.cols = C;
        L.dim = D;
        L.k = options_.k;
        const Index l = options_.weights_per_codebook;
        Index c = options_.columns_per_group;
        if (l < c) {
            VQLIB_CHECK(c % l == 0, shape_error, "weights_per_codebook = ", l,
                        " is smaller than columns_per_group = ", c, " and does not divide it");
            c = l;
        } else {
            VQLIB_CHECK(l % c == 0, shape_error, "weights_per_codebook = ", l,
                        " is not a multiple of columns_per_group = ", c);
        }
        L.columns_per_group = c;
        L.rows_per_codebook = l / c;
        VQLIB_CHECK(C % c == 0, shape_error, "columns_per_group = ", c,
                    " does not divide the number of columns C = ", C);
        VQLIB_CHECK(c % L.dim == 0, shape_error, "dim = ", L.dim,
                    " does not divide columns_per_group = ", c);
        VQLIB_CHECK(R % L.rows_per_codebook == 0, shape_error, "a codebook tile of ",
                    L.rows_per_codebook, " rows (weights_per_codebook / columns_per_group = ", l,
                    " / ", c, ") does not divide the number of rows R = ", R);
        const Index vectors = L.rows_per_codebook * c / L.dim;
        VQLIB_CHECK(L.k <= vectors, invalid_argument, "k = ", L.k,
                    " is larger than the number of vectors per codebook (", vectors,
                    " = weights_per_codebook / dim)");
        layer_ = VqLayer{};
        layer_.layout = L;
        layer_.codebooks.setZero(L.codebook_count() * L.k, L.dim);
        layer_.indices.resize(R, L.vectors_per_row());
        layer_.codebook_bits = storage_.entry_bits();
        layer_.codebook_scale_bits = storage_.scale_bits();
        layer_.codebook_scale_count = storage_.scales_for(L.bands()) * L.column_groups();
        if (options_.normalization) {
            const BlockwiseNormalizationOptions& n = *options_.normalization;
            const BlockwiseNormalizer check(n);  // validates block_size and bits
            VQLIB_CHECK(n.block_size % D == 0 && c % n.block_size == 0, shape_error,
                        "normalization.block_size = ", n.block_size, ": expected a multiple of dim = ",
                        D, " that divides the column group of ", c, " columns");
            VQLIB_CHECK(n.offset_storage == ScaleStorage::fp16, invalid_argument,
                        "normalization.offset_storage = fp32: expected fp16 (VqLayer stores each "
                        "sub-block column's offset and step as fp16)");
            layer_.scale_block = n.block_size;
            layer_.normalization_bits = n.bits;
            layer_.scales.setOnes(R, C / n.block_size);
        }
        fitted_.assign(static_cast<std::size_t>(L.column_groups()), false);
    }

    void begin_block(const BlockView& block) {
        const VqLayout& L = layer_.layout;
        // Every column group first reached by this block, in the order the block reaches them.
        for (Index k = block.begin; k < block.end; k += L.dim) {
            const Index cg = perm_[static_cast<std::size_t>(k)] / L.columns_per_group;
            if (fitted_[static_cast<std::size_t>(cg)]) continue;
            fit_group(block, cg);
            fitted_[static_cast<std::size_t>(cg)] = true;
        }
    }

    void quantize(const StepView& step, Index row_begin, ConstMatrixRef w, MatrixRef q) {
        const VqLayout& L = layer_.layout;
        const Index D = L.dim;
        const Index column = perm_[static_cast<std::size_t>(step.column)];  // original column
        const Index v = column / D;
        const Index cg = column / L.columns_per_group;
        const Index rows = w.rows();
        std::vector<float> weights;
        MatrixXf transform;  // exact metric: Euclidean distances of the rows (w - c) U_PP^-1
        switch (options_.lookup) {
        case LookupMetric::euclidean: break;
        case LookupMetric::inverse_u:
        case LookupMetric::inverse_u_squared:
            weights.resize(static_cast<std::size_t>(D));
            for (Index j = 0; j < D; ++j) {
                const float u = step.U_step(j, j);
                weights[static_cast<std::size_t>(j)] =
                    options_.lookup == LookupMetric::inverse_u ? 1.0f / u : 1.0f / (u * u);
            }
            break;
        case LookupMetric::exact: {
            // For a row vector d = w - c: d M d^T = d U^-1 U^-T d^T = |d U^-1|^2.
            const MatrixXf Uinv = step.U_step.triangularView<Eigen::Upper>().solve(
                MatrixXf::Identity(D, D));
            transform = Uinv;
            break;
        }
        }
        // With normalization, a row's vector is looked up as w / s (s its sub-block's scale; every
        // metric above scales by s^2 for the whole row, so the nearest centroid is the same) and
        // stored as c * s.
        const bool normalized = layer_.scale_block > 0;
        const Index scale_col = normalized ? column / layer_.scale_block : 0;
        const auto scale_of = [&](Index i) { return normalized ? layer_.scales(row_begin + i, scale_col) : 1.0f; };
        MatrixXf scaled;
        if (normalized) {
            scaled.resize(rows, D);
            for (Index i = 0; i < rows; ++i) scaled.row(i) = w.row(i) / scale_of(i);
        }
        const ConstMatrixRef points_in = normalized ? ConstMatrixRef(scaled) : w;
        std::vector<std::int32_t> best(static_cast<std::size_t>(rows));
        // Rows of one band share a codebook: look them up band segment by band segment.
        for (Index r = 0; r < rows;) {
            const Index band = (row_begin + r) / L.rows_per_codebook;
            const Index end = std::min(rows, (band + 1) * L.rows_per_codebook - row_begin);
            const auto book = std::as_const(layer_).codebook(L.codebook_of(row_begin + r, cg));
            std::span<std::int32_t> out(best.data() + r, static_cast<std::size_t>(end - r));
            if (options_.lookup == LookupMetric::exact) {
                const MatrixXf points = points_in.middleRows(r, end - r) * transform;
                const MatrixXf centroids = book * transform;
                assign_.nearest_centroid(points, centroids, Weights{}, out);
            } else {
                const Weights metric = weights.empty()
                                           ? Weights{}
                                           : Weights::per_coordinate(std::span<const float>(weights));
                assign_.nearest_centroid(points_in.middleRows(r, end - r), book, metric, out);
            }
            for (Index i = r; i < end; ++i) {
                const std::int32_t idx = best[static_cast<std::size_t>(i)];
                layer_.indices(row_begin + i, v) = static_cast<std::uint16_t>(idx);
                q.row(i) = book.row(idx) * scale_of(i);  // (times 1 is exact)
            }
            r = end;
        }
    }

    /// The quantized layer (after a solve).
    const VqLayer& layer() const { return layer_; }
    VqLayer& layer() { return layer_; }
    const Storage& storage() const { return storage_; }
    const Assign& assignment() const { return assign_; }

private:
    /// Fits the codebooks of column group cg (original columns [cg*c, (cg+1)*c)) on the working
    /// weights of the block start, read at their solver positions.
    void fit_group(const BlockView& block, Index cg) {
        const VqLayout& L = layer_.layout;
        const Index D = L.dim;
        const Index c = L.columns_per_group;
        const Index col0 = cg * c;
        const Index chunks_per_row = c / D;
        const Index n = L.rows_per_codebook * chunks_per_row;
        const auto pos = [&](Index col) { return position_[static_cast<std::size_t>(col)]; };
        // The group's weights in original column order (vectors stay whole in solver order).
        MatrixXf tile(L.rows, c);
        for (Index jj = 0; jj < c; jj += D) tile.middleCols(jj, D) = block.W.middleCols(pos(col0 + jj), D);
        const bool normalized = layer_.scale_block > 0;
        if (normalized) {
            NormalizedBlock nb = BlockwiseNormalizer(*options_.normalization).normalize(tile);
            const Index bs = layer_.scale_block;
            layer_.scales.middleCols(col0 / bs, c / bs) = nb.scales.scales;
            tile = std::move(nb.weights);
        }
        const bool weighted = options_.init_weighting != InitWeighting::none;
        const bool scale_weights = normalized && options_.scale_weighted_fit;
        // Vector n = (local row, chunk jj): coordinate j sits in column col0 + jj*D + j.
        Eigen::MatrixXf omega;  // chunks_per_row x D: the init weight of each coordinate
        if (weighted) {
            omega.resize(chunks_per_row, D);
            for (Index jj = 0; jj < chunks_per_row; ++jj)
                for (Index j = 0; j < D; ++j) {
                    const Index p = pos(col0 + jj * D + j);
                    const float u = block.U(p, p);
                    omega(jj, j) = options_.init_weighting == InitWeighting::u ? u : 1.0f / u;
                }
        }
        parallel_for(L.bands(), [&](Index band) {
            MatrixXf points(n, D);
            MatrixXf weights;
            if (weighted || scale_weights) weights.setOnes(n, D);
            for (Index rl = 0; rl < L.rows_per_codebook; ++rl) {
                const Index r = band * L.rows_per_codebook + rl;
                for (Index jj = 0; jj < chunks_per_row; ++jj) {
                    const Index at = rl * chunks_per_row + jj;
                    points.row(at) = tile.block(r, jj * D, 1, D);
                    if (weighted) weights.row(at) = omega.row(jj);
                    if (scale_weights) {
                        const float s = layer_.scales(r, (col0 + jj * D) / layer_.scale_block);
                        weights.row(at) *= s * s;
                    }
                }
            }
            const MatrixXf centroids = fitter_(points, weights, L.k);
            VQLIB_CHECK(centroids.rows() == L.k && centroids.cols() == D, shape_error,
                        "the codebook fitter returned ", centroids.rows(), "x", centroids.cols(),
                        ": expected ", L.k, "x", D);
            layer_.codebook(L.codebook_of(band * L.rows_per_codebook, cg)) = centroids;
        });
        const Index per_group = L.bands() * L.k;
        storage_.quantize(layer_.codebooks.middleRows(cg * per_group, per_group), L.k);
    }

    VqOptions options_;
    Fitter fitter_;
    Storage storage_;
    Assign assign_;
    VqLayer layer_;
    Permutation perm_;                // solver position -> original column
    std::vector<Index> position_;     // original column -> solver position
    std::vector<bool> fitted_;        // per column group
};

}  // namespace vqlib
