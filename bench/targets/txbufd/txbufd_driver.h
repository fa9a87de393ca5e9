// txbufd_driver.h: the load path against txbufd, with the same loop shape
// as the peers' drivers (bench/load/harness.h: RunHarness).
//
// Each of the workload's `connections` is its own txbuf::client::Client
// (one connection, one loop thread), as each peer connection has its own
// client thread; the connection keeps its share of the `concurrency`
// requests outstanding with the async Submit(), and each completion (on the
// client's loop thread) issues the next request. Requests are what a real
// client sends once it has looked a file up:
//   read   PUTFH fh; READ off len           (data verified, pattern.h)
//   write  PUTFH fh; WRITE off len UNSTABLE (pattern data, referenced in
//          place from the shared pattern image; its release is timed)
//   mixed  read or write, `read_ratio` of them reads
//   meta   in turn: PUTROOTFH; LOOKUP dir/f; GETATTR  |  PUTFH f; GETATTR
//          |  PUTFH dir; READDIR with attributes      (results checked)
// File handles are looked up once per connection, before the clock starts.
//
// Besides the peers' figures a run has the server's memory recovery for the
// measured interval (StatsSampler, a separate connection) and, when the
// workload writes, the client's own (WRITE buffer submit to release, and
// the clients' txbuf counters).
//
// Thread-safety: one Run() at a time per driver. `LiveCounters` is
// thread-safe.
//
// Example:
//   TxbufdDriver driver("127.0.0.1", port, {});
//   absl::StatusOr<RunResult> r = driver.Run(workload, server_pid, nullptr);
#ifndef TXBUF_BENCH_TARGETS_TXBUFD_TXBUFD_DRIVER_H_
#define TXBUF_BENCH_TARGETS_TXBUFD_TXBUFD_DRIVER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"
#include "common/engine_kind.h"
#include "common/histogram.h"

namespace txbuf::bench {

// Completions of the measured interval as they happen (for a live progress
// line).
struct LiveCounters {
  std::atomic<uint64_t> ops{0};
  LogHistogram latency_ns;
};

struct TxbufdDriverOptions {
  // Engine of the clients' request txbufs.
  EngineKind client_engine = EngineKind::kAuto;
  // One Client with `connections` connections (one loop thread) shared by
  // all of them, instead of one Client (and loop thread) per connection.
  bool shared_client = false;
  // Sample STATS during the run (server memory recovery).
  bool server_stats = true;
  absl::Duration stats_period = absl::Milliseconds(100);
  // The server's shared secret (client::ReadTokenFile), if it requires one;
  // every connection (load and STATS) authenticates with it.
  std::optional<std::string> token;
  // The export the load goes to (ClientOptions::export_name).
  std::string export_name;
};

class TxbufdDriver {
 public:
  TxbufdDriver(std::string host, uint16_t port, TxbufdDriverOptions options)
      : host_(std::move(host)), port_(port), options_(std::move(options)) {}

  // Runs `w`; `server_pid` > 0 adds the server's CPU time. `live`, if not
  // null, sees every measured completion.
  absl::StatusOr<RunResult> Run(const Workload& w, pid_t server_pid,
                                LiveCounters* live);

 private:
  std::string host_;
  uint16_t port_;
  TxbufdDriverOptions options_;
};

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_TXBUFD_TXBUFD_DRIVER_H_
