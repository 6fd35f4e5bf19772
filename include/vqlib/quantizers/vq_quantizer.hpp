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
// Metrics and weights follow docs/gptvq.md:
//   lookup  : euclidean | inverse_u (1/U_jj, the reference) | inverse_u_squared (1/U_jj^2, OBS
//             diagonal) | exact (M = (U_PP^T U_PP)^-1, the exact joint OBS metric)
//   init    : none | u (U_jj, the reference code) | inverse_u (1/U_jj, the paper and AIMET)
#include <vqlib/backend/assignment.hpp>
#include <vqlib/backend/cpu_assignment.hpp>
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
        for (std::size_t k = 0; k < setup.perm.size(); ++k)
            VQLIB_CHECK(setup.perm[k] == static_cast<Index>(k), invalid_argument,
                        "act_order = true: GPTVQ codebook tiles follow the original column order; "
                        "disable act-order for vector quantization");
        VqLayout L;
        L.rows = R;
        L.cols = C;
        L.dim = options_.dim;
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
    }

    void begin_block(const BlockView& block) {
        const VqLayout& L = layer_.layout;
        const Index c = L.columns_per_group;
        const Index first = (block.begin + c - 1) / c * c;
        for (Index col0 = first; col0 < block.end; col0 += c) fit_group(block, col0);
    }

    void quantize(const StepView& step, Index row_begin, ConstMatrixRef w, MatrixRef q) {
        const VqLayout& L = layer_.layout;
        const Index D = L.dim;
        const Index v = step.column / D;
        const Index cg = step.column / L.columns_per_group;
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
        std::vector<std::int32_t> best(static_cast<std::size_t>(rows));
        // Rows of one band share a codebook: look them up band segment by band segment.
        for (Index r = 0; r < rows;) {
            const Index band = (row_begin + r) / L.rows_per_codebook;
            const Index end = std::min(rows, (band + 1) * L.rows_per_codebook - row_begin);
            const auto book = std::as_const(layer_).codebook(L.codebook_of(row_begin + r, cg));
            std::span<std::int32_t> out(best.data() + r, static_cast<std::size_t>(end - r));
            if (options_.lookup == LookupMetric::exact) {
                const MatrixXf points = w.middleRows(r, end - r) * transform;
                const MatrixXf centroids = book * transform;
                assign_.nearest_centroid(points, centroids, Weights{}, out);
            } else {
                const Weights metric = weights.empty()
                                           ? Weights{}
                                           : Weights::per_coordinate(std::span<const float>(weights));
                assign_.nearest_centroid(w.middleRows(r, end - r), book, metric, out);
            }
            for (Index i = r; i < end; ++i) {
                const std::int32_t idx = best[static_cast<std::size_t>(i)];
                layer_.indices(row_begin + i, v) = static_cast<std::uint16_t>(idx);
                q.row(i) = book.row(idx);
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
    void fit_group(const BlockView& block, Index col0) {
        const VqLayout& L = layer_.layout;
        const Index D = L.dim;
        const Index chunks_per_row = L.columns_per_group / D;
        const Index n = L.rows_per_codebook * chunks_per_row;
        const Index cg = col0 / L.columns_per_group;
        const bool weighted = options_.init_weighting != InitWeighting::none;
        MatrixXf weights;
        if (weighted) {
            // Vector n = (local row, chunk jj): coordinate j sits in column col0 + jj*D + j.
            weights.resize(n, D);
            for (Index jj = 0; jj < chunks_per_row; ++jj) {
                for (Index j = 0; j < D; ++j) {
                    const float u = block.U(col0 + jj * D + j, col0 + jj * D + j);
                    const float omega = options_.init_weighting == InitWeighting::u ? u : 1.0f / u;
                    for (Index rl = 0; rl < L.rows_per_codebook; ++rl)
                        weights(rl * chunks_per_row + jj, j) = omega;
                }
            }
        }
        parallel_for(L.bands(), [&](Index band) {
            MatrixXf points(n, D);
            for (Index rl = 0; rl < L.rows_per_codebook; ++rl) {
                const Index r = band * L.rows_per_codebook + rl;
                for (Index jj = 0; jj < chunks_per_row; ++jj)
                    points.row(rl * chunks_per_row + jj) = block.W.block(r, col0 + jj * D, 1, D);
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
};

}  // namespace vqlib
