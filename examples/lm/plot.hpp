#pragma once
// The picture of docs/lm.md: bits per weight (x) against test perplexity (y) for every run of one
// or more `vqlib-lm sweep --json` files, as a self-contained SVG (no plotting package needed).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace vqlib::lm {

struct PlotPoint {
    std::string method, family, calibration;
    double bpw = 0, perplexity = 0;
};

inline std::string svg_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else out += c;
    }
    return out;
}

/// Points from the "runs" of sweep results; perplexity above `clip` is drawn at the top edge.
inline std::string perplexity_svg(const std::vector<PlotPoint>& points, double fp32, double clip) {
    const double W = 960, H = 600, left = 80, right = 250, top = 40, bottom = 60;
    double x0 = 2.0, x1 = 4.4, y0 = fp32 * 0.998, y1 = clip;
    auto px = [&](double b) { return left + (std::clamp(b, x0, x1) - x0) / (x1 - x0) * (W - left - right); };
    auto py = [&](double p) { return top + (y1 - std::clamp(p, y0, y1)) / (y1 - y0) * (H - top - bottom); };
    const std::map<std::string, std::string> colors = {
        {"gptq", "#1f77b4"}, {"gptvq", "#d62728"}, {"vptq", "#2ca02c"}, {"pvq", "#9467bd"}};
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    s << "<text x=\"" << left << "\" y=\"24\" font-size=\"15\">web-char: test perplexity against bits per weight "
         "(every linear quantized; fp32 "
      << fp32 << ")</text>\n";
    // Axes, grid and ticks.
    for (double b = x0; b <= x1 + 1e-9; b += 0.25) {
        s << "<line x1=\"" << px(b) << "\" y1=\"" << top << "\" x2=\"" << px(b) << "\" y2=\"" << H - bottom
          << "\" stroke=\"#eee\"/><text x=\"" << px(b) << "\" y=\"" << H - bottom + 18
          << "\" text-anchor=\"middle\">" << b << "</text>\n";
    }
    const double step = (y1 - y0) > 0.2 ? 0.05 : 0.01;
    for (double p = std::ceil(y0 / step) * step; p <= y1 + 1e-9; p += step) {
        char label[32];
        std::snprintf(label, sizeof label, "%.2f", p);
        s << "<line x1=\"" << left << "\" y1=\"" << py(p) << "\" x2=\"" << W - right << "\" y2=\"" << py(p)
          << "\" stroke=\"#eee\"/><text x=\"" << left - 8 << "\" y=\"" << py(p) + 4 << "\" text-anchor=\"end\">"
          << label << "</text>\n";
    }
    s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\""
      << H - top - bottom << "\" fill=\"none\" stroke=\"black\"/>\n";
    s << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 15
      << "\" text-anchor=\"middle\">bits per weight (everything each quantized linear stores)</text>\n";
    s << "<text transform=\"translate(20," << (top + H - bottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">test perplexity (clipped at " << clip << ")</text>\n";
    s << "<line x1=\"" << left << "\" y1=\"" << py(fp32) << "\" x2=\"" << W - right << "\" y2=\"" << py(fp32)
      << "\" stroke=\"black\" stroke-dasharray=\"4 3\"/><text x=\"" << W - right - 4 << "\" y=\"" << py(fp32) - 4
      << "\" text-anchor=\"end\">fp32</text>\n";
    // Points: filled = sequential calibration, hollow = offline; squares: tuned end to end
    // (vqlib-lm --finetune, runs named "<preset>+ft").
    for (const PlotPoint& p : points) {
        const auto c = colors.count(p.family) ? colors.at(p.family) : std::string("#555");
        if (p.method.size() > 3 && p.method.compare(p.method.size() - 3, 3, "+ft") == 0) {
            s << "<rect x=\"" << px(p.bpw) - 4.5 << "\" y=\"" << py(p.perplexity) - 4.5
              << "\" width=\"9\" height=\"9\" fill=\"" << c << "\" stroke=\"black\" stroke-width=\"0.8\"><title>"
              << svg_escape(p.method) << " (" << p.calibration << ", tuned end to end): " << p.bpw
              << " bpw, perplexity " << p.perplexity << "</title></rect>\n";
            continue;
        }
        const bool filled = p.calibration == "sequential";
        s << "<circle cx=\"" << px(p.bpw) << "\" cy=\"" << py(p.perplexity) << "\" r=\"4.5\" fill=\""
          << (filled ? c : std::string("white")) << "\" stroke=\"" << c << "\" stroke-width=\"1.5\"><title>"
          << svg_escape(p.method) << " (" << p.calibration << "): " << p.bpw << " bpw, perplexity " << p.perplexity
          << "</title></circle>\n";
    }
    // Legend.
    double ly = top + 10;
    for (const auto& [family, c] : colors) {
        s << "<circle cx=\"" << W - right + 25 << "\" cy=\"" << ly << "\" r=\"5\" fill=\"" << c << "\"/><text x=\""
          << W - right + 37 << "\" y=\"" << ly + 4 << "\">" << family << "</text>\n";
        ly += 20;
    }
    s << "<circle cx=\"" << W - right + 25 << "\" cy=\"" << ly + 10 << "\" r=\"5\" fill=\"#555\"/><text x=\""
      << W - right + 37 << "\" y=\"" << ly + 14 << "\">sequential calibration</text>\n";
    s << "<circle cx=\"" << W - right + 25 << "\" cy=\"" << ly + 30 << "\" r=\"5\" fill=\"white\" stroke=\"#555\" "
         "stroke-width=\"1.5\"/><text x=\""
      << W - right + 37 << "\" y=\"" << ly + 34 << "\">offline (fp32) Hessians</text>\n";
    s << "<rect x=\"" << W - right + 20 << "\" y=\"" << ly + 45 << "\" width=\"10\" height=\"10\" fill=\"#555\" "
         "stroke=\"black\" stroke-width=\"0.8\"/><text x=\""
      << W - right + 37 << "\" y=\"" << ly + 54 << "\">tuned end to end</text>\n";
    // The best run of each family per rate band, labelled.
    std::map<std::pair<std::string, int>, const PlotPoint*> best;
    for (const PlotPoint& p : points) {
        auto& b = best[{p.family, static_cast<int>(std::floor(p.bpw))}];
        if (!b || p.perplexity < b->perplexity) b = &p;
    }
    for (const auto& [key, p] : best) {
        if (p->perplexity > clip) continue;
        s << "<text x=\"" << px(p->bpw) + 7 << "\" y=\"" << py(p->perplexity) - 6 << "\" font-size=\"10\" fill=\""
          << (colors.count(p->family) ? colors.at(p->family) : std::string("#555")) << "\">" << svg_escape(p->method)
          << "</text>\n";
    }
    s << "</svg>\n";
    return s.str();
}

}  // namespace vqlib::lm
