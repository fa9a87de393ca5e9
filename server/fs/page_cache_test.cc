#include "server/fs/page_cache.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "common/page_pool.h"
#include "common/socket_util.h"
#include "common/testing/wait_past_ctime.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

using Bytes = std::vector<std::byte>;
using FilePtr = std::shared_ptr<PageCache::File>;

::testing::AssertionResult IsOk(const absl::Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s;
}

// A deterministic pattern: byte i of the pattern `seed`.
Bytes Pattern(size_t n, uint64_t seed) {
  Bytes b(n);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(rng() >> 56);
  return b;
}

// -1 if equal, else the first differing index (or the shorter size).
int64_t FirstDiff(absl::Span<const std::byte> a,
                  absl::Span<const std::byte> b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  }
  return a.size() == b.size() ? -1 : static_cast<int64_t>(n);
}

Bytes ToBytes(const CachedRead& r) {
  Bytes b(r.bytes);
  EXPECT_EQ(r.CopyTo(absl::MakeSpan(b)), r.bytes);
  return b;
}

// A temporary directory under /tmp, removed with its files.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/page_cache_test.XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const {
    return absl::StrCat(path_, "/", name);
  }

 private:
  std::string path_;
};

// Creates (or replaces) `path` with `content`.
void CreateFile(const std::string& path, absl::Span<const std::byte> content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  ASSERT_TRUE(fd) << path;
  ASSERT_EQ(::pwrite(fd.get(), content.data(), content.size(), 0),
            static_cast<ssize_t>(content.size()));
}

// The file's bytes as on disk (through a separate descriptor).
Bytes DiskContent(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY));
  EXPECT_TRUE(fd);
  struct stat st;
  EXPECT_EQ(::fstat(fd.get(), &st), 0);
  Bytes b(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < b.size()) {
    ssize_t n = ::pread(fd.get(), b.data() + done, b.size() - done,
                        static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  EXPECT_EQ(done, b.size());
  return b;
}

uint64_t DiskSize(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<uint64_t>(st.st_size);
}

FileKey KeyOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

absl::StatusOr<FilePtr> Open(PageCache& cache, const std::string& path,
                             int flags = O_RDWR, int* opens = nullptr) {
  return cache.GetFile(KeyOf(path), [&]() -> absl::StatusOr<int> {
    if (opens != nullptr) ++*opens;
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open");
    return fd;
  });
}

// Opens `path` (created with `content` first) or fails the test.
FilePtr MustOpen(PageCache& cache, const std::string& path,
                 absl::Span<const std::byte> content = {}) {
  CreateFile(path, content);
  absl::StatusOr<FilePtr> f = Open(cache, path);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : nullptr;
}

Bytes ReadBytes(PageCache::File& f, uint64_t off, uint64_t len) {
  absl::StatusOr<CachedRead> r = f.Read(off, len);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? ToBytes(*r) : Bytes();
}

uint64_t PoolPages(const PagePool& pool) {
  return pool.Stats().allocated_pages;
}

// ---------------------------------------------------------------------------

TEST(PageCacheTest, ReadMissThenHit) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const Bytes content = Pattern(3 * kPageSize + 100, 1);
  FilePtr f = MustOpen(cache, dir.File("a"), content);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->size(), content.size());

  absl::StatusOr<CachedRead> r = f->Read(0, 1 << 20);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes, content.size());
  EXPECT_TRUE(r->eof);
  ASSERT_EQ(r->slices.size(), 4u);
  EXPECT_EQ(r->slices[3].len, 100u);
  EXPECT_EQ(FirstDiff(ToBytes(*r), content), -1);
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.misses, 4u);
  EXPECT_EQ(st.hits, 0u);
  EXPECT_EQ(st.pages, 4u);
  EXPECT_EQ(st.pinned_pages, 4u);  // held by `r`
  EXPECT_EQ(st.files, 1u);

  // An unaligned read inside the file: hits only, the same pages.
  absl::StatusOr<CachedRead> r2 = f->Read(kPageSize - 10, 20);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->bytes, 20u);
  EXPECT_FALSE(r2->eof);
  ASSERT_EQ(r2->slices.size(), 2u);
  EXPECT_EQ(r2->slices[0].offset, kPageSize - 10);
  EXPECT_EQ(r2->slices[0].len, 10u);
  EXPECT_EQ(r2->slices[0].page.get(), r->slices[0].page.get());
  EXPECT_EQ(FirstDiff(ToBytes(*r2),
                      absl::MakeConstSpan(content).subspan(kPageSize - 10, 20)),
            -1);
  st = cache.Stats();
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.misses, 4u);

  r = absl::StatusOr<CachedRead>();
  r2 = absl::StatusOr<CachedRead>();
  EXPECT_EQ(cache.Stats().pinned_pages, 0u);
  EXPECT_EQ(PoolPages(pool), 4u);  // only the cache's pages
}

TEST(PageCacheTest, HolesReadAsZerosAndEofIsReported) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("sparse");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  // A file of 10 pages with one byte at 20000, the rest holes.
  ASSERT_EQ(::ftruncate(f->fd(), 10 * kPageSize), 0);
  const std::byte x{0x78};
  ASSERT_EQ(::pwrite(f->fd(), &x, 1, 20000), 1);
  f.reset();
  cache.Forget(KeyOf(path));
  absl::StatusOr<FilePtr> of = Open(cache, path);
  ASSERT_TRUE(of.ok()) << of.status();
  f = *of;
  EXPECT_EQ(f->size(), 10 * kPageSize);

  Bytes all = ReadBytes(*f, 0, 10 * kPageSize);
  ASSERT_EQ(all.size(), 10 * kPageSize);
  Bytes expect(10 * kPageSize);
  expect[20000] = x;
  EXPECT_EQ(FirstDiff(all, expect), -1);

  // At EOF: nothing, eof. Crossing EOF: fewer bytes, eof. Inside: no eof.
  absl::StatusOr<CachedRead> r = f->Read(10 * kPageSize, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_TRUE(r->eof);
  EXPECT_TRUE(r->slices.empty());
  r = f->Read(uint64_t{1} << 50, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_TRUE(r->eof);
  r = f->Read(10 * kPageSize - 96, 10000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 96u);
  EXPECT_TRUE(r->eof);
  r = f->Read(0, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 100u);
  EXPECT_FALSE(r->eof);
  EXPECT_EQ(cache.Stats().pages, 10u);

  // A write past EOF leaves a hole that reads as zeros, in the cache and on
  // disk after Commit.
  const Bytes tail = Pattern(50, 2);
  ASSERT_TRUE(IsOk(f->Write(20 * kPageSize + 7, tail, Stability::kUnstable)));
  EXPECT_EQ(f->size(), 20 * kPageSize + 57);
  Bytes after = ReadBytes(*f, 0, 1 << 20);
  ASSERT_EQ(after.size(), 20 * kPageSize + 57);
  expect.resize(20 * kPageSize + 57);
  std::copy(tail.begin(), tail.end(), expect.begin() + 20 * kPageSize + 7);
  EXPECT_EQ(FirstDiff(after, expect), -1);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), expect), -1);
}

TEST(PageCacheTest, UnalignedWritesMatchAModelInCacheAndOnDisk) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("w");
  const Bytes initial = Pattern(5 * kPageSize + 123, 3);
  FilePtr f = MustOpen(cache, path, initial);
  ASSERT_NE(f, nullptr);
  Bytes model = initial;
  std::mt19937_64 rng(4);
  for (int i = 0; i < 200; ++i) {
    uint64_t off = rng() % (16 * kPageSize);
    size_t len = 1 + rng() % (3 * kPageSize);
    Bytes data = Pattern(len, 100 + i);
    ASSERT_TRUE(IsOk(f->Write(off, data, Stability::kUnstable)));
    if (model.size() < off + len) model.resize(off + len);
    std::copy(data.begin(), data.end(), model.begin() + off);
    if (i % 50 == 0) {
      // Interleaved reads see every write so far.
      ASSERT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1) << i;
    }
  }
  EXPECT_EQ(f->size(), model.size());
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
  EXPECT_GT(cache.Stats().dirty_pages, 0u);
  // Unstable writes are not on disk yet.
  EXPECT_EQ(FirstDiff(DiskContent(path), initial), -1);

  ASSERT_TRUE(IsOk(f->Commit()));
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_GE(st.writebacks_bytes, model.size() - initial.size());
  EXPECT_EQ(DiskSize(path), model.size());
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
  // Read from a cold cache: the same bytes.
  f.reset();
  cache.Forget(KeyOf(path));
  absl::StatusOr<FilePtr> again = Open(cache, path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(FirstDiff(ReadBytes(**again, 0, 1 << 20), model), -1);
}

TEST(PageCacheTest, WriteThroughIsOnDiskWhenWriteReturns) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("sync");
  const Bytes initial = Pattern(4 * kPageSize, 5);
  FilePtr f = MustOpen(cache, path, initial);
  ASSERT_NE(f, nullptr);
  Bytes model = initial;

  // An unstable write first: dirty, not on disk.
  const Bytes a = Pattern(100, 6);
  ASSERT_TRUE(IsOk(f->Write(10, a, Stability::kUnstable)));
  std::copy(a.begin(), a.end(), model.begin() + 10);
  EXPECT_EQ(cache.Stats().dirty_pages, 1u);
  EXPECT_EQ(FirstDiff(DiskContent(path), initial), -1);

  // kDataSync over pages 2..4 (extending): on disk at once, those pages
  // clean; page 0 is still dirty.
  const Bytes b = Pattern(2 * kPageSize + 500, 7);
  ASSERT_TRUE(IsOk(f->Write(2 * kPageSize + 100, b, Stability::kDataSync)));
  model.resize(4 * kPageSize + 600);
  std::copy(b.begin(), b.end(), model.begin() + 2 * kPageSize + 100);
  Bytes disk = DiskContent(path);
  ASSERT_EQ(disk.size(), model.size());
  EXPECT_EQ(FirstDiff(absl::MakeConstSpan(disk).subspan(kPageSize),
                      absl::MakeConstSpan(model).subspan(kPageSize)),
            -1);
  EXPECT_EQ(FirstDiff(absl::MakeConstSpan(disk).first(kPageSize),
                      absl::MakeConstSpan(initial).first(kPageSize)),
            -1);
  EXPECT_EQ(cache.Stats().dirty_pages, 1u);

  // kFileSync over page 0 writes the earlier unstable bytes of that page too.
  const Bytes c = Pattern(10, 8);
  ASSERT_TRUE(IsOk(f->Write(1000, c, Stability::kFileSync)));
  std::copy(c.begin(), c.end(), model.begin() + 1000);
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_EQ(st.writebacks_bytes, 3 * kPageSize + 600);
}

TEST(PageCacheTest, PinnedPagesStayByteIdenticalAcrossWrites) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const Bytes v1 = Pattern(2 * kPageSize, 9);
  FilePtr f = MustOpen(cache, dir.File("stable"), v1);
  ASSERT_NE(f, nullptr);

  // An in-flight reply pins page 0 and half of page 1.
  absl::StatusOr<CachedRead> held = f->Read(0, kPageSize + kPageSize / 2);
  ASSERT_TRUE(held.ok());
  const Bytes held_bytes = ToBytes(*held);
  const Page* held_page0 = held->slices[0].page.get();

  // Writes to both pages (one partial, one spanning) copy them first.
  const Bytes w1 = Pattern(300, 10);
  ASSERT_TRUE(IsOk(f->Write(kPageSize - 100, w1, Stability::kUnstable)));
  EXPECT_EQ(cache.Stats().cow_copies, 2u);
  EXPECT_EQ(FirstDiff(ToBytes(*held), held_bytes), -1);
  EXPECT_EQ(held->slices[0].page.get(), held_page0);

  // A new read sees the write, on other pages.
  Bytes v2 = v1;
  std::copy(w1.begin(), w1.end(), v2.begin() + kPageSize - 100);
  absl::StatusOr<CachedRead> now = f->Read(0, 2 * kPageSize);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(FirstDiff(ToBytes(*now), v2), -1);
  EXPECT_NE(now->slices[0].page.get(), held_page0);
  // Both versions are alive: 2 cached + 2 old ones held.
  EXPECT_EQ(PoolPages(pool), 4u);
  EXPECT_EQ(cache.Stats().pages, 2u);

  // A second write while `now` pins the new version: copied again; both
  // earlier snapshots are unchanged.
  const Bytes now_bytes = ToBytes(*now);
  const Bytes w2 = Pattern(kPageSize, 11);
  ASSERT_TRUE(IsOk(f->Write(0, w2, Stability::kDataSync)));
  EXPECT_EQ(cache.Stats().cow_copies, 3u);
  EXPECT_EQ(FirstDiff(ToBytes(*held), held_bytes), -1);
  EXPECT_EQ(FirstDiff(ToBytes(*now), now_bytes), -1);

  // Without pins, a write changes the page in place: no copy.
  held = absl::StatusOr<CachedRead>();
  now = absl::StatusOr<CachedRead>();
  EXPECT_EQ(PoolPages(pool), 2u);  // old versions went back to the pool
  absl::StatusOr<CachedRead> probe = f->Read(0, 1);
  ASSERT_TRUE(probe.ok());
  const Page* cached0 = probe->slices[0].page.get();
  probe = absl::StatusOr<CachedRead>();
  ASSERT_TRUE(IsOk(f->Write(5, Pattern(10, 12), Stability::kUnstable)));
  EXPECT_EQ(cache.Stats().cow_copies, 3u);
  probe = f->Read(0, 1);
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->slices[0].page.get(), cached0);
}

