// report_json.h: every figure as JSON — of a compare run (environment,
// configuration, targets, per workload and target the median figures, each
// run's figures, the median run's latency histogram and pinned-bytes
// samples, the ratios, and the checks) or of a single run.
//
// Latencies are microseconds, sizes bytes; a figure that does not apply is
// null. docs/BENCH.md lists the fields.
//
// Thread-safety: pure functions.
//
// Example:
//   std::string json = CompareJson(report, EvaluateTargets(report));
#ifndef TXBUF_BENCH_TXBUF_BENCH_REPORT_JSON_H_
#define TXBUF_BENCH_TXBUF_BENCH_REPORT_JSON_H_

#include <string>
#include <vector>

#include "bench/txbuf-bench/checks.h"
#include "bench/txbuf-bench/compare.h"
#include "bench/txbuf-bench/figures.h"
#include "bench/txbuf-bench/json_writer.h"
#include "bench/txbuf-bench/run_result.h"
#include "bench/txbuf-bench/workload.h"

namespace txbuf::bench {

std::string CompareJson(const CompareReport& r,
                        const std::vector<TargetCheck>& checks);

std::string SingleRunJson(const BenchWorkload& w, const std::string& server,
                          const Figures& f, const RunResult& run);

// The pieces, for tests and reuse.
void WriteWorkloadJson(JsonWriter& j, const BenchWorkload& w);
void WriteFiguresJson(JsonWriter& j, const Figures& f);
// [[lo_ns, hi_ns, count], ...] of the non-empty buckets.
void WriteHistogramJson(JsonWriter& j, const LogHistogram& h);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TXBUF_BENCH_REPORT_JSON_H_
