// Data integrity through txbufd: large files with every engine, and
// concurrent writers and readers on one file where every READ must be a
// consistent snapshot (stable pages with copy-on-write).
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/engine_kind.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

using ::testing::HasSubstr;

// Deterministic content of the large test file.
void FillChunk(uint64_t index, std::string* out) {
  out->resize(1 << 20);
  uint64_t x = index * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < out->size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out->data() + i, &x, 8);
  }
}

std::string EngineParam(const ::testing::TestParamInfo<EngineKind>& i) {
  absl::string_view n = EngineName(i.param);
  return {n.data(), n.size()};
}

class LargeFileTest : public ::testing::TestWithParam<EngineKind> {};

TEST_P(LargeFileTest, HundredsOfMiBRoundTripByteExact) {
  TempDir dir;
  std::string engine(EngineName(GetParam()));
#ifdef TXBUF_TSAN
  // ThreadSanitizer's slowdown (about 400 s for 256 MiB): an eighth of the
  // bytes, without the eviction pressure (page_cache_test and
  // ConcurrencyTest cover eviction under TSan). With a cache smaller than
  // the file (16M or 32M here), uring_zc and auto replied DELAY ("no page
  // can be evicted") under TSan's slowdown.
  constexpr int kChunks = 32;  // 32 MiB through a 128 MiB cache
  const char* cache = "128M";
#else
  constexpr int kChunks = 256;  // 256 MiB through a 128 MiB cache
  const char* cache = "128M";
#endif
  absl::StatusOr<std::unique_ptr<ServerProcess>> s =
      ServerProcess::Start({"--export", dir.path(), "--engine", engine,
                            "--cache-size", cache, "--threads", "2"});
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<RawClient> c = RawClient::Connect((*s)->host(), (*s)->port());
  ASSERT_TRUE(c.ok());
  // Create, then pipelined 1 MiB unstable WRITEs, 8 in flight.
  rpc::Request cr = MakeRequest(1);
  AddPutRoot(cr);
  cr.add_ops()->mutable_create()->set_name("large.bin");
  absl::StatusOr<RawReply> created = c->Call(cr);
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->reply.status(), rpc::STATUS_OK) << created->reply.error();
  std::string fh = created->reply.results(1).fh().fh();
  std::string chunk;
  int in_flight = 0, next = 0, done = 0;
  while (done < kChunks) {
    while (next < kChunks && in_flight < 8) {
      FillChunk(next, &chunk);
      rpc::Request w = MakeRequest(100 + next);
      w.add_ops()->mutable_putfh()->set_fh(fh);
      rpc::Write* wr = w.add_ops()->mutable_write();
      wr->set_offset(uint64_t{1 << 20} * next);
      wr->set_length(1 << 20);
      ASSERT_TRUE(c->SendRequest(w, chunk).ok());
      ++next;
      ++in_flight;
    }
    absl::StatusOr<RawReply> rep = c->ReadReply();
    ASSERT_TRUE(rep.ok()) << rep.status();
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    --in_flight;
    ++done;
  }
  rpc::Request cm = MakeRequest(2);
  cm.add_ops()->mutable_putfh()->set_fh(fh);
  cm.add_ops()->mutable_commit();
  cm.add_ops()->mutable_getattr();
  absl::StatusOr<RawReply> committed = c->Call(cm);
  ASSERT_TRUE(committed.ok());
  ASSERT_EQ(committed->reply.status(), rpc::STATUS_OK);
  EXPECT_EQ(committed->reply.results(2).attr().attr().size(),
            uint64_t{kChunks} << 20);
  // Read it all back, pipelined, and compare every chunk.
  next = done = in_flight = 0;
  std::string want;
  while (done < kChunks) {
    while (next < kChunks && in_flight < 8) {
      rpc::Request r = MakeRequest(1000 + next);
      r.add_ops()->mutable_putfh()->set_fh(fh);
      rpc::Read* rd = r.add_ops()->mutable_read();
      rd->set_offset(uint64_t{1 << 20} * next);
      rd->set_length(1 << 20);
      ASSERT_TRUE(c->SendRequest(r).ok());
      ++next;
      ++in_flight;
    }
    absl::StatusOr<RawReply> rep = c->ReadReply();
    ASSERT_TRUE(rep.ok()) << rep.status();
    ASSERT_EQ(rep->reply.status(), rpc::STATUS_OK) << rep->reply.error();
    uint64_t index = rep->reply.id() - 1000;
    FillChunk(index, &want);
    ASSERT_TRUE(rep->ReadData(1) == want) << "chunk " << index << " differs";
    --in_flight;
    ++done;
  }
  // And the bytes on disk.
  std::string disk = ReadFileOrDie(dir.Join("large.bin"));
  ASSERT_EQ(disk.size(), uint64_t{kChunks} << 20);
  for (int i = 0; i < kChunks; i += 37) {
    FillChunk(i, &want);
    ASSERT_EQ(disk.compare((size_t{1} << 20) * i, 1 << 20, want), 0)
        << "disk chunk " << i;
  }
  ServerExit e = (*s)->Stop();
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
  EXPECT_THAT(e.stats_json,
              HasSubstr(absl::StrCat("\"engine\":\"", engine, "\"")));
}