// --- Concurrency -----------------------------------------------------------

constexpr size_t kBlock = 16 * 1024;  // 4 pages
constexpr size_t kHeader = 24;        // block, version, checksum

uint64_t Fnv(const std::byte* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ static_cast<uint64_t>(p[i])) * 1099511628211ull;
  }
  return h;
}

uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void FillBlock(std::byte* b, uint64_t block, uint64_t version) {
  uint64_t s = block * 0x100000001b3ull ^ version;
  for (size_t i = kHeader; i < kBlock; i += 8) {
    uint64_t v = SplitMix(s);
    std::memcpy(b + i, &v, 8);
  }
  uint64_t h[3] = {block, version, Fnv(b + kHeader, kBlock - kHeader)};
  std::memcpy(b, h, kHeader);
}

// True if `b` is one whole version of `block`; sets *version.
bool BlockOk(const std::byte* b, uint64_t block, uint64_t* version) {
  uint64_t h[3];
  std::memcpy(h, b, kHeader);
  if (h[0] != block || h[2] != Fnv(b + kHeader, kBlock - kHeader)) {
    return false;
  }
  *version = h[1];
  return true;
}

uint64_t HashSlices(const CachedRead& r) {
  uint64_t h = 0;
  for (const PageSlice& s : r.slices) {
    h = h * 31 + Fnv(s.bytes().data(), s.bytes().size());
  }
  return h;
}

struct StressResult {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t torn = 0;       // blocks not internally consistent
  uint64_t pair_torn = 0;  // two blocks of one write with different versions
  uint64_t changed = 0;    // held (pinned) bytes that changed
  uint64_t exhausted = 0;  // ResourceExhausted results
  uint64_t starved = 0;    // ... of which lost their pages too often
  uint64_t other_errors = 0;
};

// The reads and the writes a stress run does at least, however slow the
// machine (the tests check them).
constexpr uint64_t kStressMinOps = 100;

// Writers write whole 16 KiB blocks (single blocks, and pairs of blocks in
// one 32 KiB write) with random versions; readers read one or more whole
// blocks, verify them, hold them (pinned) and verify later that the bytes
// did not change. Then every block on disk must be the last version written.
// Runs for `duration`, and then on until more than kStressMinOps reads and
// writes are done and `enough` holds for the cache's stats (what the test
// expects to have happened), at most 120 s: a busy machine makes it longer,
// not a failure.
void RunTornBlockStress(
    size_t pool_pages, int readers, size_t hold,
    std::chrono::milliseconds duration, bool allow_exhausted, StressResult* out,
    PageCacheStats* stats, size_t max_dirty_pages = 0,
    const std::function<bool(const PageCacheStats&)>& enough =
        [](const PageCacheStats&) { return true; }) {
  constexpr int kWriters = 3;
  constexpr uint64_t kSingles = 32;  // blocks [0, 32)
  constexpr uint64_t kPairs = 8;     // blocks [32, 48) in pairs
  constexpr uint64_t kBlocks = kSingles + 2 * kPairs;
  TempDir dir;
  const std::string path = dir.File("blocks");
  PagePool pool(pool_pages * kPageSize);
  PageCache cache(pool, {.max_dirty_pages = max_dirty_pages});
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);

  // Version 1 of every block, committed.
  std::vector<uint64_t> last(kBlocks, 1);
  {
    Bytes b(kBlock);
    for (uint64_t i = 0; i < kBlocks; ++i) {
      FillBlock(b.data(), i, 1);
      ASSERT_TRUE(IsOk(f->Write(i * kBlock, b, Stability::kUnstable)));
    }
    ASSERT_TRUE(IsOk(f->Commit()));
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, writes{0}, torn{0}, pair_torn{0}, changed{0},
      exhausted{0}, starved{0}, other{0};
  auto note_error = [&](const absl::Status& s) {
    if (s.code() == absl::StatusCode::kResourceExhausted && allow_exhausted) {
      exhausted.fetch_add(1);
      if (absl::StrContains(s.message(), "too often")) starved.fetch_add(1);
    } else {
      other.fetch_add(1);
      ADD_FAILURE() << s;
    }
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(1000 + w);
      Bytes buf(2 * kBlock);
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t version = rng() | 1;  // random, nonzero
        Stability how =
            rng() % 10 == 0 ? Stability::kDataSync : Stability::kUnstable;
        uint64_t first;
        size_t nblocks;
        if (rng() % 4 == 0) {  // a pair this writer owns
          uint64_t p = (rng() % (kPairs / kWriters + 1)) * kWriters + w;
          if (p >= kPairs) continue;
          first = kSingles + 2 * p;
          nblocks = 2;
        } else {  // a single block this writer owns
          uint64_t b = (rng() % (kSingles / kWriters + 1)) * kWriters + w;
          if (b >= kSingles) continue;
          first = b;
          nblocks = 1;
        }
        for (size_t i = 0; i < nblocks; ++i) {
          FillBlock(buf.data() + i * kBlock, first + i, version);
        }
        absl::Status s =
            f->Write(first * kBlock,
                     absl::MakeConstSpan(buf.data(), nblocks * kBlock), how);
        if (s.ok()) {
          for (size_t i = 0; i < nblocks; ++i) last[first + i] = version;
          writes.fetch_add(1);
        } else {
          note_error(s);
        }
        if (++n % 200 == 0) {
          if (absl::Status c = f->Commit(); !c.ok()) note_error(c);
        }
      }
    });
  }
  for (int r = 0; r < readers; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(2000 + r);
      struct Held {
        CachedRead read;
        uint64_t hash;
      };
      std::deque<Held> held;
      Bytes buf;
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t first;
        uint64_t nblocks;
        bool pair = false;
        if (rng() % 3 == 0) {
          first = kSingles + 2 * (rng() % kPairs);
          nblocks = 2;
          pair = true;
        } else {
          nblocks = 1 + rng() % 3;
          first = rng() % (kSingles - nblocks + 1);
        }
        absl::StatusOr<CachedRead> rd =
            f->Read(first * kBlock, nblocks * kBlock);
        if (!rd.ok()) {
          note_error(rd.status());
          continue;
        }
        reads.fetch_add(1);
        if (rd->bytes != nblocks * kBlock) {
          torn.fetch_add(1);
          continue;
        }
        buf.resize(rd->bytes);
        rd->CopyTo(absl::MakeSpan(buf));
        uint64_t versions[3] = {0, 0, 0};
        for (uint64_t i = 0; i < nblocks; ++i) {
          if (!BlockOk(buf.data() + i * kBlock, first + i, &versions[i])) {
            torn.fetch_add(1);
          }
        }
        if (pair && versions[0] != versions[1]) pair_torn.fetch_add(1);
        // Hold it like an in-flight txbuf; verify the oldest on release.
        uint64_t h = HashSlices(*rd);
        held.push_back(Held{*std::move(rd), h});
        if (held.size() > hold) {
          if (HashSlices(held.front().read) != held.front().hash) {
            changed.fetch_add(1);
          }
          held.pop_front();
        }
        if (rng() % 8 == 0)
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
      }
      for (const Held& h : held) {
        if (HashSlices(h.read) != h.hash) changed.fetch_add(1);
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  const auto give_up = start + std::chrono::seconds(120);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= give_up) break;  // the tests' checks will tell what is missing
    if (now >= start + duration && reads.load() > kStressMinOps &&
        writes.load() > kStressMinOps && enough(cache.Stats())) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();

  out->reads = reads.load();
  out->writes = writes.load();
  out->torn = torn.load();
  out->pair_torn = pair_torn.load();
  out->changed = changed.load();
  out->exhausted = exhausted.load();
  out->starved = starved.load();
  out->other_errors = other.load();
  *stats = cache.Stats();
  EXPECT_EQ(stats->pinned_pages, 0u);  // every reader let go

  // On disk after Commit: the last version of every block.
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  Bytes disk = DiskContent(path);
  ASSERT_EQ(disk.size(), kBlocks * kBlock);
  for (uint64_t i = 0; i < kBlocks; ++i) {
    uint64_t v = 0;
    ASSERT_TRUE(BlockOk(disk.data() + i * kBlock, i, &v)) << "block " << i;
    EXPECT_EQ(v, last[i]) << "block " << i;
  }
}

TEST(PageCacheConcurrencyTest, ReadersNeverSeeTornBlocks) {
  StressResult r;
  PageCacheStats st;
  RunTornBlockStress(/*pool_pages=*/4096, /*readers=*/3, /*hold=*/16,
                     std::chrono::milliseconds(2000),
                     /*allow_exhausted=*/false, &r, &st, /*max_dirty_pages=*/0,
                     [](const PageCacheStats& s) { return s.cow_copies > 0; });
  EXPECT_EQ(r.torn, 0u);
  EXPECT_EQ(r.pair_torn, 0u);
  EXPECT_EQ(r.changed, 0u);
  EXPECT_EQ(r.other_errors, 0u);
  EXPECT_GT(r.reads, kStressMinOps);
  EXPECT_GT(r.writes, kStressMinOps);
  EXPECT_GT(st.cow_copies, 0u);  // readers' pins forced copies
  EXPECT_EQ(st.evictions, 0u);   // the pool is large enough
  std::printf("reads %llu writes %llu cow %llu hits %llu misses %llu\n",
              static_cast<unsigned long long>(r.reads),
              static_cast<unsigned long long>(r.writes),
              static_cast<unsigned long long>(st.cow_copies),
              static_cast<unsigned long long>(st.hits),
              static_cast<unsigned long long>(st.misses));
}

TEST(PageCacheConcurrencyTest, NoTornBlocksUnderEvictionPressure) {
  StressResult r;
  PageCacheStats st;
  // 192 pages of file in a pool of 96: constant eviction and write-back.
  RunTornBlockStress(/*pool_pages=*/96, /*readers=*/2, /*hold=*/1,
                     std::chrono::milliseconds(2000),
                     /*allow_exhausted=*/true, &r, &st, /*max_dirty_pages=*/0,
                     [](const PageCacheStats& s) { return s.evictions > 0; });
  EXPECT_EQ(r.torn, 0u);
  EXPECT_EQ(r.pair_torn, 0u);
  EXPECT_EQ(r.changed, 0u);
  EXPECT_EQ(r.other_errors, 0u);
  EXPECT_GT(r.reads, kStressMinOps);
  EXPECT_GT(r.writes, kStressMinOps);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_LE(st.pages, 96u);
  std::printf(
      "reads %llu writes %llu exhausted %llu (starved %llu) evictions %llu "
      "cow %llu\n",
      static_cast<unsigned long long>(r.reads),
      static_cast<unsigned long long>(r.writes),
      static_cast<unsigned long long>(r.exhausted),
      static_cast<unsigned long long>(r.starved),
      static_cast<unsigned long long>(st.evictions),
      static_cast<unsigned long long>(st.cow_copies));
}

TEST(PageCacheConcurrencyTest, NoTornBlocksUnderTheDirtyLimit) {
  StressResult r;
  PageCacheStats st;
  // Writers of up to 8 pages each against a limit of 16 dirty pages:
  // constant write-back of each other's pages, under pinning readers.
  RunTornBlockStress(/*pool_pages=*/4096, /*readers=*/2, /*hold=*/4,
                     std::chrono::milliseconds(1000),
                     /*allow_exhausted=*/true, &r, &st,
                     /*max_dirty_pages=*/16);
  EXPECT_EQ(r.torn, 0u);
  EXPECT_EQ(r.pair_torn, 0u);
  EXPECT_EQ(r.changed, 0u);
  EXPECT_EQ(r.other_errors, 0u);
  EXPECT_GT(r.reads, kStressMinOps);
  EXPECT_GT(r.writes, kStressMinOps);
  EXPECT_EQ(st.writeback_failed_pages, 0u);
  std::printf("reads %llu writes %llu exhausted %llu written back %llu\n",
              static_cast<unsigned long long>(r.reads),
              static_cast<unsigned long long>(r.writes),
              static_cast<unsigned long long>(r.exhausted),
              static_cast<unsigned long long>(st.writebacks_bytes));
}

// --- Eviction and exhaustion -----------------------------------------------

