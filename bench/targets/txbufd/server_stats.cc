#include "bench/targets/txbufd/server_stats.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace txbuf::bench {

namespace {

uint64_t Minus(uint64_t after, uint64_t before) {
  return after > before ? after - before : 0;
}

}  // namespace

LogHistogram HistogramDelta(
    const google::protobuf::RepeatedPtrField<rpc::HistogramBucket>& before,
    const google::protobuf::RepeatedPtrField<rpc::HistogramBucket>& after) {
  absl::flat_hash_map<uint64_t, uint64_t> earlier;
  for (const rpc::HistogramBucket& b : before) earlier[b.lo()] += b.count();
  LogHistogram h;
  for (const rpc::HistogramBucket& b : after) {
    auto it = earlier.find(b.lo());
    uint64_t n = Minus(b.count(), it == earlier.end() ? 0 : it->second);
    if (n == 0) continue;
    uint64_t mid =
        b.hi() - b.lo() <= 1 ? b.lo() : b.lo() + (b.hi() - b.lo()) / 2;
    h.Record(mid, n);
  }
  return h;
}

ServerMemory ServerMemoryDelta(const rpc::StatsResult& before,
                               const rpc::StatsResult& after,
                               std::vector<PinnedSample> samples) {
  ServerMemory m;
  m.destructor_latency_ns = HistogramDelta(before.destructor_latency_buckets(),
                                           after.destructor_latency_buckets());
  uint64_t seen = std::max(before.pinned_bytes(), after.pinned_bytes());
  for (const PinnedSample& s : samples) seen = std::max(seen, s.pinned_bytes);
  m.pinned_max = after.pinned_bytes_max() > before.pinned_bytes_max()
                     ? after.pinned_bytes_max()
                     : seen;
  m.pinned_end = after.pinned_bytes();
  m.zerocopy_completions =
      Minus(after.zerocopy_completions(), before.zerocopy_completions());
  m.copied_completions =
      Minus(after.copied_completions(), before.copied_completions());
  m.cow_copies =
      Minus(after.page_cache().cow_copies(), before.page_cache().cow_copies());
  m.budget_waits = Minus(after.budget_waits(), before.budget_waits());
  m.pinned = std::move(samples);
  return m;
}

}  // namespace txbuf::bench
