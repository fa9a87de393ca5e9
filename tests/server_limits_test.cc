// Bounded resources under hostile and careless clients (issue 9, items 3, 6
// and 7): memory follows bytes actually received, connections are capped,
// frames that stop arriving are timed out, slow readers cannot starve the
// server through its global budget, and one busy client cannot stall its
// event loop.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/socket_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_fixture.h"

namespace txbuf::testing {
namespace {

// Waits up to `seconds` for `cond`, polling every 20 ms.
template <typename Cond>
bool WaitFor(Cond cond, int seconds = 15) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string Header(uint32_t env_len, uint32_t pay_len) {
  std::string h(kFrameHeaderSize, '\0');
  EncodeFrameHeader({FrameType::kRequest, 0, env_len, pay_len},
                    reinterpret_cast<std::byte*>(h.data()));
  return h;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

class LimitsTest : public ServerTest {};

TEST_F(LimitsTest, MemoryGrowsWithBytesReceivedNotWithHeaders) {
  StartServer();
  const long rss_before = server_->RssKib();
  const uint64_t received_before = Stats().bytes_received();
  // Each announces a 1 MiB envelope and a 64 MiB payload, then sends 4000
  // bytes and stops.
  constexpr int kAttackers = 24;
  std::vector<RawClient> attackers;
  for (int i = 0; i < kAttackers; ++i) {
    attackers.push_back(Connect());
    ASSERT_TRUE(
        attackers.back()
            .SendBytes(Header(1 << 20, 64 << 20) + std::string(4000, 'x'))
            .ok());
  }
  const uint64_t sent = kAttackers * (kFrameHeaderSize + 4000);
  ASSERT_TRUE(WaitFor([&] {
    return Stats().bytes_received() >= received_before + sent;
  })) << "the server did not receive the attackers' bytes";
  rpc::StatsResult st = Stats();
  EXPECT_LE(st.receive_buffer_bytes(), uint64_t{kAttackers + 4} * (64 << 10));
  const long rss_during = server_->RssKib();
  EXPECT_LT(rss_during - rss_before, 64 << 10)
      << "RSS grew from " << rss_before << " to " << rss_during << " KiB";
  ExpectStillServing();
}

TEST_F(LimitsTest, IncompleteFramesAreTimedOut) {
  StartServer({"--frame-timeout", "2"});
  RawClient stalled = Connect();
  ASSERT_TRUE(stalled.SendBytes(Header(100, 0) + "0123456789").ok());
  // A frame trickling in, a byte every 200 ms for longer than the timeout,
  // keeps going: the timeout is for a frame that stops.
  RawClient slow = Connect();
  rpc::Request r = At("");
  r.add_ops()->mutable_statfs();
  const std::string env = r.SerializeAsString();
  const std::string frame = Header(static_cast<uint32_t>(env.size()), 0) + env;
  ASSERT_GT(frame.size(), 16u);
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < frame.size(); ++i) {
    ASSERT_TRUE(slow.SendBytes(frame.substr(i, 1)).ok());
    if (i + 1 < frame.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ASSERT_GT(Seconds(std::chrono::steady_clock::now() - start), 3.0);
  absl::StatusOr<RawReply> rep = slow.ReadReply(10000);
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  // The stalled one got an error and was closed.
  absl::StatusOr<RawReply> err = stalled.ReadReply(15000);
  ASSERT_TRUE(err.ok()) << err.status();
  EXPECT_EQ(err->reply.status(), rpc::STATUS_BADXDR);
  EXPECT_TRUE(stalled.WaitClosed());
  EXPECT_GE(Stats().frame_timeouts(), 1u);
  ExpectStillServing();
}

TEST_F(LimitsTest, IdleConnectionsCannotLockOthersOut) {
  // One event loop: the pending cap is per loop, and which connection is
  // the oldest is then the order they were made in.
  StartServer({"--max-pending-connections", "8", "--threads", "1"});
  // Connections that never send anything: past the cap, the oldest go.
  std::vector<RawClient> idle;
  for (int i = 0; i < 30; ++i) idle.push_back(Connect());
  for (int i = 0; i < 22; ++i) {
    EXPECT_TRUE(idle[i].WaitClosed()) << "idle connection " << i;
  }
  ExpectStillServing();
  EXPECT_GE(Stats().pending_closes(), 22u);
}

TEST_F(LimitsTest, ConnectionsOverTheLimitAreRefusedWithDelay) {
  StartServer({"--max-connections", "12"});
  std::vector<RawClient> held;
  for (int i = 0; i < 12; ++i) {
    held.push_back(Connect());
    rpc::Request r = At("");
    r.add_ops()->mutable_statfs();
    ASSERT_EQ(Call(held.back(), r).reply.status(), rpc::STATUS_OK);
  }
  absl::StatusOr<RawClient> over =
      RawClient::ConnectOnly(server_->host(), server_->port());
  ASSERT_TRUE(over.ok()) << over.status();
  absl::StatusOr<RawReply> refused = over->ReadReply(10000);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->reply.status(), rpc::STATUS_DELAY);
  EXPECT_THAT(refused->reply.error(), ::testing::HasSubstr("limit"));
  EXPECT_TRUE(over->WaitClosed());
  // One leaves; a newcomer gets in.
  held.pop_back();
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<RawClient> c =
        RawClient::Connect(server_->host(), server_->port());
    return c.ok();
  }));
}

