// GetFile / PutFile against the fake server's in-memory file system:
// round trips, pipelining, short reads, verifier changes, errors, memory
// recovery.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/testing/fake_server.h"
#include "client/testing/mem_fs.h"
#include "gtest/gtest.h"

namespace txbuf::client {
namespace {

using ::txbuf::client::testing::FakeServer;
using ::txbuf::client::testing::MemFs;

std::string RandomData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string ReadLocal(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteLocal(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// Holds READ/WRITE requests a little and answers them in batches, recording
// how many were waiting at once (the client's pipelining depth).
class Batcher {
 public:
  // The end of a transfer: nothing new for this long. Not a short guess:
  // on a busy machine (or under a sanitizer) the client's next request can
  // take a few hundred milliseconds, and flushing before it came would hide
  // the pipelining the tests check. Each transfer's tail waits this long
  // once.
  static constexpr absl::Duration kIdle = absl::Seconds(1);
  explicit Batcher(std::shared_ptr<MemFs> fs) : fs_(std::move(fs)) {
    // Answers what is held once 6 are waiting, or when nothing new came for
    // kIdle (the end of a transfer).
    flusher_ = std::thread([this] {
      while (!stop_.load()) {
        absl::SleepFor(absl::Milliseconds(10));
        absl::MutexLock l(&mu_);
        if (absl::Now() - last_arrival_ > kIdle) {
          FlushLocked();
        }
      }
    });
  }
  ~Batcher() {
    stop_ = true;
    flusher_.join();
  }
  FakeServer::Handler Handler() {
    return [this](const FakeServer::ConnPtr& conn, const rpc::Request& req,
                  absl::string_view payload) {
      bool data_op = false;
      for (const rpc::Op& op : req.ops()) {
        data_op |= op.has_read() || op.has_write();
      }
      absl::MutexLock l(&mu_);
      if (!data_op) {
        Answer(conn, req, payload);
        return;
      }
      held_.push_back({conn, req, {payload.data(), payload.size()}});
      last_arrival_ = absl::Now();
      max_held_ = std::max(max_held_, held_.size());
      if (held_.size() >= 6) FlushLocked();
    };
  }
  size_t max_held() {
    absl::MutexLock l(&mu_);
    return max_held_;
  }

 private:
  struct Held {
    FakeServer::ConnPtr conn;
    rpc::Request req;
    std::string payload;
  };
  void Answer(const FakeServer::ConnPtr& conn, const rpc::Request& req,
              absl::string_view payload) {
    rpc::Reply reply;
    std::string out;
    fs_->Execute(req, payload, &reply, &out);
    conn->SendReply(reply, out).IgnoreError();
  }
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Held& h : held_) Answer(h.conn, h.req, h.payload);
    held_.clear();
  }

  std::shared_ptr<MemFs> fs_;
  absl::Mutex mu_;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
  size_t max_held_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_arrival_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::atomic<bool> stop_{false};
  std::thread flusher_;
};

class TransferTest : public ::testing::Test {
 protected:
  void Start(FakeServer::Handler h, ClientOptions o = {}) {
    absl::StatusOr<std::unique_ptr<FakeServer>> s =
        FakeServer::Start({}, std::move(h));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    o.port = server_->port();
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }
  void TearDown() override {
    for (const std::string& f : files_) {
      unlink(f.c_str());
      unlink((f + ".out").c_str());
    }
    if (client_ != nullptr) {
      // A WRITE buffer's Deleter runs just before its txbuf's accounting
      // is updated (on the loop thread): poll briefly.
      absl::Time end = absl::Now() + absl::Seconds(10);
      MemoryStatsSnapshot s = client_->memory_stats();
      while ((s.pinned_bytes != 0 || s.txbufs_in_flight != 0) &&
             absl::Now() < end) {
        absl::SleepFor(absl::Milliseconds(1));
        s = client_->memory_stats();
      }
      EXPECT_EQ(s.pinned_bytes, 0u) << "pinned bytes after a transfer";
      EXPECT_EQ(s.txbufs_in_flight, 0u);
    }
  }
  // A scratch file name, removed after the test.
  std::string Tmp(absl::string_view name) {
    files_.push_back(
        absl::StrCat(::testing::TempDir(), "/transfer_", name, "_", getpid()));
    return files_.back();
  }

  std::shared_ptr<MemFs> fs_ = std::make_shared<MemFs>();
  std::atomic<int> writes_{0};  // outlives the server's threads
  std::vector<std::string> files_;
  std::unique_ptr<FakeServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(TransferTest, PutThenGetRoundTripPipelined) {
  Batcher batcher(fs_);
  Start(batcher.Handler());
  std::string data = RandomData(5 * (1 << 20) + 12345, 1);
  std::string local = Tmp("in");
  WriteLocal(local, data);
  chmod(local.c_str(), 0640);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  absl::StatusOr<uint64_t> n = client_->PutFile(
      local, "dir/remote.bin",
      [&](uint64_t d, uint64_t t) { progress.emplace_back(d, t); });
  EXPECT_TRUE(absl::IsNotFound(n.status())) << "no parent directory yet";
  fs_->MakeDirs("dir");
  progress.clear();
  n = client_->PutFile(local, "dir/remote.bin", [&](uint64_t d, uint64_t t) {
    progress.emplace_back(d, t);
  });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, data.size());
  EXPECT_TRUE(fs_->GetFile("dir/remote.bin") == data);
  EXPECT_EQ(fs_->commits(), 1u);
  EXPECT_GE(batcher.max_held(), 4u) << "WRITEs were not pipelined";
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, data.size());
  EXPECT_EQ(progress.back().second, data.size());
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GE(progress[i].first, progress[i - 1].first);
  }
  absl::StatusOr<rpc::Attr> attr = client_->Stat("dir/remote.bin");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->mode(), 0640u) << "created with the local permission bits";

  std::string out = Tmp("out");
  uint64_t last = 0;
  n = client_->GetFile("dir/remote.bin", out, [&](uint64_t d, uint64_t t) {
    EXPECT_GE(d, last);
    EXPECT_EQ(t, data.size());
    last = d;
  });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(last, data.size());
  EXPECT_TRUE(ReadLocal(out) == data);
  EXPECT_GE(batcher.max_held(), 6u) << "READs were not pipelined";
}

