// compare.h: compare mode — every workload against every txbufd engine and
// every peer, in one run, on the same files.
//
// RunCompare creates the export (a temporary directory unless one is given)
// with the pattern test file, starts one txbufd per engine and one server
// per peer (all from the calling thread, which must be main: their
// processes die with it), warms txbufd's page cache (one untimed sequential
// read of the file; the peers read through the kernel's page cache, which
// writing the file warmed), then runs `repeat` rounds. Each round runs every
// workload against every target back to back, in an order that alternates
// between rounds (forward, then reversed), so slow drift of this noisy
// machine hits all targets alike. Each cell (workload, target) keeps every
// run and the median of each figure (figures.h).
//
// A target that cannot start (a peer not built, kmod without /dev/txbuf) is
// left out with a note; a run that fails is recorded in its cell.
//
// Thread-safety: RunCompare must be called from the main thread.
//
// Example:
//   CompareOptions o = CompareOptionsFromFlags(flags);
//   absl::StatusOr<CompareReport> r = RunCompare(o, stderr);
#ifndef TXBUF_BENCH_LOAD_COMPARE_H_
#define TXBUF_BENCH_LOAD_COMPARE_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/cli/flags.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"
#include "bench/report/figures.h"
#include "bench/targets/peer.h"
#include "common/engine_kind.h"

namespace txbuf::bench {

struct CompareOptions {
  std::vector<Workload> workloads;
  std::vector<EngineKind> engines;
  std::vector<peers::PeerKind> peers;
  // fio's family (bench/targets/fio/fio_target.h): fio-mount, fio-local.
  bool fio = false;
  std::string txbuf_cli;  // for fio-mount; empty: found (FindTxbufCli)
  int repeat = 3;
  bool quick = false;
  std::string txbufd;  // binary
  int server_threads = 1;
  uint64_t cache_size = 0;
  std::string export_dir;   // empty: temporary
  bool keep_files = false;  // leave the test file in `export_dir`
  EngineKind client_engine = EngineKind::kAuto;
  double stats_interval_s = 0.1;
  bool shared_client = false;
};

// Fills in workloads (the compare set, filtered by --workloads, with the
// mode's duration, warmup and file size) and targets from the flags.
absl::StatusOr<CompareOptions> CompareOptionsFromFlags(const Flags& f);

struct TargetInfo {
  std::string name;
  bool is_engine = false;
};

struct Cell {
  bool skipped = false;  // the target cannot run this workload
  std::string error;     // the last failure, if any
  std::vector<RunResult> runs;
  std::vector<Figures> figures;
  Figures median;
  int median_run = -1;  // index into runs (median ops/s), for charts
  bool ok() const { return !skipped && !runs.empty(); }
};

struct CompareReport {
  // What ran, and where.
  std::string host;
  std::string kernel;
  int cpus = 0;
  std::string date;     // UTC, ISO 8601
  std::string loadavg;  // /proc/loadavg's 1/5/15-minute load at the start
  bool quick = false;
  int repeat = 0;
  int server_threads = 1;
  double elapsed_s = 0;
  std::vector<std::string> notes;  // targets left out, and why
  std::vector<Workload> workloads;
  std::vector<TargetInfo> targets;
  std::vector<std::vector<Cell>> cells;  // [workload][target]

  // Index of the target called `name`, or -1.
  int TargetIndex(const std::string& name) const;
  // Index of the workload with Id() `id`, or -1.
  int WorkloadIndex(const std::string& id) const;
};

// Runs compare mode; progress lines go to `progress` (may be null).
absl::StatusOr<CompareReport> RunCompare(const CompareOptions& o,
                                         FILE* progress);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_LOAD_COMPARE_H_
