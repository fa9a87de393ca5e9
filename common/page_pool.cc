#include "common/page_pool.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>

namespace txbuf {

PagePool::PagePool(size_t capacity_bytes)
    : capacity_((capacity_bytes + kPageSize - 1) / kPageSize) {
  if (capacity_ == 0) capacity_ = 1;
  arena_ = mmap(nullptr, capacity_ * kPageSize, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (arena_ == MAP_FAILED) {
    std::perror("txbuf: PagePool arena mmap");
    std::abort();
  }
  pages_ = std::make_unique<Page[]>(capacity_);
  for (size_t i = 0; i < capacity_; ++i) {
    pages_[i].pool = this;
    pages_[i].data = static_cast<std::byte*>(arena_) + i * kPageSize;
  }
}

PagePool::~PagePool() {
  if (allocated_.load() != 0) {
    std::fprintf(stderr, "txbuf: PagePool destroyed with %llu pages in use\n",
                 static_cast<unsigned long long>(allocated_.load()));
    std::abort();
  }
  munmap(arena_, capacity_ * kPageSize);
}

PageRef PagePool::Allocate() {
  Page* page;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      page = &pages_[free_.back()];
      free_.pop_back();
    } else if (never_used_ < capacity_) {
      page = &pages_[never_used_++];
    } else {
      return PageRef();
    }
  }
  page->refs.store(1, std::memory_order_relaxed);
  uint64_t n = allocated_.fetch_add(1, std::memory_order_relaxed) + 1;
  uint64_t hw = high_water_.load(std::memory_order_relaxed);
  while (n > hw && !high_water_.compare_exchange_weak(hw, n)) {
  }
  return PageRef::Adopt(page);
}

void PagePool::Free(Page* page) {
  allocated_.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(static_cast<uint32_t>(page - pages_.get()));
}

PagePoolStats PagePool::Stats() const {
  PagePoolStats st;
  st.capacity_pages = capacity_;
  st.allocated_pages = allocated_.load(std::memory_order_relaxed);
  st.high_water_pages = high_water_.load(std::memory_order_relaxed);
  st.tx_pages = tx_pages();
  st.tx_segment_bytes = tx_segment_bytes();
  return st;
}

}  // namespace txbuf
