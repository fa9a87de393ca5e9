#include "bench/report/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace txbuf::bench {

std::string EscapeXml(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<double> NiceTicks(double lo, double hi, int count) {
  std::vector<double> ticks;
  if (!(hi > lo) || count < 1) {
    ticks.push_back(lo);
    return ticks;
  }
  const double raw = (hi - lo) / count;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9;
       v += step) {
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  }
  return ticks;
}

namespace {

constexpr int kLeft = 58;
constexpr int kRight = 12;
constexpr int kTop = 44;
constexpr int kBottom = 40;

std::string Fmt(double v) { return absl::StrFormat("%.1f", v); }

// Tick label: 3 significant digits, k/M suffixes.
std::string TickLabel(double v) {
  const double a = std::fabs(v);
  if (a >= 1e6) return absl::StrFormat("%gM", v / 1e6);
  if (a >= 1e4) return absl::StrFormat("%gk", v / 1e3);
  return absl::StrFormat("%g", v);
}

std::string Open(int w, int h) {
  return absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">"
      "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>",
      w, h, w, h, w, h);
}

std::string Text(double x, double y, absl::string_view s,
                 absl::string_view anchor = "start",
                 absl::string_view extra = "") {
  return absl::StrFormat(
      "<text x=\"%s\" y=\"%s\" text-anchor=\"%s\"%s>%s</text>", Fmt(x), Fmt(y),
      anchor, extra, EscapeXml(s));
}

std::string Legend(
    const std::vector<std::pair<std::string, std::string>>& items, double x,
    double y, double max_x) {
  std::string out;
  double at = x;
  double row = y;
  for (const auto& [name, color] : items) {
    const double w = 18 + 6.5 * static_cast<double>(name.size());
    if (at + w > max_x && at > x) {
      at = x;
      row += 13;
    }
    absl::StrAppendFormat(&out,
                          "<rect x=\"%s\" y=\"%s\" width=\"10\" height=\"10\" "
                          "fill=\"%s\"/>",
                          Fmt(at), Fmt(row - 9), EscapeXml(color));
    out += Text(at + 13, row, name);
    at += w;
  }
  return out;
}

}  // namespace

std::string RenderLineChart(const LineChart& c, int width, int height) {
  std::string out = Open(width, height);
  out += Text(width / 2.0, 15, c.title, "middle", " font-weight=\"bold\"");
  std::vector<std::pair<std::string, std::string>> legend;
  double x_lo = std::numeric_limits<double>::infinity();
  double x_hi = -x_lo;
  double y_lo = x_lo;
  double y_hi = -x_lo;
  for (const SvgSeries& s : c.series) {
    legend.emplace_back(s.name, s.color);
    for (const auto& [x, y] : s.points) {
      if (c.log_x && x <= 0) continue;
      x_lo = std::min(x_lo, x);
      x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y);
      y_hi = std::max(y_hi, y);
    }
  }
  out += Legend(legend, kLeft, 30, width - kRight);
  const double pw = width - kLeft - kRight;
  const double ph = height - kTop - kBottom;
  absl::StrAppendFormat(&out,
                        "<rect x=\"%d\" y=\"%d\" width=\"%s\" height=\"%s\" "
                        "fill=\"none\" stroke=\"#999\"/>",
                        kLeft, kTop, Fmt(pw), Fmt(ph));
  if (!(x_hi >= x_lo)) {
    out += Text(kLeft + pw / 2, kTop + ph / 2, "no data", "middle");
    return out + "</svg>";
  }
  if (c.y_from_zero) y_lo = std::min(0.0, y_lo);
  if (y_hi <= y_lo) y_hi = y_lo + 1;
  std::vector<double> xticks;
  if (c.log_x) {
    x_lo = std::pow(10, std::floor(std::log10(x_lo)));
    x_hi = std::pow(10, std::ceil(std::log10(x_hi)));
    if (x_hi <= x_lo) x_hi = x_lo * 10;
    for (double v = x_lo; v <= x_hi * 1.0001; v *= 10) xticks.push_back(v);
  } else {
    if (x_hi <= x_lo) x_hi = x_lo + 1;
    xticks = NiceTicks(x_lo, x_hi, 5);
  }
  std::vector<double> yticks = NiceTicks(y_lo, y_hi, 4);
  y_hi = std::max(y_hi, yticks.back());
  auto px = [&](double x) {
    if (c.log_x) {
      return kLeft + pw * (std::log10(x) - std::log10(x_lo)) /
                         (std::log10(x_hi) - std::log10(x_lo));
    }
    return kLeft + pw * (x - x_lo) / (x_hi - x_lo);
  };
  auto py = [&](double y) {
    return kTop + ph - ph * (y - y_lo) / (y_hi - y_lo);
  };
  for (double t : xticks) {
    const double x = px(t);
    absl::StrAppendFormat(&out,
                          "<line x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%s\" "
                          "stroke=\"#eee\"/>",
                          Fmt(x), kTop, Fmt(x), Fmt(kTop + ph));
    out += Text(x, kTop + ph + 13, TickLabel(t), "middle");
  }
  for (double t : yticks) {
    const double y = py(t);
    absl::StrAppendFormat(&out,
                          "<line x1=\"%d\" y1=\"%s\" x2=\"%s\" y2=\"%s\" "
                          "stroke=\"#eee\"/>",
                          kLeft, Fmt(y), Fmt(kLeft + pw), Fmt(y));
    out += Text(kLeft - 4, y + 4, TickLabel(t), "end");
  }
  out += Text(kLeft + pw / 2, height - 8, c.x_label, "middle");
  out += absl::StrFormat(
      "<text x=\"12\" y=\"%s\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 12 %s)\">%s</text>",
      Fmt(kTop + ph / 2), Fmt(kTop + ph / 2), EscapeXml(c.y_label));
  for (const SvgSeries& s : c.series) {
    std::string pts;
    for (const auto& [x, y] : s.points) {
      if (c.log_x && x <= 0) continue;
      absl::StrAppend(&pts, Fmt(px(x)), ",", Fmt(py(y)), " ");
    }
    if (pts.empty()) continue;
    absl::StrAppendFormat(&out,
                          "<polyline fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"1.6\" points=\"%s\"><title>%s"
                          "</title></polyline>",
                          EscapeXml(s.color), pts, EscapeXml(s.name));
  }
  return out + "</svg>";
}

