// charts.h: the compare report's charts, as SVG documents (svg.h):
//   throughput    per workload, ops/s of every target (bars, with the ratio
//                 to the raw floor);
//   latency CDF   per workload, the client latency distribution of every
//                 target (the median run's histogram; log x axis);
//   pinned bytes  per workload, txbufd's pinned bytes over the measured
//                 interval for every engine (sampled from STATS every
//                 ~100 ms during the median run).
// WriteChartFiles saves them as throughput.svg, latency-cdf.svg and
// pinned-bytes.svg in a directory (for BENCHMARKS.md).
//
// Thread-safety: pure functions (WriteChartFiles writes files).
//
// Example:
//   std::string svg = ThroughputSvg(report);
#ifndef TXBUF_BENCH_REPORT_CHARTS_H_
#define TXBUF_BENCH_REPORT_CHARTS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "bench/load/compare.h"
#include "common/histogram.h"

namespace txbuf::bench {

std::string ThroughputSvg(const CompareReport& r);
std::string LatencyCdfSvg(const CompareReport& r);
std::string PinnedBytesSvg(const CompareReport& r);

// A fixed colour per target name (engines and peers).
std::string TargetColor(const std::string& name);

// The CDF of a nanosecond histogram as (upper bound in us, fraction <= it)
// points, one per non-empty bucket, starting at (lowest bound, 0).
std::vector<std::pair<double, double>> CdfPoints(const LogHistogram& h_ns);

// Writes the three charts into `dir` (created if missing).
absl::Status WriteChartFiles(const CompareReport& r, const std::string& dir);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_CHARTS_H_