TEST(PageCacheTest, SmallPoolEvictsAndLosesNoDirtyData) {
  TempDir dir;
  const std::string path = dir.File("big");
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  // 64 pages of unstable writes, unaligned, through a 16-page pool.
  Bytes model;
  std::mt19937_64 rng(13);
  uint64_t off = 0;
  while (off < 64 * kPageSize) {
    size_t len = 1 + rng() % (2 * kPageSize);
    Bytes data = Pattern(len, off);
    ASSERT_TRUE(IsOk(f->Write(off, data, Stability::kUnstable))) << off;
    model.insert(model.end(), data.begin(), data.end());
    off += len;
    ASSERT_LE(cache.Stats().pages, 16u);
  }
  PageCacheStats st = cache.Stats();
  EXPECT_GT(st.evictions, 0u);
  EXPECT_GT(st.writebacks_bytes, 0u);  // dirty pages written back to go
  EXPECT_LE(st.pages, 16u);
  // Reads (in 8-page pieces) bring evicted pages back correctly.
  Bytes back;
  for (uint64_t o = 0; o < model.size(); o += 8 * kPageSize) {
    Bytes piece = ReadBytes(*f, o, 8 * kPageSize);
    back.insert(back.end(), piece.begin(), piece.end());
  }
  EXPECT_EQ(FirstDiff(back, model), -1);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
}

TEST(PageCacheTest, MaxPagesBoundsTheCache) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.max_pages = 8});
  EXPECT_EQ(cache.max_pages(), 8u);
  const Bytes content = Pattern(32 * kPageSize, 14);
  FilePtr f = MustOpen(cache, dir.File("m"), content);
  ASSERT_NE(f, nullptr);
  for (uint64_t p = 0; p < 32; p += 2) {
    Bytes b = ReadBytes(*f, p * kPageSize, 2 * kPageSize);
    ASSERT_EQ(FirstDiff(b, absl::MakeConstSpan(content).subspan(p * kPageSize,
                                                                2 * kPageSize)),
              -1);
    ASSERT_LE(cache.Stats().pages, 8u);
  }
  EXPECT_EQ(cache.Stats().evictions, 24u);
  EXPECT_EQ(PoolPages(pool), 8u);
  // More than max_pages at once cannot be held.
  absl::StatusOr<CachedRead> r = f->Read(0, 9 * kPageSize);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(PageCacheTest, EverythingPinnedGivesResourceExhaustedAndChangesNothing) {
  TempDir dir;
  const std::string path = dir.File("pinned");
  PagePool pool(6 * kPageSize);
  PageCache cache(pool);
  const Bytes content = Pattern(4 * kPageSize, 15);
  FilePtr f = MustOpen(cache, path, content);
  ASSERT_NE(f, nullptr);
  absl::StatusOr<CachedRead> held = f->Read(0, 4 * kPageSize);  // 4 pinned
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(PoolPages(pool), 4u);

  // Four pinned pages need four copies; only two pages are free.
  absl::Status s = f->Write(kPageSize - 100, Pattern(2 * kPageSize + 200, 16),
                            Stability::kUnstable);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.cow_copies, 0u);
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_EQ(st.pages, 4u);
  EXPECT_EQ(PoolPages(pool), 4u);  // the reserved pages went back
  EXPECT_EQ(f->size(), content.size());
  // Nothing of it is visible: a new read gives the old bytes, same pages.
  absl::StatusOr<CachedRead> again = f->Read(0, 4 * kPageSize);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(FirstDiff(ToBytes(*again), content), -1);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(again->slices[i].page.get(), held->slices[i].page.get());
  }
  again = absl::StatusOr<CachedRead>();

  // A write extending the file by three new pages fails the same way and
  // leaves the size alone.
  s = f->Write(4 * kPageSize, Pattern(3 * kPageSize, 17), Stability::kDataSync);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(f->size(), content.size());
  EXPECT_EQ(DiskSize(path), content.size());

  // Truncating into a pinned page needs one copy: that works (2 free) ...
  ASSERT_TRUE(IsOk(f->Truncate(3 * kPageSize + 10)));
  EXPECT_EQ(cache.Stats().cow_copies, 1u);
  // ... a second file's read of three pages does not: one page is free and
  // only the (clean, unpinned) copy can be evicted.
  FilePtr g = MustOpen(cache, dir.File("other"), Pattern(3 * kPageSize, 18));
  ASSERT_NE(g, nullptr);
  absl::StatusOr<CachedRead> r = g->Read(0, 3 * kPageSize);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(cache.Stats().evictions, 1u);
  EXPECT_EQ(cache.Stats().pages, 3u);

  // The held bytes never changed; once released, the write succeeds.
  Bytes held_bytes = ToBytes(*held);
  EXPECT_EQ(FirstDiff(held_bytes, content), -1);
  held = absl::StatusOr<CachedRead>();
  const Bytes w = Pattern(2 * kPageSize + 200, 16);
  ASSERT_TRUE(IsOk(f->Write(kPageSize - 100, w, Stability::kUnstable)));
  Bytes model(content.begin(), content.begin() + 3 * kPageSize + 10);
  model.resize(3 * kPageSize + 100);  // the write extends the file
  std::copy(w.begin(), w.end(), model.begin() + kPageSize - 100);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
}

// --- Truncate --------------------------------------------------------------

TEST(PageCacheTest, TruncateShrinksGrowsAndLeavesPinnedPagesAlone) {
  TempDir dir;
  const std::string path = dir.File("t");
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const Bytes content = Pattern(5 * kPageSize, 19);
  FilePtr f = MustOpen(cache, path, content);
  ASSERT_NE(f, nullptr);
  // Dirty the last page, then pin pages 2 and 4 as in-flight replies would.
  ASSERT_TRUE(
      IsOk(f->Write(4 * kPageSize, Pattern(10, 20), Stability::kUnstable)));
  absl::StatusOr<CachedRead> pin2 = f->Read(2 * kPageSize, kPageSize);
  absl::StatusOr<CachedRead> pin4 = f->Read(4 * kPageSize, kPageSize);
  ASSERT_TRUE(pin2.ok() && pin4.ok());
  const Bytes pin2_bytes = ToBytes(*pin2);
  const Bytes pin4_bytes = ToBytes(*pin4);
  EXPECT_EQ(cache.Stats().pages, 2u);  // pages 2 and 4
  const uint64_t pages_before = cache.Stats().pages;

  // Shrink into page 2: pages 3 and 4 go (4 was pinned and dirty), page 2's
  // tail is zeroed in a copy.
  const uint64_t cut = 2 * kPageSize + 100;
  ASSERT_TRUE(IsOk(f->Truncate(cut)));
  EXPECT_EQ(f->size(), cut);
  EXPECT_EQ(DiskSize(path), cut);
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.cow_copies, 1u);
  EXPECT_EQ(st.dirty_pages, 0u);  // the dirty page past the end was dropped
  EXPECT_EQ(st.pages, pages_before - 1);
  EXPECT_EQ(FirstDiff(ToBytes(*pin2), pin2_bytes), -1);
  EXPECT_EQ(FirstDiff(ToBytes(*pin4), pin4_bytes), -1);
  absl::StatusOr<CachedRead> r = f->Read(0, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->eof);
  EXPECT_EQ(FirstDiff(ToBytes(*r), absl::MakeConstSpan(content).first(cut)),
            -1);
  r = absl::StatusOr<CachedRead>();

  // Grow: the new range reads as zeros (also the old tail of page 2).
  ASSERT_TRUE(IsOk(f->Truncate(6 * kPageSize)));
  EXPECT_EQ(f->size(), 6 * kPageSize);
  EXPECT_EQ(DiskSize(path), 6 * kPageSize);
  Bytes model(content.begin(), content.begin() + cut);
  model.resize(6 * kPageSize);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);

  // Unpinned partial page: zeroed in place, no copy.
  ASSERT_TRUE(IsOk(f->Truncate(100)));
  EXPECT_EQ(cache.Stats().cow_copies, 1u);
  ASSERT_TRUE(IsOk(f->Truncate(kPageSize)));
  model.resize(100);
  model.resize(kPageSize);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);

  // The dropped pinned pages go back to the pool with their last reference.
  const uint64_t cached = cache.Stats().pages;
  EXPECT_GT(PoolPages(pool), cached);
  pin2 = absl::StatusOr<CachedRead>();
  pin4 = absl::StatusOr<CachedRead>();
  EXPECT_EQ(PoolPages(pool), cached);
}

// --- Files -----------------------------------------------------------------

TEST(PageCacheTest, ReadOnlyFileRefusesWrites) {
  TempDir dir;
  const std::string path = dir.File("ro");
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  const Bytes content = Pattern(kPageSize + 5, 21);
  CreateFile(path, content);
  absl::StatusOr<FilePtr> f = Open(cache, path, O_RDONLY);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE((*f)->writable());
  absl::Status s = (*f)->Write(0, Pattern(10, 22), Stability::kUnstable);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  s = (*f)->Write(0, Pattern(10, 22), Stability::kFileSync);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  s = (*f)->Truncate(1);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_EQ((*f)->size(), content.size());
  EXPECT_EQ(cache.Stats().pages, 0u);
  EXPECT_EQ(FirstDiff(ReadBytes(**f, 0, 1 << 20), content), -1);
  EXPECT_TRUE(IsOk((*f)->Commit()));
  EXPECT_TRUE(IsOk(cache.SyncAll()));
  EXPECT_EQ(FirstDiff(DiskContent(path), content), -1);
}

TEST(PageCacheTest, GetFileOpensOnceAndForgetDropsTheFile) {
  TempDir dir;
  const std::string path = dir.File("g");
  PagePool pool(16 * kPageSize);
  auto cache = std::make_unique<PageCache>(pool);
  const Bytes content = Pattern(2 * kPageSize, 23);
  CreateFile(path, content);
  int opens = 0;
  absl::StatusOr<FilePtr> a = Open(*cache, path, O_RDWR, &opens);
  absl::StatusOr<FilePtr> b = Open(*cache, path, O_RDWR, &opens);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(opens, 1);
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ((*a)->key(), KeyOf(path));
  EXPECT_EQ(cache->Stats().files, 1u);

  absl::StatusOr<CachedRead> held = (*a)->Read(0, 2 * kPageSize);
  ASSERT_TRUE(held.ok());
  cache->Forget(KeyOf(path));
  EXPECT_EQ(cache->Stats().files, 0u);
  EXPECT_EQ(cache->Stats().pages, 2u);  // the File is still held
  a = absl::StatusOr<FilePtr>();
  b = absl::StatusOr<FilePtr>();
  EXPECT_EQ(cache->Stats().pages, 0u);
  // The pinned pages outlive the File and even the cache.
  cache.reset();
  EXPECT_EQ(PoolPages(pool), 2u);
  EXPECT_EQ(FirstDiff(ToBytes(*held), content), -1);
  held = absl::StatusOr<CachedRead>();
  EXPECT_EQ(PoolPages(pool), 0u);

  PageCache cache2(pool);
  absl::StatusOr<FilePtr> c = Open(cache2, path, O_RDWR, &opens);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(opens, 2);
}

TEST(PageCacheTest, GetFileErrors) {
  TempDir dir;
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  absl::StatusOr<FilePtr> f = cache.GetFile(
      {1, 2}, []() -> absl::StatusOr<int> { return absl::NotFoundError("x"); });
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);

  const std::string path = dir.File("wo");
  CreateFile(path, Pattern(10, 24));
  int wo_fd = -1;
  f = cache.GetFile(KeyOf(path), [&]() -> absl::StatusOr<int> {
    wo_fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    return wo_fd;
  });
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_GE(wo_fd, 0);
  EXPECT_EQ(::fcntl(wo_fd, F_GETFD), -1);  // closed by GetFile

  f = cache.GetFile({3, 4}, [&]() -> absl::StatusOr<int> {
    return ::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  });
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Stats().files, 0u);
}

TEST(PageCacheTest, ConcurrentGetFileGivesOneFile) {
  TempDir dir;
  const std::string path = dir.File("race");
  CreateFile(path, Pattern(100, 25));
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  std::vector<FilePtr> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<FilePtr> f = Open(cache, path);
      if (f.ok()) got[i] = *f;
    });
  }
  for (std::thread& t : threads) t.join();
  for (const FilePtr& f : got) {
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f.get(), got[0].get());
  }
  EXPECT_EQ(cache.Stats().files, 1u);
}

TEST(PageCacheTest, SyncAllWritesBackEveryFile) {
  TempDir dir;
  PagePool pool(32 * kPageSize);
  PageCache cache(pool);
  std::vector<std::string> paths = {dir.File("s1"), dir.File("s2")};
  std::vector<Bytes> models;
  std::vector<FilePtr> files;
  for (size_t i = 0; i < paths.size(); ++i) {
    files.push_back(MustOpen(cache, paths[i]));
    ASSERT_NE(files.back(), nullptr);
    models.push_back(Pattern(3 * kPageSize + 7 * i, 26 + i));
    ASSERT_TRUE(
        IsOk(files.back()->Write(0, models.back(), Stability::kUnstable)));
    EXPECT_EQ(DiskSize(paths[i]), 0u);
  }
  EXPECT_EQ(cache.Stats().dirty_pages, 7u);  // 3 + 4 pages
  ASSERT_TRUE(IsOk(cache.SyncAll()));
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  for (size_t i = 0; i < paths.size(); ++i) {
    EXPECT_EQ(FirstDiff(DiskContent(paths[i]), models[i]), -1) << i;
  }
}

