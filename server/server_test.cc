// server_test.cc: a whole txbufd in the test process: it starts on an
// ephemeral port with a temporary export, serves a connection of the raw
// protocol client (tests/raw_client.h), counts what happens in STATS, applies
// a reload, and at Shutdown every reply's destructor has run (pinned bytes
// back to 0).

#include "server/server.h"

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/socket_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/stats/op_stats.h"
#include "server/testing/in_process.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::server {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using txbuf::testing::AddLookup;
using txbuf::testing::AddPutRoot;
using txbuf::testing::MakeRequest;
using txbuf::testing::RawClient;
using txbuf::testing::RawReply;
using txbuf::testing::WaitFor;
using txbuf::testing::WriteFile;

class ServerTest : public InProcessServerTest {
 protected:
  rpc::StatsResult Stats() const {
    rpc::StatsResult r;
    server_->FillStats(&r);
    return r;
  }

  uint64_t id_ = 0;
};

TEST_F(ServerTest, StartsOnAnEphemeralPortAndServesAConnection) {
  WriteFile(dir_.Join("hello.txt"), "hello, world");
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  EXPECT_NE(port_, 0);
  EXPECT_THAT(server_->address(), HasSubstr("127.0.0.1:"));
  {
    RawClient c = Connect();
    EXPECT_FALSE(c.hello().auth_required());
    // The connection is counted before its Hello is sent.
    EXPECT_EQ(Stats().connections(), 1u);
    EXPECT_EQ(Stats().connections_total(), 1u);

    rpc::Request r = MakeRequest(++id_);
    AddPutRoot(r);
    AddLookup(r, "hello.txt");
    r.add_ops()->mutable_read()->set_length(4096);
    absl::StatusOr<RawReply> rep = c.Call(r);
    ASSERT_TRUE(rep.ok()) << rep.status();
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    EXPECT_EQ(rep->ReadData(2), "hello, world");
    // Counted before the reply is sent.
    EXPECT_EQ(Stats().requests(), 1u);
    EXPECT_GT(Stats().bytes_received(), 0u);
    // Recorded once the reply is handed to the socket, which may be after
    // the client has it.
    EXPECT_TRUE(WaitFor([&] {
      return Stats().request_latency().count() == 1u;
    })) << Stats().request_latency().count();
  }
  // The client closed: the worker destroys the connection.
  EXPECT_TRUE(WaitFor([&] { return Stats().connections() == 0; }));
  EXPECT_EQ(Stats().connections_total(), 1u);
}

TEST_F(ServerTest, StatsOpReportsTheCountersAndSettings) {
  ServerOptions o = Options();
  o.conn_budget = 4ull << 20;
  o.budget = 8ull << 20;
  ASSERT_NO_FATAL_FAILURE(Start(std::move(o)));
  RawClient c = Connect();
  // A request whose envelope does not parse: BADXDR, and counted.
  ASSERT_TRUE(c.SendFrame(FrameType::kRequest, "\xff\xff\xff").ok());
  absl::StatusOr<RawReply> bad = c.ReadReply();
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->reply.status(), rpc::STATUS_BADXDR);

  rpc::Request r = MakeRequest(++id_);
  r.add_ops()->mutable_stats();
  absl::StatusOr<RawReply> rep = c.Call(r);
  ASSERT_TRUE(rep.ok()) << rep.status();
  ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  const rpc::StatsResult& st = rep->reply.results(0).stats();
  EXPECT_EQ(st.connections(), 1u);
  EXPECT_EQ(st.connections_total(), 1u);
  EXPECT_EQ(st.requests(), 2u);
  EXPECT_EQ(st.malformed(), 1u);
  EXPECT_EQ(st.auth_failures(), 0u);
  EXPECT_EQ(st.conn_budget(), 4ull << 20);
  EXPECT_EQ(st.budget(), 8ull << 20);
  EXPECT_EQ(st.engine(), "auto");
  // The final stats line says the same.
  EXPECT_THAT(server_->StatsJson(), HasSubstr("\"malformed\":1"));
}

// The final stats line is a log line: under journald's default LineMax
// (48K) whatever ops ran and however spread their latencies, with every
// op kind's latency summary in it.
TEST_F(ServerTest, FinalStatsLineFitsALogLine) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  OpStats& ops = server_->executor().op_stats();
  for (int op = 1; op < OpStats::kOps; ++op) {
    for (uint64_t ns = 100; ns < (uint64_t{1} << 40); ns = ns * 5 / 4 + 1) {
      ops.RecordLatency(op, ns);
    }
  }
  const std::string line = server_->StatsJson();
  EXPECT_LT(line.size(), 48u * 1024) << line.substr(0, 200);
  EXPECT_THAT(line, HasSubstr("\"op_latency\":[{\"op\":"));
  rpc::StatsResult full;
  server_->FillStats(&full);
  EXPECT_GT(full.op_latency_size(), 10);
  EXPECT_GT(full.op_latency(0).buckets_size(), 0);  // STATS keeps them
}

