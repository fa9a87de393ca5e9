// svg.h: minimal SVG charts for the reports, with no dependencies: line
// charts (linear or logarithmic x axis), horizontal bar charts, and a grid
// that lays several charts out in one SVG document. Every function returns
// a complete <svg> element with its own size, which can stand alone (a .svg
// file) or be nested (an HTML page, a grid cell).
//
// Thread-safety: pure functions.
//
// Example:
//   LineChart c{.title = "latency CDF", .x_label = "us", .log_x = true};
//   c.series.push_back({.name = "copy", .color = "#1f77b4",
//                       .points = {{10, 0.1}, {20, 0.9}, {40, 1}}});
//   std::string svg = RenderLineChart(c, 480, 300);
#ifndef TXBUF_BENCH_REPORT_SVG_H_
#define TXBUF_BENCH_REPORT_SVG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace txbuf::bench {

struct SvgSeries {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool y_from_zero = true;
  std::vector<SvgSeries> series;
};

struct SvgBar {
  std::string label;
  double value = 0;
  std::string color;
  std::string text;  // shown at the end of the bar
};

struct BarChart {
  std::string title;
  std::string unit;
  std::vector<SvgBar> bars;
};

std::string RenderLineChart(const LineChart& chart, int width, int height);
std::string RenderBarChart(const BarChart& chart, int width, int height);
// `panels` (each from a Render function with size panel_w x panel_h) in
// rows of `columns`, under `title`.
std::string RenderGrid(const std::vector<std::string>& panels, int columns,
                       int panel_w, int panel_h, const std::string& title);

// Text escaped for XML content and attributes.
std::string EscapeXml(absl::string_view s);

// "Nice" tick values covering [lo, hi] (about `count` of them, steps of 1,
// 2 or 5 times a power of ten).
std::vector<double> NiceTicks(double lo, double hi, int count);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_SVG_H_
