// target.h: one thing txbuf-bench measures — a txbufd engine or a peer —
// behind one interface, so compare mode runs every workload against every
// target with the same code.
//
//   engine target  a TxbufdProcess (txbufd --engine E) + TxbufdDriver
//                  (txbufd_driver.h); results carry server memory recovery
//                  and, for writes, client memory recovery;
//   peer target    a peers::PeerServer + peers::PeerDriver (bench/targets);
//                  read and write workloads only.
// Both drivers use bench/targets' RunHarness, so the loop shape (outstanding
// requests over connections, warmup, measured interval, verification, CPU
// accounting) is the same.
//
// Thread-safety: not thread-safe; start, run and stop from one thread
// (start from main: server processes die with the thread that started
// them).
//
// Example:
//   auto t = StartPeerTarget(peers::PeerKind::kRaw, "/tmp/export");
//   absl::StatusOr<RunResult> r = (*t)->Run(workload);
#ifndef TXBUF_BENCH_TARGETS_TARGET_H_
#define TXBUF_BENCH_TARGETS_TARGET_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"
#include "bench/targets/peer.h"
#include "bench/targets/txbufd/txbufd_driver.h"
#include "bench/targets/txbufd/txbufd_process.h"
#include "common/engine_kind.h"

namespace txbuf::bench {

class Target {
 public:
  virtual ~Target() = default;
  // "copy", "auto", ... for engines; "raw", "grpc", "nfs" for peers.
  virtual const std::string& name() const = 0;
  virtual bool is_engine() const = 0;
  virtual bool CanRun(const Workload& w) const = 0;
  // Untimed preparation before the first run (txbufd: reads `file` once so
  // its page cache is warm, as a peer's kernel page cache already is).
  virtual absl::Status Prepare(const std::string& file, uint64_t size) = 0;
  virtual absl::StatusOr<RunResult> Run(const Workload& w) = 0;
  virtual absl::Status Stop() = 0;
  // An engine's txbufd, "host:port" (what `txbuf mount` mounts); empty for
  // the others.
  virtual std::string address() const { return {}; }
};

absl::StatusOr<std::unique_ptr<Target>> StartEngineTarget(
    const TxbufdOptions& server, const TxbufdDriverOptions& driver);

absl::StatusOr<std::unique_ptr<Target>> StartPeerTarget(
    peers::PeerKind kind, const std::string& export_dir);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_TARGET_H_
