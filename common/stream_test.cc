// Tests of Stream alone over a socketpair: bytes in order, one close per
// stream, a close that waits for every txbuf destructor and every hold,
// callbacks that are never re-entrant, a close while a recv is armed.
#include "common/stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/engine_kind.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "common/socket_util.h"
#include "common/tx_socket.h"
#include "common/txbuf.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

// Records what the stream reports, and fails if it reports anything from
// inside a call the test made into it.
class Recorder final : public Stream::Handler {
 public:
  void OnReceived(size_t n) override {
    EXPECT_FALSE(in_call) << "OnReceived inside a call into the stream";
    EXPECT_FALSE(closing_seen) << "bytes after OnClosing";
    data.append(reinterpret_cast<const char*>(buf.data()), n);
    events.push_back("received");
    if (on_received) on_received(n);
    if (rearm) Receive();
  }
  void OnClosing(const absl::Status& why) override {
    EXPECT_FALSE(in_call) << "OnClosing inside a call into the stream";
    closing_seen = true;
    ++closings;
    closing_why = why;
    events.push_back("closing");
  }
  void OnClosed() override {
    EXPECT_FALSE(in_call) << "OnClosed inside a call into the stream";
    ++closeds;
    events.push_back("closed");
    EXPECT_TRUE(stream->closed());
    if (destroy_on_closed) stream_owner.reset();  // allowed from here
  }

  void Receive() { stream->Receive(absl::MakeSpan(buf)); }
  // Runs `fn` (a call into the stream) marked as such.
  template <typename Fn>
  void Call(Fn fn) {
    in_call = true;
    fn();
    in_call = false;
  }

  std::unique_ptr<Stream> stream_owner;
  Stream* stream = nullptr;
  std::vector<std::byte> buf = std::vector<std::byte>(4096);
  std::string data;
  std::vector<std::string> events;
  absl::AnyInvocable<void(size_t)> on_received;
  bool rearm = true;
  bool destroy_on_closed = false;
  bool in_call = false;
  bool closing_seen = false;
  int closings = 0;
  int closeds = 0;
  absl::Status closing_why;
};

class StreamTest : public ::testing::Test {
 protected:
  StreamTest() : loop_(EventLoop::Create().value()) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    local_ = UniqueFd(sv[0]);
    peer_ = UniqueFd(sv[1]);
  }

  // The stream on local_, started with rec_ as its handler.
  void MakeStream(StreamOptions options = {}) {
    std::unique_ptr<TxSocket> tx =
        TxSocket::Create(*loop_, std::move(local_),
                         {.engine = EngineKind::kCopy,
                          .graceful_close_timeout = absl::Seconds(5)},
                         stats_)
            .value();
    rec_.stream_owner =
        std::make_unique<Stream>(*loop_, std::move(tx), std::move(options));
    rec_.stream = rec_.stream_owner.get();
    rec_.Call([&] { rec_.stream->Start(rec_); });
  }

  // A txbuf of `n` bytes whose destructor appends "destructor" to the
  // events and counts into *runs.
  TxBuf MakeTx(size_t n, int* runs, absl::Status* status = nullptr) {
    TxBufBuilder b(ctx_);
    std::string bytes(n, 'x');
    b.AppendBytes(bytes.data(), bytes.size());
    return b
        .Finish([this, runs, status](const TxBufCompletion& c) {
          ++*runs;
          if (status != nullptr) *status = c.status;
          rec_.events.push_back("destructor");
        })
        .value();
  }

  bool RunUntil(const std::function<bool()>& done,
                absl::Duration timeout = absl::Seconds(10)) {
    return loop_->RunUntil(done, timeout);
  }

  std::unique_ptr<EventLoop> loop_;
  SlabAllocator slabs_;
  PagePool pool_{64 << 20};
  MemoryStats stats_;
  TxBufContext ctx_{slabs_, pool_, stats_};
  UniqueFd local_;
  UniqueFd peer_;
  Recorder rec_;
};

