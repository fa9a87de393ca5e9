#include "common/txbuf.h"

#include <sys/mman.h>

#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

std::string ToString(const TxBuf& t) {
  std::string s(t.size(), '\0');
  t.CopyTo({reinterpret_cast<std::byte*>(s.data()), s.size()});
  return s;
}

PageRef FilledPage(PagePool& pool, char c) {
  PageRef p = pool.Allocate();
  std::memset(p.data(), c, kPageSize);
  return p;
}

class TxBufTest : public ::testing::Test {
 protected:
  TxBufTest() { ctx_.set_options({.stage_threshold = 64}); }
  ~TxBufTest() override {
    EXPECT_EQ(stats_.pinned_bytes(), 0u);
    EXPECT_EQ(stats_.txbufs_in_flight(), 0u);
  }
  SlabAllocator slabs_;
  PagePool pool_{8 << 20};
  MemoryStats stats_;
  TxBufContext ctx_{slabs_, pool_, stats_};
};

TEST_F(TxBufTest, MixesEveryKindByteExact) {
  SlabCache* cache = slabs_.CreateCache("obj", 200);
  int external_released = 0;
  std::string ext(5000, 'E');
  int destructed = 0;
  {
    TxBufBuilder b(ctx_);
    b.AppendBytes("HDR:", 4);                     // buffered
    SlabObject small = SlabObject::Alloc(cache);  // staged (< 64)
    std::memcpy(small.data(), "small-object", 12);
    b.AppendSlab(std::move(small), 12);
    SlabObject big = SlabObject::Alloc(cache);  // referenced
    std::memset(big.data(), 'S', 200);
    b.AppendSlab(std::move(big), 200);
    b.AppendPage(FilledPage(pool_, 'P'), 100, 3000);  // referenced
    b.AppendExternal(ext.data(), ext.size(),
                     Deleter::FromCallable([&] { ++external_released; }));
    b.AppendBytes(":END", 4);
    absl::StatusOr<TxBuf> t = b.Finish([&](const TxBufCompletion& c) {
      ++destructed;
      EXPECT_EQ(c.bytes, 4u + 12 + 200 + 3000 + 5000 + 4);
      EXPECT_FALSE(c.submitted);
      // Every owner ran before the destructor.
      EXPECT_EQ(external_released, 1);
      EXPECT_EQ(cache->Stats().active_objects, 0u);
    });
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(cache->Stats().active_objects, 1u);  // the small one was freed
    std::string want = "HDR:small-object" + std::string(200, 'S') +
                       std::string(3000, 'P') + ext + ":END";
    EXPECT_EQ(ToString(*t), want);
    std::vector<SegmentKind> kinds;
    t->ForEachSegment(
        [&](const std::byte*, size_t, SegmentKind k) { kinds.push_back(k); });
    EXPECT_THAT(kinds, ::testing::ElementsAre(
                           SegmentKind::kBuffered, SegmentKind::kSlab,
                           SegmentKind::kPage, SegmentKind::kExternal,
                           SegmentKind::kBuffered));
    EXPECT_EQ(stats_.pinned_bytes(), want.size());
    EXPECT_EQ(destructed, 0);
    EXPECT_EQ(external_released, 0);
  }
  EXPECT_EQ(destructed, 1);
  EXPECT_EQ(external_released, 1);
  ctx_.ReleaseCachedPages();  // staging pages kept for reuse
  EXPECT_EQ(pool_.Stats().allocated_pages, 0u);
}

TEST_F(TxBufTest, AdjacentSmallAppendsShareOneStagedSegment) {
  TxBufBuilder b(ctx_);
  for (int i = 0; i < 100; ++i) b.AppendBytes("0123456789", 10);
  TxBuf t = *b.Finish();
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_EQ(t.SegmentCount(), 1u);
  EXPECT_EQ(pool_.Stats().allocated_pages, 1u);
}

