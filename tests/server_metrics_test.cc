// The Prometheus endpoint (issue 14, "Observe"): txbufd --metrics-listen
// serves GET /metrics; scraped before, during and after a workload, its
// counters move by exactly what the workload did. The latency by op kind,
// in STATS and in the endpoint, moves by the ops the workload ran.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/socket_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/txbuf.pb.h"
#include "tests/raw_client.h"
#include "tests/server_fixture.h"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

using ::testing::HasSubstr;

// The body of GET http://`address`/metrics ("" on failure).
std::string Scrape(const std::string& address) {
  absl::StatusOr<std::pair<std::string, uint16_t>> hp = SplitHostPort(address);
  if (!hp.ok()) return "";
  absl::StatusOr<UniqueFd> fd = ConnectTcp(hp->first, hp->second);
  if (!fd.ok()) return "";
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
  if (send(fd->get(), req.data(), req.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(req.size())) {
    return "";
  }
  std::string resp;
  char buf[16384];
  for (ssize_t n; (n = read(fd->get(), buf, sizeof(buf))) > 0;) {
    resp.append(buf, static_cast<size_t>(n));
  }
  const size_t body = resp.find("\r\n\r\n");
  if (!absl::StartsWith(resp, "HTTP/1.") || body == std::string::npos ||
      resp.find(" 200 ") > body) {
    return "";
  }
  return resp.substr(body + 4);
}

// Every sample of a scrape: series ("name{labels}") -> value.
std::map<std::string, double> Parse(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    double v = 0;
    if (sp != std::string::npos && absl::SimpleAtod(line.substr(sp + 1), &v)) {
      out[line.substr(0, sp)] = v;
    }
  }
  return out;
}

class MetricsTest : public ServerTest {
 protected:
  // Starts txbufd with a metrics endpoint on a free port (and `extra`);
  // returns the endpoint's "HOST:PORT" from the start-up log line.
  std::string StartWithMetrics(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--metrics-listen", "127.0.0.1:0"});
    StartServer(extra, {.stderr_path = log_});
    const std::string text = ReadFileOrDie(log_);
    const std::string mark = "metrics on http://";
    const size_t at = text.find(mark);
    if (at == std::string::npos) return "";
    const size_t from = at + mark.size();
    return text.substr(from, text.find("/metrics", from) - from);
  }
  TempDir etc_;
  const std::string log_ = etc_.Join("txbufd.log");
};

