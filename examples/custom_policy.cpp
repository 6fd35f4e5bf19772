// vqlib example: a quantizer policy of your own, run through the GPTQ block solver.
//
// HexLatticeQuantizer is a two-dimensional vector quantizer: each step takes D = 2 columns, and
// the pair of weights (w[r, j], w[r, j + 1]) of every row r is rounded to the nearest point of a
// scaled hexagonal lattice A2, truncated to a disc so that a fixed number of index bits suffices.
// The scale is fitted per row and per lazy-update block, in begin_block, on the block-start
// weights. Nothing in vqlib knows about lattices: the policy is handed to vqlib::BlockSolver,
// which supplies the Hessian-aware error feedback.
//
// The program quantizes a deterministic LLM-like layer with the three error-update policies and
// checks two properties (exit code 1 if either fails):
//   - with ExactUpdate, stats.error_sum equals the damped proxy loss tr((W-Q) H_damp (W-Q)^T);
//   - GPTQ-style feedback (ExactUpdate, DiagonalUpdate) beats no feedback (round-to-nearest).
#include <vqlib/core.hpp>                     // CodeMatrix, round_scale, ScaleStorage, BitsBreakdown
#include <vqlib/gptq.hpp>                     // only for the INT3 comparison line
#include <vqlib/hessian.hpp>
#include <vqlib/solver/block_solver.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <vector>

namespace {

using vqlib::Index;

/// The points of the hexagonal lattice A2 = {a (1, 0) + b (1/2, sqrt(3)/2) : a, b integers} whose
/// squared norm a^2 + ab + b^2 is at most radius2, with a fast nearest-point search.
class HexCodebook {
public:
    explicit HexCodebook(int radius2) : radius2_(radius2) {
        VQLIB_CHECK(radius2 >= 1 && radius2 <= 1024, vqlib::invalid_argument,
                    "radius2 = ", radius2, ": expected a squared radius in [1, 1024]");
        // |b| <= 2 r / sqrt(3) and |a| <= r (1 + 1/sqrt(3)); both are below 2 r + 1.
        reach_ = static_cast<int>(2.0 * std::sqrt(static_cast<double>(radius2))) + 1;
        const int width = 2 * reach_ + 1;
        table_.assign(static_cast<std::size_t>(width * width), -1);
        for (int b = -reach_; b <= reach_; ++b) {
            for (int a = -reach_; a <= reach_; ++a) {
                if (a * a + a * b + b * b > radius2_) continue;
                table_[slot(a, b)] = static_cast<std::int32_t>(points_.size());
                points_.push_back({static_cast<float>(a + 0.5 * b),
                                   static_cast<float>(b * std::sqrt(3.0) / 2.0)});
            }
        }  // at most ~3.7k points for radius2 <= 1024: a 16-bit index always suffices
    }

    Index size() const { return static_cast<Index>(points_.size()); }
    /// Bits of a stored index.
    int index_bits() const { return std::bit_width(static_cast<unsigned>(points_.size() - 1)); }
    float radius() const { return std::sqrt(static_cast<float>(radius2_)); }
    const Eigen::Vector2f& point(std::int32_t index) const {
        return points_[static_cast<std::size_t>(index)];
    }

    /// Index of the codebook point nearest to (x, y); ties go to the lowest index.
    std::int32_t nearest(float x, float y) const {
        // A2 is the union of two rectangular lattices, Z x sqrt(3) Z and that shifted by
        // (1/2, sqrt(3)/2): round to each, keep the closer. In lattice coordinates the first
        // candidate is (i - j, 2j), the second (i - j, 2j + 1).
        const float bound = 2.0f * radius() + 2.0f;  // keeps the integer conversions in range
        if (std::abs(x) <= bound && std::abs(y) <= bound) {
            const float sqrt3 = std::sqrt(3.0f);
            const int i0 = static_cast<int>(std::nearbyint(x));
            const int j0 = static_cast<int>(std::nearbyint(y / sqrt3));
            const int i1 = static_cast<int>(std::nearbyint(x - 0.5f));
            const int j1 = static_cast<int>(std::nearbyint(y / sqrt3 - 0.5f));
            const float dx0 = x - static_cast<float>(i0);
            const float dy0 = y - sqrt3 * static_cast<float>(j0);
            const float dx1 = x - (static_cast<float>(i1) + 0.5f);
            const float dy1 = y - sqrt3 * (static_cast<float>(j1) + 0.5f);
            const bool first = dx0 * dx0 + dy0 * dy0 <= dx1 * dx1 + dy1 * dy1;
            const int a = first ? i0 - j0 : i1 - j1;
            const int b = first ? 2 * j0 : 2 * j1 + 1;
            // The nearest lattice point is the nearest codebook point whenever it lies inside.
            if (a * a + a * b + b * b <= radius2_) return table_[slot(a, b)];
        }
        // Outside the disc (weights pushed past the fitted range by the error feedback):
        // search the whole codebook.
        std::int32_t best = 0;
        float best_distance = std::numeric_limits<float>::infinity();
        for (std::size_t k = 0; k < points_.size(); ++k) {
            const float d = (points_[k] - Eigen::Vector2f(x, y)).squaredNorm();
            if (d < best_distance) {
                best_distance = d;
                best = static_cast<std::int32_t>(k);
            }
        }
        return best;
    }

private:
    std::size_t slot(int a, int b) const {
        const int width = 2 * reach_ + 1;
        return static_cast<std::size_t>((b + reach_) * width + (a + reach_));
    }

