// server_counters_test.cc: the server's counter set: a snapshot holds every
// counter, each counter names a uint64 field of rpc::StatsResult (else
// Server::FillStats would abort at the first STATS), and counts from several
// threads add up.

#include "server/stats/server_counters.h"

#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proto/txbuf.pb.h"

namespace txbuf::server {
namespace {

TEST(ServerCountersTest, EveryCounterIsAUint64FieldOfTheStatsResult) {
  const google::protobuf::Descriptor* d = rpc::StatsResult::descriptor();
  ServerCounterSnapshot s;
  std::set<std::string> names;
  ServerCounterSnapshot::ForEach(
      [&](std::string_view name, uint64_t&) {
        EXPECT_TRUE(names.insert(std::string(name)).second) << name << " twice";
        const google::protobuf::FieldDescriptor* f =
            d->FindFieldByName(std::string(name));
        ASSERT_NE(f, nullptr) << name;
        EXPECT_EQ(f->cpp_type(),
                  google::protobuf::FieldDescriptor::CPPTYPE_UINT64)
            << name;
      },
      s);
  EXPECT_EQ(names.size(), 15u);
}

TEST(ServerCountersTest, LoadTakesEveryCounter) {
  ServerCounters c;
  uint64_t n = 0;
  ServerCountersOf<std::atomic<uint64_t>>::ForEach(
      [&](std::string_view, std::atomic<uint64_t>& a) { a.store(++n); }, c);
  const ServerCounterSnapshot s = c.Load();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.receive_buffer_bytes, 13u);
  uint64_t want = 0;
  ServerCounterSnapshot::ForEach(
      [&](std::string_view name, const uint64_t& v) {
        EXPECT_EQ(v, ++want) << name;
      },
      s);
}

TEST(ServerCountersTest, CountsFromSeveralThreadsAddUp) {
  ServerCounters c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10000; ++i) {
        c.requests.fetch_add(1, std::memory_order_relaxed);
        c.request_latency.Record(1000);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.Load().requests, 40000u);
  EXPECT_EQ(c.request_latency.Summary().count, 40000u);
}

}  // namespace
}  // namespace txbuf::server
