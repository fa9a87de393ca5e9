// run_result.h: what one measured run of one workload against one target
// (a txbufd engine or a peer) produced.
//
// The one result type of bench/: every driver's run (RunHarness) fills in the
// load figures (ops, bytes, errors, verify failures, the client latency
// histogram, client and server CPU over the measured interval); txbufd
// targets add `server` (memory recovery from
// STATS snapshots at the start and the end of the measured interval, plus
// pinned bytes sampled every ~100 ms in between) and, for workloads with
// writes, `client` (the client's own memory recovery: submit-to-release
// latency of its WRITE buffers, and its txbuf counters).
//
// Thread-safety: plain values (LogHistogram members are thread-safe).
#ifndef TXBUF_BENCH_LOAD_RUN_RESULT_H_
#define TXBUF_BENCH_LOAD_RUN_RESULT_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "common/histogram.h"

namespace txbuf::bench {

struct PinnedSample {
  double t_s = 0;  // seconds since the start of the measured interval
  uint64_t pinned_bytes = 0;
};

// Server memory recovery over the measured interval (txbufd only).
struct ServerMemory {
  // Submit-to-destructor latency of the txbufs destroyed in the interval
  // (the difference of the two STATS histograms; bucket midpoints, so
  // within ~3%).
  LogHistogram destructor_latency_ns;
  uint64_t pinned_max = 0;  // highest pinned bytes seen in the interval
  uint64_t pinned_end = 0;  // pinned bytes at the end of the interval
  uint64_t zerocopy_completions = 0;
  uint64_t copied_completions = 0;
  uint64_t cow_copies = 0;    // page-cache copy-on-write copies
  uint64_t budget_waits = 0;  // replies held back by a pinned-bytes budget
  std::vector<PinnedSample> pinned;
};

// Client memory recovery (txbufd workloads with writes).
struct ClientMemory {
  // Submit to the WRITE buffer's release (its txbuf destructor), for the
  // WRITEs submitted in the measured interval.
  LogHistogram release_latency_ns;
  uint64_t pinned_max = 0;  // client's pinned high water (whole run)
  uint64_t zerocopy_completions = 0;
  uint64_t copied_completions = 0;
};

// One kind of op of a mixed workload (reads or writes), counted as
// the run counts all of them: ops completed in the measured interval, their
// bytes and latency; errors and verify failures over the whole run.
struct OpCounts {
  uint64_t ops = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  uint64_t verify_failures = 0;
  LogHistogram latency_ns;
};

struct RunResult {
  // Every target: ops completed in the measured interval, their bytes and
  // latency (request issued to reply complete); errors and verify failures
  // over the whole run including warmup.
  uint64_t ops = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  uint64_t verify_failures = 0;
  LogHistogram latency_ns;   // per-op latency, measured only after warmup
  double client_cpu_us = 0;  // getrusage(RUSAGE_SELF), measured interval
  double elapsed_s = 0;      // length of the measured interval
  // CPU of the server process over the measured interval; -1 if unknown.
  double server_cpu_us = -1;
  // Mixed workloads (txbufd): the reads and the writes among the ops.
  std::optional<OpCounts> reads;
  std::optional<OpCounts> writes;
  std::optional<ServerMemory> server;
  std::optional<ClientMemory> client;
};

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_LOAD_RUN_RESULT_H_
