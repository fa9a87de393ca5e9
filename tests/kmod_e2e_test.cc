// txbufd with --engine kmod: reads and writes through the kernel module,
// verified by checksum. Runs where /dev/txbuf exists (the kmod guest test
// boots it under qemu with this binary and txbufd); skipped elsewhere.
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

using ::testing::HasSubstr;

void Fill(uint64_t seed, std::string* out, size_t n) {
  out->resize(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out->data() + i, &x, 8);
  }
}

class KmodEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/txbuf", F_OK) != 0) {
      GTEST_SKIP() << "/dev/txbuf is absent: the txbuf module is not loaded "
                      "(kmod-shim/test/run-guest-test.sh runs this test in a "
                      "guest that has it)";
    }
    absl::StatusOr<std::unique_ptr<ServerProcess>> s = ServerProcess::Start(
        {"--export", dir_.path(), "--engine", "kmod", "--cache-size", "64M"});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void TearDown() override {
    if (server_ == nullptr) return;
    ServerExit e = server_->Stop();
    EXPECT_EQ(e.exit_code, 0) << e.stdout_text;
    EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
    EXPECT_THAT(e.stats_json, HasSubstr("\"engine\":\"kmod\""));
  }
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(KmodEngineTest, WritesAndReadsVerifiedByChecksum) {
  absl::StatusOr<RawClient> c =
      RawClient::Connect(server_->host(), server_->port());
  ASSERT_TRUE(c.ok()) << c.status();
  rpc::Request cr = MakeRequest(1);
  AddPutRoot(cr);
  cr.add_ops()->mutable_create()->set_name("k.bin");
  absl::StatusOr<RawReply> created = c->Call(cr);
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->reply.status(), rpc::STATUS_OK) << created->reply.error();
  std::string fh = created->reply.results(1).fh().fh();
  constexpr int kChunks = 32;  // 32 MiB
  std::string chunk;
  Sha256 written;
  for (int i = 0; i < kChunks; ++i) {
    Fill(i, &chunk, 1 << 20);
    written.Update(chunk);
    rpc::Request w = MakeRequest(10 + i);
    w.add_ops()->mutable_putfh()->set_fh(fh);
    rpc::Write* wr = w.add_ops()->mutable_write();
    wr->set_offset(uint64_t{1 << 20} * i);
    wr->set_length(1 << 20);
    ASSERT_TRUE(c->SendRequest(w, chunk).ok());
  }
  for (int i = 0; i < kChunks; ++i) {
    absl::StatusOr<RawReply> rep = c->ReadReply();
    ASSERT_TRUE(rep.ok()) << rep.status();
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
  }
  rpc::Request cm = MakeRequest(2);
  cm.add_ops()->mutable_putfh()->set_fh(fh);
  cm.add_ops()->mutable_commit();
  ASSERT_TRUE(c->Call(cm).ok());
  // Read back: 1 MiB reads pipelined (pages as USER segments) ...
  Sha256 read_back;
  for (int i = 0; i < kChunks; ++i) {
    rpc::Request r = MakeRequest(100 + i);
    r.add_ops()->mutable_putfh()->set_fh(fh);
    r.add_ops()->mutable_getattr();  // small results: INLINE segments
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset(uint64_t{1 << 20} * i);
    rd->set_length(1 << 20);
    ASSERT_TRUE(c->SendRequest(r).ok());
  }
  for (int i = 0; i < kChunks; ++i) {
    absl::StatusOr<RawReply> rep = c->ReadReply();
    ASSERT_TRUE(rep.ok()) << rep.status();
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    ASSERT_EQ(rep->reply.id(), 100u + i) << "replies out of order";
    read_back.Update(rep->ReadData(2));
  }
  EXPECT_EQ(read_back.Finish(), written.Finish());
  // ... and 4 KiB reads from several connections at once.
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      absl::StatusOr<RawClient> cc =
          RawClient::Connect(server_->host(), server_->port());
      if (!cc.ok()) return ++bad, void();
      std::string want;
      for (int i = 0; i < 200; ++i) {
        uint64_t chunk_no = (i * 7 + t) % kChunks;
        uint64_t off = (i * 4096 * 13) % (1 << 20);
        rpc::Request r = MakeRequest(i + 1);
        r.add_ops()->mutable_putfh()->set_fh(fh);
        rpc::Read* rd = r.add_ops()->mutable_read();
        rd->set_offset((chunk_no << 20) + off);
        rd->set_length(4096);
        absl::StatusOr<RawReply> rep = cc->Call(r);
        Fill(chunk_no, &want, 1 << 20);
        if (!rep.ok() || rep->ReadData(1) != want.substr(off, 4096)) ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  // The kmod engine did the sending, and completions came back. A
  // completion follows its reply's bytes (the peer's ACK, the module's
  // workqueue, the server's loop reading the device): the last ones may
  // still be on their way, more so in an emulated guest on a busy host, so
  // STATS is asked again until they are in (at most 120 s).
  rpc::StatsResult s;
  const rpc::EngineStats* kmod = nullptr;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (uint64_t id = 3;; ++id) {
    rpc::Request st = MakeRequest(id);
    st.add_ops()->mutable_stats();
    absl::StatusOr<RawReply> stats = c->Call(st);
    ASSERT_TRUE(stats.ok()) << stats.status();
    s = stats->reply.results(0).stats();
    kmod = nullptr;
    for (const rpc::EngineStats& e : s.engines()) {
      if (e.name() == "kmod") kmod = &e;
    }
    ASSERT_NE(kmod, nullptr) << "no kmod engine in STATS";
    if (kmod->zc_notifications() > 800u ||
        std::chrono::steady_clock::now() > end) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(kmod->txbufs(), 800u);
  EXPECT_GT(kmod->zc_notifications(), 800u);
  EXPECT_EQ(kmod->errors(), 0u);
  RecordProperty("kmod_copied_completions",
                 static_cast<int>(s.copied_completions()));
}

}  // namespace
}  // namespace txbuf::testing
