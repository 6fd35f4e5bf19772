// vqlib example: a scalar format of your own, quantized by GPTQ.
//
// When every weight is rounded on its own, a new format needs no quantizer policy: a type that
// satisfies vqlib::ScalarGrid is enough, and vqlib::ScalarQuantizer (groups, act-order, codes)
// and vqlib::gptq / vqlib::rtn do the rest. Pow2Grid is a logarithmic format: a sign and a
// power of two, value = scale * (+-2^-k) or 0, with one scale per row of a group.
//
// The program checks the grid's rounding against brute force, quantizes a deterministic layer with
// RTN and GPTQ at 4 and 3 bits in Pow2Grid and, for comparison, symmetric IntGrid, and checks
// that GPTQ beats RTN and that the stored codes rebuild GPTQ's Q exactly (exit code 1 otherwise).
#include <vqlib/gptq.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace {

using vqlib::Index;

/// b-bit sign + power-of-two grid. Code layout: bit b-1 is the sign, the low b-1 bits m select
/// the magnitude: m = 0 is zero, m = 1..top is 2^(m - top) with top = 2^(b-1) - 1, so the
/// largest magnitude is 1 (times the scale) and the smallest 2^(1 - top). The scale maps each
/// row's absolute maximum to 1. Rounding is to the nearest value; a tie goes to the larger
/// magnitude.
class Pow2Grid {
public:
    explicit Pow2Grid(int bits, vqlib::ScaleStorage storage = vqlib::ScaleStorage::fp16)
        : bits_(checked_bits(bits)), top_((1 << (bits - 1)) - 1), storage_(storage) {}

    // --- the ScalarGrid contract --------------------------------------------------------------
    void fit(vqlib::ConstMatrixRef x, std::span<vqlib::GridParams> params) const {
        VQLIB_CHECK(static_cast<Index>(params.size()) == x.rows(), vqlib::shape_error,
                    "params has ", params.size(), " entries: expected one per row (", x.rows(),
                    ")");
        vqlib::check_finite("x", x);
        for (Index r = 0; r < x.rows(); ++r) {
            const float absmax = x.row(r).cwiseAbs().maxCoeff();
            params[static_cast<std::size_t>(r)] = vqlib::GridParams{
                absmax > 0.0f ? vqlib::round_scale(absmax, storage_) : 1.0f, 0.0f};
        }
    }

    std::uint32_t encode(float v, const vqlib::GridParams& p) const {
        const std::uint32_t sign = v < 0.0f ? 1u : 0u;
        const int m = nearest_magnitude(std::abs(v / p.scale));
        return m == 0 ? 0u : (sign << (bits_ - 1)) | static_cast<std::uint32_t>(m);
    }

    float decode(std::uint32_t code, const vqlib::GridParams& p) const {
        const int m = static_cast<int>(code & static_cast<std::uint32_t>(top_));
        const float magnitude = m == 0 ? 0.0f : std::ldexp(1.0f, m - top_);
        return p.scale * ((code >> (bits_ - 1)) != 0 ? -magnitude : magnitude);
    }

    int code_bits() const { return bits_; }
    int param_bits() const { return vqlib::scale_bits(storage_); }  // no zero point
    std::string name() const { return "POW2-" + std::to_string(bits_); }

private:
    /// 2..8 bits: the smallest magnitude 2^(1 - top) must stay a normal float (top <= 127).
    static int checked_bits(int bits) {
        VQLIB_CHECK_RANGE("bits", bits, 2, 8);
        return bits;
    }

    /// The m whose magnitude is nearest to a >= 0.
    int nearest_magnitude(float a) const {
        if (!(a < 1.0f)) return top_;  // saturate (also +inf)
        if (a == 0.0f) return 0;
        int e = 0;
        std::frexp(a, &e);  // 2^(e-1) <= a < 2^e, e <= 0
        // Between 2^(e-1) and 2^e the midpoint is 0.75 * 2^e.
        const int exponent = a >= std::ldexp(0.75f, e) ? e : e - 1;
        if (exponent + top_ >= 1) return exponent + top_;
        // Below the smallest magnitude 2^(1 - top): zero or the smallest, whichever is nearer.
        return a >= std::ldexp(0.5f, 1 - top_) ? 1 : 0;
    }