TEST_F(TxBufTest, StagingSpillsAcrossPagesAndNodes) {
  TxBufBuilder b(ctx_);
  std::string want;
  std::mt19937 rng(7);
  // Interleave staged bytes and referenced pages so staging pages span many
  // nodes; the owner must be the last node using each page.
  for (int i = 0; i < 200; ++i) {
    std::string chunk(rng() % 3000 + 1, static_cast<char>('a' + i % 26));
    b.AppendBytes(chunk.data(), chunk.size());
    want += chunk;
    if (i % 3 == 0) {
      b.AppendPage(FilledPage(pool_, 'Z'), 0, kPageSize);
      want += std::string(kPageSize, 'Z');
    }
  }
  TxBuf t = *b.Finish();
  EXPECT_EQ(ToString(t), want);
  // Release from the front progressively and check the rest stays intact.
  size_t off = 0;
  while (!t.empty()) {
    size_t step = std::min<size_t>(t.size(), rng() % 20000 + 1);
    t.Advance(step);
    off += step;
    if (!t.empty()) {
      ASSERT_EQ(ToString(t), want.substr(off)) << "after advancing " << off;
    }
  }
  ctx_.ReleaseCachedPages();
  EXPECT_EQ(pool_.Stats().allocated_pages, 0u);
}

TEST_F(TxBufTest, DestructorRunsOnceAfterEveryCloneAndSlice) {
  int destructed = 0;
  TxBufBuilder b(ctx_);
  for (int i = 0; i < 40; ++i)
    b.AppendPage(FilledPage(pool_, 'a' + i), 0, kPageSize);
  TxBuf t = *b.Finish([&](const TxBufCompletion&) { ++destructed; });
  TxBuf c = t.Clone();
  TxBuf s = t.Slice(10 * kPageSize, 5 * kPageSize);
  EXPECT_EQ(s.size(), 5 * kPageSize);
  EXPECT_EQ(ToString(s), std::string(kPageSize, 'a' + 10) +
                             std::string(kPageSize, 'a' + 11) +
                             std::string(kPageSize, 'a' + 12) +
                             std::string(kPageSize, 'a' + 13) +
                             std::string(kPageSize, 'a' + 14));
  t.reset();
  EXPECT_EQ(destructed, 0);
  c.reset();
  EXPECT_EQ(destructed, 0);
  TxBuf moved = std::move(s);
  moved.reset();
  EXPECT_EQ(destructed, 1);
  moved.reset();
  EXPECT_EQ(destructed, 1);
}

TEST_F(TxBufTest, CloneTakesNoPageReferences) {
  TxBufBuilder b(ctx_);
  PageRef p = FilledPage(pool_, 'x');
  b.AppendPage(p.Share(), 0, kPageSize);
  TxBuf t = *b.Finish();
  EXPECT_EQ(p.use_count(), 2u);
  TxBuf c1 = t.Clone();
  TxBuf c2 = t.Clone();
  EXPECT_EQ(p.use_count(), 2u);  // clones pin the chain, not the page
  t.reset();
  c1.reset();
  EXPECT_EQ(p.use_count(), 2u);
  c2.reset();
  EXPECT_EQ(p.use_count(), 1u);
}

TEST_F(TxBufTest, APageSharedByTxbufsIsHeldOnce) {
  PageRef p = FilledPage(pool_, 'x');
  PageRef q = FilledPage(pool_, 'y');
  TxBufBuilder a(ctx_);
  a.AppendPage(p.Share(), 0, kPageSize);
  a.AppendPage(q.Share(), 100, 1000);
  TxBuf ta = *a.Finish();
  TxBufBuilder b(ctx_);
  b.AppendPage(p.Share(), 0, 2048);
  b.AppendPage(p.Share(), 2048, 2048);
  TxBuf tb = *b.Finish();
  // Three segments of p and one of q: two distinct pages held.
  EXPECT_EQ(pool_.tx_pages(), 2u);
  EXPECT_EQ(pool_.tx_segment_bytes(), kPageSize + 1000 + kPageSize);
  ta.reset();
  EXPECT_EQ(pool_.tx_pages(), 1u);
  EXPECT_EQ(pool_.tx_segment_bytes(), kPageSize);
  tb.reset();
  EXPECT_EQ(pool_.tx_pages(), 0u);
  EXPECT_EQ(pool_.tx_segment_bytes(), 0u);
  EXPECT_EQ(p.use_count(), 1u);
  EXPECT_EQ(q.use_count(), 1u);
}

