#include "bench/report/charts.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/report/checks.h"
#include "bench/report/svg.h"

namespace txbuf::bench {

namespace {

constexpr int kPanelW = 460;
constexpr int kPanelH = 270;
constexpr int kColumns = 2;

const RunResult* MedianRun(const Cell& c) {
  if (!c.ok() || c.median_run < 0) return nullptr;
  return &c.runs[static_cast<size_t>(c.median_run)];
}

}  // namespace

std::string TargetColor(const std::string& name) {
  static const auto* colors = new std::map<std::string, std::string>{
      {"copy", "#1f77b4"}, {"msg_zerocopy", "#ff7f0e"}, {"uring_zc", "#2ca02c"},
      {"kmod", "#9467bd"}, {"auto", "#d62728"},         {"raw", "#7f7f7f"},
      {"grpc", "#8c564b"}, {"nfs", "#e377c2"}};
  auto it = colors->find(name);
  return it == colors->end() ? "#17becf" : it->second;
}

std::vector<std::pair<double, double>> CdfPoints(const LogHistogram& h) {
  std::vector<std::pair<double, double>> pts;
  const auto total = static_cast<double>(h.count());
  if (total == 0) return pts;
  std::vector<LogHistogram::Bucket> buckets = h.Buckets();
  pts.emplace_back(static_cast<double>(buckets.front().lo) / 1e3, 0.0);
  uint64_t seen = 0;
  for (const LogHistogram::Bucket& b : buckets) {
    seen += b.count;
    pts.emplace_back(static_cast<double>(b.hi) / 1e3,
                     static_cast<double>(seen) / total);
  }
  return pts;
}

std::string ThroughputSvg(const CompareReport& r) {
  std::vector<std::string> panels;
  const int raw = RawIndex(r);
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    BarChart c;
    c.title = r.workloads[w].Id();
    c.unit = "ops/s (median)";
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const Cell& cell = r.cells[w][t];
      if (!cell.ok()) continue;
      SvgBar b;
      b.label = r.targets[t].name;
      b.value = cell.median.ops_s;
      b.color = TargetColor(b.label);
      const double ratio =
          raw >= 0 ? OpsRatio(r, static_cast<int>(w), static_cast<int>(t), raw)
                   : kNa;
      b.text = std::isnan(ratio)
                   ? absl::StrFormat("%.0f", b.value)
                   : absl::StrFormat("%.0f (%.2fx raw)", b.value, ratio);
      c.bars.push_back(b);
    }
    panels.push_back(RenderBarChart(c, kPanelW, kPanelH));
  }
  return RenderGrid(panels, kColumns, kPanelW, kPanelH,
                    "Throughput per workload (ops/s, ratio to the raw floor)");
}

std::string LatencyCdfSvg(const CompareReport& r) {
  std::vector<std::string> panels;
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    LineChart c;
    c.title = r.workloads[w].Id();
    c.x_label = "client latency (us, log)";
    c.y_label = "fraction of ops";
    c.log_x = true;
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const RunResult* m = MedianRun(r.cells[w][t]);
      if (m == nullptr) continue;
      c.series.push_back({r.targets[t].name, TargetColor(r.targets[t].name),
                          CdfPoints(m->latency_ns)});
    }
    panels.push_back(RenderLineChart(c, kPanelW, kPanelH));
  }
  return RenderGrid(panels, kColumns, kPanelW, kPanelH,
                    "Client latency CDF (median run)");
}

std::string PinnedBytesSvg(const CompareReport& r) {
  std::vector<std::string> panels;
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    uint64_t max = 0;
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const RunResult* m = MedianRun(r.cells[w][t]);
      if (m == nullptr || !m->server.has_value()) continue;
      for (const PinnedSample& s : m->server->pinned) {
        max = std::max(max, s.pinned_bytes);
      }
    }
    const bool mib = max >= (uint64_t{1} << 20);
    const double unit = mib ? 1024.0 * 1024 : 1024.0;
    LineChart c;
    c.title = r.workloads[w].Id();
    c.x_label = "time in the measured interval (s)";
    c.y_label = mib ? "pinned MiB" : "pinned KiB";
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const RunResult* m = MedianRun(r.cells[w][t]);
      if (m == nullptr || !m->server.has_value()) continue;
      SvgSeries s{r.targets[t].name, TargetColor(r.targets[t].name), {}};
      for (const PinnedSample& p : m->server->pinned) {
        s.points.emplace_back(p.t_s,
                              static_cast<double>(p.pinned_bytes) / unit);
      }
      c.series.push_back(std::move(s));
    }
    panels.push_back(RenderLineChart(c, kPanelW, kPanelH));
  }
  return RenderGrid(panels, kColumns, kPanelW, kPanelH,
                    "txbufd pinned bytes during the run (STATS every ~100 ms)");
}

absl::Status WriteChartFiles(const CompareReport& r, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
  }
  const std::pair<const char*, std::string> files[] = {
      {"throughput.svg", ThroughputSvg(r)},
      {"latency-cdf.svg", LatencyCdfSvg(r)},
      {"pinned-bytes.svg", PinnedBytesSvg(r)},
  };
  for (const auto& [name, svg] : files) {
    const std::string path = absl::StrCat(dir, "/", name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << svg << "\n";
    out.close();
    if (!out) {
      return absl::InternalError(
          absl::StrCat("write ", path, ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

}  // namespace txbuf::bench