INSTANTIATE_TEST_SUITE_P(Engines, LargeFileTest,
                         ::testing::Values(EngineKind::kCopy,
                                           EngineKind::kMsgZerocopy,
                                           EngineKind::kUringZc,
                                           EngineKind::kAuto),
                         EngineParam);

// Block layout: [block index u64][version u64][sha256 of the rest: 32 B][body]
constexpr size_t kBlock = 64 * 1024;
constexpr int kBlocks = 16;

std::string MakeBlock(uint64_t index, uint64_t version) {
  std::string b(kBlock, '\0');
  std::memcpy(b.data(), &index, 8);
  std::memcpy(b.data() + 8, &version, 8);
  uint64_t x = index * 131 + version * 7919 + 1;
  for (size_t i = 48; i < kBlock; i += 8) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::memcpy(b.data() + i, &x, 8);
  }
  Sha256Digest d = Sha256Of(absl::Span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(b.data()) + 48, kBlock - 48));
  std::memcpy(b.data() + 16, d.data(), 32);
  return b;
}

// "" if the block is internally consistent, else why not.
std::string CheckBlock(const std::string& b, uint64_t index) {
  uint64_t got_index, version;
  std::memcpy(&got_index, b.data(), 8);
  std::memcpy(&version, b.data() + 8, 8);
  if (got_index != index)
    return absl::StrCat("index ", got_index, " != ", index);
  if (b != MakeBlock(index, version)) {
    return absl::StrCat("block ", index, " torn (header says version ", version,
                        ")");
  }
  return "";
}

class ConcurrencyTest : public ::testing::TestWithParam<EngineKind> {};