TEST(PageCacheTest, StatsCountPagesPinnedDirtyCopiesAndEvictions) {
  TempDir dir;
  PagePool pool(8 * kPageSize);
  PageCache cache(pool);
  FilePtr f = MustOpen(cache, dir.File("st1"));
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(
      IsOk(f->Write(0, Pattern(3 * kPageSize, 27), Stability::kUnstable)));
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.pages, 3u);
  EXPECT_EQ(st.dirty_pages, 3u);
  EXPECT_EQ(st.pinned_pages, 0u);
  EXPECT_EQ(st.files, 1u);

  absl::StatusOr<CachedRead> held = f->Read(0, 10);
  ASSERT_TRUE(held.ok());
  st = cache.Stats();
  EXPECT_EQ(st.pinned_pages, 1u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 0u);

  // Copy-on-write: the pinned old version leaves the cache.
  ASSERT_TRUE(IsOk(f->Write(0, Pattern(10, 28), Stability::kUnstable)));
  st = cache.Stats();
  EXPECT_EQ(st.cow_copies, 1u);
  EXPECT_EQ(st.pages, 3u);
  EXPECT_EQ(st.pinned_pages, 0u);
  EXPECT_EQ(st.dirty_pages, 3u);
  EXPECT_EQ(PoolPages(pool), 4u);

  ASSERT_TRUE(IsOk(f->Commit()));
  st = cache.Stats();
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_EQ(st.writebacks_bytes, 3 * kPageSize);

  // A 6-page read of another file with 4 pages free evicts the two least
  // recently used clean pages (pages 1 and 2 of the first file).
  FilePtr g = MustOpen(cache, dir.File("st2"), Pattern(6 * kPageSize, 29));
  ASSERT_NE(g, nullptr);
  absl::StatusOr<CachedRead> r = g->Read(0, 6 * kPageSize);
  ASSERT_TRUE(r.ok()) << r.status();
  st = cache.Stats();
  EXPECT_EQ(st.evictions, 2u);
  EXPECT_EQ(st.pages, 7u);
  EXPECT_EQ(st.misses, 6u);
  EXPECT_EQ(st.pinned_pages, 6u);
  EXPECT_EQ(st.files, 2u);
  r = absl::StatusOr<CachedRead>();
  held = absl::StatusOr<CachedRead>();
  // Page 0 of the first file stayed (most recently used).
  ASSERT_TRUE(f->Read(0, 1).ok());
  EXPECT_EQ(cache.Stats().hits, 2u);
  EXPECT_EQ(cache.Stats().pinned_pages, 0u);
}

// --- Errors: the file system's limits and failed write-backs ---------------

// True if the file system of `dir` refuses a write at `offset` (EFBIG).
bool FsRefusesWriteAt(const TempDir& dir, uint64_t offset) {
  const std::string path = dir.File("probe");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  EXPECT_TRUE(fd);
  const std::byte x{1};
  ssize_t n = ::pwrite(fd.get(), &x, 1, static_cast<off_t>(offset));
  const int err = errno;
  ::unlink(path.c_str());
  return n < 0 && err == EFBIG;
}

// Makes every later pwrite of `f` fail (EBADF), as a write-back failure
// would: its descriptor now refers to `path` opened read-only.
void BreakWrites(const PageCache::File& f, const std::string& path) {
  UniqueFd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro);
  ASSERT_EQ(::dup3(ro.get(), f.fd(), O_CLOEXEC), f.fd());
}

// Undoes BreakWrites.
void RepairWrites(const PageCache::File& f, const std::string& path) {
  UniqueFd rw(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(rw);
  ASSERT_EQ(::dup3(rw.get(), f.fd(), O_CLOEXEC), f.fd());
}

// Issue 9 item 5: a write past the file system's largest file must be
// refused (FBIG) before anything is cached; the cache stays usable.
TEST(PageCacheErrorsTest, WritesPastTheFileSystemLimitAreRefusedUpFront) {
  TempDir dir;
  const uint64_t kFar = uint64_t{1} << 50;
  if (!FsRefusesWriteAt(dir, kFar)) {
    GTEST_SKIP() << "the file system under /tmp takes a write at 2^50";
  }
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("far");
  const Bytes content = Pattern(kPageSize + 10, 40);
  FilePtr f = MustOpen(cache, path, content);
  ASSERT_NE(f, nullptr);
  for (Stability how :
       {Stability::kUnstable, Stability::kDataSync, Stability::kFileSync}) {
    absl::Status s = f->Write(kFar, Pattern(4 * kPageSize, 41), how);
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  }
  absl::Status s = f->Truncate(kFar);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.pages, 0u);
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_EQ(PoolPages(pool), 0u);
  EXPECT_EQ(f->size(), content.size());
  // Nothing of it is served, and the file is as it was.
  absl::StatusOr<CachedRead> r = f->Read(kFar, kPageSize);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_TRUE(r->eof);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), content), -1);
  EXPECT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(DiskSize(path), content.size());
}

// Issue 9 item 5: dirty pages whose write-back fails must not stay in the
// cache as unevictable pages: other files keep working, the failing file's
// next Commit reports the error (once), and its size and reads agree with
// what is on disk afterwards.
TEST(PageCacheErrorsTest, FailedWriteBacksNeverBlockOtherFiles) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string pa = dir.File("a");
  const std::string pb = dir.File("b");
  const Bytes a_disk = Pattern(2 * kPageSize, 42);
  FilePtr a = MustOpen(cache, pa, a_disk);
  ASSERT_NE(a, nullptr);
  // 48 dirty pages past a's end on disk, which then cannot be written.
  ASSERT_TRUE(IsOk(a->Write(2 * kPageSize, Pattern(48 * kPageSize, 43),
                            Stability::kUnstable)));
  BreakWrites(*a, pa);

  // Another file's read needs 32 pages: 16 are free, the rest must come
  // from a's dirty pages.
  const Bytes b_content = Pattern(32 * kPageSize, 44);
  FilePtr b = MustOpen(cache, pb, b_content);
  ASSERT_NE(b, nullptr);
  absl::StatusOr<CachedRead> r = b->Read(0, 32 * kPageSize);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(FirstDiff(ToBytes(*r), b_content), -1);
  r = absl::StatusOr<CachedRead>();
  // ... and its writes, which need the rest of the cache.
  const Bytes b_new = Pattern(60 * kPageSize, 45);
  EXPECT_TRUE(IsOk(b->Write(0, b_new, Stability::kUnstable)));
  EXPECT_TRUE(IsOk(b->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(pb), b_new), -1);

  // a's next Commit reports the failure, once.
  EXPECT_FALSE(a->Commit().ok());
  EXPECT_TRUE(IsOk(a->Commit()));
  // What a serves and its size are what is on disk: nothing it failed to
  // store.
  EXPECT_EQ(a->size(), DiskSize(pa));
  EXPECT_EQ(FirstDiff(ReadBytes(*a, 0, 1 << 20), DiskContent(pa)), -1);
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);

  // Once the file can be written again, it works as before.
  RepairWrites(*a, pa);
  const Bytes again = Pattern(3 * kPageSize, 46);
  ASSERT_TRUE(IsOk(a->Write(0, again, Stability::kUnstable)));
  ASSERT_TRUE(IsOk(a->Commit()));
  Bytes model = a_disk;
  model.resize(std::max(model.size(), again.size()));
  std::copy(again.begin(), again.end(), model.begin());
  EXPECT_EQ(FirstDiff(DiskContent(pa), model), -1);
  EXPECT_EQ(cache.Stats().pinned_pages, 0u);
  EXPECT_EQ(PoolPages(pool), cache.Stats().pages);
}

// Issue 9 item 5: a stable write whose write-through fails must not leave
// its bytes in the cache (READ would serve what was never stored) nor the
// size it would have given the file.
TEST(PageCacheErrorsTest, FailedStableWriteLeavesNoTraceInTheCache) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("s");
  const Bytes initial = Pattern(2 * kPageSize, 47);
  FilePtr f = MustOpen(cache, path, initial);
  ASSERT_NE(f, nullptr);
  // Page 0 holds an unstable change; page 1 is cached clean.
  Bytes model = initial;
  const Bytes early = Pattern(50, 48);
  ASSERT_TRUE(IsOk(f->Write(100, early, Stability::kUnstable)));
  std::copy(early.begin(), early.end(), model.begin() + 100);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
  BreakWrites(*f, path);
  for (Stability how : {Stability::kDataSync, Stability::kFileSync}) {
    // Over pages 0..2, extending the file.
    absl::Status s = f->Write(kPageSize - 10, Pattern(2 * kPageSize, 49), how);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(f->size(), initial.size());
    EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
    // The earlier unstable change is still held, still dirty.
    EXPECT_EQ(cache.Stats().dirty_pages, 1u);
  }
  RepairWrites(*f, path);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
  EXPECT_EQ(PoolPages(pool), cache.Stats().pages);
}

// A Commit that cannot write pinned dirty pages drops them from the cache
// (READ then serves the disk) while the replies holding them keep their
// bytes; pages read as zeros from a hole that only the failed pages had
// made part of the file go too, so size and reads agree.
TEST(PageCacheErrorsTest, FailedCommitDropsPinnedPagesAndFixesTheSize) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("p");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  const Bytes data = Pattern(2 * kPageSize, 53);
  ASSERT_TRUE(IsOk(f->Write(8 * kPageSize, data, Stability::kUnstable)));
  EXPECT_EQ(f->size(), 10 * kPageSize);
  absl::StatusOr<CachedRead> hole = f->Read(3 * kPageSize, kPageSize);
  absl::StatusOr<CachedRead> held = f->Read(8 * kPageSize, 2 * kPageSize);
  ASSERT_TRUE(hole.ok() && held.ok());
  hole = absl::StatusOr<CachedRead>();
  EXPECT_EQ(cache.Stats().pages, 3u);
  EXPECT_EQ(cache.Stats().pinned_pages, 2u);

  BreakWrites(*f, path);
  absl::Status s = f->Commit();
  EXPECT_EQ(ErrnoOf(s), EBADF) << s;
  EXPECT_EQ(f->size(), 0u);
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.pages, 0u);
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_EQ(st.writeback_failed_pages, 2u);
  absl::StatusOr<CachedRead> r = f->Read(0, 1 << 20);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_TRUE(r->eof);
  // The reply in flight still has the bytes it was given.
  EXPECT_EQ(FirstDiff(ToBytes(*held), data), -1);
  EXPECT_EQ(PoolPages(pool), 2u);
  held = absl::StatusOr<CachedRead>();
  EXPECT_EQ(PoolPages(pool), 0u);
  EXPECT_TRUE(IsOk(f->Commit()));  // reported once
}

// A write-back that fails during eviction cannot be returned to the
// operation that evicted: it is kept for the file's next Commit, or its
// next stable Write if that comes first, and reported once.
TEST(PageCacheErrorsTest, EvictionErrorsAreKeptForTheNextCommitOrStableWrite) {
  TempDir dir;
  PagePool pool(8 * kPageSize);
  PageCache cache(pool);
  const std::string pa = dir.File("a");
  FilePtr a = MustOpen(cache, pa);
  FilePtr b = MustOpen(cache, dir.File("b"), Pattern(8 * kPageSize, 54));
  ASSERT_TRUE(a != nullptr && b != nullptr);
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(
        IsOk(a->Write(0, Pattern(6 * kPageSize, 55), Stability::kUnstable)));
    BreakWrites(*a, pa);
    ASSERT_TRUE(b->Read(0, 8 * kPageSize).ok());  // evicts all of a
    EXPECT_EQ(cache.Stats().dirty_pages, 0u);
    EXPECT_EQ(a->size(), 0u);
    RepairWrites(*a, pa);
    absl::Status s = round == 0
                         ? a->Commit()
                         : a->Write(0, Pattern(10, 56), Stability::kFileSync);
    EXPECT_EQ(ErrnoOf(s), EBADF) << round << s;
    EXPECT_TRUE(IsOk(a->Commit())) << round;
  }
  // The stable write that reported the earlier error was itself done.
  EXPECT_EQ(FirstDiff(DiskContent(pa), Pattern(10, 56)), -1);
  EXPECT_EQ(cache.Stats().writeback_failed_pages, 12u);
}

// Two threads that each saw the same File and each release it (to reopen it
// read-write) must not drop the File the other one cached meanwhile: its
// holders would be told to get it again, over and over under load (a read
// or write then failed with "released" in a concurrency test). A release
// names the File, not the key.
TEST(PageCacheErrorsTest, ReleaseIfCleanNeverDropsANewerFileOfTheSameKey) {
  for (IoMode mode : {IoMode::kNoBlock, IoMode::kMayBlock}) {
    TempDir dir;
    PagePool pool(8 * kPageSize);
    PageCache cache(pool);
    const std::string pa = dir.File("a");
    FilePtr old_file = MustOpen(cache, pa, Pattern(kPageSize, 1));
    ASSERT_TRUE(old_file != nullptr);
    EXPECT_EQ(cache.ReleaseIfClean(*old_file, mode),
              PageCache::Release::kReleased);
    absl::StatusOr<FilePtr> newer = Open(cache, pa);
    ASSERT_TRUE(newer.ok()) << newer.status();
    ASSERT_NE(newer->get(), old_file.get());
    // The second release of the old File leaves the newer one cached and
    // usable.
    EXPECT_EQ(cache.ReleaseIfClean(*old_file, mode),
              PageCache::Release::kReleased);
    EXPECT_TRUE(IsOk((*newer)->Write(0, Pattern(10, 2), Stability::kUnstable)));
    EXPECT_EQ(ReadBytes(**newer, 0, 10), Pattern(10, 2));
    absl::StatusOr<FilePtr> again = Open(cache, pa);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->get(), newer->get());
    EXPECT_TRUE(IsFileReleased(old_file->Read(0, 10).status()));
  }
}

