// op_stats_test.cc: counts by op and status, named as the protocol names the
// op, and counts the table cannot hold dropped rather than misfiled.

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

}  // namespace
}  // namespace txbuf::server