    int bits_;
    int top_;
    vqlib::ScaleStorage storage_;
};

static_assert(vqlib::ScalarGrid<Pow2Grid>);

/// Compares encode with a brute-force search over every code.
bool rounding_matches_brute_force(const Pow2Grid& grid) {
    vqlib::Rng rng(3);
    const vqlib::GridParams p{1.0f, 0.0f};
    for (int n = 0; n < 100000; ++n) {
        const float v = static_cast<float>(rng.normal() * std::exp(3.0 * rng.normal()));
        const float got = std::abs(grid.decode(grid.encode(v, p), p) - v);
        float best = std::abs(v);  // code 0
        for (std::uint32_t code = 0; code < (1u << grid.code_bits()); ++code)
            best = std::min(best, std::abs(grid.decode(code, p) - v));
        if (got != best) {
            std::printf("FAIL: %s rounds %g to %g, %g away; the nearest value is %g away\n",
                        grid.name().c_str(), v, grid.decode(grid.encode(v, p), p), got, best);
            return false;
        }
    }
    return true;
}

struct Layer {
    vqlib::MatrixXf W;
    vqlib::MatrixXd H;
};

/// A deterministic layer: heavy-tailed weights; inputs driven by a few shared factors, so that
/// channels are correlated (the case where GPTQ's error feedback pays off).
Layer make_layer(Index rows, Index cols, Index tokens, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Layer layer{vqlib::MatrixXf(rows, cols), vqlib::MatrixXd()};
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i)
            layer.W(i, j) = static_cast<float>(0.02 * rng.student_t(4));
    constexpr Index factors = 16;
    vqlib::MatrixXf mixing(cols, factors), latent(factors, tokens), noise(cols, tokens);
    for (Index f = 0; f < factors; ++f)
        for (Index j = 0; j < cols; ++j) mixing(j, f) = static_cast<float>(rng.normal());
    for (Index t = 0; t < tokens; ++t) {
        for (Index f = 0; f < factors; ++f) latent(f, t) = static_cast<float>(rng.normal());
        for (Index j = 0; j < cols; ++j) noise(j, t) = static_cast<float>(rng.normal());
    }
    vqlib::HessianAccumulator accumulator(cols);
    accumulator.add(0.4f * mixing * latent + noise);  // X: one token per column
    layer.H = accumulator.finalize();
    return layer;
}

template <vqlib::ScalarGrid G>
void report(const Layer& layer, const G& grid, bool& ok) {
    vqlib::GptqConfig<G> config{grid};
    config.groups.size = 128;
    const auto rtn = vqlib::rtn(layer.W, layer.H, config);
    const auto gptq = vqlib::gptq(layer.W, layer.H, config);
    std::printf("%-10s %8.4f %14.6g %14.6g %8.3f\n", grid.name().c_str(),
                gptq.layer.bits_per_weight(), rtn.proxy_loss, gptq.proxy_loss,
                gptq.proxy_loss / rtn.proxy_loss);
    if (!(gptq.proxy_loss < rtn.proxy_loss)) {
        std::printf("FAIL: %s: GPTQ did not beat round-to-nearest\n", grid.name().c_str());
        ok = false;
    }
    if (gptq.layer.dequantize() != gptq.Q) {
        std::printf("FAIL: %s: the codes do not rebuild Q\n", grid.name().c_str());
        ok = false;
    }
}

}  // namespace

int main() {
    bool ok =
        rounding_matches_brute_force(Pow2Grid(4)) && rounding_matches_brute_force(Pow2Grid(3));
    const Layer layer = make_layer(128, 512, 2048, 11);
    std::printf("layer 128x512, groups of 128 columns, fp16 scales\n\n");
    std::printf("%-10s %8s %14s %14s %8s\n", "grid", "bits/w", "RTN loss", "GPTQ loss",
                "GPTQ/RTN");
    report(layer, Pow2Grid(4), ok);
    report(layer, vqlib::IntGrid(4, true, {}, vqlib::ScaleStorage::fp16), ok);
    report(layer, Pow2Grid(3), ok);
    report(layer, vqlib::IntGrid(3, true, {}, vqlib::ScaleStorage::fp16), ok);
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
