#include "common/memory_stats.h"

#include "absl/strings/str_cat.h"

namespace txbuf {

absl::StatusOr<EngineKind> ParseEngineKind(absl::string_view name) {
  for (int i = 0; i < kNumEngines; ++i) {
    if (kEngineNames[i] == name) return static_cast<EngineKind>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown engine '", name,
                   "' (expected copy, msg_zerocopy, uring_zc, kmod or auto)"));
}

void MemoryStats::AddPinned(uint64_t bytes) {
  uint64_t now = pinned_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  uint64_t hw = pinned_max_.load(std::memory_order_relaxed);
  while (now > hw && !pinned_max_.compare_exchange_weak(hw, now)) {
  }
}

void MemoryStats::TxbufDestroyed(bool submitted, uint64_t latency_ns,
                                 bool copied) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  destroyed_.fetch_add(1, std::memory_order_relaxed);
  if (!submitted) return;  // never sent: no latency, no completion kind.
  latency_.Record(latency_ns);
  (copied ? copied_ : zerocopy_).fetch_add(1, std::memory_order_relaxed);
}

MemoryStatsSnapshot MemoryStats::Snapshot() const {
  MemoryStatsSnapshot s;
  s.pinned_bytes = pinned_.load(std::memory_order_relaxed);
  s.pinned_bytes_max = pinned_max_.load(std::memory_order_relaxed);
  s.txbufs_in_flight = in_flight_.load(std::memory_order_relaxed);
  s.txbufs_created = created_.load(std::memory_order_relaxed);
  s.txbufs_destroyed = destroyed_.load(std::memory_order_relaxed);
  s.zerocopy_completions = zerocopy_.load(std::memory_order_relaxed);
  s.copied_completions = copied_.load(std::memory_order_relaxed);
  s.destructor_latency = latency_.Summary();
  for (int i = 0; i < kNumEngines; ++i) s.engines[i] = engines_[i].Snapshot();
  return s;
}

}  // namespace txbuf
