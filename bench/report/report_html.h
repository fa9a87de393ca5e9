// report_html.h: the self-contained HTML report of a compare run: the
// setup, the tables (as in report_text.h) with the checks, the charts
// (charts.h: throughput bars, latency CDFs, pinned bytes over time) inline
// as SVG, and a note on reading the memory-recovery figures. No scripts,
// no external resources.
//
// Thread-safety: pure functions.
//
// Example:
//   std::string html = CompareHtml(report, EvaluateTargets(report));
#ifndef TXBUF_BENCH_REPORT_REPORT_HTML_H_
#define TXBUF_BENCH_REPORT_REPORT_HTML_H_

#include <string>
#include <vector>

#include "bench/load/compare.h"
#include "bench/report/checks.h"

namespace txbuf::bench {

std::string CompareHtml(const CompareReport& r,
                        const std::vector<TargetCheck>& checks);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_REPORT_HTML_H_