// ReleaseIfClean (the server's bound on open files) must not drop a File
// that still has something to say at its next Commit: dirty pages, or a
// write-back error kept from eviction.
TEST(PageCacheErrorsTest, ReleaseIfCleanKeepsDirtyFilesAndUnreportedErrors) {
  TempDir dir;
  PagePool pool(8 * kPageSize);
  PageCache cache(pool);
  const std::string pa = dir.File("a");
  FilePtr a = MustOpen(cache, pa);
  FilePtr b = MustOpen(cache, dir.File("b"), Pattern(8 * kPageSize, 98));
  ASSERT_TRUE(a != nullptr && b != nullptr);
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(6 * kPageSize, 99), Stability::kUnstable)));
  EXPECT_EQ(cache.ReleaseIfClean(*a), PageCache::Release::kDirty);
  BreakWrites(*a, pa);
  ASSERT_TRUE(b->Read(0, 8 * kPageSize).ok());  // a's pages fail, dropped
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  // The error is unreported.
  EXPECT_EQ(cache.ReleaseIfClean(*a), PageCache::Release::kDirty);
  RepairWrites(*a, pa);
  EXPECT_EQ(ErrnoOf(a->Commit()), EBADF);
  EXPECT_EQ(cache.ReleaseIfClean(*a), PageCache::Release::kReleased);
  EXPECT_EQ(cache.Stats().files, 1u);
  // A holder of the released File is told so, and does nothing with it.
  EXPECT_TRUE(
      IsFileReleased(a->Write(0, Pattern(10, 5), Stability::kUnstable)));
  EXPECT_TRUE(IsFileReleased(a->Read(0, 10).status()));
  EXPECT_TRUE(IsFileReleased(a->Commit()));
}

// WriteBack() cleans a file without syncing, so it can be released; a
// failure is kept for the next Commit.
TEST(PageCacheErrorsTest, WriteBackCleansAndKeepsItsError) {
  TempDir dir;
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  const std::string pa = dir.File("a");
  FilePtr a = MustOpen(cache, pa);
  ASSERT_TRUE(a != nullptr);
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(3 * kPageSize, 7), Stability::kUnstable)));
  EXPECT_TRUE(IsOk(a->WriteBack()));
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  EXPECT_EQ(FirstDiff(DiskContent(pa), Pattern(3 * kPageSize, 7)), -1);
  ASSERT_TRUE(IsOk(a->Write(0, Pattern(10, 8), Stability::kUnstable)));
  BreakWrites(*a, pa);
  EXPECT_EQ(ErrnoOf(a->WriteBack()), EBADF);
  EXPECT_EQ(cache.lost_pages(), 1u);
  RepairWrites(*a, pa);
  EXPECT_EQ(ErrnoOf(a->Commit()), EBADF);  // reported, once
  EXPECT_TRUE(IsOk(a->Commit()));
}

// --- Coherence with the disk ----------------------------------------------

using ::txbuf::testing::WaitPastCtime;

// What another process does to a file: rewrites it through its own
// descriptor (same inode).
void RewriteOnDisk(const std::string& path, absl::Span<const std::byte> b,
                   bool truncate = true) {
  UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | (truncate ? O_TRUNC : 0) | O_CLOEXEC));
  ASSERT_TRUE(fd) << path;
  ASSERT_EQ(::pwrite(fd.get(), b.data(), b.size(), 0),
            static_cast<ssize_t>(b.size()));
}

struct stat StatOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

TEST(PageCacheCoherenceTest, RevalidateDropsPagesAnotherProcessChanged) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);  // never checks by itself: only Revalidate()
  const std::string pa = dir.File("a");
  FilePtr f = MustOpen(cache, pa, Pattern(2 * kPageSize, 1));
  ASSERT_NE(f, nullptr);
  absl::StatusOr<CachedRead> pinned = f->Read(0, kPageSize);  // held
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), Pattern(2 * kPageSize, 1)),
            -1);

  // Rewritten in place, longer (an editor saving, `cp` over it).
  const Bytes v2 = Pattern(3 * kPageSize + 5, 2);
  RewriteOnDisk(pa, v2);
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  EXPECT_EQ(f->size(), v2.size());
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), v2), -1);
  EXPECT_EQ(cache.Stats().invalidations, 1u);
  // The pinned old version is untouched (it left the cache, not memory).
  EXPECT_EQ(
      FirstDiff(
          ToBytes(*pinned),
          absl::MakeConstSpan(Pattern(2 * kPageSize, 1)).subspan(0, kPageSize)),
      -1);

  // Truncated to nothing, then rewritten shorter with the same size twice:
  // the ctime tells the second rewrite from the first.
  RewriteOnDisk(pa, {});
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  EXPECT_EQ(f->size(), 0u);
  EXPECT_TRUE(f->Read(0, 10)->eof);
  const Bytes v3 = Pattern(100, 3);
  RewriteOnDisk(pa, v3);
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), v3), -1);
  const Bytes v4 = Pattern(100, 4);
  WaitPastCtime(pa);
  RewriteOnDisk(pa, v4, /*truncate=*/false);  // same size, new bytes
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), v4), -1);
  EXPECT_EQ(cache.Stats().invalidations, 4u);

  // Nothing changed: nothing dropped.
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  EXPECT_EQ(cache.Stats().invalidations, 4u);
}

TEST(PageCacheCoherenceTest, OwnWritesAreNotTakenForSomeoneElses) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.revalidate_interval = absl::ZeroDuration()});
  const std::string pa = dir.File("a");
  FilePtr f = MustOpen(cache, pa, Pattern(kPageSize, 1));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(ReadBytes(*f, 0, 10).size(), 10u);
  ASSERT_TRUE(
      IsOk(f->Write(100, Pattern(3 * kPageSize, 2), Stability::kUnstable)));
  ASSERT_TRUE(IsOk(f->Commit()));
  ASSERT_TRUE(IsOk(f->Write(0, Pattern(10, 3), Stability::kFileSync)));
  ASSERT_TRUE(IsOk(f->Truncate(2 * kPageSize + 7)));
  ASSERT_TRUE(IsOk(f->Write(0, Pattern(5, 4), Stability::kUnstable)));
  ASSERT_TRUE(IsOk(f->WriteBack()));
  EXPECT_EQ(ReadBytes(*f, 0, 1 << 20).size(), 2 * kPageSize + 7);
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  const PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.invalidations, 0u);
  EXPECT_EQ(st.misses, 1u);  // the first read's page, never again
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), DiskContent(pa)), -1);
}

TEST(PageCacheCoherenceTest, OperationsCheckTheDiskWhenTheIntervalIsZero) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.revalidate_interval = absl::ZeroDuration()});
  const std::string pa = dir.File("a");
  FilePtr f = MustOpen(cache, pa, Pattern(2 * kPageSize, 1));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(ReadBytes(*f, 0, 1 << 20).size(), 2 * kPageSize);

  // Appended to by a log writer: the next read sees the new end.
  {
    UniqueFd fd(::open(pa.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    ASSERT_TRUE(fd);
    const Bytes more = Pattern(50, 9);
    ASSERT_EQ(::write(fd.get(), more.data(), more.size()), 50);
  }
  EXPECT_EQ(ReadBytes(*f, 0, 1 << 20).size(), 2 * kPageSize + 50);
  EXPECT_EQ(f->size(), 2 * kPageSize + 50);

  // Truncated by someone else: a read sees it; a write lands on the new
  // contents (a read-modify-write of a page reads the disk, not the old
  // cached page).
  ASSERT_EQ(::truncate(pa.c_str(), 10), 0);
  EXPECT_EQ(ReadBytes(*f, 0, 1 << 20).size(), 10u);
  RewriteOnDisk(pa, Pattern(kPageSize, 5));
  ASSERT_TRUE(IsOk(f->Write(1, Pattern(1, 6), Stability::kUnstable)));
  ASSERT_TRUE(IsOk(f->Commit()));
  Bytes want = Pattern(kPageSize, 5);
  want[1] = Pattern(1, 6)[0];
  EXPECT_EQ(FirstDiff(DiskContent(pa), want), -1);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), want), -1);

  // Unlinked by someone else: the cached file is stale.
  ASSERT_EQ(::unlink(pa.c_str()), 0);
  absl::StatusOr<CachedRead> r = f->Read(0, 10);
  EXPECT_EQ(ErrnoOf(r.status()), ESTALE) << r.status();
  EXPECT_EQ(ErrnoOf(f->Write(0, Pattern(1, 1), Stability::kUnstable)), ESTALE);
}

TEST(PageCacheCoherenceTest, DirtyPagesSurviveAnExternalChange) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string pa = dir.File("a");
  FilePtr f = MustOpen(cache, pa, Pattern(4 * kPageSize, 1));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(ReadBytes(*f, 0, 1 << 20).size(), 4 * kPageSize);
  const Bytes mine = Pattern(kPageSize, 2);
  ASSERT_TRUE(IsOk(f->Write(kPageSize, mine, Stability::kUnstable)));
  const Bytes theirs = Pattern(4 * kPageSize, 3);
  RewriteOnDisk(pa, theirs, /*truncate=*/false);
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  Bytes want = theirs;
  std::copy(mine.begin(), mine.end(), want.begin() + kPageSize);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), want), -1);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(pa), want), -1);
}

TEST(PageCacheCoherenceTest, ALongerIntervalChecksAtMostThatOften) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.revalidate_interval = absl::Hours(1)});
  const std::string pa = dir.File("a");
  FilePtr f = MustOpen(cache, pa, Pattern(100, 1));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), Pattern(100, 1)), -1);
  RewriteOnDisk(pa, Pattern(200, 2));
  // Within the interval the cache still serves what it has...
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), Pattern(100, 1)), -1);
  // ...until asked (a LOOKUP or GETATTR does).
  EXPECT_TRUE(IsOk(f->Revalidate(StatOf(pa))));
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), Pattern(200, 2)), -1);
}

// --- Background write-back --------------------------------------------------

TEST(PageCacheBackgroundTest, WriteBackDueWritesOldDirtyFiles) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool, {.max_dirty_pages = 64});
  const std::string pa = dir.File("a");
  const std::string pb = dir.File("b");
  FilePtr a = MustOpen(cache, pa);
  FilePtr b = MustOpen(cache, pb);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(3 * kPageSize, 1), Stability::kUnstable)));
  // Young, and under half the dirty limit: nothing to do.
  EXPECT_EQ(cache.WriteBackDue(absl::Hours(1)), 0u);
  EXPECT_EQ(DiskSize(pa), 0u);
  // Old enough (any age is, for a zero age): written, not synced.
  EXPECT_EQ(cache.WriteBackDue(absl::ZeroDuration()), 1u);
  EXPECT_EQ(FirstDiff(DiskContent(pa), Pattern(3 * kPageSize, 1)), -1);
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  EXPECT_EQ(cache.WriteBackDue(absl::ZeroDuration()), 0u);  // nothing dirty

  // Pressure: over half the dirty limit, young files are written too, the
  // oldest first, until under it.
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(20 * kPageSize, 2), Stability::kUnstable)));
  // b is dirtied at a later tick of the (coarse) clock than a.
  const int64_t a_dirtied = MonoCoarseNowNs();
  while (MonoCoarseNowNs() == a_dirtied) std::this_thread::yield();
  ASSERT_TRUE(
      IsOk(b->Write(0, Pattern(20 * kPageSize, 3), Stability::kUnstable)));
  EXPECT_EQ(cache.Stats().dirty_pages, 40u);
  EXPECT_EQ(cache.WriteBackDue(absl::Hours(1)), 1u);
  EXPECT_EQ(FirstDiff(DiskContent(pa), Pattern(20 * kPageSize, 2)), -1);
  EXPECT_EQ(DiskSize(pb), 0u);
  EXPECT_EQ(cache.Stats().dirty_pages, 20u);
  EXPECT_EQ(cache.Stats().background_writebacks, 2u);
  ASSERT_TRUE(IsOk(b->Commit()));
}

// A background write-back that fails says so (for the server's log) and
// keeps the error for the file's next Commit, which reports it once.
TEST(PageCacheBackgroundTest, WriteBackDueReportsTheFirstError) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string pa = dir.File("a");
  FilePtr a = MustOpen(cache, pa);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(2 * kPageSize, 7), Stability::kUnstable)));
  BreakWrites(*a, pa);
  absl::Status error;
  EXPECT_EQ(cache.WriteBackDue(absl::ZeroDuration(), &error), 1u);
  EXPECT_FALSE(error.ok());
  EXPECT_FALSE(a->Commit().ok());
  EXPECT_TRUE(IsOk(a->Commit()));
  // Nothing failing: the status stays OK.
  RepairWrites(*a, pa);
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(2 * kPageSize, 8), Stability::kUnstable)));
  absl::Status none;
  EXPECT_EQ(cache.WriteBackDue(absl::ZeroDuration(), &none), 1u);
  EXPECT_TRUE(none.ok()) << none;
  EXPECT_EQ(FirstDiff(DiskContent(pa), Pattern(2 * kPageSize, 8)), -1);
}