TEST_P(ConcurrencyTest, EveryReadIsAConsistentSnapshot) {
  TempDir dir;
  std::string initial;
  for (int i = 0; i < kBlocks; ++i) initial += MakeBlock(i, 0);
  WriteFile(dir.Join("shared.bin"), initial);
  absl::StatusOr<std::unique_ptr<ServerProcess>> s = ServerProcess::Start(
      {"--export", dir.path(), "--engine", std::string(EngineName(GetParam())),
       "--threads", "2", "--cache-size", "64M"});
  ASSERT_TRUE(s.ok()) << s.status();
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, writes{0}, torn{0}, errors{0};
  std::atomic<bool> staller_done{false};
  std::string first_problem;
  std::mutex mu;
  auto note = [&](const std::string& why) {
    std::lock_guard<std::mutex> l(mu);
    if (first_problem.empty()) first_problem = why;
  };
  // Waits for `cond` (polling), at most 60 s, or until an error or `stop`.
  auto wait_for = [&](auto cond) {
    const auto end =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!cond() && !stop.load() && errors.load() == 0 &&
           std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
  };
  auto writer = [&](int seed) {
    absl::StatusOr<RawClient> c =
        RawClient::Connect((*s)->host(), (*s)->port());
    if (!c.ok()) return ++errors, void();
    std::mt19937 rng(seed);
    uint64_t id = 0;
    while (!stop.load()) {
      // One WRITE of two adjacent blocks (or one), new versions.
      int first = rng() % kBlocks;
      int n = (first + 1 < kBlocks && rng() % 2) ? 2 : 1;
      std::string data;
      for (int k = 0; k < n; ++k)
        data += MakeBlock(first + k, rng() % 1000000 + 1);
      rpc::Request r = MakeRequest(++id);
      AddPutRoot(r);
      AddLookup(r, "shared.bin");
      rpc::Write* w = r.add_ops()->mutable_write();
      w->set_offset(uint64_t{kBlock} * first);
      w->set_length(static_cast<uint32_t>(data.size()));
      absl::StatusOr<RawReply> rep = c->Call(r, data);
      if (!rep.ok() || rep->reply.status() != rpc::STATUS_OK) {
        ++errors;
        note(absl::StrCat("write failed: ", rep.ok()
                                                ? rep->reply.error()
                                                : rep.status().ToString()));
        return;
      }
      ++writes;
    }
  };
  auto reader = [&](int seed) {
    absl::StatusOr<RawClient> c =
        RawClient::Connect((*s)->host(), (*s)->port());
    if (!c.ok()) return ++errors, void();
    // Pipelined requests and a modest receive buffer keep replies (and the
    // pages they pin) queued while writers change those pages.
    int rcv = 128 * 1024;  // > 2 x loopback MSS, see the staller
    setsockopt(c->fd(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    std::mt19937 rng(seed);
    uint64_t id = 0;
    while (!stop.load()) {
      std::vector<std::pair<int, int>> asked;
      for (int p = 0; p < 4; ++p) {
        int first = rng() % kBlocks;
        int n = std::min<int>(kBlocks - first, rng() % 4 + 1);
        rpc::Request r = MakeRequest(++id);
        AddPutRoot(r);
        AddLookup(r, "shared.bin");
        rpc::Read* rd = r.add_ops()->mutable_read();
        rd->set_offset(uint64_t{kBlock} * first);
        rd->set_length(static_cast<uint32_t>(kBlock * n));
        if (!c->SendRequest(r).ok()) return ++errors, note("send failed");
        asked.emplace_back(first, n);
      }
      for (auto [first, n] : asked) {
        absl::StatusOr<RawReply> rep = c->ReadReply();
        if (!rep.ok() || rep->reply.status() != rpc::STATUS_OK) {
          ++errors;
          note(rep.ok() ? rep->reply.error()
                        : std::string(rep.status().message()));
          return;
        }
        std::string data = rep->ReadData(2);
        for (int k = 0; k < n; ++k) {
          std::string why =
              CheckBlock(data.substr(size_t{kBlock} * k, kBlock), first + k);
          if (!why.empty()) {
            ++torn;
            note(why);
          }
        }
        ++reads;
      }
    }
  };
  // A staller asks for the whole file several times, then does not read
  // while the writers write 40 times more: its replies (and the pages they
  // pin) wait in the server while the writers rewrite those very pages, so
  // the writes must copy them. When it finally reads, each reply must still
  // be a snapshot of one instant.
  auto staller = [&] {
    absl::Cleanup done = [&] { staller_done = true; };
    absl::StatusOr<RawClient> c =
        RawClient::Connect((*s)->host(), (*s)->port());
    if (!c.ok()) return ++errors, void();
    // Well above one loopback MSS (32 KiB): smaller windows make TCP send
    // in dribbles (silly window avoidance); 8 MiB of replies still wait.
    int rcv = 256 * 1024;
    setsockopt(c->fd(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    // Once the writers are under way.
    wait_for([&] { return writes.load() > 0; });
    for (int k = 0; k < 8; ++k) {
      rpc::Request r = MakeRequest(k + 1);
      AddPutRoot(r);
      AddLookup(r, "shared.bin");
      r.add_ops()->mutable_read()->set_length(kBlock * kBlocks);
      if (!c->SendRequest(r).ok()) return ++errors, note("staller send");
    }
    const int writes_before = writes.load();
    wait_for([&] { return writes.load() >= writes_before + 40; });
    for (int k = 0; k < 8; ++k) {
      absl::StatusOr<RawReply> rep = c->ReadReply();
      if (!rep.ok() || rep->reply.status() != rpc::STATUS_OK) {
        return ++errors, note("staller read failed");
      }
      std::string data = rep->ReadData(2);
      for (int b = 0; b < kBlocks; ++b) {
        std::string why =
            CheckBlock(data.substr(size_t{kBlock} * b, kBlock), b);
        if (!why.empty()) ++torn, note(absl::StrCat("staller: ", why));
      }
      ++reads;
    }
  };
  std::vector<std::thread> ts;
  ts.emplace_back(staller);
  for (int i = 0; i < 3; ++i) ts.emplace_back(writer, i + 1);
  for (int i = 0; i < 3; ++i) ts.emplace_back(reader, i + 100);
    // At least 4 s of it, and on until the staller is done and everyone did
    // enough (however slow the machine), or an error.
#ifdef TXBUF_TSAN
  constexpr int kMinOps = 10;  // ThreadSanitizer's slowdown
#else
  constexpr int kMinOps = 50;
#endif
  const auto min_end =
      std::chrono::steady_clock::now() + std::chrono::seconds(4);
  wait_for([&] {
    return std::chrono::steady_clock::now() >= min_end && staller_done.load() &&
           reads.load() > kMinOps && writes.load() > kMinOps;
  });
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(torn.load(), 0) << first_problem;
  EXPECT_EQ(errors.load(), 0) << first_problem;
  EXPECT_GT(reads.load(), kMinOps);
  EXPECT_GT(writes.load(), kMinOps);
  // Copy-on-write happened: writes landed on pages pinned by replies.
  absl::StatusOr<RawClient> c = RawClient::Connect((*s)->host(), (*s)->port());
  ASSERT_TRUE(c.ok());
  rpc::Request q = MakeRequest(1);
  q.add_ops()->mutable_stats();
  absl::StatusOr<RawReply> st = c->Call(q);
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->reply.results(0).stats().page_cache().cow_copies(), 0u);
  ServerExit e = (*s)->Stop();
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
  // After shutdown the file on disk is made of whole blocks too.
  std::string disk = ReadFileOrDie(dir.Join("shared.bin"));
  ASSERT_EQ(disk.size(), kBlock * kBlocks);
  for (int i = 0; i < kBlocks; ++i) {
    EXPECT_EQ(CheckBlock(disk.substr(size_t{kBlock} * i, kBlock), i), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, ConcurrencyTest,
                         ::testing::Values(EngineKind::kCopy,
                                           EngineKind::kMsgZerocopy,
                                           EngineKind::kUringZc,
                                           EngineKind::kAuto),
                         EngineParam);

}  // namespace
}  // namespace txbuf::testing
