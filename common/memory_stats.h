// memory_stats.h: memory-recovery accounting for txbufs and send engines.
//
// Pinned bytes (now and high water), txbufs in flight, destructor latency
// (submit to destructor) as a log histogram, zero-copy versus copied
// completions, and counters per engine. One `MemoryStats` is shared by the
// txbufs and engines of a server (or client); `Snapshot()` gives plain values
// for STATS replies and reports.
//
// Thread-safety: thread-safe (atomic counters).
//
// Example:
//   txbuf::MemoryStats stats;
//   // ... build txbufs with &stats, send them ...
//   txbuf::MemoryStatsSnapshot s = stats.Snapshot();
//   printf("pinned %llu, p99 destructor latency %llu ns\n", s.pinned_bytes,
//          s.destructor_latency.p99);
#ifndef TXBUF_COMMON_MEMORY_STATS_H_
#define TXBUF_COMMON_MEMORY_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "common/counter_set.h"
#include "common/engine_kind.h"
#include "common/histogram.h"

namespace txbuf {

// Counters of one engine: `C` is std::atomic<uint64_t> live (EngineCounters)
// and uint64_t in a snapshot (EngineCountersSnapshot); see counter_set.h.
template <typename C>
struct EngineCountersOf {
  C txbufs{};              // txbufs this engine sent.
  C bytes{};               // bytes handed to the kernel.
  C submissions{};         // sendmsg calls / SQEs / ioctls.
  C partial_sends{};       // submissions that sent less than asked.
  C would_block{};         // waits for socket space.
  C zc_notifications{};    // zero-copy completion notifications.
  C zc_copied{};           // ... of which the kernel copied.
  C nobufs_fallbacks{};    // ENOBUFS/ENOMEM sent as a copy instead.
  C fixed_buffer_sends{};  // io_uring sends from registered buffers.
  C errors{};              // submissions that failed the socket.

  // Calls f(name, sets.counter...) for each counter; `name` as in
  // rpc::EngineStats.
  template <typename F, typename... Sets>
  static void ForEach(F&& f, Sets&... sets) {
    f("txbufs", sets.txbufs...);
    f("bytes", sets.bytes...);
    f("submissions", sets.submissions...);
    f("partial_sends", sets.partial_sends...);
    f("would_block", sets.would_block...);
    f("zc_notifications", sets.zc_notifications...);
    f("zc_copied", sets.zc_copied...);
    f("nobufs_fallbacks", sets.nobufs_fallbacks...);
    f("fixed_buffer_sends", sets.fixed_buffer_sends...);
    f("errors", sets.errors...);
  }
};

struct EngineCountersSnapshot : EngineCountersOf<uint64_t> {};

struct EngineCounters : EngineCountersOf<std::atomic<uint64_t>> {
  EngineCountersSnapshot Snapshot() const {
    return LoadCounters<EngineCountersSnapshot>(*this);
  }
};

struct MemoryStatsSnapshot {
  uint64_t pinned_bytes = 0;
  uint64_t pinned_bytes_max = 0;
  uint64_t txbufs_in_flight = 0;
  uint64_t txbufs_created = 0;
  uint64_t txbufs_destroyed = 0;
  uint64_t zerocopy_completions = 0;    // txbufs the kernel sent without copy.
  uint64_t copied_completions = 0;      // txbufs the kernel (or engine) copied.
  HistogramSummary destructor_latency;  // nanoseconds, submit to destructor.
  std::array<EngineCountersSnapshot, kNumEngines> engines;
};

class MemoryStats {
 public:
  // Called when a txbuf of `bytes` is built / when a part is released.
  void AddPinned(uint64_t bytes);
  void SubPinned(uint64_t bytes) {
    pinned_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  void TxbufCreated() {
    created_.fetch_add(1, std::memory_order_relaxed);
    in_flight_.fetch_add(1, std::memory_order_relaxed);
  }
  // Called from the destructor of a txbuf.
  void TxbufDestroyed(bool submitted, uint64_t latency_ns, bool copied);

  EngineCounters& engine(EngineKind k) { return engines_[static_cast<int>(k)]; }
  const LogHistogram& destructor_latency() const { return latency_; }

  uint64_t pinned_bytes() const {
    return pinned_.load(std::memory_order_relaxed);
  }
  uint64_t txbufs_in_flight() const {
    return in_flight_.load(std::memory_order_relaxed);
  }
  MemoryStatsSnapshot Snapshot() const;

 private:
  std::atomic<uint64_t> pinned_{0};
  std::atomic<uint64_t> pinned_max_{0};
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<uint64_t> created_{0};
  std::atomic<uint64_t> destroyed_{0};
  std::atomic<uint64_t> zerocopy_{0};
  std::atomic<uint64_t> copied_{0};
  LogHistogram latency_;
  std::array<EngineCounters, kNumEngines> engines_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_MEMORY_STATS_H_
