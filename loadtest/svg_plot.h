// Minimal line charts as standalone SVG (no dependencies; opens in any browser).
#ifndef RECD_LOADTEST_SVG_PLOT_H_
#define RECD_LOADTEST_SVG_PLOT_H_

#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace recd::loadtest {

struct PlotSeries {
  std::string label;
  std::string color = "#1f77b4";
  std::string dash;            // SVG stroke-dasharray, empty = solid
  bool markers = false;        // draw a dot at every point
  std::vector<std::pair<double, double>> points;  // (x, y)
  std::vector<std::string> marker_colors;         // optional, one per point
};

struct PlotTick {
  double value;
  std::string label;
};

struct Plot {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool log_y = false;
  std::vector<PlotSeries> series;
  std::vector<std::pair<double, std::string>> hlines;  // (y, label): dashed reference lines
  std::vector<PlotTick> x_ticks;  // empty = automatic
  // Axis ranges; NaN = from the data.
  double x_min = std::numeric_limits<double>::quiet_NaN();
  double x_max = std::numeric_limits<double>::quiet_NaN();
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
};

// Renders the plots stacked vertically into one SVG document, each width x panel_height pixels.
// Non-finite points and (on log axes) non-positive values are skipped.
std::string RenderSvg(const std::vector<Plot>& panels, int width = 960, int panel_height = 360);

// Escapes &, <, >, " for SVG text and attributes.
std::string XmlEscape(const std::string& text);

// "Nice" axis ticks: multiples of 1, 2 or 5 x 10^k covering [lo, hi] (linear), or 1/2/5 per decade
// (log).
std::vector<double> NiceTicks(double lo, double hi, bool log, int target_count = 6);

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_SVG_PLOT_H_