// Slow readers: connections that pipeline READs and never read the replies
// (a 4 KiB receive buffer), holding pinned memory.
// SO_REUSEPORT alone spreads connections over the event loops by a hash of
// their addresses (half the time three of four on one loop); a loop hands
// a new connection to one serving fewer, so the loops serve equal numbers,
// also after connections closed unevenly. (Without the hand-off, 16
// sequential connections and the probe were 12/5, 14/3, 11/6 and 10/7 in
// four runs of five.)
TEST_F(LimitsTest, ConnectionsAreSpreadEvenlyOverTheEventLoops) {
  StartServer({"--threads", "2"});
  auto served = [&](RawClient& c) {
    rpc::Request r = At("");
    r.add_ops()->mutable_statfs();
    return Call(c, r).reply.status() == rpc::STATUS_OK;
  };
  // Each count below includes the STATS probe's own connection.
  auto spread = [&](uint64_t want_total) {
    rpc::StatsResult s = Stats();
    EXPECT_EQ(s.loop_connections_size(), 2);
    if (s.loop_connections_size() != 2) return false;
    const uint64_t a = s.loop_connections(0), b = s.loop_connections(1);
    EXPECT_LE(std::max(a, b) - std::min(a, b), 1u) << a << " and " << b;
    return a + b == want_total;
  };
  std::vector<RawClient> held;
  for (int i = 0; i < 16; ++i) {
    held.push_back(Connect());
    ASSERT_TRUE(served(held.back())) << i;
  }
  EXPECT_TRUE(spread(17));
  // Close ten, however they were spread: new ones go to the emptier loop
  // first, until the two are even again.
  held.erase(held.begin(), held.begin() + 10);
  ASSERT_TRUE(WaitFor([&] {
    rpc::StatsResult s = Stats();
    return s.connections() == 7;  // 6 held and this probe
  }));
  for (int i = 0; i < 10; ++i) {
    held.push_back(Connect());
    ASSERT_TRUE(served(held.back())) << i;
  }
  EXPECT_TRUE(spread(17));
}

class SlowReadersTest : public ServerTest {
 protected:
  static constexpr int kSlow = 7;
  void StartHogs(bool same_file) {
    for (int i = 0; i < kSlow; ++i) {
      absl::StatusOr<RawClient> c =
          RawClient::Connect(server_->host(), server_->port(), 4096);
      ASSERT_TRUE(c.ok()) << c.status();
      hogs_.push_back(std::move(*c));
      const std::string file =
          same_file ? "big0.bin" : absl::StrCat("big", i, ".bin");
      for (int k = 0; k < 8; ++k) {
        rpc::Request r = At(file);
        rpc::Read* rd = r.add_ops()->mutable_read();
        rd->set_offset(static_cast<uint64_t>(k) << 20);
        rd->set_length(1 << 20);
        ASSERT_TRUE(hogs_.back().SendRequest(r).ok());
      }
    }
  }
  void WriteFiles(int n) {
    for (int i = 0; i < n; ++i) {
      WriteFile(dir_.Join(absl::StrCat("big", i, ".bin")),
                std::string(8 << 20, static_cast<char>('a' + i)));
    }
  }
  std::vector<RawClient> hogs_;
};

TEST_F(SlowReadersTest, ASharedPageCountsOnceAgainstTheGlobalBudget) {
  WriteFiles(1);
  StartServer({"--conn-budget", "8M", "--budget", "32M", "--budget-deadline",
               "600", "--cache-size", "128M"});
  StartHogs(/*same_file=*/true);
  // The hogs hold their replies (8 MiB each, all of the same pages).
  ASSERT_TRUE(WaitFor([&] { return Stats().pinned_bytes() > (32u << 20); }));
  rpc::StatsResult st = Stats();
  EXPECT_LT(st.held_bytes(), 16u << 20) << "pinned " << st.pinned_bytes();
  // A well-behaved client is served at once, the hogs still connected.
  ExpectStillServing();
  EXPECT_GE(Stats().connections(), uint64_t{kSlow});
}

