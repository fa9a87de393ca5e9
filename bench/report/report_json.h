// report_json.h: every figure as JSON — of a compare run (environment,
// configuration, targets, per workload and target the median figures, each
// run's figures, the median run's latency histogram and pinned-bytes
// samples, the ratios, and the checks) or of a single run.
//
// Latencies are microseconds, sizes bytes; a figure that does not apply is
// null. docs/BENCH.md lists the fields. Built with nlohmann::json and written
// by common/json_text.h: valid JSON whatever bytes a path or an error text
// holds.
//
// Thread-safety: pure functions.
//
// Example:
//   std::string json = CompareJson(report, EvaluateTargets(report));
#ifndef TXBUF_BENCH_REPORT_REPORT_JSON_H_
#define TXBUF_BENCH_REPORT_REPORT_JSON_H_

#include <string>
#include <vector>

#include "bench/load/compare.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"
#include "bench/report/checks.h"
#include "bench/report/figures.h"
#include "nlohmann/json.hpp"

namespace txbuf::bench {

// Objects keep their keys in the order they were added.
using Json = nlohmann::ordered_json;

// The report of a compare run, one line of JSON and a newline.
std::string CompareJson(const CompareReport& r,
                        const std::vector<TargetCheck>& checks);

// The report of a single run, one line of JSON and a newline.
std::string SingleRunJson(const Workload& w, const std::string& server,
                          const Figures& f, const RunResult& run);

// The pieces, for tests and reuse: a workload's settings, a run's figures,
// and [[lo_ns, hi_ns, count], ...] of a histogram's non-empty buckets.
Json WorkloadJson(const Workload& w);
Json FiguresJson(const Figures& f);
Json HistogramJson(const LogHistogram& h);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_REPORT_JSON_H_
