// Bad input, bad peers and shutdown: txbufd must answer with an error or a
// closed connection, keep serving everyone else, not grow, and always end
// with every txbuf destructor run (pinned bytes 0).
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

using ::testing::HasSubstr;

std::string Header(uint8_t type, uint32_t env_len, uint32_t pay_len,
                   const char* magic = "TXB1") {
  std::string h(kFrameHeaderSize, '\0');
  std::memcpy(h.data(), magic, 4);
  h[4] = 1;
  h[5] = static_cast<char>(type);
  std::memcpy(h.data() + 8, &env_len, 4);
  std::memcpy(h.data() + 12, &pay_len, 4);
  return h;
}

class RobustnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.Join("big.bin"), std::string(8 << 20, 'b'));
    WriteFile(dir_.Join("small.txt"), "small");
  }
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--export", dir_.path(), "--cache-size",
                                     "128M"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start(args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void TearDown() override {
    if (server_ != nullptr) {
      ServerExit e = server_->Stop();
      EXPECT_EQ(e.exit_code, 0) << e.stdout_text;
      EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
      EXPECT_THAT(e.stats_json, HasSubstr("\"txbufs_in_flight\":0,"));
    }
  }
  RawClient Connect() {
    absl::StatusOr<RawClient> c =
        RawClient::Connect(server_->host(), server_->port());
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }
  // A well-behaved client can still read a file.
  void ExpectStillServing() {
    RawClient c = Connect();
    rpc::Request r = MakeRequest(1);
    AddPutRoot(r);
    AddLookup(r, "small.txt");
    r.add_ops()->mutable_read()->set_length(5);
    absl::StatusOr<RawReply> rep = c.Call(r);
    ASSERT_TRUE(rep.ok()) << rep.status();
    EXPECT_EQ(rep->ReadData(2), "small");
  }
  rpc::StatsResult Stats() {
    RawClient c = Connect();
    rpc::Request r = MakeRequest(99);
    r.add_ops()->mutable_stats();
    absl::StatusOr<RawReply> rep = c.Call(r);
    EXPECT_TRUE(rep.ok()) << rep.status();
    return rep.ok() ? rep->reply.results(0).stats() : rpc::StatsResult();
  }
  // Waits until the server's pinned bytes (other than this probe's) are 0.
  bool WaitPinnedZero(int seconds) {
    for (int i = 0; i < seconds * 20; ++i) {
      rpc::StatsResult s = Stats();
      // The STATS reply itself is in flight while it is being composed.
      if (s.txbufs_in_flight() <= 1 && s.pinned_bytes() < 4096) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(RobustnessTest, BadMagicGetsBadxdrAndClose) {
  Start();
  RawClient c = Connect();
  ASSERT_TRUE(c.SendBytes(Header(1, 0, 0, "HTTP")).ok());
  absl::StatusOr<RawReply> rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_BADXDR);
  EXPECT_EQ(rep->reply.id(), 0u);
  EXPECT_TRUE(c.WaitClosed());
  ExpectStillServing();
}

TEST_F(RobustnessTest, LengthsOverTheLimitAreRefusedBeforeAllocating) {
  Start();
  long rss_before = server_->RssKib();
  for (int i = 0; i < 20; ++i) {
    RawClient c = Connect();
    // 2 GiB payload, 512 MiB envelope: refused on the header alone.
    ASSERT_TRUE(
        c.SendBytes(Header(1, i % 2 ? 512u << 20 : 16, 0x80000000u)).ok());
    absl::StatusOr<RawReply> rep = c.ReadReply();
    ASSERT_TRUE(rep.ok()) << rep.status();
    EXPECT_EQ(rep->reply.status(), rpc::STATUS_TOOBIG);
    EXPECT_THAT(rep->reply.error(), HasSubstr("over the limit"));
    EXPECT_TRUE(c.WaitClosed());
  }
  EXPECT_LT(server_->RssKib() - rss_before, 16 * 1024) << "server memory grew";
  ExpectStillServing();
}

TEST_F(RobustnessTest, TruncatedFramesAndVanishingPeersAreHarmless) {
  Start();
  for (int i = 0; i < 50; ++i) {
    RawClient c = Connect();
    std::string f = Header(1, 100, 50) + std::string(30, 'x');  // short
    ASSERT_TRUE(c.SendBytes(f.substr(0, i % 2 ? 7 : f.size())).ok());
  }  // each client closes with the frame unfinished
  ExpectStillServing();
}

TEST_F(RobustnessTest, GarbageEnvelopeGetsBadxdrAndTheConnectionGoesOn) {
  Start();
  RawClient c = Connect();
  ASSERT_TRUE(
      c.SendFrame(FrameType::kRequest, "\xff\xff\xff\xff garbage").ok());
  absl::StatusOr<RawReply> rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_BADXDR);
  // Frame boundaries were intact: the next request works.
  rpc::Request r = MakeRequest(5);
  AddPutRoot(r);
  AddLookup(r, "small.txt");
  absl::StatusOr<RawReply> ok = c.Call(r);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->reply.status(), rpc::STATUS_OK);
}

