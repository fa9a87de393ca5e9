// txbufd_process.h: a txbufd server started by the bench (one per engine in
// compare mode), on loopback with a free port.
//
// The process is a child of the calling thread's process with
// PR_SET_PDEATHSIG, which the kernel ties to the *thread* that forked it:
// start it from a thread that outlives it (main). Stop() sends SIGTERM
// (txbufd then finishes what is in flight, runs every destructor and exits
// 0), SIGKILL after a grace period.
//
// The binary is --txbufd PATH, else $TXBUF_TXBUFD, else the path CMake built
// it at, else ../../server/txbufd relative to this executable.
//
// Thread-safety: not thread-safe; one owner.
//
// Example:
//   auto d = TxbufdProcess::Start({.binary = FindTxbufd(""),
//                                  .export_dir = "/tmp/x",
//                                  .engine = EngineKind::kCopy});
//   uint16_t port = (*d)->port();
#ifndef TXBUF_BENCH_TARGETS_TXBUFD_TXBUFD_PROCESS_H_
#define TXBUF_BENCH_TARGETS_TXBUFD_TXBUFD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/targets/child_process.h"
#include "common/engine_kind.h"

namespace txbuf::bench {

struct TxbufdOptions {
  std::string binary;
  std::string export_dir;
  EngineKind engine = EngineKind::kAuto;
  int threads = 1;
  uint64_t cache_size = uint64_t{1} << 30;
  // Passed as they are (e.g. "--conn-budget=128M").
  std::vector<std::string> extra_args;
};

// Where the txbufd binary is (see above); `flag` is --txbufd's value.
std::string FindTxbufd(const std::string& flag);

class TxbufdProcess {
 public:
  static absl::StatusOr<std::unique_ptr<TxbufdProcess>> Start(
      const TxbufdOptions& options);

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  // SIGTERM, then SIGKILL after 20 s. Idempotent.
  absl::Status Stop();

 private:
  TxbufdProcess(std::unique_ptr<peers::internal::ChildProcess> child,
                std::string host, uint16_t port)
      : child_(std::move(child)), host_(std::move(host)), port_(port) {}

  std::unique_ptr<peers::internal::ChildProcess> child_;
  std::string host_;
  uint16_t port_;
};

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_TXBUFD_TXBUFD_PROCESS_H_
