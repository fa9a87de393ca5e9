// Descriptors and listings (issue 9, items 4, 9 and 10): create/remove
// storms, lookups and listings of many files never exhaust the server's
// descriptors (it runs here under a small RLIMIT_NOFILE), evicted handles of
// existing files keep working, a removed file's space comes back, and a
// READDIR reply never exceeds what clients must accept.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_fixture.h"

namespace txbuf::testing {
namespace {

constexpr unsigned long kSmallNofile = 256;

// Waits up to `seconds` for `cond`, polling every 20 ms.
template <typename Cond>
bool WaitFor(Cond cond, int seconds = 10) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class DescriptorsTest : public ServerTest {
 protected:
  rpc::Request Fh(const std::string& fh) {
    rpc::Request r = MakeRequest(++id_);
    r.add_ops()->mutable_putfh()->set_fh(fh);
    return r;
  }
  // Descriptors held now are within the limit, with room to spare, and
  // none is of a removed file (waiting for replies in flight to finish).
  void ExpectDescriptorsReleased() {
    EXPECT_TRUE(WaitFor([&] { return server_->DeletedFds() == 0; }))
        << server_->DeletedFds() << " descriptors of removed files";
    long fds = server_->OpenFds();
    EXPECT_GT(fds, 0);
    EXPECT_LT(fds, static_cast<long>(kSmallNofile));
  }
};

TEST_F(DescriptorsTest, CreateRemoveStormReleasesDescriptors) {
  StartServer({}, {.nofile = kSmallNofile});
  RawClient c = Connect();
  for (int i = 0; i < 1500; ++i) {
    rpc::Request r = At("");
    r.add_ops()->mutable_create()->set_name("t");
    if (i % 2 == 1) {  // data too, so the page cache opens the file
      rpc::Write* w = r.add_ops()->mutable_write();
      w->set_length(4096);
    }
    AddPutRoot(r);
    r.add_ops()->mutable_remove()->set_name("t");
    RawReply rep = Call(c, r, i % 2 == 1 ? std::string(4096, 'w') : "");
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << "round " << i << ": " << rep.reply.error();
  }
  struct stat st;
  EXPECT_NE(lstat(dir_.Join("t").c_str(), &st), 0) << "t was left behind";
  ExpectDescriptorsReleased();
  ExpectStillServing();
}

TEST_F(DescriptorsTest, LookupsAndListingsStayWithinTheBudget) {
  constexpr int kFiles = 2000;
  for (int i = 0; i < kFiles; ++i) {
    WriteFile(dir_.Join(absl::StrCat("many/f", i)),
              absl::StrCat("content-", i));
  }
  StartServer({}, {.nofile = kSmallNofile});
  RawClient c = Connect();
  std::vector<std::string> fhs;
  for (int i = 0; i < kFiles; ++i) {
    rpc::Request r = At(absl::StrCat("many/f", i));
    r.add_ops()->mutable_read()->set_length(64);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << "file " << i << ": " << rep.reply.error();
    fhs.push_back(rep.reply.results(1).fh().fh());
  }
  // The first handles' descriptors were evicted long ago: they still work.
  for (int i = 0; i < 100; ++i) {
    rpc::Request r = Fh(fhs[i]);
    r.add_ops()->mutable_read()->set_length(64);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << "old handle " << i << ": " << rep.reply.error();
    EXPECT_EQ(rep.ReadData(1), absl::StrCat("content-", i));
  }
  // A listing with attributes of every entry, page by page.
  std::set<std::string> seen;
  std::map<std::string, std::string> handles;
  uint64_t cookie = 0;
  for (int page = 0; page < 100; ++page) {
    rpc::Request r = At("many");
    rpc::ReadDir* rd = r.add_ops()->mutable_readdir();
    rd->set_cookie(cookie);
    rd->set_with_attrs(true);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    const rpc::ReadDirResult& res = rep.reply.results(2).readdir();
    for (const rpc::DirEntry& e : res.entries()) {
      EXPECT_TRUE(seen.insert(e.name()).second) << "twice: " << e.name();
      EXPECT_FALSE(e.fh().empty()) << e.name();
      handles[e.name()] = e.fh();
      cookie = e.cookie();
    }
    if (res.eof()) break;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kFiles));
  for (int i = 0; i < kFiles; i += 97) {
    std::string name = absl::StrCat("f", i);
    rpc::Request r = Fh(handles[name]);
    r.add_ops()->mutable_read()->set_length(64);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << name << rep.reply.error();
    EXPECT_EQ(rep.ReadData(1), absl::StrCat("content-", i));
  }
  EXPECT_LT(server_->OpenFds(), static_cast<long>(kSmallNofile));
  ExpectStillServing();
}

// The export is a small tmpfs of its own, so that its free space is this
// test's alone (needs root to mount; skipped with the reason otherwise).
class RemovedSpaceTest : public DescriptorsTest {
 protected:
  void SetUp() override {
    if (mount("txbuf-test", dir_.path().c_str(), "tmpfs", 0, "size=96m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    DescriptorsTest::TearDown();
    server_.reset();
    if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
  }
  uint64_t FreeBytes() {
    struct statvfs sv;
    if (statvfs(dir_.path().c_str(), &sv) != 0) return 0;
    return static_cast<uint64_t>(sv.f_bfree) * sv.f_frsize;
  }
  bool mounted_ = false;
};

TEST_F(RemovedSpaceTest, RemovedFilesSpaceComesBack) {
  constexpr size_t kSize = 48 << 20;
  WriteFile(dir_.Join("big.bin"), std::string(kSize, 'b'));
  StartServer({}, {.nofile = kSmallNofile});
  RawClient a = Connect();
  RawClient b = Connect();
  // Both connections use the file: b through its handle (PUTFH), so its
  // recent-handle cache holds it.
  const std::string fh = HandleOf(a, "big.bin");
  ASSERT_FALSE(fh.empty());
  for (RawClient* c : {&a, &b}) {
    rpc::Request r = Fh(fh);
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset(kSize - 65536);
    rd->set_length(65536);
    RawReply rep = Call(*c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    EXPECT_EQ(rep.ReadData(1), std::string(65536, 'b'));
  }
  const uint64_t before = FreeBytes();
  rpc::Request r = At("");
  r.add_ops()->mutable_remove()->set_name("big.bin");
  RawReply rep = Call(a, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_TRUE(WaitFor([&] { return FreeBytes() >= before + kSize - 65536; }))
      << "free before " << before << ", now " << FreeBytes();
  ExpectDescriptorsReleased();
  // The handle is STALE now, on both connections.
  for (RawClient* c : {&a, &b}) {
    rpc::Request q = Fh(fh);
    q.add_ops()->mutable_getattr();
    EXPECT_EQ(Call(*c, q).reply.status(), rpc::STATUS_STALE);
  }
}

class ReadDirLimitTest : public ServerTest {
 protected:
  void SetUp() override {
    for (int i = 0; i < kEntries; ++i) {
      std::string name = absl::StrCat(i, "-", std::string(200, 'n'));
      WriteFile(dir_.Join("wide/" + name), "");
    }
    StartServer();
  }
  static constexpr int kEntries = 5000;
  static constexpr size_t kMaxEnvelope = 16 << 20;  // docs/PROTOCOL.md
};

TEST_F(ReadDirLimitTest, PagesAreCutToWhatClientsAccept) {
  RawClient c = Connect();
  // Many READDIRs with attributes asking for everything, in one compound:
  // without a cut the reply envelope would be about 25 MB.
  rpc::Request r = At("wide");
  for (int i = 0; i < 16; ++i) {
    rpc::ReadDir* rd = r.add_ops()->mutable_readdir();
    rd->set_max_entries(0xffffffffu);
    rd->set_with_attrs(true);
  }
  RawReply rep = Call(c, r, "", 60000);
  EXPECT_LE(rep.reply.ByteSizeLong(), kMaxEnvelope);
  ASSERT_GE(rep.reply.results_size(), 3);
  int full = 0;
  for (int i = 2; i < rep.reply.results_size(); ++i) {
    const rpc::OpResult& res = rep.reply.results(i);
    if (res.status() != rpc::STATUS_OK) {
      EXPECT_EQ(res.status(), rpc::STATUS_TOOBIG);
      EXPECT_EQ(i, rep.reply.results_size() - 1);
      continue;
    }
    EXPECT_GT(res.readdir().entries_size(), 0);
    if (res.readdir().eof()) ++full;
  }
  EXPECT_LT(full, 16) << "nothing was cut";
  // One READDIR asking for everything gets a page that says more remain;
  // paging through gives every entry exactly once.
  std::set<std::string> seen;
  uint64_t cookie = 0;
  for (int page = 0; page < 50; ++page) {
    rpc::Request q = At("wide");
    rpc::ReadDir* rd = q.add_ops()->mutable_readdir();
    rd->set_max_entries(0xffffffffu);
    rd->set_with_attrs(true);
    rd->set_cookie(cookie);
    RawReply p = Call(c, q);
    ASSERT_EQ(p.reply.status(), rpc::STATUS_OK) << p.reply.error();
    EXPECT_LE(p.reply.ByteSizeLong(), kMaxEnvelope);
    const rpc::ReadDirResult& res = p.reply.results(2).readdir();
    if (page == 0) {
      EXPECT_FALSE(res.eof());
    }
    for (const rpc::DirEntry& e : res.entries()) {
      EXPECT_TRUE(seen.insert(e.name()).second) << e.name();
      cookie = e.cookie();
    }
    if (res.eof()) break;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kEntries));
}

// Races between CREATE and REMOVE of the same names (two clients) must not
// leave removed files in the node table or the page cache: their
// descriptors would keep the space, and a new file that reuses a removed
// one's inode number would be mistaken for it (STALE).
TEST_F(DescriptorsTest, CreateRemoveRacesLeaveNothingBehind) {
  for (int i = 0; i < 600; ++i) {
    WriteFile(dir_.Join(absl::StrCat("many/f", i)), "x");
  }
  StartServer({"--threads", "2"}, {.nofile = kSmallNofile});
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  std::vector<std::thread> racers;
  for (int t = 0; t < 2; ++t) {
    racers.emplace_back([&] {
      absl::StatusOr<RawClient> c =
          RawClient::Connect(server_->host(), server_->port());
      if (!c.ok()) return;
      for (int i = 0; i < 20000 && std::chrono::steady_clock::now() < end;
           ++i) {
        const std::string name = absl::StrCat("race-", i % 3);
        rpc::Request r = MakeRequest(i + 1);
        AddPutRoot(r);
        r.add_ops()->mutable_create()->set_name(name);
        AddPutRoot(r);
        r.add_ops()->mutable_remove()->set_name(name);
        if (!c->Call(r).ok()) return;  // any status: the other may win
      }
    });
  }
  for (std::thread& t : racers) t.join();
  EXPECT_TRUE(WaitFor([&] { return server_->DeletedFds() == 0; }))
      << server_->DeletedFds() << " descriptors of removed files";
  // Evict descriptors, then make new files: some get the inode numbers of
  // the removed ones.
  RawClient c = Connect();
  for (int i = 0; i < 600; ++i) {
    ASSERT_FALSE(HandleOf(c, absl::StrCat("many/f", i)).empty()) << i;
  }
  for (int i = 0; i < 2000; ++i) {
    rpc::Request r = At("");
    r.add_ops()->mutable_create()->set_name(absl::StrCat("new-", i));
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << "new-" << i << ": " << rep.reply.error();
  }
  ExpectDescriptorsReleased();
}

// A WRITE and COMMIT acknowledged while other clients' LOOKUPs make the
// export give descriptors (and clean cached files) back: the data must be
// on disk and READ must return it.
TEST_F(DescriptorsTest, CommittedWritesSurviveDescriptorEviction) {
  for (int i = 0; i < 2000; ++i) {
    WriteFile(dir_.Join(absl::StrCat("many/f", i)), "x");
  }
  constexpr size_t kSize = 1 << 20;
  WriteFile(dir_.Join("private.bin"), std::string(kSize, 'a'));
  // A small budget, two LOOKUP storms: descriptors are given back all the
  // time, the private file's among them.
  StartServer({"--threads", "2"}, {.nofile = 128});
  // The storms run until the rounds below are done (a fixed number of
  // them, however slow the machine).
  std::atomic<bool> stop{false};
  std::atomic<int> storm_calls{0};
  auto storm = [&](uint32_t seed) {
    absl::StatusOr<RawClient> c =
        RawClient::Connect(server_->host(), server_->port());
    if (!c.ok()) return;
    std::mt19937 rng(seed);
    for (int i = 0; !stop.load(); ++i) {
      rpc::Request r = MakeRequest(i + 1);
      AddPutRoot(r);
      AddLookup(r, absl::StrCat("many/f", rng() % 2000));
      r.add_ops()->mutable_read()->set_length(1);
      if (!c->Call(r).ok()) return;
      storm_calls.fetch_add(1);
    }
  };
  std::thread storm1(storm, 1), storm2(storm, 3);
  RawClient c = Connect();
  const std::string fh = HandleOf(c, "private.bin");
  ASSERT_FALSE(fh.empty());
  std::mt19937 rng(2);
  absl::Cleanup join_storms = [&] {
    stop = true;
    if (storm1.joinable()) storm1.join();
    if (storm2.joinable()) storm2.join();
  };
  // Rounds begin once the storms are under way.
  ASSERT_TRUE(WaitFor([&] { return storm_calls.load() >= 50; }));
  const int storms_before = storm_calls.load();
  int wrong_reads = 0, lost = 0, n = 0;
  for (; n < 400; ++n) {
    const size_t off = rng() % (kSize - 8192), len = 1 + rng() % 8192;
    const std::string bytes(len, static_cast<char>('b' + n % 20));
    rpc::Request w = MakeRequest(++id_);
    w.add_ops()->mutable_putfh()->set_fh(fh);
    rpc::Write* wr = w.add_ops()->mutable_write();
    wr->set_offset(off);
    wr->set_length(static_cast<uint32_t>(len));
    w.add_ops()->mutable_commit();
    RawReply rep = Call(c, w, bytes);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    // COMMIT said OK: the bytes are in the file.
    std::ifstream f(dir_.Join("private.bin"), std::ios::binary);
    std::string disk(len, '\0');
    f.seekg(static_cast<std::streamoff>(off));
    f.read(disk.data(), static_cast<std::streamsize>(len));
    if (disk != bytes) ++lost;
    rpc::Request r = MakeRequest(++id_);
    r.add_ops()->mutable_putfh()->set_fh(fh);
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset(off);
    rd->set_length(static_cast<uint32_t>(len));
    if (Call(c, r).ReadData(1) != bytes) ++wrong_reads;
  }
  const int storms = storm_calls.load() - storms_before;
  std::move(join_storms).Invoke();
  std::printf("%d write+commit+read rounds under eviction, %d storm calls\n", n,
              storms);
  EXPECT_GT(storms, 0) << "the storms did not run beside the rounds";
  EXPECT_EQ(lost, 0) << "committed writes not in the file";
  EXPECT_EQ(wrong_reads, 0) << "READs not returning committed data";
}

}  // namespace
}  // namespace txbuf::testing