TEST_F(StreamTest, DeliversBytesInOrder) {
  MakeStream();
  std::string want;
  for (int i = 0; want.size() < (1 << 20); ++i) {
    want += std::to_string(i);
    want += ',';
  }
  std::thread writer([&] {
    size_t off = 0;
    while (off < want.size()) {
      ssize_t n = write(peer_.get(), want.data() + off,
                        std::min<size_t>(7777, want.size() - off));
      ASSERT_GT(n, 0);
      off += static_cast<size_t>(n);
    }
  });
  rec_.Call([&] { rec_.Receive(); });
  EXPECT_TRUE(rec_.stream->receiving());
  bool done = RunUntil([&] { return rec_.data.size() >= want.size(); });
  writer.join();
  ASSERT_TRUE(done);
  EXPECT_TRUE(rec_.data == want) << "bytes differ or are out of order";
  EXPECT_EQ(rec_.closings, 0);
  rec_.Call([&] { rec_.stream->Close(Stream::CloseMode::kAbort); });
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds == 1; }));
}

TEST_F(StreamTest, PeerCloseGivesOneClose) {
  MakeStream({.peer_close_mode = Stream::CloseMode::kGraceful,
              .peer_name = "the client"});
  rec_.Call([&] { rec_.Receive(); });
  ASSERT_EQ(write(peer_.get(), "abc", 3), 3);
  peer_.reset();
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  // More turns: nothing else arrives.
  loop_->RunUntil([] { return false; }, absl::Milliseconds(50));
  EXPECT_EQ(rec_.data, "abc");
  EXPECT_EQ(rec_.closings, 1);
  EXPECT_EQ(rec_.closeds, 1);
  EXPECT_TRUE(absl::IsUnavailable(rec_.closing_why)) << rec_.closing_why;
  EXPECT_EQ(rec_.closing_why.message(), "the client closed the connection");
  EXPECT_EQ(rec_.events,
            (std::vector<std::string>{"received", "closing", "closed"}));
  EXPECT_FALSE(rec_.stream->receiving());
}

TEST_F(StreamTest, AbortWaitsForTheDestructorOfWhatWasNotSent) {
  MakeStream();
  ASSERT_TRUE(
      SetIntSockOpt(rec_.stream->fd(), SOL_SOCKET, SO_SNDBUF, 4096).ok());
  int runs = 0;
  absl::Status status;
  // The peer reads nothing: most of this stays queued.
  rec_.Call([&] { rec_.stream->Send(MakeTx(4 << 20, &runs, &status)); });
  loop_->RunUntil([] { return false; }, absl::Milliseconds(50));
  EXPECT_EQ(runs, 0);
  EXPECT_GT(rec_.stream->socket().queued_bytes(), 0u);
  rec_.Call([&] { rec_.stream->Close(Stream::CloseMode::kAbort); });
  EXPECT_FALSE(rec_.stream->can_send());
  EXPECT_EQ(rec_.closeds, 0) << "closed reported inside Close()";
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(rec_.events,
            (std::vector<std::string>{"destructor", "closing", "closed"}));
}

