// page_pool.h: 4 KiB pages from one arena, shared by reference count.
//
// Pages hold file data in the page cache and small staged bytes of txbufs.
// They come from one mmap'd arena so the io_uring engine can register the
// whole arena as a fixed buffer. A `PageRef` is a counted reference; the page
// returns to the pool when the last reference goes. A page with more than one
// reference is "pinned" for writers: the page cache copies it before changing
// it (stable pages, see docs/ARCHITECTURE.md).
//
// Thread-safety: thread-safe. References may be taken and dropped on any
// thread; allocation takes a mutex.
//
// Example:
//   txbuf::PagePool pool(64 << 20);          // 64 MiB arena
//   txbuf::PageRef page = pool.Allocate();   // refcount 1
//   std::memcpy(page.data(), src, 4096);
//   txbuf::PageRef pin = page.Share();       // refcount 2: pinned
//   // ... page goes back to the pool after both references are dropped.
#ifndef TXBUF_COMMON_PAGE_POOL_H_
#define TXBUF_COMMON_PAGE_POOL_H_

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/deleter.h"

namespace txbuf {

inline constexpr size_t kPageSize = 4096;

class PagePool;

// Page::refs: set while a page cache holds the page (PageRef::Cached).
inline constexpr uint32_t kPageCachedBit = 1u << 31;
inline constexpr uint32_t kPageRefMask = kPageCachedBit - 1;

// Metadata of one arena page (the data lives in the arena).
struct Page {
  // The reference count (kPageRefMask) and kPageCachedBit, in one word so
  // that a reference taken or dropped and the page entering or leaving a
  // cache are ordered: PagePool::cached_pinned_pages() is exact whenever no
  // such change is under way.
  std::atomic<uint32_t> refs{0};
  // References held by txbuf segments (PageRef::ToTxDeleter), a subset of
  // `refs`: the page is held by txbufs while it is not zero.
  std::atomic<uint32_t> tx_pins{0};
  PagePool* pool = nullptr;
  std::byte* data = nullptr;
};

// One counted reference to a page: move-only; its destructor drops the
// reference. Share() takes another reference, explicitly.
class PageRef {
 public:
  PageRef() = default;
  // Adopts one reference already taken on `page`.
  static PageRef Adopt(Page* page) { return PageRef(page); }

  PageRef(const PageRef&) = delete;
  PageRef& operator=(const PageRef&) = delete;
  PageRef(PageRef&& o) noexcept : page_(std::exchange(o.page_, nullptr)) {}
  PageRef& operator=(PageRef&& o) noexcept {
    if (this != &o) {
      reset();
      page_ = std::exchange(o.page_, nullptr);
    }
    return *this;
  }
  ~PageRef() { reset(); }

  // Another reference to the same page (empty if this one is empty).
  PageRef Share() const;

  void reset();
  std::byte* data() const { return page_->data; }
  Page* get() const { return page_; }
  uint32_t use_count() const {
    return page_ ? page_->refs.load(std::memory_order_acquire) & kPageRefMask
                 : 0;
  }
  explicit operator bool() const { return page_ != nullptr; }

  // Gives up this reference to the caller, who must drop it with Unref().
  Page* release() { return std::exchange(page_, nullptr); }

  // Gives up this reference to a Deleter that drops it.
  Deleter ToDeleter() && { return Deleter::Of(std::move(*this)); }

  // Gives up this reference to a txbuf segment of `len` bytes of the page:
  // the pool counts the page as held by txbufs (once, however many segments
  // reference it) until the returned Deleter runs.
  Deleter ToTxDeleter(size_t len) &&;

  // Drops one reference on `page`.
  static void Unref(Page* page);

  // One word, no pointer into itself: Deleter::Of holds it inline.
  using TriviallyRelocatable = void;

  // A cache's reference: while it lives, the page counts as cached, and
  // as pinned in PagePool::cached_pinned_pages() whenever anyone else holds
  // a reference too. A page is in at most one cache at a time.
  //
  // Example:
  //   PageRef::Cached held(pool.Allocate());  // cached, not pinned
  //   PageRef reader = held.Share();          // pinned
  //   reader.reset();                         // not pinned
  class Cached;

 private:
  // What ToTxDeleter's Deleter holds (below).
  class TxPin;

  explicit PageRef(Page* page) : page_(page) {}
  Page* page_ = nullptr;
};

// A page reference held by a txbuf segment of `len` bytes: counted in the
// pool's tx_pages / tx_segment_bytes while it lives.
class PageRef::TxPin {
 public:
  using TriviallyRelocatable = void;
  TxPin(PageRef page, size_t len);
  TxPin(TxPin&& o) noexcept = default;
  TxPin& operator=(TxPin&&) = delete;
  ~TxPin();

 private:
  PageRef page_;
  size_t len_;
};

class PageRef::Cached {
 public:
  explicit Cached(PageRef page);
  Cached(const Cached&) = delete;
  Cached& operator=(const Cached&) = delete;
  ~Cached();
  // As PageRef's.
  PageRef Share() const { return page_.Share(); }
  std::byte* data() const { return page_.data(); }
  Page* get() const { return page_.get(); }
  uint32_t use_count() const { return page_.use_count(); }

