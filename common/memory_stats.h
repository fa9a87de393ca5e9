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

#include "common/engine_kind.h"
#include "common/histogram.h"

namespace txbuf {

// Counters of one engine.
struct EngineCountersSnapshot {
  uint64_t txbufs = 0;              // txbufs this engine sent.
  uint64_t bytes = 0;               // bytes handed to the kernel.
  uint64_t submissions = 0;         // sendmsg calls / SQEs / ioctls.
  uint64_t partial_sends = 0;       // submissions that sent less than asked.
  uint64_t would_block = 0;         // waits for socket space.
  uint64_t zc_notifications = 0;    // zero-copy completion notifications.
  uint64_t zc_copied = 0;           // ... of which the kernel copied.
  uint64_t nobufs_fallbacks = 0;    // ENOBUFS/ENOMEM sent as a copy instead.
  uint64_t fixed_buffer_sends = 0;  // io_uring sends from registered buffers.
  uint64_t errors = 0;              // submissions that failed the socket.
};

struct EngineCounters {
  std::atomic<uint64_t> txbufs{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> submissions{0};
  std::atomic<uint64_t> partial_sends{0};
  std::atomic<uint64_t> would_block{0};
  std::atomic<uint64_t> zc_notifications{0};
  std::atomic<uint64_t> zc_copied{0};
  std::atomic<uint64_t> nobufs_fallbacks{0};
  std::atomic<uint64_t> fixed_buffer_sends{0};
  std::atomic<uint64_t> errors{0};

  EngineCountersSnapshot Snapshot() const;
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