TEST_F(MetricsTest, CountersMoveByWhatTheWorkloadDid) {
  const std::string metrics = StartWithMetrics();
  ASSERT_FALSE(metrics.empty());
  const std::string first = Scrape(metrics);
  ASSERT_FALSE(first.empty());
  EXPECT_THAT(first, HasSubstr("# TYPE txbuf_ops_total counter"));
  EXPECT_THAT(first,
              HasSubstr("# TYPE txbuf_destructor_latency_seconds histogram"));
  const std::map<std::string, double> before = Parse(first);

  // Scrapes go on while the workload runs (the endpoint's threads read the
  // server's figures beside its own).
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    while (!done.load()) {
      if (!Scrape(metrics).empty()) scrapes.fetch_add(1);
    }
  });
  constexpr int kWrites = 20, kReads = 10, kMissing = 3;
  constexpr uint64_t kBlock = 4096;
  RawClient c = Connect();
  for (int i = 0; i < kWrites; ++i) {
    rpc::Request w = At("probe.txt");
    rpc::Write* op = w.add_ops()->mutable_write();
    op->set_offset(i * kBlock);
    op->set_length(kBlock);
    ASSERT_EQ(Call(c, w, std::string(kBlock, 'w')).reply.status(),
              rpc::STATUS_OK);
  }
  for (int i = 0; i < kReads; ++i) {
    rpc::Request r = At("probe.txt");
    rpc::Read* op = r.add_ops()->mutable_read();
    op->set_offset(i * kBlock);
    op->set_length(kBlock);
    ASSERT_EQ(Call(c, r).reply.status(), rpc::STATUS_OK);
  }
  for (int i = 0; i < kMissing; ++i) {
    ASSERT_EQ(Call(c, At("missing.txt")).reply.status(), rpc::STATUS_NOENT);
  }
  done.store(true);
  scraper.join();
  EXPECT_GT(scrapes.load(), 0);

  const int requests = kWrites + kReads + kMissing;
  // The server records a request's latency just after handing its reply to
  // the engine: the client may read the last reply first. Wait (bounded)
  // for the last one to be recorded.
  std::map<std::string, double> after;
  const std::string last = "txbuf_request_duration_seconds_count";
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    after = Parse(Scrape(metrics));
  } while (after[last] - before.at(last) < requests &&
           std::chrono::steady_clock::now() < deadline);
  auto delta = [&](const std::string& series) {
    auto b = before.find(series);
    auto a = after.find(series);
    EXPECT_NE(a, after.end()) << series;
    return (a == after.end() ? 0 : a->second) -
           (b == before.end() ? 0 : b->second);
  };
  EXPECT_EQ(delta("txbuf_ops_total{op=\"write\",status=\"OK\"}"), kWrites);
  EXPECT_EQ(delta("txbuf_ops_total{op=\"read\",status=\"OK\"}"), kReads);
  EXPECT_EQ(delta("txbuf_ops_total{op=\"lookup\",status=\"NOENT\"}"), kMissing);
  EXPECT_EQ(delta("txbuf_ops_total{op=\"lookup\",status=\"OK\"}"),
            kWrites + kReads);
  EXPECT_EQ(delta("txbuf_ops_total{op=\"putrootfh\",status=\"OK\"}"), requests);
  EXPECT_EQ(delta("txbuf_write_bytes_total"), kWrites * kBlock);
  EXPECT_EQ(delta("txbuf_read_bytes_total"), kReads * kBlock);
  EXPECT_EQ(delta("txbuf_requests_total"), requests);
  EXPECT_EQ(delta("txbuf_request_duration_seconds_count"), requests);
  EXPECT_EQ(delta("txbuf_request_duration_seconds_bucket{le=\"+Inf\"}"),
            requests);
  EXPECT_GT(delta("txbuf_request_duration_seconds_sum"), 0);
  // Each op a request ran records the request's latency under its kind.
  EXPECT_EQ(delta("txbuf_op_latency_seconds_count{op=\"write\"}"), kWrites);
  EXPECT_EQ(delta("txbuf_op_latency_seconds_count{op=\"read\"}"), kReads);
  EXPECT_EQ(delta("txbuf_op_latency_seconds_bucket{op=\"read\",le=\"+Inf\"}"),
            kReads);
  EXPECT_GT(delta("txbuf_op_latency_seconds_sum{op=\"read\"}"), 0);
  EXPECT_EQ(delta("txbuf_op_latency_seconds_count{op=\"lookup\"}"),
            requests);  // the NOENT ones too
  EXPECT_EQ(delta("txbuf_op_latency_seconds_count{op=\"putrootfh\"}"),
            requests);
  EXPECT_EQ(delta("txbuf_connections_total"), 1);
  EXPECT_EQ(after.at("txbuf_connections"), 1);
  EXPECT_GE(delta("txbuf_txbufs_created_total"), requests);
  EXPECT_GE(delta("txbuf_received_bytes_total"), kWrites * kBlock);
  // The dirty pages the writes left (UNSTABLE, not committed).
  EXPECT_GT(after.at("txbuf_page_cache_dirty_pages"), 0);
}

uint64_t OpLatencyCount(const rpc::StatsResult& r, const std::string& op) {
  for (const rpc::OpLatency& l : r.op_latency()) {
    if (l.op() == op) return l.latency().count();
  }
  return 0;
}

uint64_t BucketSum(const rpc::StatsResult& r, const std::string& op) {
  uint64_t n = 0;
  for (const rpc::OpLatency& l : r.op_latency()) {
    if (l.op() != op) continue;
    for (const rpc::HistogramBucket& b : l.buckets()) n += b.count();
  }
  return n;
}

