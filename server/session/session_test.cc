// session_test.cc: one client's session with a whole txbufd in the test
// process (server/testing/in_process.h), driven byte by byte with the raw
// protocol client (tests/raw_client.h): the handshake (Hello, then a
// request gets its reply; with a token, nothing before authenticating), a
// malformed frame closes the session and is counted, a peer that closes in
// the middle of a frame leaves no byte pinned, pipelined frames are
// answered in order (across compounds finished on the blocking pool and
// past a loop turn's frames), a session over its own budget stops
// reading until its replies are read, and a COMMIT waiting for the disk
// holds up no request after it (the test's own fsync, below, holds it
// there for as long as a test needs).
//
// Every wait is for a condition (WaitFor, blocking reads), never for a time.
#include "server/session/session.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/frame.h"
#include "server/server.h"
#include "server/testing/in_process.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::server {
namespace {

using ::testing::HasSubstr;
using txbuf::testing::AddLookup;
using txbuf::testing::AddPutRoot;
using txbuf::testing::MakeRequest;
using txbuf::testing::RawClient;
using txbuf::testing::RawReply;
using txbuf::testing::ReadFileOrDie;
using txbuf::testing::WaitFor;
using txbuf::testing::WriteFile;

// Where this binary's fsync (defined at the end of this file, in place of
// libc's, for the server in this process too) holds the fsync of a file
// whose name starts with "gated" while the gate is closed.
class FsyncGate {
 public:
  static FsyncGate& Get() {
    static FsyncGate* gate = new FsyncGate();
    return *gate;
  }
  // Closed: fsyncs of gated files wait; the count starts again.
  void Close() {
    absl::MutexLock l(&mu_);
    closed_ = true;
    entered_ = 0;
  }
  void Open() {
    absl::MutexLock l(&mu_);
    closed_ = false;
  }
  // Waits until `n` fsyncs of gated files came to the gate since Close();
  // false if they did not within a minute (a bound for a broken server,
  // not a guess at how long one takes).
  [[nodiscard]] bool AwaitEntered(int n) {
    absl::MutexLock l(&mu_);
    auto entered = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return entered_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&entered), absl::Minutes(1));
  }
  // Called by the fsync of a gated file: returns when the gate is open.
  void Pass() {
    absl::MutexLock l(&mu_);
    ++entered_;
    auto open = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !closed_; };
    mu_.Await(absl::Condition(&open));
  }

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
};

// Whether `fd` is a file whose name starts with "gated".
bool Gated(int fd) {
  char link[64];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  char path[4096];
  const ssize_t n = readlink(link, path, sizeof(path));
  if (n <= 0) return false;
  absl::string_view p(path, static_cast<size_t>(n));
  return absl::StartsWith(p.substr(p.rfind('/') + 1), "gated");
}

class SessionTest : public InProcessServerTest {
 protected:
  void TearDown() override {
    FsyncGate::Get().Open();  // a failed test may have left it closed
    if (server_ == nullptr) return;
    server_->Shutdown();
    // Every session's replies were given back.
    EXPECT_EQ(server_->memory_stats().Snapshot().pinned_bytes, 0u);
    EXPECT_EQ(server_->counters().budget_holders.load(), 0u);
  }

  ServerCounterSnapshot Counters() const { return server_->counters().Load(); }
  uint64_t Pinned() const {
    return server_->memory_stats().Snapshot().pinned_bytes;
  }

  // A READ of `length` bytes of `file` at `offset`, as request `id`.
  static rpc::Request ReadRequest(uint64_t id, const std::string& file,
                                  uint64_t offset, uint64_t length) {
    rpc::Request r = MakeRequest(id);
    AddPutRoot(r);
    AddLookup(r, file);
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset(offset);
    rd->set_length(length);
    return r;
  }