    int radius2_;
    int reach_ = 0;
    std::vector<std::int32_t> table_;  // (a, b) -> index, -1 outside the disc
    std::vector<Eigen::Vector2f> points_;
};

/// The quantizer policy: pairs of columns to A2 points, one fp16 scale per (row, block).
class HexLatticeQuantizer {
public:
    /// 61 points within radius 4: a 6-bit index per pair, 3 bits per weight before the scales.
    static constexpr int default_radius2 = 16;

    explicit HexLatticeQuantizer(int radius2 = default_radius2) : codebook_(radius2) {}

    // --- the QuantizerPolicy contract ---------------------------------------------------------
    Index step_width() const { return 2; }
    Index row_granularity() const { return 1; }

    void begin(const vqlib::SolveSetup& setup) {
        rows_ = setup.W_input.rows();
        cols_ = setup.W_input.cols();
        block_size_ = setup.block_size;
        perm_ = setup.perm;
        const Index blocks = (cols_ + block_size_ - 1) / block_size_;
        scales_.setOnes(rows_, blocks);
        codes_.setZero(rows_, cols_ / 2);
    }

    /// Serial, before any row of the block: the scale maps each row's largest pair (at the
    /// block start) onto the rim of the disc.
    void begin_block(const vqlib::BlockView& block) {
        const Index k = block.begin / block_size_;
        for (Index r = 0; r < rows_; ++r) {
            float largest = 0.0f;
            for (Index j = block.begin; j < block.end; j += 2)
                largest = std::max(largest, std::hypot(block.W(r, j), block.W(r, j + 1)));
            scales_(r, k) = largest > 0.0f ? vqlib::round_scale(largest / codebook_.radius(),
                                                                vqlib::ScaleStorage::fp16)
                                           : 1.0f;
        }
    }

    /// Concurrent for disjoint row ranges: reads the scales, writes only the codes of its rows.
    void quantize(const vqlib::StepView& step, Index row_begin, vqlib::ConstMatrixRef w,
                  vqlib::MatrixRef q) {
        const Index block = step.column / block_size_;
        const Index pair = step.column / 2;
        for (Index r = 0; r < w.rows(); ++r) {
            const float s = scales_(row_begin + r, block);
            const std::int32_t index = codebook_.nearest(w(r, 0) / s, w(r, 1) / s);
            codes_(row_begin + r, pair) = static_cast<std::uint16_t>(index);
            q.row(r) = s * codebook_.point(index).transpose();
        }
    }

    // --- what the quantized layer is made of --------------------------------------------------
    /// The layer rebuilt from codes and scales alone, original column order.
    vqlib::MatrixXf dequantize() const {
        vqlib::MatrixXf Q(rows_, cols_);
        for (Index k = 0; k < cols_; k += 2) {
            const Index block = k / block_size_;
            for (Index r = 0; r < rows_; ++r) {
                const Eigen::Vector2f p = scales_(r, block) * codebook_.point(codes_(r, k / 2));
                Q(r, perm_[static_cast<std::size_t>(k)]) = p.x();
                Q(r, perm_[static_cast<std::size_t>(k + 1)]) = p.y();
            }
        }
        return Q;
    }

