#include "common/page_pool.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

TEST(PagePoolTest, SharedPagesCountOnlyWhileTheyAreAlsoCached) {
  PagePool pool(16 * kPageSize);
  PageRef loose = pool.Allocate();
  PageRef loose_reader = loose.Share();  // not cached: not counted
  EXPECT_EQ(pool.cached_pinned_pages(), 0u);

  auto held = std::make_unique<PageRef::Cached>(pool.Allocate());
  EXPECT_EQ(held->use_count(), 1u);
  EXPECT_EQ(pool.cached_pinned_pages(), 0u);
  PageRef a = held->Share();
  PageRef b = held->Share();
  EXPECT_EQ(held->use_count(), 3u);           // the cached bit is not a ref
  EXPECT_EQ(pool.cached_pinned_pages(), 1u);  // once, however many readers
  a.reset();
  EXPECT_EQ(pool.cached_pinned_pages(), 1u);
  b.reset();
  EXPECT_EQ(pool.cached_pinned_pages(), 0u);

  // A page already shared when it is cached, and still shared when it
  // leaves the cache.
  PageRef page = pool.Allocate();
  PageRef reader = page.Share();
  held = std::make_unique<PageRef::Cached>(std::move(page));
  EXPECT_EQ(pool.cached_pinned_pages(), 1u);
  held.reset();
  EXPECT_EQ(pool.cached_pinned_pages(), 0u);
  EXPECT_EQ(reader.use_count(), 1u);
  reader.reset();
  EXPECT_EQ(pool.Stats().allocated_pages, 1u);  // `loose` and its reader
}

TEST(PagePoolTest, CachedPinnedPagesIsExactUnderConcurrentReadersAndEviction) {
  constexpr int kPages = 8;
  PagePool pool(64 * kPageSize);
  std::vector<std::unique_ptr<PageRef::Cached>> cache(kPages);
  for (auto& c : cache) c = std::make_unique<PageRef::Cached>(pool.Allocate());
  // Readers take a reference under the lock (as a READ under its file's
  // lock) and drop it outside, racing with this thread taking pages out of
  // the cache and putting them back (eviction, a copy-on-write). Each
  // reader holds at most one reference, so pages go 1 <-> 2 references:
  // the pinned/unpinned edges race with the cached bit changing.
  absl::Mutex mu;
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      for (int i = t; !stop.load(std::memory_order_relaxed); ++i) {
        PageRef r;
        {
          absl::MutexLock l(&mu);
          r = cache[i % kPages]->Share();
        }
        r.reset();
      }
    });
  }
  for (int round = 0; round < 20000; ++round) {
    absl::MutexLock l(&mu);
    const int i = round % kPages;
    PageRef page = cache[i]->Share();
    cache[i].reset();  // out of the cache
    if (round % 3 != 0) {
      cache[i] = std::make_unique<PageRef::Cached>(std::move(page));
    } else {  // a copy-on-write: a new page takes its place
      cache[i] = std::make_unique<PageRef::Cached>(pool.Allocate());
    }
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(pool.cached_pinned_pages(), 0u);  // nobody else holds a page
  std::vector<PageRef> readers_refs;
  for (auto& c : cache) readers_refs.push_back(c->Share());
  EXPECT_EQ(pool.cached_pinned_pages(), static_cast<uint64_t>(kPages));
  cache.clear();
  EXPECT_EQ(pool.cached_pinned_pages(), 0u);
  readers_refs.clear();
  EXPECT_EQ(pool.Stats().allocated_pages, 0u);
}

}  // namespace
}  // namespace txbuf