  // A server of an export holding "gated" (its fsyncs wait at the gate)
  // and "other", with pool threads for three jobs at once; `c` connected,
  // and "gated" written (an unstable WRITE, so dirty in the server's
  // cache) through a handle `c`'s connection caches (so a PUTFH of it runs
  // on the event loop). Returns the handle.
  std::string StartWithDirtyGatedFile(std::optional<RawClient>* c) {
    WriteFile(dir_.Join("gated"), "0123456789");
    WriteFile(dir_.Join("other"), "abcdef");
    ServerOptions o = Options();
    o.io_threads = 3;
    Start(std::move(o));
    c->emplace(Connect());
    RawClient& cc = **c;
    rpc::Request l = MakeRequest(1);
    AddPutRoot(l);
    AddLookup(l, "gated");
    absl::StatusOr<RawReply> rep = cc.Call(l);
    if (!rep.ok() || rep->reply.status() != rpc::STATUS_OK) {
      ADD_FAILURE() << "LOOKUP: " << rep.status();
      return "";
    }
    std::string fh = rep->reply.results(1).fh().fh();
    rpc::Request w = MakeRequest(2);
    w.add_ops()->mutable_putfh()->set_fh(fh);
    rpc::Write* wr = w.add_ops()->mutable_write();
    wr->set_offset(0);
    wr->set_length(5);
    wr->set_stable(rpc::STABILITY_UNSTABLE);
    if (!cc.SendRequest(w, "hello").ok()) ADD_FAILURE() << "WRITE not sent";
    rep = cc.ReadReply();
    if (!rep.ok() || rep->reply.status() != rpc::STATUS_OK) {
      ADD_FAILURE() << "WRITE: " << rep.status();
    }
    return fh;
  }

  // StartWithDirtyGatedFile, then a COMMIT of "gated" (request 3) sent and
  // held in its fsync at the closed gate. `fh_out` (if not null) gets the
  // handle of "gated".
  void StartWithACommitAtTheGate(std::optional<RawClient>* c,
                                 std::string* fh_out = nullptr) {
    const std::string fh = StartWithDirtyGatedFile(c);
    if (fh_out != nullptr) *fh_out = fh;
    ASSERT_FALSE(fh.empty());
    FsyncGate::Get().Close();
    ASSERT_TRUE((*c)->SendRequest(CommitRequest(3, fh)).ok());
    ASSERT_TRUE(FsyncGate::Get().AwaitEntered(1)) << "the COMMIT's fsync";
  }

  static rpc::Request CommitRequest(uint64_t id, const std::string& fh) {
    rpc::Request r = MakeRequest(id);
    r.add_ops()->mutable_putfh()->set_fh(fh);
    r.add_ops()->mutable_commit();
    r.add_ops()->mutable_getattr();
    return r;
  }

  static rpc::Request StatfsRequest(uint64_t id) {
    rpc::Request r = MakeRequest(id);
    AddPutRoot(r);
    r.add_ops()->mutable_statfs();
    return r;
  }
};

TEST_F(SessionTest, SaysHelloThenAnswersARequest) {
  WriteFile(dir_.Join("a.txt"), "abc");
  ServerOptions o = Options();
  o.limits.max_read = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(Start(std::move(o)));
  RawClient c = Connect();
  // The Hello: the protocol version, a fresh nonce and the server's limits.
  EXPECT_EQ(c.hello().version(), 1u);
  EXPECT_FALSE(c.hello().auth_required());
  EXPECT_EQ(c.hello().server_nonce().size(), 32u);
  EXPECT_EQ(c.hello().max_read(), 1u << 20);
  EXPECT_EQ(c.hello().max_envelope(), Options().limits.max_envelope);

  absl::StatusOr<RawReply> rep = c.Call(ReadRequest(7, "a.txt", 0, 10));
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.id(), 7u);
  ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  EXPECT_EQ(rep->ReadData(2), "abc");
  EXPECT_EQ(Counters().requests, 1u);
}