TEST_F(TransferTest, ExactChunkMultiplesAndEmptyFiles) {
  Start(fs_->Handler());
  for (size_t size : {size_t{0}, size_t{1} << 20, size_t{3} << 20, size_t{1}}) {
    std::string data = RandomData(size, static_cast<uint32_t>(size));
    std::string local = Tmp(absl::StrCat("exact_", size));
    WriteLocal(local, data);
    absl::StatusOr<uint64_t> n = client_->PutFile(local, "f");
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, size);
    EXPECT_TRUE(fs_->GetFile("f") == data) << size;
    std::string out = local + ".out";
    n = client_->GetFile("f", out);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, size);
    EXPECT_TRUE(ReadLocal(out) == data) << size;
  }
}

TEST_F(TransferTest, PutTruncatesALongerRemoteFile) {
  Start(fs_->Handler());
  fs_->PutFile("f", std::string(3 << 20, 'o'));
  std::string local = Tmp("short");
  WriteLocal(local, "short");
  ASSERT_TRUE(client_->PutFile(local, "f").ok());
  EXPECT_EQ(*fs_->GetFile("f"), "short");
}

TEST_F(TransferTest, ShortReadsWithoutEofAreContinued) {
  // A server that returns at most 100000 bytes per READ, eof only at the end.
  Start([this](const FakeServer::ConnPtr& conn, const rpc::Request& req,
               absl::string_view payload) {
    rpc::Request clamped = req;
    for (rpc::Op& op : *clamped.mutable_ops()) {
      if (op.has_read() && op.read().length() > 100000) {
        op.mutable_read()->set_length(100000);
      }
    }
    rpc::Reply reply;
    std::string out;
    fs_->Execute(clamped, payload, &reply, &out);
    conn->SendReply(reply, out).IgnoreError();
  });
  std::string data = RandomData(2'500'000, 7);
  fs_->PutFile("f", data);
  std::string out = Tmp("short_reads");
  absl::StatusOr<uint64_t> n = client_->GetFile("f", out);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(ReadLocal(out) == data);
  absl::StatusOr<std::string> r = client_->Read("f", 50, 300000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r == data.substr(50, 300000));
}

TEST_F(TransferTest, VerifierChangeDuringPutRepeatsTheUpload) {
  Start([this](const FakeServer::ConnPtr& conn, const rpc::Request& req,
               absl::string_view payload) {
    // The "server restarts" (new verifier) after the third WRITE of the
    // first upload.
    for (const rpc::Op& op : req.ops()) {
      if (op.has_write() && ++writes_ == 3) fs_->set_verifier(99);
    }
    rpc::Reply reply;
    std::string out;
    fs_->Execute(req, payload, &reply, &out);
    conn->SendReply(reply, out).IgnoreError();
  });
  std::string data = RandomData(6 << 20, 3);
  std::string local = Tmp("verifier");
  WriteLocal(local, data);
  absl::StatusOr<uint64_t> n = client_->PutFile(local, "f");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(fs_->GetFile("f") == data);
  EXPECT_EQ(fs_->commits(), 2u) << "one COMMIT per upload";
  EXPECT_GE(writes_.load(), 12);
}

TEST_F(TransferTest, Errors) {
  Start(fs_->Handler());
  fs_->MakeDirs("d");
  std::string out = Tmp("never");
  unlink(out.c_str());
  absl::StatusOr<uint64_t> n = client_->GetFile("missing", out);
  EXPECT_TRUE(absl::IsNotFound(n.status())) << n.status();
  EXPECT_NE(access(out.c_str(), F_OK), 0) << "no local file on failure";
  n = client_->GetFile("d", out);
  EXPECT_TRUE(absl::IsFailedPrecondition(n.status())) << n.status();
  n = client_->PutFile(Tmp("no_such_local"), "x");
  EXPECT_TRUE(absl::IsNotFound(n.status())) << n.status();
  n = client_->PutFile(::testing::TempDir(), "x");
  EXPECT_TRUE(absl::IsFailedPrecondition(n.status())) << n.status();
  fs_->PutFile("f", "abc");
  n = client_->GetFile("f", "/nonexistent-dir/x");
  EXPECT_FALSE(n.ok());
  EXPECT_TRUE(absl::StrContains(n.status().message(), "/nonexistent-dir/x"))
      << n.status();
}

TEST_F(TransferTest, ConnectionLossDuringPutFails) {
  Start([this](const FakeServer::ConnPtr& conn, const rpc::Request& req,
               absl::string_view payload) {
    for (const rpc::Op& op : req.ops()) {
      if (op.has_write() && ++writes_ == 2) {
        conn->Reset();
        return;
      }
    }
    rpc::Reply reply;
    std::string out;
    fs_->Execute(req, payload, &reply, &out);
    conn->SendReply(reply, out).IgnoreError();
  });
  std::string local = Tmp("lost");
  WriteLocal(local, RandomData(8 << 20, 5));
  absl::StatusOr<uint64_t> n = client_->PutFile(local, "f");
  EXPECT_TRUE(absl::IsUnavailable(n.status())) << n.status();
}

}  // namespace
}  // namespace txbuf::client