TEST_F(TxBufTest, SlicePinsOnlyFromItsFirstNode) {
  // 64 pages = 4 nodes of 16. A slice of the last 10 pages keeps nodes 3..4.
  TxBufBuilder b(ctx_);
  std::vector<PageRef> pages;
  for (int i = 0; i < 64; ++i) {
    pages.push_back(FilledPage(pool_, 'p'));
    b.AppendPage(pages.back().Share(), 0, kPageSize);
  }
  int destructed = 0;
  TxBuf t = *b.Finish([&](const TxBufCompletion&) { ++destructed; });
  TxBuf tail = t.Slice(54 * kPageSize, 10 * kPageSize);
  EXPECT_EQ(stats_.pinned_bytes(), 64 * kPageSize);
  t.reset();
  // Nodes 0..2 (pages 0..47) are released; node 3 (pages 48..63) is pinned.
  for (int i = 0; i < 48; ++i) EXPECT_EQ(pages[i].use_count(), 1u) << i;
  for (int i = 48; i < 64; ++i) EXPECT_EQ(pages[i].use_count(), 2u) << i;
  EXPECT_EQ(stats_.pinned_bytes(), 16 * kPageSize);
  EXPECT_EQ(destructed, 0);
  tail.reset();
  EXPECT_EQ(destructed, 1);
  for (auto& p : pages) EXPECT_EQ(p.use_count(), 1u);
}

TEST_F(TxBufTest, AdvanceReleasesSentNodesProgressively) {
  TxBufBuilder b(ctx_);
  std::vector<PageRef> pages;
  for (int i = 0; i < 48; ++i) {
    pages.push_back(FilledPage(pool_, 'q'));
    b.AppendPage(pages.back().Share(), 0, kPageSize);
  }
  TxBuf t = *b.Finish();
  t.Advance(16 * kPageSize);  // node 0 fully passed
  EXPECT_EQ(pages[0].use_count(), 1u);
  EXPECT_EQ(pages[15].use_count(), 1u);
  EXPECT_EQ(pages[16].use_count(), 2u);
  EXPECT_EQ(stats_.pinned_bytes(), 32 * kPageSize);
  t.Advance(kPageSize / 2);  // inside node 1: nothing more released
  EXPECT_EQ(pages[16].use_count(), 2u);
}

TEST_F(TxBufTest, FillIovecsCoversAnyRange) {
  TxBufBuilder b(ctx_);
  std::string want;
  std::mt19937 rng(99);
  for (int i = 0; i < 60; ++i) {
    if (rng() % 2) {
      std::string s(rng() % 200 + 1, static_cast<char>('A' + i % 26));
      b.AppendBytes(s.data(), s.size());
      want += s;
    } else {
      size_t off = rng() % 1000, len = rng() % 3000 + 64;
      PageRef p = pool_.Allocate();
      for (size_t k = 0; k < kPageSize; ++k) {
        p.data()[k] = static_cast<std::byte>(rng());
      }
      want.append(reinterpret_cast<const char*>(p.data()) + off,
                  std::min(len, kPageSize - off));
      b.AppendPage(std::move(p), off, len);
    }
  }
  TxBuf t = *b.Finish();
  ASSERT_EQ(t.size(), want.size());
  for (int trial = 0; trial < 300; ++trial) {
    size_t a = rng() % want.size();
    size_t len = rng() % (want.size() - a) + 1;
    TxBuf view = t.Slice(a, len);
    size_t from = rng() % len;
    const size_t start = from;
    iovec iov[8];
    std::string got;
    while (from < len) {
      size_t bytes = 0;
      size_t n = view.FillIovecs(from, absl::MakeSpan(iov), &bytes);
      ASSERT_GT(n, 0u);
      ASSERT_LE(n, 8u);
      for (size_t i = 0; i < n; ++i) {
        got.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      }
      from += bytes;
    }
    ASSERT_EQ(got, want.substr(a + start, len - start));
  }
}