 private:
  PageRef page_;
};

struct PagePoolStats {
  uint64_t capacity_pages = 0;
  uint64_t allocated_pages = 0;  // pages with at least one reference.
  uint64_t high_water_pages = 0;
  uint64_t tx_pages = 0;          // distinct pages held by txbuf segments.
  uint64_t tx_segment_bytes = 0;  // bytes of those segments (a page shared by
                                  // N segments counts N times here).
};

class PagePool {
 public:
  // Reserves an arena of `capacity_bytes` (rounded up to pages). Memory is
  // committed as pages are first used.
  explicit PagePool(size_t capacity_bytes);
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  // A page with one reference, or an empty PageRef if the arena is full.
  PageRef Allocate();

  // The arena, for io_uring buffer registration.
  iovec arena() const { return {arena_, capacity_ * kPageSize}; }
  bool Contains(const void* p, size_t len) const {
    auto* b = static_cast<const std::byte*>(p);
    auto* a = static_cast<const std::byte*>(arena_);
    return b >= a && b + len <= a + capacity_ * kPageSize;
  }

  PagePoolStats Stats() const;
  // Stats().tx_pages and tx_segment_bytes, cheaply.
  uint64_t tx_pages() const {
    return tx_pages_.load(std::memory_order_relaxed);
  }
  uint64_t tx_segment_bytes() const {
    return tx_segment_bytes_.load(std::memory_order_relaxed);
  }
  // Pages held by a PageRef::Cached and by at least one other reference
  // (readers, txbuf segments): "pinned" cached pages. O(1).
  uint64_t cached_pinned_pages() const {
    // Two racing edges may apply their -1 before the other's +1: the
    // counter can dip below zero for that instant.
    const int64_t n = cached_pinned_.load(std::memory_order_relaxed);
    return n > 0 ? static_cast<uint64_t>(n) : 0;
  }

 private:
  friend class PageRef;
  void Free(Page* page);

  void* arena_ = nullptr;
  size_t capacity_ = 0;
  std::unique_ptr<Page[]> pages_;
  mutable std::mutex mu_;
  std::vector<uint32_t> free_;  // indices of free pages (LIFO: warm first).
  size_t never_used_ = 0;       // pages [never_used_, capacity_) untouched.
  std::atomic<uint64_t> allocated_{0};
  std::atomic<uint64_t> high_water_{0};
  std::atomic<uint64_t> tx_pages_{0};
  std::atomic<uint64_t> tx_segment_bytes_{0};
  std::atomic<int64_t> cached_pinned_{0};
};

inline PageRef PageRef::Share() const {
  if (page_ != nullptr && page_->refs.fetch_add(1, std::memory_order_relaxed) ==
                              (kPageCachedBit | 1)) {
    page_->pool->cached_pinned_.fetch_add(1, std::memory_order_relaxed);
  }
  return PageRef(page_);
}

inline PageRef::Cached::Cached(PageRef page) : page_(std::move(page)) {
  Page* p = page_.get();
  if (p != nullptr &&
      (p->refs.fetch_or(kPageCachedBit, std::memory_order_acq_rel) &
       kPageRefMask) >= 2) {
    p->pool->cached_pinned_.fetch_add(1, std::memory_order_relaxed);
  }
}

inline PageRef::Cached::~Cached() {
  Page* p = page_.get();
  if (p != nullptr &&
      (p->refs.fetch_and(~kPageCachedBit, std::memory_order_acq_rel) &
       kPageRefMask) >= 2) {
    p->pool->cached_pinned_.fetch_sub(1, std::memory_order_relaxed);
  }
  // page_ drops the cache's reference now.
}

inline void PageRef::reset() {
  if (page_ != nullptr) Unref(std::exchange(page_, nullptr));
}

inline PageRef::TxPin::TxPin(PageRef page, size_t len)
    : page_(std::move(page)), len_(len) {
  PagePool* pool = page_.get()->pool;
  if (page_.get()->tx_pins.fetch_add(1, std::memory_order_acq_rel) == 0) {
    pool->tx_pages_.fetch_add(1, std::memory_order_relaxed);
  }
  pool->tx_segment_bytes_.fetch_add(len_, std::memory_order_relaxed);
}

inline PageRef::TxPin::~TxPin() {
  if (!page_) return;  // moved from
  PagePool* pool = page_.get()->pool;
  pool->tx_segment_bytes_.fetch_sub(len_, std::memory_order_relaxed);
  if (page_.get()->tx_pins.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    pool->tx_pages_.fetch_sub(1, std::memory_order_relaxed);
  }
  // page_ drops its reference now.
}

inline Deleter PageRef::ToTxDeleter(size_t len) && {
  return Deleter::Of(TxPin(std::move(*this), len));
}

inline void PageRef::Unref(Page* page) {
  const uint32_t old = page->refs.fetch_sub(1, std::memory_order_acq_rel);
  if (old == 1) {
    page->pool->Free(page);
  } else if (old == (kPageCachedBit | 2)) {
    page->pool->cached_pinned_.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace txbuf

#endif  // TXBUF_COMMON_PAGE_POOL_H_
