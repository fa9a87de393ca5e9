// client_receive_test: READ reply payloads reach the caller without a copy
// (a slice of the connection's receive buffer, client/compound.h
// kReplySliceMinBytes), stay byte-exact while held as more replies arrive,
// and may be dropped on any thread; small payloads are copied. Against the
// in-process fake server (client/testing/), over real sockets.
//
// Thread-safety: the tests drop replies on threads of their own (THREADS:
// the TSan build runs them).
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/testing/fake_server.h"
#include "client/testing/mem_fs.h"
#include "gtest/gtest.h"

namespace txbuf::client {
namespace {

using ::txbuf::client::testing::FakeServer;
using ::txbuf::client::testing::MemFs;

constexpr size_t kMiB = 1 << 20;

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class ReceiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = Pattern(8 * kMiB, 42);
    fs_ = std::make_shared<MemFs>();
    fs_->PutFile("big.bin", file_);
    absl::StatusOr<std::unique_ptr<FakeServer>> s =
        FakeServer::Start({}, fs_->Handler());
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }

  std::unique_ptr<Client> Connect(int connections = 1) {
    ClientOptions o;
    o.port = server_->port();
    o.connections = connections;
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  static Compound ReadAt(uint64_t off, uint32_t len) {
    Compound c;
    c.PutRootFh().Lookup("big.bin").Read(off, len);
    return c;
  }

  absl::string_view Expected(uint64_t off, size_t len) const {
    return absl::string_view(file_).substr(off, len);
  }

  std::string file_;
  std::shared_ptr<MemFs> fs_;
  std::unique_ptr<FakeServer> server_;
};

TEST_F(ReceiveTest, LargeReadsAreNotCopied) {
  std::unique_ptr<Client> client = Connect();
  ASSERT_NE(client, nullptr);
  constexpr int kReads = 16;
  for (int i = 0; i < kReads; ++i) {
    const uint64_t off = (i % 8) * kMiB;
    absl::StatusOr<CompoundReply> r = client->Call(ReadAt(off, kMiB));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->ok()) << r->status();
    ASSERT_EQ(r->ReadString(2), Expected(off, kMiB)) << "read " << i;
  }
  ReceiveStats s = client->receive_stats();
  EXPECT_EQ(s.payload_bytes_copied, 0u);
  EXPECT_EQ(s.payloads_copied, 0u);
  EXPECT_EQ(s.payloads_sliced, static_cast<uint64_t>(kReads));
  EXPECT_EQ(s.payload_bytes_sliced, kReads * kMiB);
}

TEST_F(ReceiveTest, SmallReadsAreCopied) {
  std::unique_ptr<Client> client = Connect();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<CompoundReply> r = client->Call(ReadAt(i * 4096, 4096));
    ASSERT_TRUE(r.ok() && r->ok());
    ASSERT_EQ(r->ReadString(2), Expected(i * 4096, 4096));
  }
  ReceiveStats s = client->receive_stats();
  EXPECT_EQ(s.payload_bytes_copied, 10u * 4096);
  EXPECT_EQ(s.payloads_sliced, 0u);
  EXPECT_LT(4096u, kReplySliceMinBytes);
}

