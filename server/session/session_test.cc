// session_test.cc: one client's session with a whole txbufd in the test
// process (server/testing/in_process.h), driven byte by byte with the raw
// protocol client (tests/raw_client.h): the handshake (Hello, then a
// request gets its reply; with a token, nothing before authenticating), a
// malformed frame closes the session and is counted, a peer that closes in
// the middle of a frame leaves no byte pinned, pipelined frames are
// answered in order (across compounds finished on the blocking pool and
// past a loop turn's frames), and a session over its own budget stops
// reading until its replies are read.
//
// Every wait is for a condition (WaitFor, blocking reads), never for a time.
#include "server/session/session.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

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
using txbuf::testing::WaitFor;
using txbuf::testing::WriteFile;

class SessionTest : public InProcessServerTest {
 protected:
  void TearDown() override {
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

}  // namespace
}  // namespace txbuf::server
