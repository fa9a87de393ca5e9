// harness.h: the parts of a driver (txbufd or a peer) that do not depend on
// the target:
// the run timeline (warmup, measured interval, drain), offset choice, the
// pattern data for writes and verification, per-connection accounting, and
// the harness that runs one thread per connection and merges their results.
//
// Each peer driver supplies only a "connection loop": a function that, given
// a ConnContext, sets up its connection (connect, open the file), calls
// ConnContext::Start() (which waits for every connection to be set up and
// starts the clock), then keeps ConnContext::slots() requests outstanding
// until ConnContext::ShouldIssue() turns false, drains, and reports every
// completion with ConnContext::Complete().
//
// Thread-safety: RunHarness is called by one thread; it gives each
// connection thread its own ConnContext. ConnContext is confined to its
// thread; the shared pieces (OffsetSource, PatternSource, RunClock) are
// thread-safe.
#ifndef TXBUF_BENCH_LOAD_HARNESS_H_
#define TXBUF_BENCH_LOAD_HARNESS_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "bench/load/pattern.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"
#include "common/histogram.h"

namespace txbuf::bench {

// Largest request the peers accept (a guard against bad headers).
inline constexpr uint64_t kMaxRequestBytes = uint64_t{64} << 20;

// Per-op deadline after which a driver gives up on a request (counts an
// error). Far above any sane latency; it only keeps a wedged server from
// hanging the benchmark.
inline constexpr int64_t kOpTimeoutNs = int64_t{30} * 1000000000;

// Requests connection `index` of `connections` keeps outstanding when
// `concurrency` are dealt round-robin.
int SlotsForConnection(int concurrency, int connections, int index);

// The run timeline, in MonoNowNs() nanoseconds.
struct RunClock {
  int64_t start_ns = 0;
  int64_t measure_ns = 0;  // end of warmup
  int64_t end_ns = 0;      // end of the measured interval
};

// Offsets of successive requests: aligned to `size`, within `file_size`.
class OffsetSource {
 public:
  OffsetSource(uint64_t size, uint64_t file_size, bool random);
  // `rng` is the calling thread's generator (random mode only).
  uint64_t Next(std::mt19937_64& rng);

 private:
  uint64_t size_;
  uint64_t blocks_;
  bool random_;
  std::atomic<uint64_t> cursor_{0};
};

// Pattern bytes for write payloads and read verification: a shared
// precomputed PatternImage when the file is at most kMaxImageBytes (kept
// process-wide for the last (seed, size) asked for), else computed per op.
class PatternSource {
 public:
  static constexpr uint64_t kMaxImageBytes = uint64_t{512} << 20;
  PatternSource(uint64_t seed, uint64_t file_size);
  uint64_t seed() const { return seed_; }
  // Pattern bytes of [offset, offset + n); `scratch` is used (resized) when
  // there is no image. The pointer is valid while `scratch` and this live.
  const uint8_t* Data(uint64_t offset, size_t n, std::vector<uint8_t>& scratch);
  bool Check(uint64_t offset, absl::Span<const uint8_t> data) const;

 private:
  uint64_t seed_;
  std::shared_ptr<const PatternImage> image_;
};

// What a connection loop sees.
class StartGate;

class ConnContext {
 public:
  ConnContext(const Workload& w, const RunClock& clock, StartGate& gate,
              int slots, OffsetSource& offsets, PatternSource& pattern,
              uint64_t seed);

  // Reports the outcome of this connection's setup and waits until every
  // connection has reported. True: the clock has started, go. False: some
  // connection failed to set up (Run returns its status): return at once.
  bool Start(const absl::Status& setup);

  const Workload& workload() const { return w_; }
  int slots() const { return slots_; }
  // False once the measured interval is over: issue nothing new, drain.
  bool ShouldIssue(int64_t now_ns) const { return now_ns < clock_.end_ns; }
  // Whether an op completing at `end_ns` is counted (Complete()).
  bool Counts(int64_t end_ns) const {
    return end_ns >= clock_.measure_ns && end_ns < clock_.end_ns;
  }
  uint64_t NextOffset() { return offsets_.Next(rng_); }
  PatternSource& pattern() { return pattern_; }

  // Reports a finished request issued at `start_ns`. `ok` false counts an
  // error; `verified` false (reads) counts a verify failure. Ops completing
  // inside the measured interval are counted and their latency recorded.
  void Complete(int64_t start_ns, int64_t end_ns, uint64_t bytes, bool ok,
                bool verified = true);
  // Counts `n` errors without an op (e.g. a broken connection).
  void AddErrors(uint64_t n) { errors_ += n; }
  void MergeInto(RunResult& r) const;

 private:
  const Workload& w_;
  const RunClock& clock_;
  StartGate& gate_;
  int slots_;
  OffsetSource& offsets_;
  PatternSource& pattern_;
  std::mt19937_64 rng_;
  uint64_t ops_ = 0, bytes_ = 0, errors_ = 0, verify_failures_ = 0;
  LogHistogram latency_;
};

// Runs `loop(index, ctx)` on one thread per connection; once all are set up
// (ConnContext::Start) starts the timeline of `w`, samples client CPU (and
// server CPU when server_pid > 0) at the start and end of the measured
// interval, and merges the connections' results. Fails with the first
// setup error if any connection failed to set up.
absl::StatusOr<RunResult> RunHarness(
    const Workload& w, pid_t server_pid,
    const std::function<void(int index, ConnContext& ctx)>& loop);

// getrusage(RUSAGE_SELF) user + system time in microseconds.
double SelfCpuUs();

// User + system CPU time of process `pid` in microseconds, from
// /proc/PID/stat (clock-tick resolution, usually 10 ms).
absl::StatusOr<double> ProcessCpuUs(pid_t pid);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_LOAD_HARNESS_H_