TEST_F(SlowReadersTest, AConnectionUnderItsFairShareIsServed) {
  WriteFiles(kSlow);
  StartServer({"--conn-budget", "64M", "--budget", "32M", "--budget-deadline",
               "600", "--cache-size", "160M"});
  StartHogs(/*same_file=*/false);
  // Different files: the server really holds ~56 MiB, over its budget.
  ASSERT_TRUE(WaitFor([&] { return Stats().held_bytes() > (32u << 20); }));
  ExpectStillServing();
  EXPECT_GE(Stats().connections(), uint64_t{kSlow});
}

TEST_F(SlowReadersTest, HogsOverTheirShareAreClosedAtTheDeadline) {
  WriteFiles(kSlow);
  StartServer({"--conn-budget", "64M", "--budget", "32M", "--budget-deadline",
               "2", "--cache-size", "160M"});
  StartHogs(/*same_file=*/false);
  // Hogs over their share are closed until the server is back within its
  // budget (the rest may stay: they are then within their share).
  ASSERT_TRUE(WaitFor([&] {
    rpc::StatsResult st = Stats();
    return st.budget_closes() >= 1 && st.held_bytes() < (32u << 20);
  })) << "closes: "
      << Stats().budget_closes();
  ExpectStillServing();
  // Once the hogs are gone, pinned memory comes back (the TearDown checks
  // it reaches 0 at exit too).
  hogs_.clear();
  EXPECT_TRUE(WaitFor([&] { return Stats().pinned_bytes() < (1u << 20); }));
}

// A client that keeps its budget full (pipelined READs, replies never read)
// is closed at --budget-deadline, and the close is one WARNING line naming
// the connection's peer, the deadline and the bytes it held; the pause
// before it is logged only at the debug level (quiet by default).
TEST_F(LimitsTest, ABudgetCloseIsLoggedOnceWithThePeer) {
  WriteFile(dir_.Join("big.bin"), std::string(8 << 20, 'h'));
  TempDir etc;
  const std::string log = etc.Join("txbufd.log");
  StartServer({"--conn-budget", "1M", "--budget-deadline", "1"},
              {.stderr_path = log});
  absl::StatusOr<RawClient> hog =
      RawClient::Connect(server_->host(), server_->port(), 4096);
  ASSERT_TRUE(hog.ok()) << hog.status();
  absl::StatusOr<uint16_t> port = LocalPort(hog->fd());
  ASSERT_TRUE(port.ok()) << port.status();
  for (int k = 0; k < 8; ++k) {
    rpc::Request r = At("big.bin");
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset(static_cast<uint64_t>(k) << 20);
    rd->set_length(1 << 20);
    ASSERT_TRUE(hog->SendRequest(r).ok());
  }
  const std::string line_start =
      absl::StrCat(" from 127.0.0.1:", *port, ": closed: over its budget for ");
  std::string text;
  ASSERT_TRUE(WaitFor(
      [&] {
        text = ReadFileOrDie(log);
        return absl::StrContains(text, line_start);
      },
      30))
      << text;
  std::vector<std::string> closes;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, "closed: over its budget")) {
      closes.emplace_back(line);
    }
  }
  ASSERT_EQ(closes.size(), 1u) << text;
  const std::string& line = closes[0];
  EXPECT_EQ(line[0], 'W') << line;  // a WARNING
  EXPECT_THAT(line, ::testing::MatchesRegex(
                        ".*\\] connection [0-9]+ from 127\\.0\\.0\\.1:[0-9]+: "
                        "closed: over its budget for 1s with [0-9]+ bytes "
                        "pinned"))
      << line;
  // The bytes it held: at least its budget (1 MiB).
  const size_t with = line.rfind(" with ");
  uint64_t pinned = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      line.substr(with + 6, line.rfind(" bytes") - with - 6), &pinned))
      << line;
  EXPECT_GE(pinned, 1u << 20) << line;
  // Counted once; the hog is closed; the pause was not logged at info.
  EXPECT_EQ(Stats().budget_closes(), 1u);
  EXPECT_TRUE(hog->WaitClosed());
  EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("paused with")));
  ExpectStillServing();
}