TEST_F(ServerTest, ShutdownReturnsPinnedBytesToZero) {
  const std::string data(1 << 20, 'x');
  WriteFile(dir_.Join("big"), data);
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  RawClient c = Connect();
  for (int i = 0; i < 4; ++i) {
    rpc::Request r = MakeRequest(++id_);
    AddPutRoot(r);
    AddLookup(r, "big");
    r.add_ops()->mutable_read()->set_length(data.size());
    absl::StatusOr<RawReply> rep = c.Call(r);
    ASSERT_TRUE(rep.ok()) << rep.status();
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    EXPECT_EQ(rep->ReadData(2), data);
  }
  server_->Shutdown();
  // Every connection closed, every reply's destructor ran.
  EXPECT_TRUE(c.WaitClosed());
  const MemoryStatsSnapshot m = server_->memory_stats().Snapshot();
  EXPECT_EQ(m.pinned_bytes, 0u);
  EXPECT_EQ(m.txbufs_in_flight, 0u);
  EXPECT_EQ(m.txbufs_created, m.txbufs_destroyed);
  EXPECT_GT(m.pinned_bytes_max, 0u);
  EXPECT_EQ(server_->HeldBytes(), 0u);
  EXPECT_EQ(Stats().connections(), 0u);
  server_->Shutdown();  // idempotent
}

TEST_F(ServerTest, ReloadChangesTheSettingsInEffect) {
  ServerOptions o = Options();
  o.conn_budget = 4ull << 20;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  ServerOptions fresh = o;
  fresh.conn_budget = 2ull << 20;
  fresh.budget = 1ull << 40;  // at most half the cache
  fresh.budget_deadline = absl::Seconds(3);
  fresh.threads = 2;
  const std::vector<std::string> said = server_->Reload(fresh);
  EXPECT_THAT(said, Contains("conn-budget: 4194304 -> 2097152 bytes"));
  // The budget stays half the cache, as at start: unchanged, and the
  // reload says it was lowered (as the start's log does).
  EXPECT_THAT(said, Contains("budget: 1099511627776 lowered to 33554432, "
                             "half the cache (cache-size)"));
  EXPECT_THAT(said, Not(Contains(HasSubstr(" -> 33554432"))));
  EXPECT_THAT(said, Contains("budget-deadline: 10s -> 3s"));
  EXPECT_THAT(said, Contains("threads: needs a restart"));
  EXPECT_EQ(server_->settings().conn_budget(), 2ull << 20);
  EXPECT_EQ(server_->settings().budget(), 32ull << 20);
  EXPECT_EQ(server_->settings().budget_deadline(), absl::Seconds(3));
  EXPECT_EQ(Stats().conn_budget(), 2ull << 20);
  // Nothing differs any more but the restart-only setting (and the budget
  // asked for is still too large).
  EXPECT_THAT(server_->Reload(fresh),
              ::testing::UnorderedElementsAre(
                  StartsWith("budget: 1099511627776 lowered to "),
                  "threads: needs a restart"));
}

TEST_F(ServerTest, ReloadTokenRereadsTheTokenFile) {
  const std::string file = dir_.Join("token");
  txbuf::testing::WriteSecretFile(file, "first\n");
  ServerOptions o = Options();
  o.token_file = file;
  absl::StatusOr<std::string> tok = ReadTokenFile(file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  o.token = *tok;
  ASSERT_NO_FATAL_FAILURE(Start(std::move(o)));
  EXPECT_EQ(server_->settings().token(), "first");
  EXPECT_TRUE(Connect().hello().auth_required());

  txbuf::testing::WriteSecretFile(file, "second");
  ASSERT_TRUE(server_->ReloadToken().ok());
  EXPECT_EQ(server_->settings().token(), "second");
  RawClient c = Connect();
  absl::StatusOr<rpc::AuthReply> wrong = c.Authenticate("first");
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_EQ(wrong->status(), rpc::STATUS_AUTH);
  EXPECT_TRUE(WaitFor([&] { return Stats().auth_failures() == 1; }));
  RawClient d = Connect();
  absl::StatusOr<rpc::AuthReply> right = d.Authenticate("second");
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(right->status(), rpc::STATUS_OK);
}

TEST_F(ServerTest, RefusesToListenBeyondLoopbackWithoutAToken) {
  ServerOptions o = Options();
  o.host = "0.0.0.0";
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(std::move(o));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("--allow-unauthenticated"));
}