TEST_F(ReceiveTest, HeldRepliesStayByteExactWhileMoreArrive) {
  // Replies of several sizes (sliced and copied) held while many more
  // arrive on the same connections, pipelined: none changes under its
  // holder (the receive buffer is not reused under a held slice).
  std::unique_ptr<Client> client = Connect(2);
  ASSERT_NE(client, nullptr);
  struct Held {
    uint64_t off;
    uint32_t len;
    absl::StatusOr<CompoundReply> reply = absl::UnknownError("not answered");
  };
  constexpr int kN = 96;
  std::vector<Held> held(kN);
  std::mt19937 rng(7);
  absl::Mutex mu;
  int done = 0;
  for (int i = 0; i < kN; ++i) {
    const uint32_t sizes[] = {4096, 100000, 256 * 1024, 1 << 20, 65536};
    held[i].len = sizes[rng() % 5];
    held[i].off = rng() % (file_.size() - held[i].len);
    client->Submit(ReadAt(held[i].off, held[i].len),
                   [&, i](absl::StatusOr<CompoundReply> r) {
                     absl::MutexLock l(&mu);
                     held[i].reply = std::move(r);
                     ++done;
                   });
  }
  {
    absl::MutexLock l(&mu);
    auto all = [&] {
      mu.AssertHeld();
      return done == kN;
    };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60)))
        << done << " of " << kN << " answered";
  }
  // More traffic on the same connections after all of them arrived.
  for (int i = 0; i < 32; ++i) {
    absl::StatusOr<CompoundReply> r = client->Call(ReadAt(i * 1000, kMiB));
    ASSERT_TRUE(r.ok() && r->ok());
  }
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(held[i].reply.ok()) << held[i].reply.status();
    ASSERT_EQ(held[i].reply->ReadString(2), Expected(held[i].off, held[i].len))
        << "reply " << i << " (" << held[i].len << " bytes) changed";
  }
  ReceiveStats s = client->receive_stats();
  EXPECT_GT(s.payloads_sliced, 0u);
  EXPECT_GT(s.payloads_copied, 0u);
}

TEST_F(ReceiveTest, RepliesDroppedOnOtherThreads) {
  // Done callbacks hand replies to worker threads, which check and drop
  // them while the loop receives the next ones into the same buffers.
  std::unique_ptr<Client> client = Connect(2);
  ASSERT_NE(client, nullptr);
  absl::Mutex mu;
  std::vector<std::pair<uint64_t, CompoundReply>> queue;
  int answered = 0;
  bool stop = false;
  std::atomic<int> bad{0};
  std::atomic<int> checked{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        std::pair<uint64_t, CompoundReply> item;
        {
          absl::MutexLock l(&mu);
          auto ready = [&] {
            mu.AssertHeld();
            return !queue.empty() || stop;
          };
          mu.Await(absl::Condition(&ready));
          if (queue.empty()) return;
          item = std::move(queue.back());
          queue.pop_back();
        }
        if (item.second.ReadString(2) != Expected(item.first, 256 * 1024)) {
          ++bad;
        }
        ++checked;
        // `item` (its reply, its slice of the receive buffer) dropped here.
      }
    });
  }
  constexpr int kN = 200;
  for (int i = 0; i < kN; ++i) {
    const uint64_t off = (static_cast<uint64_t>(i) * 77777) % (7 * kMiB);
    client->Submit(ReadAt(off, 256 * 1024),
                   [&, off](absl::StatusOr<CompoundReply> r) {
                     absl::MutexLock l(&mu);
                     ++answered;
                     if (r.ok() && r->ok()) {
                       queue.emplace_back(off, *std::move(r));
                     } else {
                       ++bad;
                     }
                   });
  }
  {
    absl::MutexLock l(&mu);
    auto all = [&] {
      mu.AssertHeld();
      return answered == kN && queue.empty();
    };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60)))
        << answered << " of " << kN << " answered";
    stop = true;
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(checked.load(), kN);
  EXPECT_EQ(client->receive_stats().payload_bytes_copied, 0u);
}

TEST_F(ReceiveTest, ReplyOutlivesTheClient) {
  // A held reply keeps its receive buffer after the client (its loop, its
  // connections, their readers) is gone; ASan checks it is freed once.
  absl::StatusOr<CompoundReply> r = absl::UnknownError("not answered");
  {
    std::unique_ptr<Client> client = Connect();
    ASSERT_NE(client, nullptr);
    r = client->Call(ReadAt(3 * kMiB, kMiB));
    ASSERT_EQ(client->receive_stats().payloads_sliced, 1u);
  }
  ASSERT_TRUE(r.ok() && r->ok());
  EXPECT_EQ(r->ReadString(2), Expected(3 * kMiB, kMiB));
}

}  // namespace
}  // namespace txbuf::client