// --- Dirty page limit ------------------------------------------------------

TEST(PageCacheDirtyLimitTest, DefaultIsAQuarterOfTheCacheButAtLeastOneMiB) {
  PagePool pool(64 << 20);
  EXPECT_EQ(PageCache(pool).max_dirty_pages(), (64 << 20) / kPageSize / 4);
  EXPECT_EQ(PageCache(pool, {.max_pages = 512}).max_dirty_pages(), 256u);
  EXPECT_EQ(PageCache(pool, {.max_pages = 100}).max_dirty_pages(), 100u);
  EXPECT_EQ(PageCache(pool, {.max_dirty_pages = 7}).max_dirty_pages(), 7u);
}

// Unstable writes never leave more than max_dirty_pages dirty: a write that
// would go past the limit writes back first, and no data is lost.
TEST(PageCacheDirtyLimitTest, UnstableWritesStayUnderTheLimit) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.max_dirty_pages = 8});
  const std::string path = dir.File("d");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  Bytes model;
  std::mt19937_64 rng(57);
  while (model.size() < 40 * kPageSize) {
    const Bytes data = Pattern(1 + rng() % (2 * kPageSize), model.size());
    ASSERT_TRUE(IsOk(f->Write(model.size(), data, Stability::kUnstable)));
    model.insert(model.end(), data.begin(), data.end());
    ASSERT_LE(cache.Stats().dirty_pages, 8u) << model.size();
  }
  EXPECT_GT(cache.Stats().writebacks_bytes, 0u);  // before any Commit
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
}

// The writer's own file is written back first; other files' only when it
// has no dirty page left.
TEST(PageCacheDirtyLimitTest, OwnFileIsWrittenBackFirst) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.max_dirty_pages = 8});
  FilePtr a = MustOpen(cache, dir.File("a"));
  FilePtr b = MustOpen(cache, dir.File("b"));
  ASSERT_TRUE(a != nullptr && b != nullptr);
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(6 * kPageSize, 58), Stability::kUnstable)));
  for (uint64_t p = 0; p < 10; ++p) {
    ASSERT_TRUE(IsOk(b->Write(p * kPageSize, Pattern(kPageSize, 59 + p),
                              Stability::kUnstable)));
    EXPECT_LE(cache.Stats().dirty_pages, 8u);
  }
  EXPECT_EQ(DiskSize(dir.File("a")), 0u);  // a's 6 pages are still dirty
  EXPECT_GE(cache.Stats().dirty_pages, 6u);
  // a, with nothing of its own to write back, writes back b's.
  ASSERT_TRUE(b->Commit().ok());
  ASSERT_TRUE(
      IsOk(a->Write(0, Pattern(8 * kPageSize, 70), Stability::kUnstable)));
  ASSERT_TRUE(IsOk(b->Write(0, Pattern(kPageSize, 71), Stability::kUnstable)));
  // (Other files' pages go a batch at a time: all 8 of a's.)
  EXPECT_EQ(cache.Stats().dirty_pages, 1u);
  EXPECT_EQ(DiskSize(dir.File("a")), 8 * kPageSize);
}

// At the limit, a file's pages dirty the longest are written back first,
// whatever was read or written since; a new version of a dirty page (a
// copy-on-write under a pinned reply) keeps its place.
TEST(PageCacheDirtyLimitTest, PagesDirtyTheLongestAreWrittenBackFirst) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool, {.max_dirty_pages = 64});
  const std::string path = dir.File("aged");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  // Old: pages 100..131, then page 100 again while a reply pins it.
  const Bytes old_pages = Pattern(32 * kPageSize, 80);
  ASSERT_TRUE(IsOk(f->Write(100 * kPageSize, old_pages, Stability::kUnstable)));
  absl::StatusOr<CachedRead> held = f->Read(100 * kPageSize, kPageSize);
  ASSERT_TRUE(held.ok()) << held.status();
  const Bytes page100 = Pattern(kPageSize, 81);
  ASSERT_TRUE(IsOk(f->Write(100 * kPageSize, page100, Stability::kUnstable)));
  EXPECT_EQ(cache.Stats().cow_copies, 1u);
  // Young: pages 0..31, then all of the old ones read and page 0 rewritten
  // (recently used, but not newly dirty).
  ASSERT_TRUE(
      IsOk(f->Write(0, Pattern(32 * kPageSize, 82), Stability::kUnstable)));
  EXPECT_EQ(cache.Stats().dirty_pages, 64u);
  EXPECT_EQ(ReadBytes(*f, 100 * kPageSize, 32 * kPageSize).size(),
            32 * kPageSize);
  ASSERT_TRUE(IsOk(f->Write(0, Pattern(kPageSize, 83), Stability::kUnstable)));
  EXPECT_EQ(DiskSize(path), 0u);

  // One more dirty page: a batch (32) of the oldest goes to the file.
  ASSERT_TRUE(IsOk(
      f->Write(200 * kPageSize, Pattern(kPageSize, 84), Stability::kUnstable)));
  EXPECT_EQ(cache.Stats().dirty_pages, 33u);
  Bytes want(132 * kPageSize, std::byte{0});  // pages 0..31 not written yet
  std::copy(old_pages.begin(), old_pages.end(), want.begin() + 100 * kPageSize);
  std::copy(page100.begin(), page100.end(), want.begin() + 100 * kPageSize);
  EXPECT_EQ(FirstDiff(DiskContent(path), want), -1);
}

// A write-back puts the time of the last change a client made (WRITE or
// truncate) on the file; never an older one, whatever came in between.
TEST(PageCacheDirtyLimitTest, WriteBacksKeepTheLastChangesTime) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("t");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  auto disk_mtime = [&] {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  };
  // Unstable, then a truncate while pages are dirty: the truncate's time.
  ASSERT_TRUE(
      IsOk(f->Write(0, Pattern(3 * kPageSize, 90), Stability::kUnstable)));
  const int64_t write_time = f->unwritten_mtime_ns();
  EXPECT_NE(write_time, 0);
  ASSERT_TRUE(IsOk(f->Truncate(2 * kPageSize)));
  const int64_t truncated = disk_mtime();
  EXPECT_EQ(f->unwritten_mtime_ns(), truncated);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(disk_mtime(), truncated);
  EXPECT_EQ(f->unwritten_mtime_ns(), 0);
  // Unstable, then stable elsewhere: the stable WRITE's time (the later).
  ASSERT_TRUE(IsOk(f->Write(0, Pattern(kPageSize, 91), Stability::kUnstable)));
  const int64_t first = f->unwritten_mtime_ns();
  ASSERT_TRUE(IsOk(
      f->Write(4 * kPageSize, Pattern(kPageSize, 92), Stability::kDataSync)));
  EXPECT_GE(f->unwritten_mtime_ns(), first);
  const int64_t second = f->unwritten_mtime_ns();
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(disk_mtime(), second);
  // A stable write with nothing else dirty leaves the kernel's own time.
  ASSERT_TRUE(IsOk(f->Write(0, Pattern(kPageSize, 93), Stability::kDataSync)));
  EXPECT_EQ(f->unwritten_mtime_ns(), 0);
}

// A write that alone needs more dirty pages than the limit is written
// through (without a sync); if that fails, nothing of it stays.
// Write-behind: a large unstable write is queued at once and WriteBehind()
// writes it back; the pages stay cached, clean, and the file holds them.
TEST(PageCacheWriteBehindTest, ALargeWriteIsWrittenBehindAndStaysCached) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool, {.write_behind_pages = 16});
  const std::string path = dir.File("large");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(cache.WaitForWriteBehind(absl::ZeroDuration()));
  const Bytes data = Pattern(40 * kPageSize, 60);
  ASSERT_TRUE(IsOk(f->Write(0, data, Stability::kUnstable)));
  EXPECT_EQ(DiskSize(path), 0u);  // queued, not written yet
  EXPECT_EQ(cache.Stats().dirty_pages, 40u);
  EXPECT_TRUE(cache.WaitForWriteBehind(absl::ZeroDuration()));

  absl::Status error;
  EXPECT_EQ(cache.WriteBehind(&error), 40u);
  EXPECT_TRUE(IsOk(error));
  EXPECT_EQ(FirstDiff(DiskContent(path), data), -1);
  const PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_EQ(st.pages, 40u);
  EXPECT_EQ(st.write_behind_pages, 40u);
  EXPECT_FALSE(cache.WaitForWriteBehind(absl::ZeroDuration()));
  EXPECT_EQ(cache.WriteBehind(), 0u);  // nothing queued twice
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, data.size()), data), -1);
  EXPECT_EQ(cache.Stats().misses, 0u);  // served from the cache
  EXPECT_TRUE(IsOk(f->Commit()));
}

// Small writes each starting where the last ended form a run, queued once
// it has write_behind_pages whole pages; the partial page at its end waits.
// Writes elsewhere (random) never queue anything.
TEST(PageCacheWriteBehindTest, SequentialWritesFormARunRandomOnesDoNot) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool, {.write_behind_pages = 8});
  const std::string path = dir.File("stream");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  // 1000-byte appends: page 7 ends inside the 33rd write.
  const Bytes data = Pattern(40 * 1000, 61);
  size_t queued_after = 0;
  for (size_t i = 0; i < 40; ++i) {
    ASSERT_TRUE(IsOk(f->Write(i * 1000,
                              absl::MakeConstSpan(data).subspan(i * 1000, 1000),
                              Stability::kUnstable)));
    if (queued_after == 0 && cache.WaitForWriteBehind(absl::ZeroDuration())) {
      queued_after = i + 1;
    }
  }
  EXPECT_EQ(queued_after, 33u);  // 33,000 bytes: 8 whole pages
  // The queued run; page 8 (whole since) starts the next run, page 9 is
  // partial.
  EXPECT_EQ(cache.WriteBehind(), 8u);
  EXPECT_EQ(cache.Stats().dirty_pages, 2u);
  EXPECT_EQ(DiskSize(path), 8 * kPageSize);
  EXPECT_EQ(FirstDiff(DiskContent(path),
                      absl::MakeConstSpan(data).subspan(0, 8 * kPageSize)),
            -1);

  // Whole pages, but never where the last write ended: no run.
  const std::string rpath = dir.File("random");
  FilePtr r = MustOpen(cache, rpath);
  ASSERT_NE(r, nullptr);
  for (uint64_t i = 0; i < 32; ++i) {
    const uint64_t page = (i * 37) % 64;  // scattered, none adjacent in turn
    ASSERT_TRUE(IsOk(r->Write(page * kPageSize, Pattern(kPageSize, 62),
                              Stability::kUnstable)));
  }
  EXPECT_FALSE(cache.WaitForWriteBehind(absl::ZeroDuration()));
  EXPECT_EQ(cache.Stats().write_behind_pages, 8u);
  EXPECT_TRUE(IsOk(f->Commit()));
  EXPECT_TRUE(IsOk(r->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), data), -1);
}

// Off unless asked (a library user's cache writes back as before), and
// WakeWriteBehind() ends a wait with nothing queued.
TEST(PageCacheWriteBehindTest, OffByDefaultAndAWaitCanBeWoken) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool);
  FilePtr f = MustOpen(cache, dir.File("f"));
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(
      IsOk(f->Write(0, Pattern(128 * kPageSize, 63), Stability::kUnstable)));
  EXPECT_FALSE(cache.WaitForWriteBehind(absl::ZeroDuration()));
  EXPECT_EQ(cache.Stats().dirty_pages, 128u);

  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    EXPECT_FALSE(cache.WaitForWriteBehind(absl::InfiniteDuration()));
    returned = true;
  });
  cache.WakeWriteBehind();
  waiter.join();  // (hangs here if the wake is lost)
  EXPECT_TRUE(returned);
  EXPECT_TRUE(IsOk(f->Commit()));
}

// A write-behind that fails keeps its error for the file's next Commit (as
// any background write-back does) and drops what it could not store; a
// file gone before the write-behind runs is skipped.
TEST(PageCacheWriteBehindTest,
     FailuresGoToTheNextCommitAndGoneFilesAreSkipped) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool, {.write_behind_pages = 4});
  const std::string path = dir.File("broken");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(
      IsOk(f->Write(0, Pattern(8 * kPageSize, 64), Stability::kUnstable)));
  BreakWrites(*f, path);
  absl::Status error;
  EXPECT_EQ(cache.WriteBehind(&error), 8u);
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  EXPECT_EQ(cache.Stats().writeback_failed_pages, 8u);
  RepairWrites(*f, path);
  EXPECT_FALSE(f->Commit().ok());  // reported once
  EXPECT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(f->size(), 0u);  // nothing it could not store

  const std::string gpath = dir.File("gone");
  FilePtr g = MustOpen(cache, gpath);
  ASSERT_NE(g, nullptr);
  ASSERT_TRUE(
      IsOk(g->Write(0, Pattern(8 * kPageSize, 65), Stability::kUnstable)));
  cache.Forget(KeyOf(gpath));
  g.reset();
  EXPECT_EQ(cache.WriteBehind(), 0u);
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
}