TEST_F(StreamTest, GracefulCloseSendsEverythingThenCloses) {
  MakeStream();
  ASSERT_TRUE(
      SetIntSockOpt(rec_.stream->fd(), SOL_SOCKET, SO_SNDBUF, 4096).ok());
  const size_t kSize = 1 << 20;
  size_t got = 0;
  std::thread reader([&] {
    char b[65536];
    for (;;) {
      ssize_t n = read(peer_.get(), b, sizeof(b));
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
  });
  int runs = 0;
  absl::Status status = absl::UnknownError("not run");
  rec_.Call([&] {
    rec_.stream->Send(MakeTx(kSize, &runs, &status));
    rec_.stream->Close(Stream::CloseMode::kGraceful);
  });
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  reader.join();  // the stream closed the socket: the reader sees EOF
  EXPECT_EQ(got, kSize);
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(rec_.events.back(), "closed");
  EXPECT_EQ(rec_.closings, 1);
}

TEST_F(StreamTest, CloseWaitsForHolds) {
  MakeStream();
  rec_.Call([&] {
    rec_.stream->Hold();
    rec_.stream->Close(Stream::CloseMode::kGraceful);
  });
  loop_->RunUntil([] { return false; }, absl::Milliseconds(50));
  EXPECT_EQ(rec_.closings, 1);
  EXPECT_EQ(rec_.closeds, 0) << "closed while held";
  // A graceful close waiting for its hold still sends (the job's reply).
  EXPECT_TRUE(rec_.stream->can_send());
  int runs = 0;
  absl::Status status = absl::UnknownError("not run");
  rec_.Call([&] { rec_.stream->Send(MakeTx(100, &runs, &status)); });
  char b[200];
  EXPECT_EQ(read(peer_.get(), b, sizeof(b)), 100);
  rec_.Call([&] { rec_.stream->Release(); });
  EXPECT_EQ(rec_.closeds, 0) << "closed reported inside Release()";
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(status.ok()) << status;
}

TEST_F(StreamTest, AbortOverridesAGracefulCloseWaitingForAHold) {
  MakeStream();
  rec_.Call([&] {
    rec_.stream->Hold();
    rec_.stream->Close(Stream::CloseMode::kGraceful);
    rec_.stream->Close(Stream::CloseMode::kAbort);
  });
  EXPECT_FALSE(rec_.stream->can_send());
  loop_->RunUntil([] { return false; }, absl::Milliseconds(50));
  EXPECT_EQ(rec_.closeds, 0) << "closed while held";
  rec_.Call([&] { rec_.stream->Release(); });
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  EXPECT_EQ(rec_.closings, 1);
}

TEST_F(StreamTest, CloseWhileAReceiveIsArmed) {
  MakeStream();
  rec_.destroy_on_closed = true;
  rec_.Call([&] { rec_.Receive(); });
  loop_->RunUntil([] { return false; }, absl::Milliseconds(20));
  ASSERT_TRUE(rec_.stream->receiving());
  rec_.Call([&] { rec_.stream->Close(Stream::CloseMode::kAbort); });
  EXPECT_EQ(rec_.closings, 0) << "OnClosing inside Close()";
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  EXPECT_EQ(rec_.stream_owner, nullptr);  // destroyed from OnClosed
  EXPECT_EQ(rec_.closings, 1);
  EXPECT_TRUE(rec_.data.empty());
  EXPECT_EQ(rec_.events, (std::vector<std::string>{"closing", "closed"}));
  // Nothing is left on the loop that points at the stream.
  loop_->RunUntil([] { return false; }, absl::Milliseconds(20));
  EXPECT_EQ(rec_.closeds, 1);
}

// A receive armed and the stream aborted in the same loop turn: the recv's
// SQE is not submitted yet, and io_uring resolves its descriptor only when
// it is. Were the descriptor closed before that, the next socket to be given
// its number would have its bytes taken by the dead stream's recv (seen in
// txbufd: another connection's stream desynchronized, "bad frame magic").
TEST_F(StreamTest, AbortInTheTurnOfAReceiveClosesNoDescriptorUnderIt) {
  MakeStream();
  rec_.destroy_on_closed = true;
  const int fd = rec_.stream->fd();
  rec_.Call([&] { rec_.Receive(); });  // prepared, not submitted
  rec_.Call([&] { rec_.stream->Close(Stream::CloseMode::kAbort); });
  // The lowest free descriptor: the stream's, had it been closed.
  int sv[2];
  ASSERT_EQ(
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
      0);
  UniqueFd next(sv[0]), next_peer(sv[1]);
  EXPECT_NE(next.get(), fd) << "the stream's descriptor was closed while "
                               "its recv was still to be submitted";
  ASSERT_EQ(write(next_peer.get(), "hello", 5), 5);
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  EXPECT_TRUE(rec_.data.empty());
  // Every byte written to the next socket is still there for its owner.
  char got[16] = {};
  EXPECT_EQ(read(next.get(), got, sizeof(got)), 5) << "bytes taken";
  EXPECT_EQ(std::string(got, 5), "hello");
}

TEST_F(StreamTest, CloseFromInsideOnReceivedIsNotReentrant) {
  MakeStream();
  rec_.rearm = false;
  rec_.on_received = [&](size_t) {
    rec_.Call([&] { rec_.stream->Close(Stream::CloseMode::kAbort); });
    // Receive after closing has no effect.
    rec_.Call([&] { rec_.Receive(); });
    EXPECT_FALSE(rec_.stream->receiving());
  };
  rec_.Call([&] { rec_.Receive(); });
  ASSERT_EQ(write(peer_.get(), "x", 1), 1);
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  EXPECT_EQ(rec_.events,
            (std::vector<std::string>{"received", "closing", "closed"}));
}

TEST_F(StreamTest, SendErrorClosesThroughTheLoop) {
  MakeStream();
  peer_.reset();  // sends now fail (EPIPE)
  int runs = 0;
  rec_.Call([&] { rec_.stream->Send(MakeTx(1000, &runs)); });
  EXPECT_EQ(rec_.closings, 0) << "OnClosing inside Send()";
  ASSERT_TRUE(RunUntil([&] { return rec_.closeds > 0; }));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(rec_.closings, 1);
  EXPECT_FALSE(rec_.closing_why.ok());
}

}  // namespace
}  // namespace txbuf
