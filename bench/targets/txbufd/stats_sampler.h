// stats_sampler.h: watches txbufd's memory recovery during a measured
// interval from its own client connection.
//
// At the start of the interval it takes a STATS snapshot, then samples
// pinned bytes every `period` (for the pinned-bytes-over-time chart), and at
// the end takes a second snapshot; Finish() gives the interval's
// ServerMemory (server_stats.h). The STATS requests are themselves replies
// of txbufd (about 10 per second, a few KiB each): negligible next to the
// workload, but counted.
//
// Thread-safety: Begin() may be called from any thread, once; Finish() and
// the destructor from the owner's thread.
//
// Example:
//   auto sampler = StatsSampler::Connect("127.0.0.1", port,
//                                        absl::Milliseconds(100));
//   (*sampler)->Begin(measure_start_ns, measure_end_ns);
//   ... run the load ...
//   absl::StatusOr<ServerMemory> m = (*sampler)->Finish();
#ifndef TXBUF_BENCH_TARGETS_TXBUFD_STATS_SAMPLER_H_
#define TXBUF_BENCH_TARGETS_TXBUFD_STATS_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/load/run_result.h"
#include "client/client.h"
#include "proto/txbuf.pb.h"

namespace txbuf::bench {

class StatsSampler {
 public:
  // `token`: the server's shared secret, if it requires one.
  static absl::StatusOr<std::unique_ptr<StatsSampler>> Connect(
      const std::string& host, uint16_t port, absl::Duration period,
      std::optional<std::string> token = std::nullopt);
  ~StatsSampler();
  StatsSampler(const StatsSampler&) = delete;
  StatsSampler& operator=(const StatsSampler&) = delete;

  // Starts the sampling thread for the interval [start_ns, end_ns)
  // (MonoNowNs() clock). Later calls are ignored.
  void Begin(int64_t start_ns, int64_t end_ns);

  // Waits for the end of the interval; the interval's memory recovery.
  // FailedPrecondition if Begin() was never called.
  absl::StatusOr<ServerMemory> Finish();

  // One STATS call now.
  absl::StatusOr<rpc::StatsResult> Snapshot() { return client_->Stats(); }

 private:
  StatsSampler(std::unique_ptr<client::Client> client, absl::Duration period)
      : client_(std::move(client)), period_(period) {}
  void Loop(int64_t start_ns, int64_t end_ns);

  std::unique_ptr<client::Client> client_;
  const absl::Duration period_;
  absl::Mutex mu_;
  bool begun_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  // Written by the thread, read after joining it.
  absl::Status status_;
  rpc::StatsResult before_;
  rpc::StatsResult after_;
  std::vector<PinnedSample> samples_;
};

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_TXBUFD_STATS_SAMPLER_H_