TEST_F(SessionTest, WithATokenNothingIsServedBeforeAuthenticating) {
  ServerOptions o = Options();
  o.token = "sesame";
  ASSERT_NO_FATAL_FAILURE(Start(std::move(o)));
  {
    RawClient early = Connect();
    EXPECT_TRUE(early.hello().auth_required());
    rpc::Request r = MakeRequest(3);
    r.add_ops()->mutable_statfs();
    absl::StatusOr<RawReply> rep = early.Call(r);
    ASSERT_TRUE(rep.ok()) << rep.status();
    EXPECT_EQ(rep->reply.id(), 3u);
    EXPECT_EQ(rep->reply.status(), rpc::STATUS_AUTH);
    EXPECT_TRUE(early.WaitClosed());
    EXPECT_EQ(Counters().auth_failures, 1u);
  }
  RawClient c = Connect();
  absl::StatusOr<rpc::AuthReply> auth = c.Authenticate("sesame");
  ASSERT_TRUE(auth.ok()) << auth.status();
  ASSERT_EQ(auth->status(), rpc::STATUS_OK) << auth->error();
  rpc::Request r = MakeRequest(4);
  AddPutRoot(r);
  r.add_ops()->mutable_statfs();
  absl::StatusOr<RawReply> rep = c.Call(r);
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.id(), 4u);
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  EXPECT_EQ(Counters().auth_failures, 1u);
}

TEST_F(SessionTest, AMalformedFrameClosesTheSessionAndIsCounted) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  RawClient c = Connect();
  EXPECT_TRUE(WaitFor([&] { return Counters().connections == 1; }));
  // A header that is not a txbuf frame's.
  ASSERT_TRUE(c.SendBytes(std::string(kFrameHeaderSize, '\xff')).ok());
  absl::StatusOr<RawReply> rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.id(), 0u);
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_BADXDR);
  EXPECT_THAT(rep->reply.error(), HasSubstr("magic"));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(Counters().malformed, 1u);
  // The session is gone, with its receive buffer.
  EXPECT_TRUE(WaitFor([&] { return Counters().connections == 0; }));
  EXPECT_EQ(Counters().receive_buffer_bytes, 0u);
}

TEST_F(SessionTest, AFrameOfAServersTypeClosesTheSession) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  RawClient c = Connect();
  rpc::Hello hello;
  ASSERT_TRUE(c.SendFrame(FrameType::kHello, hello.SerializeAsString()).ok());
  absl::StatusOr<RawReply> rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_BADXDR);
  EXPECT_THAT(rep->reply.error(), HasSubstr("unexpected frame type 3"));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(Counters().malformed, 1u);
}

TEST_F(SessionTest, APeerClosingMidFrameLeavesNoBytePinned) {
  const std::string data(8 << 20, 'r');
  WriteFile(dir_.Join("big"), data);
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  {
    // A peer that reads nothing (a small receive buffer): its READ reply
    // stays pinned while it sends half of its next frame.
    RawClient c = Connect(/*rcvbuf=*/4096);
    const std::string read =
        EncodeFrame(FrameType::kRequest, ReadRequest(1, "big", 0, data.size()));
    const std::string next = EncodeFrame(
        FrameType::kRequest, MakeRequest(2).SerializeAsString(), "payload");
    const std::string half = next.substr(0, next.size() / 2);
    ASSERT_TRUE(c.SendBytes(read).ok());
    ASSERT_TRUE(WaitFor([&] { return Pinned() > 0; }));
    ASSERT_TRUE(c.SendBytes(half).ok());
    ASSERT_TRUE(WaitFor([&] {
      return Counters().bytes_received == read.size() + half.size();
    }));
    // The session holds bytes: it counts among the budget's holders.
    EXPECT_TRUE(WaitFor(
        [&] { return server_->counters().budget_holders.load() == 1; }));
  }
  // Closed with the reply unread and the frame incomplete: the session goes
  // and every byte it pinned comes back.
  EXPECT_TRUE(WaitFor([&] { return Counters().connections == 0; }));
  EXPECT_TRUE(WaitFor([&] { return Pinned() == 0; }));
  EXPECT_EQ(server_->counters().budget_holders.load(), 0u);
  EXPECT_EQ(server_->HeldBytes(), 0u);
  EXPECT_EQ(Counters().receive_buffer_bytes, 0u);
  EXPECT_EQ(Counters().frame_timeouts, 0u);
}