// One client streams FILE_SYNC writes (8 in flight) on a single event loop;
// another client's STATFS and a new connection's Hello stay prompt.
TEST_F(LimitsTest, ABusyClientDoesNotStallItsEventLoop) {
  StartServer({"--threads", "1"});
  RawClient busy = Connect();
  const std::string fh = [&] {
    rpc::Request r = At("");
    r.add_ops()->mutable_create()->set_name("stream.bin");
    RawReply rep = Call(busy, r);
    return rep.reply.status() == rpc::STATUS_OK ? rep.reply.results(1).fh().fh()
                                                : std::string();
  }();
  ASSERT_FALSE(fh.empty());
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::atomic<int> written{0};
  // Streams until told to stop: the samples below are all taken while it
  // runs, however fast or slow this machine is.
  std::thread streamer([&] {
    const std::string data(48 << 10, 's');
    int in_flight = 0;
    for (int i = 0; !stop.load(); ++i) {
      rpc::Request w = MakeRequest(1000 + i);
      w.add_ops()->mutable_putfh()->set_fh(fh);
      rpc::Write* wr = w.add_ops()->mutable_write();
      wr->set_offset(uint64_t{48 << 10} * (i % 64));
      wr->set_length(48 << 10);
      wr->set_stable(rpc::STABILITY_FILE_SYNC);
      if (!busy.SendRequest(w, data).ok()) {
        failed = true;
        return;
      }
      if (++in_flight < 8) continue;
      if (!busy.ReadReply(60000).ok()) {
        failed = true;
        return;
      }
      --in_flight;
      written.fetch_add(1);
    }
    while (in_flight-- > 0) busy.ReadReply(60000).IgnoreError();
  });
  ASSERT_TRUE(WaitFor([&] { return written.load() >= 16; }));
  RawClient other = Connect();
  std::vector<double> statfs_s, hello_s;
  for (int i = 0; i < 20; ++i) {
    rpc::Request r = At("");
    r.add_ops()->mutable_statfs();
    auto t0 = std::chrono::steady_clock::now();
    RawReply rep = Call(other, r, "", 30000);
    statfs_s.push_back(Seconds(std::chrono::steady_clock::now() - t0));
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_OK);
    t0 = std::chrono::steady_clock::now();
    absl::StatusOr<RawClient> fresh =
        RawClient::Connect(server_->host(), server_->port());
    hello_s.push_back(Seconds(std::chrono::steady_clock::now() - t0));
    EXPECT_TRUE(fresh.ok()) << fresh.status();
  }
  const int during = written.load();
  // The streamer was still going (and served) when the last sample was
  // taken.
  EXPECT_FALSE(failed.load());
  stop = true;
  streamer.join();
  // The FILE_SYNC writes ran off the event loop.
  EXPECT_GE(Stats().blocking_jobs(), static_cast<uint64_t>(during));
  // An fsync never holds the loop, so these are milliseconds (on a slow disk
  // they were seconds while fsyncs ran on the loop, every sample behind up
  // to 8 of them). The median, not the worst: one sample that a busy
  // machine did not schedule for a while says nothing about the loop.
  std::sort(statfs_s.begin(), statfs_s.end());
  std::sort(hello_s.begin(), hello_s.end());
  EXPECT_LT(statfs_s[statfs_s.size() / 2], 1.5);
  EXPECT_LT(hello_s[hello_s.size() / 2], 1.5);
  std::printf(
      "STATFS median %.3f s, worst %.3f s; Hello median %.3f s, worst %.3f s; "
      "%d writes\n",
      statfs_s[statfs_s.size() / 2], statfs_s.back(),
      hello_s[hello_s.size() / 2], hello_s.back(), during);
}

// Opening a file that another process holds a read lease on blocks until
// the lease is broken (up to /proc/sys/fs/lease-break-time, 45 s by
// default): a file in the export that blocks on open. The server must
// neither wait on its event loop nor forever.
TEST_F(LimitsTest, AFileThatBlocksOnOpenDoesNotStallTheLoop) {
  WriteFile(dir_.Join("leased.txt"), "leased");
  StartServer({"--threads", "1"});
  signal(SIGIO, SIG_IGN);  // the lease break notice: we keep the lease
  // A write lease: any open by another process (the server opens a READ's
  // file read-only) must wait for it.
  UniqueFd lease(open(dir_.Join("leased.txt").c_str(), O_RDWR));
  ASSERT_TRUE(lease);
  if (fcntl(lease.get(), F_SETLEASE, F_WRLCK) != 0) {
    GTEST_SKIP() << "cannot take a lease: " << strerror(errno);
  }
  RawClient a = Connect();
  rpc::Request r = At("leased.txt");
  r.add_ops()->mutable_read()->set_length(100);
  ASSERT_TRUE(a.SendRequest(r).ok());
  // Meanwhile, on the same event loop, other clients are served at once.
  RawClient b = Connect();
  for (int i = 0; i < 5; ++i) {
    rpc::Request q = At("");
    q.add_ops()->mutable_statfs();
    RawReply rep = Call(b, q, "", 5000);
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_OK);
  }
  ExpectStillServing(5000);
  // The leased file's READ is answered (DELAY: retry later) rather than
  // waiting for the lease.
  absl::StatusOr<RawReply> rep = a.ReadReply(10000);
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_DELAY) << rep->reply.error();
  fcntl(lease.get(), F_SETLEASE, F_UNLCK);
}

}  // namespace
}  // namespace txbuf::testing
