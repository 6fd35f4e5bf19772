#include "spec.hpp"

#include <vqlib/core/error.hpp>

#include <charconv>
#include <cmath>

namespace vqlib::quantize {

namespace detail {

void bad_spec(const std::string& text, std::string_view what, std::string_view expected) {
    throw invalid_argument(::vqlib::detail::concat("method spec \"", text, "\": ", what, ": expected ", expected));
}

std::optional<double> parse_number(std::string_view text) {
    if (text.empty()) return std::nullopt;
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
    return value;
}

std::optional<long> parse_integer(std::string_view text) {
    if (text.empty()) return std::nullopt;
    long value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace detail

MethodSpec parse_method(const std::string& text) {
    const auto colon = text.find(':');
    if (colon == std::string::npos)
        detail::bad_spec(text, "no family", "family:config, e.g. gptq:w4g128, gptvq:2d-2.125, vptq:v8k65536, pvq:3.25");
    const std::string family = text.substr(0, colon);
    std::string_view config = std::string_view(text).substr(colon + 1);
    bool rotated = false;
    if (config.ends_with("+had")) {
        rotated = true;
        config.remove_suffix(4);
    }
    if (config.empty()) detail::bad_spec(text, "empty configuration", "one after the colon, e.g. gptq:w4g128");
    MethodSpec spec;
    if (family == "gptq") spec = parse_gptq(text, config);
    else if (family == "gptvq") spec = parse_gptvq(text, config);
    else if (family == "vptq") spec = parse_vptq(text, config);
    else if (family == "pvq") spec = parse_pvq(text, config);
    else detail::bad_spec(text, "family \"" + family + "\"", "gptq, gptvq, vptq or pvq");
    spec.text = text;
    spec.family = family;
    spec.rotated = rotated;
    if (rotated) spec.description += ", randomized Hadamard incoherence";
    return spec;
}

MatrixXf dequantize(const io::QuantizedLayer& layer, const std::optional<transform::IncoherenceOptions>& rotation) {
    MatrixXf Q = std::visit([](const auto& l) -> MatrixXf { return l.dequantize(); }, layer);
    if (rotation) transform::IncoherenceTransform(Q.rows(), Q.cols(), *rotation).restore_weights(Q);
    return Q;
}

MatrixXf dequantize(const Outcome& outcome) { return dequantize(outcome.layer, outcome.rotation); }

}  // namespace vqlib::quantize