// Write-around: a large unstable write of whole pages is in the file when
// Write returns, supersedes every cached page of its range (dirty ones,
// and a run queued for write-behind, must not write their older bytes over
// it later), leaves a pinned page's bytes to its pin, and is served after.
TEST(PageCacheWriteAroundTest, ALargeWriteGoesToTheFileOverCachedPages) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(
      pool, {.write_behind_pages = 4, .write_around_bytes = 8 * kPageSize});
  const std::string path = dir.File("around");
  const Bytes old = Pattern(8 * kPageSize, 70);
  FilePtr f = MustOpen(cache, path, old);
  ASSERT_NE(f, nullptr);
  // Pages 0-7 cached clean; page 6 pinned (a READ in flight); pages 2-5
  // dirty again, written sequentially (queued for write-behind).
  ASSERT_EQ(ReadBytes(*f, 0, old.size()).size(), old.size());
  absl::StatusOr<CachedRead> pinned = f->Read(6 * kPageSize, kPageSize);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  const Bytes small = Pattern(4 * kPageSize, 71);
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(IsOk(
        f->Write((2 + i) * kPageSize,
                 absl::MakeConstSpan(small).subspan(i * kPageSize, kPageSize),
                 Stability::kUnstable)));
  }
  ASSERT_EQ(cache.Stats().dirty_pages, 4u);
  ASSERT_TRUE(cache.WaitForWriteBehind(absl::ZeroDuration()));

  // In kNoBlock it would pwrite: WouldBlock, and nothing changes.
  const Bytes big = Pattern(16 * kPageSize, 72);
  EXPECT_TRUE(
      IsWouldBlock(f->Write(0, big, Stability::kUnstable, IoMode::kNoBlock)));
  EXPECT_EQ(FirstDiff(DiskContent(path), old), -1);
  EXPECT_EQ(cache.Stats().dirty_pages, 4u);

  ASSERT_TRUE(IsOk(f->Write(0, big, Stability::kUnstable)));
  EXPECT_EQ(FirstDiff(DiskContent(path), big), -1);  // before any Commit
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.write_around_pages, 16u);
  EXPECT_EQ(st.dirty_pages, 0u);
  EXPECT_EQ(st.pages, 0u);
  EXPECT_EQ(f->size(), big.size());
  // The pin keeps the bytes it was given.
  EXPECT_EQ(FirstDiff(ToBytes(*pinned), absl::MakeConstSpan(old).subspan(
                                            6 * kPageSize, kPageSize)),
            -1);
  pinned = absl::StatusOr<CachedRead>();
  // Nothing older is written over it: not the queued write-behind run,
  // not a Commit.
  EXPECT_EQ(cache.WriteBehind(), 0u);
  EXPECT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), big), -1);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, big.size()), big), -1);
  EXPECT_EQ(cache.Stats().pinned_pages, 0u);
  EXPECT_EQ(PoolPages(pool), cache.Stats().pages);
}

// What goes around: unstable writes of at least write_around_bytes that
// start on a page boundary and end on one or at or past the end of the
// file. Anything else goes through the cache as before.
TEST(PageCacheWriteAroundTest, OnlyLargeUnstableWritesOfWholePagesGoAround) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool, {.write_around_bytes = 8 * kPageSize});
  const std::string path = dir.File("which");
  const Bytes old = Pattern(32 * kPageSize, 73);
  FilePtr f = MustOpen(cache, path, old);
  ASSERT_NE(f, nullptr);
  struct Case {
    const char* what;
    uint64_t offset;
    uint64_t len;
    bool around;
  };
  const Case cases[] = {
      {"too small", 0, 8 * kPageSize - 1, false},
      {"unaligned start", 100, 8 * kPageSize, false},
      {"ends inside a page of the file", 0, 8 * kPageSize + 100, false},
      {"whole pages", 8 * kPageSize, 8 * kPageSize, true},
      {"ends in the last page, past the end", 24 * kPageSize,
       8 * kPageSize + 100, true},
  };
  uint64_t around = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Bytes data = Pattern(c.len, 74 + c.offset);
    const Bytes disk_before = DiskContent(path);
    ASSERT_TRUE(IsOk(f->Write(c.offset, data, Stability::kUnstable)));
    const Bytes disk = DiskContent(path);
    const bool on_disk =
        disk.size() >= c.offset + c.len &&
        FirstDiff(absl::MakeConstSpan(disk).subspan(c.offset, c.len), data) ==
            -1;
    EXPECT_EQ(on_disk, c.around);
    if (c.around) around += (c.len + kPageSize - 1) / kPageSize;
    EXPECT_EQ(cache.Stats().write_around_pages, around);
    if (!c.around) {
      EXPECT_EQ(FirstDiff(disk, disk_before), -1);
    }
    EXPECT_EQ(FirstDiff(ReadBytes(*f, c.offset, c.len), data), -1);
  }
  // A stable write is written through the cache, as always.
  ASSERT_TRUE(
      IsOk(f->Write(0, Pattern(8 * kPageSize, 80), Stability::kFileSync)));
  EXPECT_EQ(cache.Stats().write_around_pages, around);
  EXPECT_TRUE(IsOk(f->Commit()));
}

// A write-around whose pwrite fails returns its error and loses nothing
// acknowledged before: the range's dirty pages stay (and reach the file at
// the next Commit), its clean ones go (the file may hold part of the
// failed write), and size and READ agree with the file.
TEST(PageCacheWriteAroundTest, AFailedWriteAroundKeepsEarlierUnstableData) {
  TempDir dir;
  PagePool pool(256 * kPageSize);
  PageCache cache(pool, {.write_around_bytes = 8 * kPageSize});
  const std::string path = dir.File("failing");
  const Bytes old = Pattern(4 * kPageSize, 81);
  FilePtr f = MustOpen(cache, path, old);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(ReadBytes(*f, 0, old.size()).size(), old.size());
  const Bytes one = Pattern(kPageSize, 82);
  ASSERT_TRUE(IsOk(f->Write(kPageSize, one, Stability::kUnstable)));
  BreakWrites(*f, path);
  absl::Status s =
      f->Write(0, Pattern(8 * kPageSize, 83), Stability::kUnstable);
  EXPECT_FALSE(s.ok());
  PageCacheStats st = cache.Stats();
  EXPECT_EQ(st.write_around_pages, 0u);
  EXPECT_EQ(st.dirty_pages, 1u);
  EXPECT_EQ(st.pages, 1u);
  EXPECT_EQ(f->size(), old.size());
  Bytes model = old;
  std::copy(one.begin(), one.end(), model.begin() + kPageSize);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
  RepairWrites(*f, path);
  EXPECT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
}

TEST(PageCacheDirtyLimitTest, WriteLargerThanTheLimitIsWrittenThrough) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.max_dirty_pages = 4});
  const std::string path = dir.File("big");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  const Bytes data = Pattern(10 * kPageSize, 72);
  ASSERT_TRUE(IsOk(f->Write(0, data, Stability::kUnstable)));
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  EXPECT_EQ(FirstDiff(DiskContent(path), data), -1);

  BreakWrites(*f, path);
  absl::Status s = f->Write(10 * kPageSize, Pattern(5 * kPageSize, 73),
                            Stability::kUnstable);
  EXPECT_EQ(ErrnoOf(s), EBADF) << s;
  EXPECT_EQ(f->size(), data.size());
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), data), -1);
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  EXPECT_TRUE(IsOk(f->Commit()));  // that write's own failure was returned
}

// If the writer's own dirty pages cannot be written back to make room, the
// write fails with that error and is not applied; the next Commit reports
// it too.
TEST(PageCacheDirtyLimitTest, OwnWriteBackFailureFailsTheWrite) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.max_dirty_pages = 4});
  const std::string path = dir.File("f");
  FilePtr f = MustOpen(cache, path, Pattern(kPageSize, 74));
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(
      IsOk(f->Write(0, Pattern(4 * kPageSize, 75), Stability::kUnstable)));
  BreakWrites(*f, path);
  absl::Status s =
      f->Write(4 * kPageSize, Pattern(kPageSize, 76), Stability::kUnstable);
  EXPECT_EQ(ErrnoOf(s), EBADF) << s;
  EXPECT_EQ(f->size(), kPageSize);  // the failed pages went, and so did
                                    // their size; the write was not applied
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), Pattern(kPageSize, 74)), -1);
  EXPECT_EQ(cache.Stats().dirty_pages, 0u);
  EXPECT_EQ(ErrnoOf(f->Commit()), EBADF);
  EXPECT_TRUE(IsOk(f->Commit()));
}

// --- IoMode::kNoBlock ------------------------------------------------------

// Makes every pread/pwrite/fsync/ftruncate/lseek of `f` fail (EBADF) while
// it lives: its descriptor refers to `path` opened O_PATH. An operation
// that succeeds meanwhile did no file I/O.
class NoFileIo {
 public:
  NoFileIo(const PageCache::File& f, std::string path)
      : f_(f), path_(std::move(path)) {
    UniqueFd p(::open(path_.c_str(), O_PATH | O_CLOEXEC));
    EXPECT_TRUE(p);
    EXPECT_EQ(::dup3(p.get(), f_.fd(), O_CLOEXEC), f_.fd());
  }
  ~NoFileIo() { RepairWrites(f_, path_); }

 private:
  const PageCache::File& f_;
  const std::string path_;
};

// What a WouldBlock must leave as it was.
struct Snapshot {
  uint64_t size, pages, dirty, misses, evictions, written, pool;
  Bytes disk;    // the file's bytes on disk
  Bytes cached;  // the cached pages' bytes ('?' for a page not cached)
  bool operator==(const Snapshot&) const = default;
};

Snapshot Snap(PageCache& cache, const PagePool& pool, PageCache::File& f) {
  PageCacheStats st = cache.Stats();
  Snapshot s{f.size(),        st.pages,     st.dirty_pages,
             st.misses,       st.evictions, st.writebacks_bytes,
             PoolPages(pool), {},           {}};
  s.disk = DiskContent(absl::StrCat("/proc/self/fd/", f.fd()));
  for (uint64_t off = 0; off < f.size(); off += kPageSize) {
    absl::StatusOr<CachedRead> r = f.Read(off, kPageSize, IoMode::kNoBlock);
    if (r.ok()) {
      Bytes b = ToBytes(*r);
      s.cached.insert(s.cached.end(), b.begin(), b.end());
    } else {
      s.cached.push_back(std::byte{'?'});
    }
  }
  return s;
}

TEST(PageCacheNoBlockTest, WouldBlockIsRecognisedAndNothingElse) {
  EXPECT_TRUE(IsWouldBlock(WouldBlockError()));
  EXPECT_EQ(WouldBlockError().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsWouldBlock(absl::UnavailableError(
      "page cache: the operation would wait for file I/O")));
  EXPECT_FALSE(IsWouldBlock(absl::OkStatus()));
  EXPECT_FALSE(IsWouldBlock(ErrnoStatus(EAGAIN, "read")));
}

// A read of cached pages, and unstable writes to cached pages (pinned ones
// copied), to whole pages and to pages past the end, need no file I/O.
TEST(PageCacheNoBlockTest, CachedReadsAndUnstableWritesNeedNoFileIo) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("nb");
  Bytes model = Pattern(3 * kPageSize + 100, 80);
  FilePtr f = MustOpen(cache, path, model);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);  // all cached
  absl::StatusOr<CachedRead> pin = f->Read(0, kPageSize);
  ASSERT_TRUE(pin.ok());
  const PageCacheStats before = cache.Stats();
  {
    NoFileIo no_io(*f, path);
    absl::StatusOr<CachedRead> r = f->Read(10, 3 * kPageSize, IoMode::kNoBlock);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(FirstDiff(ToBytes(*r),
                        absl::MakeConstSpan(model).subspan(10, 3 * kPageSize)),
              -1);
    r = f->Read(model.size(), 100, IoMode::kNoBlock);  // at the end
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->eof);
    r = absl::StatusOr<CachedRead>();

    auto write = [&](uint64_t off, const Bytes& data) {
      ASSERT_TRUE(
          IsOk(f->Write(off, data, Stability::kUnstable, IoMode::kNoBlock)))
          << off;
      if (model.size() < off + data.size()) model.resize(off + data.size());
      std::copy(data.begin(), data.end(), model.begin() + off);
    };
    write(100, Pattern(50, 81));                   // pinned page: copied
    write(kPageSize + 5, Pattern(kPageSize, 82));  // cached pages, in place
    write(3 * kPageSize + 50, Pattern(2 * kPageSize, 83));  // crosses EOF
    write(8 * kPageSize, Pattern(2 * kPageSize, 84));       // whole new pages
    write(12 * kPageSize + 7, Pattern(10, 85));             // partial, past EOF
    EXPECT_EQ(f->size(), model.size());
    r = f->Read(0, 6 * kPageSize, IoMode::kNoBlock);  // pages 0..5 cached
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(
        FirstDiff(ToBytes(*r), absl::MakeConstSpan(model).first(6 * kPageSize)),
        -1);
    // Pages 6 and 7 are holes that were never read: a miss.
    EXPECT_TRUE(IsWouldBlock(f->Read(0, 1 << 20, IoMode::kNoBlock).status()));
  }
  const PageCacheStats after = cache.Stats();
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(after.writebacks_bytes, before.writebacks_bytes);
  EXPECT_EQ(after.cow_copies, before.cow_copies + 1);
  EXPECT_EQ(FirstDiff(ToBytes(*pin), Pattern(kPageSize, 80)), -1);
  pin = absl::StatusOr<CachedRead>();
  EXPECT_EQ(FirstDiff(ReadBytes(*f, 0, 1 << 20), model), -1);
  ASSERT_TRUE(IsOk(f->Commit()));
  EXPECT_EQ(FirstDiff(DiskContent(path), model), -1);
}

