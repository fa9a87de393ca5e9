// relaxed_counter.h: a counter with one writer thread and many readers.
//
// The writer updates with a plain load and store (no locked instruction on
// x86); any thread may read a recent value. Used for statistics that the
// owning event-loop thread updates on the hot path and STATS reads elsewhere.
//
// Thread-safety: one writer at a time; reads are safe from any thread.
#ifndef TXBUF_COMMON_RELAXED_COUNTER_H_
#define TXBUF_COMMON_RELAXED_COUNTER_H_

#include <atomic>
#include <cstdint>

namespace txbuf {

class RelaxedCounter {
 public:
  void Add(int64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + static_cast<uint64_t>(n),
             std::memory_order_relaxed);
  }
  void Set(uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_RELAXED_COUNTER_H_
