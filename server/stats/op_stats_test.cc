// op_stats_test.cc: counts by op and status, named as the protocol names the
// op, and counts the table cannot hold dropped rather than misfiled; the
// latency histograms by op kind, binned as every STATS histogram.

#include "server/stats/op_stats.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

uint64_t CountOf(const rpc::StatsResult& r, const std::string& op,
                 rpc::Status status) {
  for (const rpc::OpCount& c : r.ops()) {
    if (c.op() == op && c.status() == status) return c.count();
  }
  return 0;
}

TEST(OpStatsTest, CountsByOpAndStatusWithProtocolNames) {
  OpStats s;
  s.Count(rpc::Op::kRead, rpc::STATUS_OK);
  s.Count(rpc::Op::kRead, rpc::STATUS_OK);
  s.Count(rpc::Op::kRead, rpc::STATUS_STALE);
  s.Count(rpc::Op::kLookup, rpc::STATUS_NOENT);
  s.AddReadBytes(4096);
  s.AddWriteBytes(10);
  s.AddWriteBytes(5);
  rpc::StatsResult r;
  s.Fill(&r);
  EXPECT_EQ(CountOf(r, "read", rpc::STATUS_OK), 2u);
  EXPECT_EQ(CountOf(r, "read", rpc::STATUS_STALE), 1u);
  EXPECT_EQ(CountOf(r, "lookup", rpc::STATUS_NOENT), 1u);
  EXPECT_EQ(r.ops_size(), 3);  // only the non-zero counts.
  EXPECT_EQ(r.read_bytes(), 4096u);
  EXPECT_EQ(r.write_bytes(), 15u);
}

TEST(OpStatsTest, EveryStatusOfTheProtocolHasASlot) {
  OpStats s;
  const google::protobuf::EnumDescriptor* d = rpc::Status_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    s.Count(rpc::Op::kGetattr, static_cast<rpc::Status>(d->value(i)->number()));
  }
  rpc::StatsResult r;
  s.Fill(&r);
  for (int i = 0; i < d->value_count(); ++i) {
    EXPECT_EQ(
        CountOf(r, "getattr", static_cast<rpc::Status>(d->value(i)->number())),
        1u)
        << d->value(i)->name();
  }
}

TEST(OpStatsTest, OutOfRangeOpsAndStatusesAreDropped) {
  OpStats s;
  s.Count(-1, rpc::STATUS_OK);
  s.Count(OpStats::kOps, rpc::STATUS_OK);
  s.Count(rpc::Op::kRead, static_cast<rpc::Status>(123456));
  rpc::StatsResult r;
  s.Fill(&r);
  EXPECT_EQ(r.ops_size(), 0);
}

TEST(OpStatsTest, ConcurrentCountsAreAllKept) {
  OpStats s;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) s.Count(rpc::Op::kWrite, rpc::STATUS_OK);
    });
  }
  for (std::thread& t : threads) t.join();
  rpc::StatsResult r;
  s.Fill(&r);
  EXPECT_EQ(CountOf(r, "write", rpc::STATUS_OK), 40000u);
}

const rpc::OpLatency* LatencyOf(const rpc::StatsResult& r,
                                const std::string& op) {
  for (const rpc::OpLatency& l : r.op_latency()) {
    if (l.op() == op) return &l;
  }
  return nullptr;
}

// Each op kind has its own histogram; its buckets are LogHistogram's
// ([v, v + 1) under 64, 32 per power of two above).
TEST(OpStatsTest, LatencyIsBinnedPerOpKind) {
  OpStats s;
  for (int i = 0; i < 3; ++i) s.RecordLatency(rpc::Op::kRead, 10);
  s.RecordLatency(rpc::Op::kRead, 5000);
  s.RecordLatency(rpc::Op::kWrite, 1'000'000);
  s.RecordLatency(rpc::Op::kWrite, 1'000'001);  // the same bucket
  s.RecordLatency(-1, 7);                       // dropped
  s.RecordLatency(OpStats::kOps, 7);            // dropped
  rpc::StatsResult r;
  s.Fill(&r);
  ASSERT_EQ(r.op_latency_size(), 2);  // only the kinds that recorded any

  const rpc::OpLatency* read = LatencyOf(r, "read");
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(read->latency().count(), 4u);
  EXPECT_EQ(read->latency().max(), 5000u);
  EXPECT_DOUBLE_EQ(read->latency().mean(), (3 * 10 + 5000) / 4.0);
  ASSERT_EQ(read->buckets_size(), 2);
  EXPECT_EQ(read->buckets(0).lo(), 10u);
  EXPECT_EQ(read->buckets(0).hi(), 11u);
  EXPECT_EQ(read->buckets(0).count(), 3u);
  const size_t b5000 = LogHistogram::BucketOf(5000);
  EXPECT_EQ(read->buckets(1).lo(), LogHistogram::BucketLow(b5000));
  EXPECT_EQ(read->buckets(1).hi(), LogHistogram::BucketHigh(b5000));
  EXPECT_LE(read->buckets(1).lo(), 5000u);
  EXPECT_GT(read->buckets(1).hi(), 5000u);
  EXPECT_EQ(read->buckets(1).count(), 1u);

  const rpc::OpLatency* write = LatencyOf(r, "write");
  ASSERT_NE(write, nullptr);
  EXPECT_EQ(write->latency().count(), 2u);
  ASSERT_EQ(write->buckets_size(), 1);
  // 2^19 <= 1e6 < 2^20: 32 buckets of 2^14 ns.
  EXPECT_EQ(write->buckets(0).hi() - write->buckets(0).lo(), 1u << 14);
  EXPECT_LE(write->buckets(0).lo(), 1'000'000u);
  EXPECT_GT(write->buckets(0).hi(), 1'000'001u);
  EXPECT_EQ(write->buckets(0).count(), 2u);
  EXPECT_EQ(s.latency(rpc::Op::kWrite).count(), 2u);
  EXPECT_EQ(LatencyOf(r, "lookup"), nullptr);
}

TEST(OpStatsTest, ConcurrentLatenciesAreAllKept) {
  OpStats s;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        s.RecordLatency(rpc::Op::kRead, static_cast<uint64_t>(t) * 1000 +
                                            static_cast<uint64_t>(i));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(s.latency(rpc::Op::kRead).count(), 40000u);
  EXPECT_EQ(s.latency(rpc::Op::kRead).Summary().max, 3000u + 9999u);
}

}  // namespace
}  // namespace txbuf::server