// Every rule of kNoBlock: WouldBlock before anything changes, and the same
// call with kMayBlock then succeeds.
TEST(PageCacheNoBlockTest, EachRuleGivesWouldBlockAndChangesNothing) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.max_pages = 32, .max_dirty_pages = 4});
  const std::string path = dir.File("r");
  FilePtr f = MustOpen(cache, path, Pattern(8 * kPageSize, 86));
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->Read(0, 2 * kPageSize).ok());  // pages 0, 1 cached
  ASSERT_TRUE(IsOk(f->Commit()));

  struct Case {
    const char* what;
    std::function<void()> setup;  // with kMayBlock, before the snapshot
    std::function<absl::Status(IoMode)> op;
  };
  const Bytes small = Pattern(100, 87);
  auto nothing = [] {};
  const std::vector<Case> cases = {
      {"read of an uncached page", nothing,
       [&](IoMode m) { return f->Read(kPageSize, 2 * kPageSize, m).status(); }},
      {"data-sync write", nothing,
       [&](IoMode m) { return f->Write(0, small, Stability::kDataSync, m); }},
      {"file-sync write", nothing,
       [&](IoMode m) { return f->Write(0, small, Stability::kFileSync, m); }},
      {"partial write of an uncached page inside the file", nothing,
       [&](IoMode m) {
         return f->Write(5 * kPageSize + 10, small, Stability::kUnstable, m);
       }},
      {"write that alone exceeds the dirty limit", nothing,
       [&](IoMode m) {
         return f->Write(0, Pattern(5 * kPageSize, 88), Stability::kUnstable,
                         m);
       }},
      {"write past the dirty limit",
       [&] {
         ASSERT_TRUE(IsOk(f->Write(10 * kPageSize, Pattern(4 * kPageSize, 89),
                                   Stability::kUnstable)));
       },
       [&](IoMode m) {
         return f->Write(20 * kPageSize, Pattern(kPageSize, 90),
                         Stability::kUnstable, m);
       }},
      {"truncate", nothing,
       [&](IoMode m) { return f->Truncate(30 * kPageSize, m); }},
      {"commit of dirty pages", nothing,
       [&](IoMode m) { return f->Commit(m); }},
      {"commit of pages written but not synced",
       [&] {
         // Alone over the dirty limit: written through, without a sync.
         ASSERT_TRUE(IsOk(
             f->Write(0, Pattern(6 * kPageSize, 91), Stability::kUnstable)));
         ASSERT_EQ(cache.Stats().dirty_pages, 0u);
       },
       [&](IoMode m) { return f->Commit(m); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    c.setup();
    const Snapshot before = Snap(cache, pool, *f);
    absl::Status s = c.op(IoMode::kNoBlock);
    EXPECT_TRUE(IsWouldBlock(s)) << s;
    EXPECT_TRUE(Snap(cache, pool, *f) == before);
    EXPECT_TRUE(IsOk(c.op(IoMode::kMayBlock)));
  }
  // Nothing left to do: Commit in kNoBlock is OK, without file I/O.
  NoFileIo no_io(*f, path);
  EXPECT_TRUE(IsOk(f->Commit(IoMode::kNoBlock)));
}

// Pages that can only come from dirty (or pinned) pages: kNoBlock gives
// WouldBlock; clean unpinned pages of other files it may evict.
TEST(PageCacheNoBlockTest, EvictsCleanPagesButNeverWritesBack) {
  TempDir dir;
  PagePool pool(64 * kPageSize);
  PageCache cache(pool, {.max_pages = 8, .max_dirty_pages = 8});
  const std::string pa = dir.File("a");
  FilePtr a = MustOpen(cache, pa);
  FilePtr b = MustOpen(cache, dir.File("b"), Pattern(4 * kPageSize, 92));
  ASSERT_TRUE(a != nullptr && b != nullptr);
  ASSERT_TRUE(b->Read(0, 4 * kPageSize).ok());  // 4 clean pages
  // Four new pages of a: four free, no eviction.
  ASSERT_TRUE(IsOk(a->Write(0, Pattern(4 * kPageSize, 93), Stability::kUnstable,
                            IoMode::kNoBlock)));
  // Two more: two of b's clean pages are evicted, in memory only.
  {
    NoFileIo no_io(*a, pa);
    ASSERT_TRUE(IsOk(a->Write(4 * kPageSize, Pattern(2 * kPageSize, 94),
                              Stability::kUnstable, IoMode::kNoBlock)));
  }
  EXPECT_EQ(cache.Stats().evictions, 2u);
  EXPECT_EQ(cache.Stats().pages, 8u);
  // b's two pages left, pinned by a reply.
  absl::StatusOr<CachedRead> pin =
      b->Read(2 * kPageSize, 2 * kPageSize, IoMode::kNoBlock);
  ASSERT_TRUE(pin.ok()) << pin.status();
  // Changing a pinned page needs a copy, and the only pages left are dirty
  // (a's) or pinned: WouldBlock, nothing changed.
  const Snapshot before = Snap(cache, pool, *b);
  absl::Status s = b->Write(2 * kPageSize, Pattern(10, 95),
                            Stability::kUnstable, IoMode::kNoBlock);
  EXPECT_TRUE(IsWouldBlock(s)) << s;
  EXPECT_TRUE(Snap(cache, pool, *b) == before);
  EXPECT_EQ(cache.Stats().dirty_pages, 6u);
  EXPECT_EQ(cache.Stats().writebacks_bytes, 0u);
  // kMayBlock writes a's pages back to make room.
  EXPECT_TRUE(
      IsOk(b->Write(2 * kPageSize, Pattern(10, 95), Stability::kUnstable)));
  EXPECT_GT(cache.Stats().writebacks_bytes, 0u);
}

TEST(PageCacheNoBlockTest, GetFileOpensOnlyInMayBlock) {
  TempDir dir;
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("g");
  CreateFile(path, Pattern(10, 96));
  int opens = 0;
  auto open_fd = [&]() -> absl::StatusOr<int> {
    ++opens;
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open");
    return fd;
  };
  absl::StatusOr<FilePtr> f =
      cache.GetFile(KeyOf(path), open_fd, IoMode::kNoBlock);
  EXPECT_TRUE(IsWouldBlock(f.status())) << f.status();
  EXPECT_EQ(opens, 0);
  EXPECT_EQ(cache.Stats().files, 0u);
  absl::StatusOr<FilePtr> g = cache.GetFile(KeyOf(path), open_fd);
  ASSERT_TRUE(g.ok()) << g.status();
  f = cache.GetFile(KeyOf(path), open_fd, IoMode::kNoBlock);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->get(), g->get());
  EXPECT_EQ(opens, 1);
  // A file opened O_RDONLY commits at once, in either mode.
  const std::string ro = dir.File("ro");
  CreateFile(ro, Pattern(10, 97));
  absl::StatusOr<FilePtr> r = Open(cache, ro, O_RDONLY);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(IsOk((*r)->Commit(IoMode::kNoBlock)));
}

// A file in `dir` (created empty) opened in `cache`.
FilePtr OpenIn(PageCache& cache, const std::string& dir,
               const std::string& name) {
  return MustOpen(cache, absl::StrCat(dir, "/", name));
}

// The limit learned is where the file system really stops: a write ending
// there works (through the cache, written through), one byte more is FBIG
// before anything is cached, and the same for Truncate.
TEST(PageCacheLimitsTest, MaxFileSizeIsWhereTheFileSystemStops) {
  TempDir dir;
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  const std::string path = dir.File("edge");
  FilePtr f = MustOpen(cache, path);
  ASSERT_NE(f, nullptr);
  const uint64_t max = f->max_file_size();
  struct statfs sfs;
  ASSERT_EQ(::fstatfs(f->fd(), &sfs), 0);
  if (sfs.f_type == EXT4_SUPER_MAGIC && sfs.f_bsize == 4096) {
    EXPECT_EQ(max, (uint64_t{1} << 44) - 4096);  // 16 TiB - 4 KiB
  }
  EXPECT_EQ(::lseek(f->fd(), 0, SEEK_CUR), 0);  // the probe left no trace
  // Another file of the same file system (checked against what the first
  // found, not searched again) gets the same limit.
  FilePtr g = MustOpen(cache, dir.File("edge2"));
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->max_file_size(), max);
  EXPECT_EQ(::lseek(g->fd(), 0, SEEK_CUR), 0);
  if (max == static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    GTEST_SKIP() << "no limit below the largest off_t here";
  }
  // The file system agrees (checked directly, on another file).
  {
    const std::string probe = dir.File("probe");
    UniqueFd fd(::open(probe.c_str(), O_RDWR | O_CREAT, 0644));
    ASSERT_TRUE(fd);
    const std::byte x{1};
    EXPECT_EQ(::pwrite(fd.get(), &x, 1, static_cast<off_t>(max - 1)), 1);
    EXPECT_EQ(::pwrite(fd.get(), &x, 1, static_cast<off_t>(max)), -1);
    EXPECT_EQ(errno, EFBIG);
    ::unlink(probe.c_str());
  }
  const Bytes tail = Pattern(10, 50);
  absl::Status s = f->Write(max - 9, tail, Stability::kUnstable);
  EXPECT_TRUE(IsFileTooLarge(s)) << s;
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ErrnoOf(s), EFBIG);
  s = f->Write(~uint64_t{0} - 5, tail, Stability::kUnstable);  // overflows
  EXPECT_TRUE(IsFileTooLarge(s)) << s;
  EXPECT_TRUE(IsFileTooLarge(f->Truncate(max + 1)));
  EXPECT_EQ(cache.Stats().pages, 0u);
  EXPECT_EQ(f->size(), 0u);

  ASSERT_TRUE(IsOk(f->Write(max - 10, tail, Stability::kFileSync)));
  EXPECT_EQ(f->size(), max);
  EXPECT_EQ(DiskSize(path), max);
  EXPECT_EQ(FirstDiff(ReadBytes(*f, max - 10, 100), tail), -1);
  ASSERT_TRUE(IsOk(f->Truncate(max)));
  ASSERT_TRUE(IsOk(f->Truncate(0)));
  EXPECT_EQ(DiskSize(path), 0u);
}

// tmpfs takes files up to the largest off_t (MAX_LFS_FILESIZE): the probe
// must not invent a smaller limit there.
TEST(PageCacheLimitsTest, TmpfsTakesAWriteAtTwoToTheFifty) {
  struct statfs sfs;
  if (::statfs("/dev/shm", &sfs) != 0 || sfs.f_type != TMPFS_MAGIC) {
    GTEST_SKIP() << "no tmpfs at /dev/shm";
  }
  char tmpl[] = "/dev/shm/page_cache_test.XXXXXX";
  UniqueFd tmp(::mkstemp(tmpl));
  ASSERT_TRUE(tmp);
  const std::string path = tmpl;
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  absl::StatusOr<FilePtr> f = Open(cache, path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->max_file_size(),
            static_cast<uint64_t>(std::numeric_limits<off_t>::max()));
  const uint64_t kFar = uint64_t{1} << 50;
  const Bytes data = Pattern(100, 51);
  EXPECT_TRUE(IsOk((*f)->Write(kFar, data, Stability::kFileSync)));
  EXPECT_EQ(DiskSize(path), kFar + data.size());
  EXPECT_EQ(FirstDiff(ReadBytes(**f, kFar, 1000), data), -1);
  ::unlink(path.c_str());
}

// RLIMIT_FSIZE is a limit too (past it a write raises SIGXFSZ, which would
// kill the server): writes past it are FBIG up front.
TEST(PageCacheLimitsTest, FileSizeRlimitIsALimit) {
  TempDir dir;
  PagePool pool(16 * kPageSize);
  PageCache cache(pool);
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit low = saved;
  low.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &low), 0);
  FilePtr f = OpenIn(cache, dir.File(""), "rl");
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->max_file_size(), uint64_t{1} << 20);
  EXPECT_TRUE(IsFileTooLarge(
      f->Write((1 << 20) - 1, Pattern(2, 52), Stability::kUnstable)));
  EXPECT_TRUE(
      IsOk(f->Write((1 << 20) - 2, Pattern(2, 52), Stability::kFileSync)));
  EXPECT_EQ(f->size(), uint64_t{1} << 20);
}

}  // namespace
}  // namespace txbuf