std::string RenderBarChart(const BarChart& c, int width, int height) {
  std::string out = Open(width, height);
  out += Text(width / 2.0, 15, c.title, "middle", " font-weight=\"bold\"");
  constexpr int kLabel = 96;
  constexpr int kTextRoom = 130;
  const double top = 26;
  const double pw = width - kLabel - kTextRoom;
  const double ph = height - top - 34;
  double max = 0;
  for (const SvgBar& b : c.bars) max = std::max(max, b.value);
  if (c.bars.empty() || max <= 0) {
    out += Text(width / 2.0, height / 2.0, "no data", "middle");
    return out + "</svg>";
  }
  std::vector<double> ticks = NiceTicks(0, max, 4);
  max = std::max(max, ticks.back());
  const double slot = ph / static_cast<double>(c.bars.size());
  for (double t : ticks) {
    const double x = kLabel + pw * t / max;
    absl::StrAppendFormat(&out,
                          "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" "
                          "stroke=\"#eee\"/>",
                          Fmt(x), Fmt(top), Fmt(x), Fmt(top + ph));
    out += Text(x, top + ph + 13, TickLabel(t), "middle");
  }
  for (size_t i = 0; i < c.bars.size(); ++i) {
    const SvgBar& b = c.bars[i];
    const double y = top + slot * static_cast<double>(i);
    const double h = std::max(2.0, slot * 0.7);
    const double w = pw * std::max(0.0, b.value) / max;
    out += Text(kLabel - 5, y + h / 2 + 4, b.label, "end");
    absl::StrAppendFormat(&out,
                          "<rect x=\"%d\" y=\"%s\" width=\"%s\" height=\"%s\" "
                          "fill=\"%s\"><title>%s: %s</title></rect>",
                          kLabel, Fmt(y), Fmt(w), Fmt(h), EscapeXml(b.color),
                          EscapeXml(b.label), EscapeXml(b.text));
    out += Text(kLabel + w + 4, y + h / 2 + 4, b.text);
  }
  out += Text(kLabel + pw / 2, height - 4, c.unit, "middle");
  return out + "</svg>";
}

std::string RenderGrid(const std::vector<std::string>& panels, int columns,
                       int panel_w, int panel_h, const std::string& title) {
  columns = std::max(1, columns);
  const int rows = (static_cast<int>(panels.size()) + columns - 1) / columns;
  const int head = 28;
  const int w = columns * panel_w;
  const int h = head + rows * panel_h;
  std::string out = Open(w, h);
  out += Text(w / 2.0, 19, title, "middle",
              " font-size=\"15\" font-weight=\"bold\"");
  for (size_t i = 0; i < panels.size(); ++i) {
    const int col = static_cast<int>(i) % columns;
    const int row = static_cast<int>(i) / columns;
    absl::StrAppendFormat(&out, "<g transform=\"translate(%d %d)\">%s</g>",
                          col * panel_w, head + row * panel_h, panels[i]);
  }
  return out + "</svg>";
}

}  // namespace txbuf::bench
