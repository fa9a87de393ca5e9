// figures.h: the scalar figures reported for a run (ops/s, MiB/s, latency
// percentiles, CPU per op, memory recovery), and the median of repeated
// runs.
//
// Latencies are in microseconds; a figure that does not apply (server CPU
// of a server we do not know, memory recovery of a peer) is NaN and printed
// as "-" / JSON null.
//
// Thread-safety: plain values and pure functions.
//
// Example:
//   Figures f = ComputeFigures(run_result);
//   Figures m = MedianFigures({f1, f2, f3});
#ifndef TXBUF_BENCH_REPORT_FIGURES_H_
#define TXBUF_BENCH_REPORT_FIGURES_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "bench/load/run_result.h"
#include "common/histogram.h"

namespace txbuf::bench {

inline constexpr double kNa = std::numeric_limits<double>::quiet_NaN();

struct LatencyFigures {
  double p50_us = kNa;
  double p90_us = kNa;
  double p99_us = kNa;
  double p999_us = kNa;
  double max_us = kNa;
  double mean_us = kNa;
  uint64_t count = 0;
};

// Percentiles of a nanosecond histogram, in microseconds (NaN if empty).
LatencyFigures LatencyOf(const LogHistogram& h_ns);

// The reads or the writes of a mixed workload.
struct OpFigures {
  uint64_t ops = 0;
  double ops_s = kNa;
  double mib_s = kNa;
  LatencyFigures latency;
  uint64_t errors = 0;
  uint64_t verify_failures = 0;
};

struct Figures {
  uint64_t ops = 0;
  double elapsed_s = 0;
  double ops_s = 0;
  double mib_s = 0;
  LatencyFigures latency;
  double server_cpu_us_op = kNa;
  double client_cpu_us_op = kNa;
  uint64_t errors = 0;
  uint64_t verify_failures = 0;
  // Server memory recovery (txbufd).
  bool has_server_memory = false;
  LatencyFigures destructor;
  double pinned_max_bytes = kNa;
  double zerocopy_completions = kNa;
  double copied_completions = kNa;
  double cow_copies = kNa;
  // Client memory recovery (txbufd, writes).
  bool has_client_memory = false;
  LatencyFigures client_release;
  double client_pinned_max_bytes = kNa;
  double client_zerocopy_completions = kNa;
  double client_copied_completions = kNa;
  // Mixed workloads: the reads and the writes separately (ops/s and MiB/s
  // over the same interval, so they add up to the totals).
  bool has_split = false;
  OpFigures reads;
  OpFigures writes;

  // errors + verify failures: must be 0.
  uint64_t total_errors() const { return errors + verify_failures; }
};

Figures ComputeFigures(const RunResult& r);

// The median of each figure over `runs` (NaNs ignored; errors summed, ops
// the median). Empty input gives default Figures.
Figures MedianFigures(const std::vector<Figures>& runs);

// The median of `v` (the mean of the two middle values for an even count;
// NaNs ignored; NaN if nothing is left).
double Median(std::vector<double> v);

// Index of the run whose ops/s is the median (the lower middle for an even
// count), to pick a representative run for charts. -1 if empty.
int MedianRunIndex(const std::vector<Figures>& runs);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_FIGURES_H_
