#pragma once
// Method specs of vqlib-quantize: a short text naming a vqlib recipe and its configuration,
// parsed with errors that name what is wrong, and run on one linear (W, H).
//
//   gptq:w4g128        INT4, asymmetric, groups of 128 (fp16 scales)     options: -act -sym
//   gptq:w3            INT3 per row (no groups)
//   gptvq:2d-2.125     GPTVQ 2D at 2.125 bits per value, vqlib's best choices   @ref: the
//                      reference-compatible choices (gptvq_presets::paper)
//   vptq:v8k65536      VPTQ vector length 8, 65536 centroids            r256: residual codebook
//   pvq:3.25           PVQ D = 32 at 3.25 bpw, best choices  (d64-2.125: another D; @paper)
//   any of them +had   under randomized-Hadamard incoherence (vqlib::incoherent), seeded per linear
#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/transform/incoherence.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vqlib::quantize {

/// What quantizing one linear gives, as a checkpoint keeps it.
struct Outcome {
    io::QuantizedLayer layer;
    double bits_per_weight = 0;
    double proxy_loss = 0;
    double percdamp = 0;
    double seconds = 0;
    /// Under incoherence processing the layer lies in the rotated basis; this regenerates the
    /// rotations (no stored bits).
    std::optional<transform::IncoherenceOptions> rotation;
};

/// A parsed method spec.
struct MethodSpec {
    std::string text;         // as given, e.g. "gptvq:2d-2.125+had"
    std::string family;       // gptq, gptvq, vptq, pvq
    std::string description;  // the configuration in words
    bool rotated = false;     // +had
    /// Relative work per weight (for balancing linears across processes), not a time.
    double work_per_weight = 1;
    /// Runs the recipe, under incoherence processing with rotations of this seed when one is given.
    std::function<Outcome(const MatrixXf& W, const MatrixXd& H, std::optional<std::uint64_t> seed)> run;
    /// The recipe in two steps, for linears that read the same input (q/k/v, gate/up): prepare(H)
    /// is the part that depends on H alone (the recipe's prepared Hessian), run_prepared(W, H, p)
    /// the rest, with p from prepare(H) of the same H. Together they give run(W, H, nullopt)'s
    /// result bit for bit. Not used for rotated specs, whose input rotation is per linear.
    std::function<std::shared_ptr<const void>(const MatrixXd& H)> prepare;
    std::function<Outcome(const MatrixXf& W, const MatrixXd& H, const void* prepared)> run_prepared;

    /// Runs the recipe on one linear; `seed` seeds its rotations when the spec is rotated.
    Outcome operator()(const MatrixXf& W, const MatrixXd& H, std::uint64_t seed) const {
        return run(W, H, rotated ? std::optional<std::uint64_t>(seed) : std::nullopt);
    }
};

/// Parses a spec. Throws invalid_argument naming the spec, the part not understood and what is
/// accepted there.
MethodSpec parse_method(const std::string& text);

/// One family's parser: the configuration after "family:" (without "+had"), or throws.
MethodSpec parse_gptq(const std::string& text, std::string_view config);
MethodSpec parse_gptvq(const std::string& text, std::string_view config);
MethodSpec parse_vptq(const std::string& text, std::string_view config);
MethodSpec parse_pvq(const std::string& text, std::string_view config);

/// The layer's dequantized weight in the caller's basis: the layer's, with the rotations undone.
MatrixXf dequantize(const Outcome& outcome);
MatrixXf dequantize(const io::QuantizedLayer& layer, const std::optional<transform::IncoherenceOptions>& rotation);

namespace detail {

/// Parses a decimal number that must be all of `text`; nullopt otherwise.
std::optional<double> parse_number(std::string_view text);
std::optional<long> parse_integer(std::string_view text);

[[noreturn]] void bad_spec(const std::string& text, std::string_view what, std::string_view expected);

}  // namespace detail
}  // namespace vqlib::quantize
