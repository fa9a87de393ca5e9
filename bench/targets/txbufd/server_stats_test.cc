#include "bench/targets/txbufd/server_stats.h"

#include <algorithm>
#include <random>
#include <vector>

#include "bench/report/figures.h"
#include "gtest/gtest.h"

namespace txbuf::bench {
namespace {

// The STATS buckets of a histogram, as the server sends them.
void ToProto(const LogHistogram& h, rpc::StatsResult& s) {
  s.clear_destructor_latency_buckets();
  for (const LogHistogram::Bucket& b : h.Buckets()) {
    rpc::HistogramBucket* p = s.add_destructor_latency_buckets();
    p->set_lo(b.lo);
    p->set_hi(b.hi);
    p->set_count(b.count);
  }
}

TEST(ServerStatsTest, DeltaHasTheIntervalsSamples) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> early(1 / 5000.0);    // ~5 us
  std::exponential_distribution<double> during(1 / 80000.0);  // ~80 us
  LogHistogram server;    // the server's lifetime histogram
  LogHistogram interval;  // what happened in the interval only
  std::vector<uint64_t> interval_values;
  for (int i = 0; i < 5000; ++i) {
    server.Record(static_cast<uint64_t>(early(rng)));
  }
  rpc::StatsResult before;
  ToProto(server, before);
  for (int i = 0; i < 20000; ++i) {
    auto v = static_cast<uint64_t>(during(rng));
    server.Record(v);
    interval.Record(v);
    interval_values.push_back(v);
  }
  rpc::StatsResult after;
  ToProto(server, after);

  LogHistogram d = HistogramDelta(before.destructor_latency_buckets(),
                                  after.destructor_latency_buckets());
  EXPECT_EQ(d.count(), interval.count());
  std::sort(interval_values.begin(), interval_values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto want = static_cast<double>(interval.Percentile(q));
    EXPECT_NEAR(static_cast<double>(d.Percentile(q)), want, want / 32 + 1)
        << "q " << q;
    const auto exact = static_cast<double>(
        interval_values[static_cast<size_t>(q * interval_values.size()) - 1]);
    EXPECT_NEAR(static_cast<double>(d.Percentile(q)), exact, exact / 16 + 1)
        << "q " << q;
  }
  // The delta's max is in the interval's top bucket, not the lifetime's.
  EXPECT_NEAR(static_cast<double>(d.Summary().max),
              static_cast<double>(interval_values.back()),
              static_cast<double>(interval_values.back()) / 32 + 1);
}

TEST(ServerStatsTest, EmptyAndShrunkBuckets) {
  rpc::StatsResult a;
  rpc::StatsResult b;
  EXPECT_EQ(HistogramDelta(a.destructor_latency_buckets(),
                           b.destructor_latency_buckets())
                .count(),
            0u);
  rpc::HistogramBucket* x = a.add_destructor_latency_buckets();
  x->set_lo(1000);
  x->set_hi(1032);
  x->set_count(5);
  rpc::HistogramBucket* y = b.add_destructor_latency_buckets();
  *y = *x;
  y->set_count(3);  // fewer than before: another server; counts as none
  EXPECT_EQ(HistogramDelta(a.destructor_latency_buckets(),
                           b.destructor_latency_buckets())
                .count(),
            0u);
}

TEST(ServerStatsTest, CountersAndPinnedMax) {
  rpc::StatsResult before;
  rpc::StatsResult after;
  before.set_zerocopy_completions(10);
  after.set_zerocopy_completions(15);
  before.set_copied_completions(100);
  after.set_copied_completions(350);
  before.mutable_page_cache()->set_cow_copies(2);
  after.mutable_page_cache()->set_cow_copies(9);
  before.set_budget_waits(1);
  after.set_budget_waits(1);
  before.set_pinned_bytes_max(1 << 20);
  after.set_pinned_bytes_max(1 << 20);  // high water not reached again
  after.set_pinned_bytes(4096);
  ServerMemory m =
      ServerMemoryDelta(before, after, {{0, 0}, {0.1, 65536}, {0.2, 8192}});
  EXPECT_EQ(m.zerocopy_completions, 5u);
  EXPECT_EQ(m.copied_completions, 250u);
  EXPECT_EQ(m.cow_copies, 7u);
  EXPECT_EQ(m.budget_waits, 0u);
  EXPECT_EQ(m.pinned_max, 65536u);  // the largest sample
  EXPECT_EQ(m.pinned_end, 4096u);
  EXPECT_EQ(m.pinned.size(), 3u);

  after.set_pinned_bytes_max(3 << 20);  // a new high water: in the interval
  m = ServerMemoryDelta(before, after, {{0, 0}});
  EXPECT_EQ(m.pinned_max, 3u << 20);
}

}  // namespace
}  // namespace txbuf::bench