// Connects to each "HOST:PORT" of `addresses` and reads its Hello.
void ExpectServedOn(const std::vector<std::string>& addresses) {
  for (const std::string& a : addresses) {
    absl::StatusOr<std::pair<std::string, uint16_t>> hp = SplitHostPort(a);
    ASSERT_TRUE(hp.ok()) << a << ": " << hp.status();
    absl::StatusOr<RawClient> c = RawClient::Connect(hp->first, hp->second);
    ASSERT_TRUE(c.ok()) << a << ": " << c.status();
    EXPECT_FALSE(c->hello().auth_required()) << a;
  }
}

TEST_F(ServerTest, ListensOnEveryAddressInEveryLoop) {
  ServerOptions o = Options();
  o.threads = 2;
  o.more_listen.push_back({"127.0.0.2", 0});  // all of 127/8 is loopback
  ASSERT_NO_FATAL_FAILURE(Start(std::move(o)));
  ASSERT_EQ(server_->addresses().size(), 2u);
  EXPECT_EQ(server_->address(), server_->addresses()[0]);
  EXPECT_THAT(server_->addresses()[0], StartsWith("127.0.0.1:"));
  EXPECT_THAT(server_->addresses()[1], StartsWith("127.0.0.2:"));
  // Several connections each, so that both loops accept on both.
  for (int i = 0; i < 4; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectServedOn(server_->addresses()));
  }
  EXPECT_TRUE(WaitFor([&] { return Stats().connections_total() == 8; }));
}

// txbufd itself: a repeated --listen, and a `listen` array in the file,
// are each listened on (before, the last --listen alone was, and the file's
// array was refused).
TEST(TxbufdListenTest, RepeatedListenFlagListensOnEach) {
  txbuf::testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<txbuf::testing::ServerProcess>> p =
      txbuf::testing::ServerProcess::Start({"--export", dir.path(), "--listen",
                                            "127.0.0.1:0", "--listen",
                                            "127.0.0.2:0"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->host(), "127.0.0.1");
  absl::StatusOr<std::string> second = (*p)->ReadLine();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_THAT(*second, StartsWith("listening on 127.0.0.2:"));
  ExpectServedOn({(*p)->address(), second->substr(strlen("listening on "))});
  EXPECT_EQ((*p)->Stop().exit_code, 0);
}

TEST(TxbufdListenTest, ListenArrayInTheConfigFile) {
  txbuf::testing::TempDir dir;
  const std::string conf = dir.Join("txbufd.conf");
  WriteFile(dir.Join("export/hello.txt"), "hello");
  WriteFile(conf, absl::StrCat("export = \"", dir.Join("export"),
                               "\"\nlisten = [\"127.0.0.1:0\", "
                               "\"127.0.0.2:0\"]\n"));
  absl::StatusOr<std::unique_ptr<txbuf::testing::ServerProcess>> p =
      txbuf::testing::ServerProcess::Start({"--config", conf},
                                           {.add_listen = false});
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<std::string> second = (*p)->ReadLine();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_THAT(*second, StartsWith("listening on 127.0.0.2:"));
  ExpectServedOn({(*p)->address(), second->substr(strlen("listening on "))});
  EXPECT_EQ((*p)->Stop().exit_code, 0);
}

// --budget: unset, half the cache without a word; asked for over that
// half, lowered with a warning, even when it is what the help once gave as
// the default (1G).
TEST(TxbufdBudgetTest, AnExplicitBudgetOverHalfTheCacheIsLoweredWithAWarning) {
  txbuf::testing::TempDir dir;
  WriteFile(dir.Join("export/f"), "x");
  for (const bool explicit_budget : {false, true}) {
    const std::string log =
        dir.Join(explicit_budget ? "asked.log" : "unset.log");
    std::vector<std::string> args = {"--export", dir.Join("export"),
                                     "--cache-size", "64M"};
    if (explicit_budget) {
      args.insert(args.end(), {"--budget", "1G"});
    }
    absl::StatusOr<std::unique_ptr<txbuf::testing::ServerProcess>> p =
        txbuf::testing::ServerProcess::Start(args, {.stderr_path = log});
    ASSERT_TRUE(p.ok()) << p.status();
    const txbuf::testing::ServerExit exit = (*p)->Stop();
    EXPECT_EQ(exit.exit_code, 0);
    // 32M in effect either way (the final stats line).
    EXPECT_THAT(exit.stats_json, HasSubstr("\"budget\":33554432"));
    const std::string text = txbuf::testing::ReadFileOrDie(log);
    if (explicit_budget) {
      EXPECT_THAT(text, HasSubstr("--budget 1073741824 lowered to 33554432"));
    } else {
      EXPECT_THAT(text, Not(HasSubstr("lowered")));
    }
  }
}

}  // namespace
}  // namespace txbuf::server