// STATS (on the connection that ran the workload: each reply's latency is
// recorded before the next request on the connection runs) shows the
// latency by op kind moved by exactly the N READs and M WRITEs it ran.
TEST_F(MetricsTest, StatsShowsTheLatencyOfEachOpKind) {
  StartServer();
  constexpr int kReads = 7, kWrites = 5;
  constexpr uint64_t kBlock = 4096;
  RawClient c = Connect();
  const std::string fh = HandleOf(c, "probe.txt");
  ASSERT_FALSE(fh.empty());
  auto stats = [&] {
    rpc::Request r = At("");
    r.add_ops()->mutable_stats();
    RawReply rep = Call(c, r);
    EXPECT_EQ(rep.reply.results_size(), 2);
    return rep.reply.results_size() == 2 ? rep.reply.results(1).stats()
                                         : rpc::StatsResult();
  };
  const rpc::StatsResult before = stats();
  for (int i = 0; i < kWrites; ++i) {
    rpc::Request w;
    w.set_id(1000 + i);
    w.add_ops()->mutable_putfh()->set_fh(fh);
    rpc::Write* op = w.add_ops()->mutable_write();
    op->set_offset(i * kBlock);
    op->set_length(kBlock);
    ASSERT_EQ(Call(c, w, std::string(kBlock, 'w')).reply.status(),
              rpc::STATUS_OK);
  }
  for (int i = 0; i < kReads; ++i) {
    rpc::Request r;
    r.set_id(2000 + i);
    r.add_ops()->mutable_putfh()->set_fh(fh);
    rpc::Read* op = r.add_ops()->mutable_read();
    op->set_offset(i * kBlock);
    op->set_length(kBlock);
    ASSERT_EQ(Call(c, r).reply.status(), rpc::STATUS_OK);
  }
  const rpc::StatsResult after = stats();
  EXPECT_EQ(OpLatencyCount(after, "read") - OpLatencyCount(before, "read"),
            kReads);
  EXPECT_EQ(OpLatencyCount(after, "write") - OpLatencyCount(before, "write"),
            kWrites);
  EXPECT_EQ(BucketSum(after, "read") - BucketSum(before, "read"), kReads);
  EXPECT_EQ(BucketSum(after, "write") - BucketSum(before, "write"), kWrites);
  EXPECT_EQ(OpLatencyCount(after, "putfh") - OpLatencyCount(before, "putfh"),
            kReads + kWrites);
  // The first STATS request, recorded once its reply was sent.
  EXPECT_EQ(OpLatencyCount(after, "stats") - OpLatencyCount(before, "stats"),
            1u);
  for (const rpc::OpLatency& l : after.op_latency()) {
    EXPECT_GT(l.latency().max(), 0u) << l.op();
    EXPECT_LE(l.latency().p50(), l.latency().max()) << l.op();
  }
}

// A wrong token is counted as an authentication failure.
TEST_F(MetricsTest, AuthenticationFailuresAreCounted) {
  const std::string token = etc_.Join("token");
  WriteSecretFile(token, "right-secret-of-enough-length\n");
  const std::string metrics = StartWithMetrics({"--token-file", token});
  ASSERT_FALSE(metrics.empty());
  const double before = Parse(Scrape(metrics))["txbuf_auth_failures_total"];
  absl::StatusOr<RawClient> c =
      RawClient::Connect(server_->host(), server_->port());
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<rpc::AuthReply> r = c->Authenticate("wrong-secret");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status(), rpc::STATUS_AUTH);
  EXPECT_EQ(Parse(Scrape(metrics))["txbuf_auth_failures_total"] - before, 1);
  EXPECT_THAT(ReadFileOrDie(log_),
              HasSubstr("authentication failed: wrong token"));
}

TEST_F(MetricsTest, AnAddressInUseStopsTheStart) {
  const std::string metrics = StartWithMetrics();
  ASSERT_FALSE(metrics.empty());
  EXPECT_FALSE(ServerProcess::Start(
                   {"--export", dir_.path(), "--metrics-listen", metrics})
                   .ok());
  EXPECT_FALSE(ServerProcess::Start(
                   {"--export", dir_.path(), "--metrics-listen", "nowhere"})
                   .ok());
}

}  // namespace
}  // namespace txbuf::testing