TEST_F(SessionTest, PipelinedFramesAreAnsweredInOrder) {
  WriteFile(dir_.Join("f"), "0123456789");
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  RawClient c = Connect();
  // More frames than a loop turn handles (Session::kFramesPerTurn), sent at
  // once; STATS finishes on the blocking pool, a READ of a cached file on
  // the loop.
  constexpr int kFrames = 3 * Session::kFramesPerTurn + 5;
  std::string all;
  for (int i = 1; i <= kFrames; ++i) {
    rpc::Request r;
    if (i % 3 == 0) {
      r = MakeRequest(i);
      r.add_ops()->mutable_stats();
    } else {
      r = ReadRequest(i, "f", i % 10, 1);
    }
    all += EncodeFrame(FrameType::kRequest, r);
  }
  ASSERT_TRUE(c.SendBytes(all).ok());
  for (int i = 1; i <= kFrames; ++i) {
    absl::StatusOr<RawReply> rep = c.ReadReply();
    ASSERT_TRUE(rep.ok()) << "reply " << i << ": " << rep.status();
    EXPECT_EQ(rep->reply.id(), static_cast<uint64_t>(i));
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    if (i % 3 != 0) {
      EXPECT_EQ(rep->ReadData(2),
                std::string(1, static_cast<char>('0' + i % 10)));
    }
  }
  EXPECT_EQ(Counters().requests, static_cast<uint64_t>(kFrames));
  EXPECT_GE(Counters().blocking_jobs, static_cast<uint64_t>(kFrames / 3));
}

TEST_F(SessionTest, OverItsOwnBudgetItReadsNoMoreUntilRepliesAreRead) {
  constexpr uint64_t kChunk = 2 << 20;
  constexpr int kReads = 8;
  const std::string data(kReads * kChunk, 'b');
  WriteFile(dir_.Join("big"), data);
  ServerOptions o = Options();
  o.conn_budget = 1 << 20;  // less than one reply
  ASSERT_NO_FATAL_FAILURE(Start(std::move(o)));
  RawClient c = Connect(/*rcvbuf=*/4096);
  std::string all;
  for (int i = 0; i < kReads; ++i) {
    all += EncodeFrame(FrameType::kRequest,
                       ReadRequest(i + 1, "big", i * kChunk, kChunk));
  }
  ASSERT_TRUE(c.SendBytes(all).ok());
  // A reply holds more than the session's budget: it is paused.
  ASSERT_TRUE(WaitFor([&] { return Counters().budget_waits >= 1; }));
  EXPECT_LT(Counters().requests, static_cast<uint64_t>(kReads));
  // Reading the replies gives the bytes back: each request is served in
  // turn, and nothing is closed.
  for (int i = 0; i < kReads; ++i) {
    absl::StatusOr<RawReply> rep = c.ReadReply();
    ASSERT_TRUE(rep.ok()) << "reply " << i << ": " << rep.status();
    EXPECT_EQ(rep->reply.id(), static_cast<uint64_t>(i + 1));
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    EXPECT_EQ(rep->ReadData(2).size(), kChunk);
  }
  EXPECT_EQ(Counters().requests, static_cast<uint64_t>(kReads));
  EXPECT_EQ(Counters().budget_closes, 0u);
  EXPECT_TRUE(WaitFor([&] { return Pinned() == 0; }));
  EXPECT_EQ(server_->counters().budget_holders.load(), 0u);
}

TEST_F(SessionTest, ACommitWaitingForTheDiskHoldsUpNoRequestAfterIt) {
  std::optional<RawClient> conn;
  ASSERT_NO_FATAL_FAILURE(StartWithACommitAtTheGate(&conn));
  RawClient& c = *conn;
  // After it: a READ that needs the pool (its LOOKUP), and a STATFS the
  // event loop answers. Both are answered while the COMMIT still waits.
  ASSERT_TRUE(c.SendRequest(ReadRequest(4, "other", 1, 3)).ok());
  ASSERT_TRUE(c.SendRequest(StatfsRequest(5)).ok());
  absl::StatusOr<RawReply> rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.id(), 4u);
  ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  EXPECT_EQ(rep->ReadData(2), "bcd");
  rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.id(), 5u);
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  EXPECT_EQ(Counters().commits_aside, 1u);
  // The COMMIT's reply, once the disk is done.
  FsyncGate::Get().Open();
  rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.id(), 3u);
  ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  ASSERT_EQ(rep->reply.results_size(), 3);
  EXPECT_EQ(rep->reply.results(2).attr().attr().size(), 10u);
  EXPECT_EQ(ReadFileOrDie(dir_.Join("gated")), "hello56789");
}

