// deleter_test.cc: Deleter (typed owners held inline, callables) and
// OwnedBytes: each release runs exactly once, and the common kinds never
// allocate.
#include "common/deleter.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/owned_bytes.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "gtest/gtest.h"

// Counts heap allocations of this test binary (operator new), so a test can
// check that making and moving a Deleter allocates nothing.
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// (Not inlined: GCC's -Wmismatched-new-delete would take the inlined free()
// for a mismatch with `new`.)
[[gnu::noinline]] void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

namespace txbuf {
namespace {

static_assert(sizeof(Deleter) == 3 * sizeof(void*));

// An owner whose destructor counts; two words, opted in to be held inline.
class CountingOwner {
 public:
  using TriviallyRelocatable = void;
  CountingOwner(int* runs, int tag) : runs_(runs), tag_(tag) {}
  CountingOwner(CountingOwner&& o) noexcept
      : runs_(std::exchange(o.runs_, nullptr)), tag_(o.tag_) {}
  CountingOwner& operator=(CountingOwner&&) = delete;
  ~CountingOwner() {
    if (runs_ != nullptr) *runs_ += tag_;
  }

 private:
  int* runs_;
  int tag_;
};

static_assert(Deleter::kFitsInline<CountingOwner>);
static_assert(Deleter::kFitsInline<std::unique_ptr<std::string>>);
static_assert(Deleter::kFitsInline<PageRef>);
static_assert(Deleter::kFitsInline<SlabObject>);
// Not trivially relocatable (libstdc++'s std::string points into itself).
static_assert(!Deleter::kFitsInline<std::string>);

TEST(DeleterTest, OfRunsTheOwnersDestructorOnceWhereverItWasMoved) {
  int runs = 0;
  {
    Deleter a = Deleter::Of(CountingOwner(&runs, 1));
    EXPECT_TRUE(a);
    EXPECT_EQ(runs, 0);
    Deleter b = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): checks the move
    std::vector<Deleter> v;
    v.push_back(std::move(b));
    for (int i = 0; i < 100; ++i) v.push_back(Deleter());  // reallocations
    EXPECT_EQ(runs, 0);
  }
  EXPECT_EQ(runs, 1);
}

TEST(DeleterTest, ReleaseRunsNowAndOnlyOnce) {
  int runs = 0;
  Deleter d = Deleter::Of(CountingOwner(&runs, 1));
  d.Release();
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(d);
  d.Release();
  EXPECT_EQ(runs, 1);
}

TEST(DeleterTest, AssigningReleasesTheOldOwnerFirst) {
  int runs = 0;
  Deleter d = Deleter::Of(CountingOwner(&runs, 1));
  d = Deleter::Of(CountingOwner(&runs, 10));
  EXPECT_EQ(runs, 1);
  d = Deleter();
  EXPECT_EQ(runs, 11);
}

TEST(DeleterTest, CommonKindsAllocateNothing) {
  int runs = 0;
  auto heap = std::make_unique<std::string>(100, 'x');
  PagePool pool(1 << 20);
  PageRef page = pool.Allocate();
  ASSERT_TRUE(page);
  SlabAllocator slabs;
  SlabCache* cache = slabs.CreateCache("deleter_test", 64);
  SlabObject obj = SlabObject::Alloc(cache);
  ASSERT_TRUE(obj);
  {
    std::vector<Deleter> held;
    held.reserve(8);
    const uint64_t before = g_allocations.load();
    held.push_back(Deleter::Of(CountingOwner(&runs, 1)));
    held.push_back(Deleter::Of(std::move(heap)));
    held.push_back(std::move(page).ToDeleter());
    held.push_back(std::move(obj).ToDeleter());
    held.push_back(Deleter::FromCallable([&runs] { runs += 100; }));
    Deleter moved = std::move(held.front());
    held.front() = std::move(moved);
    EXPECT_EQ(g_allocations.load(), before);
    EXPECT_EQ(runs, 0);
  }
  EXPECT_EQ(runs, 101);
  EXPECT_EQ(cache->Stats().active_objects, 0u);
  EXPECT_EQ(pool.Stats().allocated_pages, 0u);
}

TEST(DeleterTest, BigCallablesGoToTheHeapAndRunOnce) {
  int runs = 0;
  auto big = std::make_unique<std::vector<int>>(1000, 7);
  const uint64_t before = g_allocations.load();
  Deleter d = Deleter::FromCallable([&runs, b = std::move(big)]() mutable {
    runs += static_cast<int>(b->size());
    b.reset();
  });
  EXPECT_GT(g_allocations.load(), before);  // the callable moved to the heap
  Deleter e = std::move(d);
  EXPECT_EQ(runs, 0);
  e.Release();
  EXPECT_EQ(runs, 1000);
}

TEST(DeleterTest, PageToTxDeleterCountsTheSegmentUntilReleased) {
  PagePool pool(1 << 20);
  PageRef page = pool.Allocate();
  PageRef other = page.Share();
  EXPECT_EQ(page.use_count(), 2u);
  Deleter a = std::move(page).ToTxDeleter(100);
  Deleter b = std::move(other).ToTxDeleter(50);
  EXPECT_EQ(pool.tx_pages(), 1u);  // one page, two segments
  EXPECT_EQ(pool.tx_segment_bytes(), 150u);
  Deleter moved = std::move(a);
  moved.Release();
  EXPECT_EQ(pool.tx_pages(), 1u);
  EXPECT_EQ(pool.tx_segment_bytes(), 50u);
  EXPECT_EQ(pool.Stats().allocated_pages, 1u);
  b.Release();
  EXPECT_EQ(pool.tx_pages(), 0u);
  EXPECT_EQ(pool.tx_segment_bytes(), 0u);
  EXPECT_EQ(pool.Stats().allocated_pages, 0u);
}

TEST(OwnedBytesTest, KeepsTheBytesUntilReleasedOnce) {
  int runs = 0;
  static const char kText[] = "borrowed bytes";
  {
    OwnedBytes b({reinterpret_cast<const std::byte*>(kText), sizeof(kText) - 1},
                 Deleter::Of(CountingOwner(&runs, 1)));
    EXPECT_EQ(b.size(), sizeof(kText) - 1);
    OwnedBytes c = std::move(b);
    EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(c.data(), reinterpret_cast<const std::byte*>(kText));
    EXPECT_EQ(runs, 0);
  }
  EXPECT_EQ(runs, 1);
}

TEST(OwnedBytesTest, OfAStringMovesItWithoutCopyingTheBytes) {
  std::string s(5000, 'q');
  const char* where = s.data();
  OwnedBytes b = OwnedBytes::Of(std::move(s));
  EXPECT_EQ(reinterpret_cast<const char*>(b.data()), where);
  EXPECT_EQ(b.size(), 5000u);
  Deleter owner = std::move(b).TakeOwner();
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(owner);
}

}  // namespace
}  // namespace txbuf
