#include "loadtest/svg_plot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace recd::loadtest {
namespace {

constexpr int kLeft = 80;
constexpr int kRight = 200;  // legend column
constexpr int kTop = 36;
constexpr int kBottom = 48;

std::string FormatTick(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e6) return absl::StrFormat("%.3gM", v / 1e6);
  if (a >= 1e4) return absl::StrFormat("%.3gk", v / 1e3);
  if (a >= 1) return absl::StrFormat("%.4g", v);
  return absl::StrFormat("%.3g", v);
}

struct Axis {
  double lo, hi;
  bool log;
  double pixel_lo, pixel_hi;
  double Map(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                         : (v - lo) / (hi - lo);
    return pixel_lo + t * (pixel_hi - pixel_lo);
  }
  bool Valid(double v) const { return std::isfinite(v) && (!log || v > 0); }
};

void Range(const Plot& plot, bool x, bool log, double* lo, double* hi) {
  *lo = std::numeric_limits<double>::infinity();
  *hi = -std::numeric_limits<double>::infinity();
  auto consider = [&](double v) {
    if (!std::isfinite(v) || (log && v <= 0)) return;
    *lo = std::min(*lo, v);
    *hi = std::max(*hi, v);
  };
  for (const PlotSeries& s : plot.series) {
    for (const auto& [px, py] : s.points) consider(x ? px : py);
  }
  if (!x) {
    for (const auto& [y, label] : plot.hlines) consider(y);
  } else {
    for (const PlotTick& t : plot.x_ticks) consider(t.value);
  }
  const double fixed_lo = x ? plot.x_min : plot.y_min;
  const double fixed_hi = x ? plot.x_max : plot.y_max;
  if (std::isfinite(fixed_lo)) *lo = fixed_lo;
  if (std::isfinite(fixed_hi)) *hi = fixed_hi;
  if (!std::isfinite(*lo) || !std::isfinite(*hi)) {
    *lo = log ? 1 : 0;
    *hi = log ? 10 : 1;
  }
  if (log) {
    *lo = std::pow(10, std::floor(std::log10(*lo) + 1e-9));
    *hi = std::max(*hi * 1.15, *lo * 10);
  } else {
    if (!x && *lo > 0 && !std::isfinite(fixed_lo)) *lo = 0;  // linear y axes start at 0
    if (*hi <= *lo) *hi = *lo + 1;
    if (!x && !std::isfinite(fixed_hi)) *hi += (*hi - *lo) * 0.08;
  }
}

}  // namespace

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> NiceTicks(double lo, double hi, bool log, int target_count) {
  std::vector<double> ticks;
  if (!(hi > lo)) return {lo};
  if (log) {
    if (lo <= 0) lo = hi / 1e6;
    const int d0 = static_cast<int>(std::floor(std::log10(lo)));
    const int d1 = static_cast<int>(std::ceil(std::log10(hi)));
    const bool dense = d1 - d0 <= 2;
    for (int d = d0; d <= d1; ++d) {
      for (double m : dense ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
        const double v = m * std::pow(10.0, d);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
      }
    }
    return ticks;
  }
  const double raw = (hi - lo) / std::max(1, target_count);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string RenderSvg(const std::vector<Plot>& panels, int width, int panel_height) {
  const int height = panel_height * static_cast<int>(std::max<size_t>(1, panels.size()));
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      width, height, width, height);
  for (size_t p = 0; p < panels.size(); ++p) {
    const Plot& plot = panels[p];
    const int y0 = static_cast<int>(p) * panel_height;
    double xlo, xhi, ylo, yhi;
    Range(plot, true, plot.log_x, &xlo, &xhi);
    Range(plot, false, plot.log_y, &ylo, &yhi);
    const Axis xa{xlo, xhi, plot.log_x, static_cast<double>(kLeft), static_cast<double>(width - kRight)};
    const Axis ya{ylo, yhi, plot.log_y, static_cast<double>(y0 + panel_height - kBottom),
                  static_cast<double>(y0 + kTop)};
    absl::StrAppendFormat(&svg, "<g>\n<text x=\"%d\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">%s</text>\n",
                          kLeft, y0 + 22, XmlEscape(plot.title));
    // Frame and grid.
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n",
                          kLeft, y0 + kTop, width - kRight - kLeft, panel_height - kTop - kBottom);
    std::vector<PlotTick> xticks = plot.x_ticks;
    if (xticks.empty()) {
      for (double v : NiceTicks(xlo, xhi, plot.log_x, 8)) xticks.push_back({v, FormatTick(v)});
    }
    for (const PlotTick& t : xticks) {
      if (!xa.Valid(t.value) || t.value < xlo || t.value > xhi) continue;
      const double x = xa.Map(t.value);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                            x, y0 + kTop, x, y0 + panel_height - kBottom, x, y0 + panel_height - kBottom + 16,
                            XmlEscape(t.label));
    }
    for (double v : NiceTicks(ylo, yhi, plot.log_y, 6)) {
      if (v < ylo || v > yhi) continue;
      const double y = ya.Map(v);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                            kLeft, y, width - kRight, y, kLeft - 6, y + 4, FormatTick(v));
    }
    absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                          (kLeft + width - kRight) / 2, y0 + panel_height - 10, XmlEscape(plot.x_label));
    absl::StrAppendFormat(&svg,
                          "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
                          y0 + (kTop + panel_height - kBottom) / 2, XmlEscape(plot.y_label));
    for (const auto& [value, label] : plot.hlines) {
      if (!ya.Valid(value) || value < ylo || value > yhi) continue;
      const double y = ya.Map(value);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d62728\" "
                            "stroke-dasharray=\"6,4\"/><text x=\"%d\" y=\"%.1f\" fill=\"#d62728\">%s</text>\n",
                            kLeft, y, width - kRight, y, kLeft + 4, y - 4, XmlEscape(label));
    }
    // Series and legend.
    int legend_y = y0 + kTop + 10;
    for (const PlotSeries& s : plot.series) {
      std::string points;
      std::string dots;
      for (size_t i = 0; i < s.points.size(); ++i) {
        const auto& [px, py] = s.points[i];
        if (!xa.Valid(px) || !ya.Valid(py)) continue;
        const double x = xa.Map(std::clamp(px, xlo, xhi));
        const double y = ya.Map(std::clamp(py, ylo, yhi));
        absl::StrAppendFormat(&points, "%.1f,%.1f ", x, y);
        if (s.markers) {
          const std::string& fill = i < s.marker_colors.size() ? s.marker_colors[i] : s.color;
          absl::StrAppendFormat(&dots, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>", x, y, fill);
        }
      }
      absl::StrAppendFormat(&svg, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"%s\"/>%s\n",
                            s.color, s.dash.empty() ? "" : absl::StrCat(" stroke-dasharray=\"", s.dash, "\""),
                            points, dots);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>"
                            "<text x=\"%d\" y=\"%d\">%s</text>\n",
                            width - kRight + 10, legend_y, width - kRight + 34, legend_y, s.color,
                            s.dash.empty() ? "" : absl::StrCat(" stroke-dasharray=\"", s.dash, "\""),
                            width - kRight + 40, legend_y + 4, XmlEscape(s.label));
      legend_y += 16;
    }
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace recd::loadtest