    /// One index per pair, one fp16 scale per (row, block); the lattice itself is implied by
    /// the format and costs nothing.
    vqlib::BitsBreakdown bits() const {
        vqlib::BitsBreakdown b;
        b.weights = rows_ * cols_;
        b.codes = static_cast<double>(codes_.size()) * codebook_.index_bits();
        b.parameters = static_cast<double>(scales_.size()) *
                       vqlib::scale_bits(vqlib::ScaleStorage::fp16);
        return b;
    }

private:
    HexCodebook codebook_;
    Index rows_ = 0;
    Index cols_ = 0;
    Index block_size_ = 0;
    vqlib::Permutation perm_;
    vqlib::MatrixXf scales_;  // rows x blocks
    vqlib::CodeMatrix codes_;  // rows x pairs (uint16)
};

static_assert(vqlib::QuantizerPolicy<HexLatticeQuantizer>);

/// A deterministic LLM-like layer: heavy-tailed weights, inputs with correlated channels.
struct Layer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

Layer make_layer(Index rows, Index cols, Index tokens, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Layer layer{vqlib::MatrixXf(rows, cols), vqlib::MatrixXd()};
    for (Index i = 0; i < rows; ++i) {
        const double row_scale = 0.02 * std::exp(0.3 * rng.normal());
        for (Index j = 0; j < cols; ++j)
            layer.W(i, j) = static_cast<float>(row_scale * rng.student_t(4));
    }
    constexpr Index factors = 16;
    vqlib::MatrixXf mixing(cols, factors);
    for (Index f = 0; f < factors; ++f)
        for (Index j = 0; j < cols; ++j) mixing(j, f) = static_cast<float>(rng.normal());
    vqlib::VectorXf channel_scale(cols);
    for (Index j = 0; j < cols; ++j)
        channel_scale[j] = static_cast<float>(std::exp(0.5 * rng.normal()));

    vqlib::HessianAccumulator accumulator(cols);
    constexpr Index batch = 512;
    for (Index t0 = 0; t0 < tokens; t0 += batch) {
        vqlib::MatrixXf latent(factors, batch);
        for (Index t = 0; t < batch; ++t)
            for (Index f = 0; f < factors; ++f) latent(f, t) = static_cast<float>(rng.normal());
        vqlib::MatrixXf X = 0.4f * mixing * latent;
        for (Index t = 0; t < batch; ++t)
            for (Index j = 0; j < cols; ++j)
                X(j, t) = (X(j, t) + static_cast<float>(rng.normal())) * channel_scale[j];
        accumulator.add(X);  // one batch of tokens at a time
    }
    layer.H = accumulator.finalize();
    return layer;
}

struct Outcome {
    double bits_per_weight;
    double error_sum;    // what the solver fed back, squared
    double damped_loss;  // tr((W-Q) H_damp (W-Q)^T)
    double loss;         // tr((W-Q) H (W-Q)^T)
};

template <vqlib::ErrorUpdatePolicy Update>
Outcome solve(const Layer& layer, const vqlib::PreparedHessian& prepared,
              const vqlib::MatrixXd& H_damp, bool& ok) {
    HexLatticeQuantizer quantizer;
    const vqlib::SolveResult result =
        vqlib::BlockSolver<Update>().run(layer.W, prepared, quantizer);
    if (quantizer.dequantize() != result.Q) {
        std::printf("FAIL: %s: codes and scales do not rebuild the solver's Q\n", Update::name());
        ok = false;
    }
    const Outcome out{quantizer.bits().per_weight(), result.stats.error_sum,
                      vqlib::proxy_loss(layer.W, result.Q, H_damp),
                      vqlib::proxy_loss(layer.W, result.Q, layer.H)};
    std::printf("%-24s %7.4f %15.6g %13.6g %13.6g\n", Update::name(), out.bits_per_weight,
                out.error_sum, out.damped_loss, out.loss);
    return out;
}

}  // namespace

int main() {
    constexpr Index rows = 256, cols = 512, tokens = 2048;
    const Layer layer = make_layer(rows, cols, tokens, 7);
    const vqlib::PreparedHessian prepared = vqlib::prepare_hessian(layer.H);
    vqlib::MatrixXd H_damp = layer.H;
    H_damp.diagonal().array() += prepared.damp;

    const HexCodebook codebook(HexLatticeQuantizer::default_radius2);
    std::printf("A2 lattice within radius %g: %lld points, a %d-bit index per pair of weights; "
                "one fp16 scale per row and block\n",
                codebook.radius(), static_cast<long long>(codebook.size()), codebook.index_bits());
    std::printf("layer %lldx%lld, %lld tokens, damp = %.4g\n\n", static_cast<long long>(rows),
                static_cast<long long>(cols), static_cast<long long>(tokens), prepared.damp);
    std::printf("%-24s %7s %15s %13s %13s\n", "error update", "bits/w", "stats.error_sum",
                "damped loss", "proxy loss");

    bool ok = true;
    const Outcome exact = solve<vqlib::ExactUpdate>(layer, prepared, H_damp, ok);
    const Outcome diagonal = solve<vqlib::DiagonalUpdate>(layer, prepared, H_damp, ok);
    const Outcome none = solve<vqlib::NoFeedback>(layer, prepared, H_damp, ok);

    // For scale: GPTQ with a scalar grid at the same budget (3 bits + an fp16 scale per 128).
    vqlib::GptqConfig<vqlib::IntGrid> int3{vqlib::IntGrid(3, true, {}, vqlib::ScaleStorage::fp16)};
    int3.groups.size = 128;
    const auto scalar = vqlib::gptq(layer.W, layer.H, int3);
    std::printf("%-24s %7.4f %15s %13s %13.6g\n", "(GPTQ, INT3-sym g128)",
                scalar.layer.bits_per_weight(), "", "", scalar.proxy_loss);

    const double mismatch = std::abs(exact.error_sum - exact.damped_loss) / exact.damped_loss;
    std::printf("\nexact update: |error_sum - damped loss| / damped loss = %.2e\n", mismatch);
    std::printf("proxy loss relative to round-to-nearest: exact %.3f, diagonal %.3f\n",
                exact.loss / none.loss, diagonal.loss / none.loss);
    if (!(mismatch <= 1e-3)) {
        std::printf("FAIL: the exact update's error_sum is not the damped proxy loss\n");
        ok = false;
    }
    if (!(exact.loss < none.loss && diagonal.loss < none.loss)) {
        std::printf("FAIL: error feedback did not beat round-to-nearest\n");
        ok = false;
    }
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