TEST_F(SessionTest, AnUnparsableRequestIsAnsweredAfterTheCommitsBeforeIt) {
  std::optional<RawClient> conn;
  ASSERT_NO_FATAL_FAILURE(StartWithACommitAtTheGate(&conn));
  RawClient& c = *conn;
  // Its reply (id 0) answers the oldest request waiting: it must not come
  // before the COMMIT's, nor may the request after it.
  ASSERT_TRUE(c.SendFrame(FrameType::kRequest, "\xff\xff").ok());
  ASSERT_TRUE(c.SendRequest(StatfsRequest(5)).ok());
  ASSERT_TRUE(WaitFor([&] { return Counters().malformed >= 1; }));
  FsyncGate::Get().Open();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RawReply> rep = c.ReadReply();
    ASSERT_TRUE(rep.ok()) << "reply " << i << ": " << rep.status();
    ids.push_back(rep->reply.id());
    if (rep->reply.id() == 0) {
      EXPECT_EQ(rep->reply.status(), rpc::STATUS_BADXDR);
      EXPECT_THAT(rep->reply.error(), HasSubstr("does not parse"));
    } else {
      EXPECT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    }
  }
  EXPECT_THAT(ids, ::testing::ElementsAre(3u, 0u, 5u));
}

TEST_F(SessionTest, ASecondCommitWhileOneRunsAsideHoldsTheSession) {
  std::optional<RawClient> conn;
  std::string fh;
  ASSERT_NO_FATAL_FAILURE(StartWithACommitAtTheGate(&conn, &fh));
  RawClient& c = *conn;
  // A second COMMIT (it has a sync to do: the first one's is not done),
  // then a STATFS.
  ASSERT_TRUE(c.SendRequest(CommitRequest(4, fh)).ok());
  ASSERT_TRUE(c.SendRequest(StatfsRequest(5)).ok());
  // Both COMMITs are in their fsync (the pool has three threads): the
  // second one holding the session.
  ASSERT_TRUE(FsyncGate::Get().AwaitEntered(2)) << "the second fsync";
  EXPECT_EQ(Counters().commits_aside, 1u);
  FsyncGate::Get().Open();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RawReply> rep = c.ReadReply();
    ASSERT_TRUE(rep.ok()) << "reply " << i << ": " << rep.status();
    EXPECT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    ids.push_back(rep->reply.id());
  }
  // The STATFS came after the COMMIT that held the session.
  EXPECT_THAT(ids, ::testing::AnyOf(::testing::ElementsAre(3u, 4u, 5u),
                                    ::testing::ElementsAre(4u, 3u, 5u),
                                    ::testing::ElementsAre(4u, 5u, 3u)));
}

TEST_F(SessionTest, AClientGoneWhileItsCommitWaitsLeavesNothingBehind) {
  std::optional<RawClient> conn;
  ASSERT_NO_FATAL_FAILURE(StartWithACommitAtTheGate(&conn));
  RawClient& c = *conn;
  ASSERT_TRUE(c.SendRequest(StatfsRequest(4)).ok());
  absl::StatusOr<RawReply> rep = c.ReadReply();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.id(), 4u);
  conn.reset();  // closes the connection
  FsyncGate::Get().Open();
  // The session goes once its COMMIT is back; nothing stays pinned
  // (TearDown).
  EXPECT_TRUE(WaitFor([&] { return Counters().connections == 0; }));
  EXPECT_EQ(ReadFileOrDie(dir_.Join("gated")), "hello56789");
}

}  // namespace
}  // namespace txbuf::server

// This binary's fsync, in place of libc's (the server in this process calls
// it too): a gated file's waits at the gate first (FsyncGate above).
extern "C" int fsync(int fd) {
  if (txbuf::server::Gated(fd)) txbuf::server::FsyncGate::Get().Pass();
  return static_cast<int>(syscall(SYS_fsync, fd));
}