TEST_F(RobustnessTest, ServerFrameTypesFromAClientAreRefused) {
  Start();
  RawClient c = Connect();
  ASSERT_TRUE(c.SendFrame(FrameType::kReply, "").ok());
  absl::StatusOr<RawReply> rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_BADXDR);
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(RobustnessTest, HugeCompoundIsTooBigAndMemoryDoesNotGrow) {
  Start();
  RawClient c = Connect();
  rpc::Request r = MakeRequest(42);
  AddPutRoot(r);
  for (int i = 0; i < 100000; ++i) r.add_ops()->mutable_getattr();
  ASSERT_LT(r.ByteSizeLong(), c.hello().max_envelope());
  long rss_warm = 0;
  for (int round = 0; round < 30; ++round) {
    absl::StatusOr<RawReply> rep = c.Call(r);
    ASSERT_TRUE(rep.ok()) << rep.status();
    EXPECT_EQ(rep->reply.status(), rpc::STATUS_TOOBIG);
    EXPECT_EQ(rep->reply.id(), 42u);
    EXPECT_EQ(rep->reply.results_size(), 0) << "nothing may be executed";
    if (round == 5) rss_warm = server_->RssKib();
  }
  EXPECT_LT(server_->RssKib() - rss_warm, 8 * 1024)
      << "memory grows per request";
  ExpectStillServing();
}

TEST_F(RobustnessTest, RandomGarbageNeverCrashesTheServer) {
  Start();
  std::mt19937 rng(2024);
  long rss_warm = 0;
  for (int i = 0; i < 300; ++i) {
    RawClient c = Connect();
    std::string junk(rng() % 2000 + 1, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng());
    if (i % 3 == 0)
      junk = Header(1 + rng() % 5, rng() % 300, rng() % 300) + junk;
    c.SendBytes(junk).IgnoreError();
    if (i % 2 == 0) c.WaitClosed(200);
    if (i == 50) rss_warm = server_->RssKib();
  }
  ASSERT_TRUE(server_->Running());
  EXPECT_LT(server_->RssKib() - rss_warm, 16 * 1024);
  ExpectStillServing();
}

TEST_F(RobustnessTest, SlowReaderHitsItsBudgetOthersAreServedMemoryReturns) {
  Start({"--conn-budget", "2M", "--budget-deadline", "3"});
  // The slow client pipelines 64 x 1 MiB READs and reads nothing.
  absl::StatusOr<UniqueFd> slow = ConnectTcp(server_->host(), server_->port());
  ASSERT_TRUE(slow.ok());
  int rcv = 4096;
  setsockopt(slow->get(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
  std::string frames;
  for (int i = 0; i < 64; ++i) {
    rpc::Request r = MakeRequest(i + 1);
    AddPutRoot(r);
    AddLookup(r, "big.bin");
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset((i % 8) * (1 << 20));
    rd->set_length(1 << 20);
    std::string env = r.SerializeAsString();
    frames += Header(1, static_cast<uint32_t>(env.size()), 0) + env;
  }
  ASSERT_EQ(send(slow->get(), frames.data(), frames.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(frames.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  rpc::StatsResult s = Stats();
  EXPECT_GE(s.budget_waits(), 1u) << "the slow client never hit its budget";
  EXPECT_LT(s.pinned_bytes(), 2u * (2 << 20)) << "budget not enforced";
  // Others are served promptly while the slow client is stuck.
  auto t0 = std::chrono::steady_clock::now();
  ExpectStillServing();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  // Past the deadline the slow connection is closed and memory comes back.
  ASSERT_TRUE(WaitPinnedZero(15)) << "pinned bytes did not return to 0";
  s = Stats();
  EXPECT_GE(s.budget_closes(), 1u);
  EXPECT_EQ(s.connections(), 1u);  // only the probe
}

TEST_F(RobustnessTest, ClientThatDisconnectsMidReplyReleasesEverything) {
  Start();
  for (int i = 0; i < 10; ++i) {
    RawClient c = Connect();
    rpc::Request r = MakeRequest(1);
    AddPutRoot(r);
    AddLookup(r, "big.bin");
    r.add_ops()->mutable_read()->set_length(8 << 20);
    ASSERT_TRUE(c.SendRequest(r).ok());
    char buf[1000];
    ASSERT_GT(recv(c.fd(), buf, sizeof(buf), 0), 0);  // part of the reply
    // ... and gone: a reset with most of the reply unsent.
    linger lg{1, 0};
    setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  ASSERT_TRUE(WaitPinnedZero(10));
  ExpectStillServing();
}

TEST_F(RobustnessTest, SigtermWithRepliesInFlightExitsCleanly) {
  Start({"--conn-budget", "64M"});
  std::vector<UniqueFd> stuck;
  for (int c = 0; c < 4; ++c) {
    absl::StatusOr<UniqueFd> fd = ConnectTcp(server_->host(), server_->port());
    ASSERT_TRUE(fd.ok());
    std::string frames;
    for (int i = 0; i < 16; ++i) {
      rpc::Request r = MakeRequest(i + 1);
      AddPutRoot(r);
      AddLookup(r, "big.bin");
      r.add_ops()->mutable_read()->set_length(1 << 20);
      std::string env = r.SerializeAsString();
      frames += Header(1, static_cast<uint32_t>(env.size()), 0) + env;
    }
    send(fd->get(), frames.data(), frames.size(), MSG_NOSIGNAL);
    stuck.push_back(std::move(*fd));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t0 = std::chrono::steady_clock::now();
  ServerExit e = server_->Stop();
  server_.reset();
  EXPECT_EQ(e.exit_code, 0) << e.stdout_text;
  EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
  EXPECT_THAT(e.stats_json, HasSubstr("\"txbufs_in_flight\":0,"));
  // The grace period is 5 s; then replies in flight are aborted.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

}  // namespace
}  // namespace txbuf::testing