TEST_F(TxBufTest, AppendBufferedWritesInPlace) {
  TxBufBuilder b(ctx_);
  absl::Span<std::byte> s = b.AppendBuffered(5);
  ASSERT_EQ(s.size(), 5u);
  std::memcpy(s.data(), "hello", 5);
  b.AppendBytes(" world", 6);
  TxBuf t = *b.Finish();
  EXPECT_EQ(ToString(t), "hello world");
  EXPECT_EQ(t.SegmentCount(), 1u);
}

TEST_F(TxBufTest, StagingPagesAreReusedOnThisThread) {
  for (int i = 0; i < 100; ++i) {
    TxBufBuilder b(ctx_);
    b.AppendBytes("reply header", 12);
    TxBuf t = *b.Finish();
  }
  // One page went round 100 times instead of 100 trips to the pool.
  EXPECT_EQ(ctx_.cached_pages(), 1u);
  EXPECT_EQ(pool_.Stats().high_water_pages, 1u);
  ctx_.ReleaseCachedPages();
  EXPECT_EQ(pool_.Stats().allocated_pages, 0u);
}

TEST_F(TxBufTest, EmptyMessageStillRunsItsDestructor) {
  int destructed = 0;
  TxBufBuilder b(ctx_);
  TxBuf t = *b.Finish([&](const TxBufCompletion& c) {
    ++destructed;
    EXPECT_EQ(c.bytes, 0u);
  });
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(t);
  t.reset();
  EXPECT_EQ(destructed, 1);
}

TEST_F(TxBufTest, PoolExhaustionFailsCleanly) {
  PagePool tiny(2 * kPageSize);
  TxBufContext ctx(slabs_, tiny, stats_, {.stage_threshold = 64});
  SlabCache* cache = slabs_.CreateCache("oom", 128);
  int released = 0;
  static char ext[1000];
  {
    TxBufBuilder b(ctx);
    b.AppendSlab(SlabObject::Alloc(cache), 128);
    b.AppendExternal(ext, sizeof(ext),
                     Deleter::FromCallable([&] { ++released; }));
    PageRef keep = tiny.Allocate();
    std::string big(3 * kPageSize, 'x');  // needs 3 staging pages; 1 left
    b.AppendBytes(big.data(), big.size());
    EXPECT_FALSE(b.ok());
    absl::StatusOr<TxBuf> t = b.Finish();
    EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(released, 1);
  EXPECT_EQ(cache->Stats().active_objects, 0u);
  ctx.ReleaseCachedPages();
  EXPECT_EQ(tiny.Stats().allocated_pages, 0u);
}

TEST_F(TxBufTest, HugeSegmentsAreSplitIntoPieces) {
  // 3 GiB of address space, never touched: only pointers are compared.
  size_t len = size_t{3} << 30;
  void* p = mmap(nullptr, len, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  int released = 0;
  {
    TxBufBuilder b(ctx_);
    b.AppendExternal(p, len, Deleter::FromCallable([&] { ++released; }));
    TxBuf t = *b.Finish();
    EXPECT_EQ(t.size(), len);
    EXPECT_EQ(t.SegmentCount(), 3u);
    iovec iov[4];
    size_t bytes = 0;
    EXPECT_EQ(t.FillIovecs(0, absl::MakeSpan(iov), &bytes), 3u);
    EXPECT_EQ(bytes, len);
    EXPECT_EQ(iov[1].iov_base, static_cast<char*>(p) + (size_t{1} << 30));
    t.Advance(len - 1);
    EXPECT_EQ(released, 0);
  }
  EXPECT_EQ(released, 1);
  munmap(p, len);
}

TEST_F(TxBufTest, ThresholdZeroReferencesEverything) {
  ctx_.set_options({.stage_threshold = 0});
  SlabCache* cache = slabs_.CreateCache("z", 32);
  TxBufBuilder b(ctx_);
  b.AppendSlab(SlabObject::Alloc(cache), 8);
  TxBuf t = *b.Finish();
  std::vector<SegmentKind> kinds;
  t.ForEachSegment(
      [&](const std::byte*, size_t, SegmentKind k) { kinds.push_back(k); });
  EXPECT_THAT(kinds, ::testing::ElementsAre(SegmentKind::kSlab));
  EXPECT_EQ(cache->Stats().active_objects, 1u);
}

}  // namespace
}  // namespace txbuf
