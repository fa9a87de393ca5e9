// slab.h: kmalloc-like slab caches for the small objects of compound replies.
//
// A `SlabCache` hands out fixed-size objects carved from larger slabs (like a
// kernel kmem_cache). A `SlabAllocator` owns the kmalloc-style size classes
// (32 B .. 8 KiB) and any named caches, and prints its statistics like
// /proc/slabinfo. Empty slabs go back to the system (one spare is kept unless
// `Shrink()` is called). In debug builds (no NDEBUG) a double free, a free of a
// pointer that is not a live object of the cache, use from a second thread,
// and destroying a cache with live objects all abort with a message.
//
// Thread-safety: thread-compatible. Each event-loop thread owns its
// allocator (shard per thread, as in Seastar); objects are allocated and
// freed on that thread. Statistics may be read from any thread.
//
// Example:
//   txbuf::SlabAllocator slabs;
//   txbuf::SlabCache* attrs = slabs.CreateCache("attr_reply", 112);
//   txbuf::SlabObject obj = txbuf::SlabObject::Alloc(attrs);
//   std::memcpy(obj.data(), bytes, 112);
//   void* p = slabs.Kmalloc(300);  // from the 384-byte size class
//   slabs.Kfree(p);
//   std::cout << slabs.SlabInfo();
#ifndef TXBUF_COMMON_SLAB_H_
#define TXBUF_COMMON_SLAB_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/deleter.h"
#include "common/relaxed_counter.h"

namespace txbuf {

// A snapshot of one cache's statistics.
struct SlabCacheStats {
  std::string name;
  size_t object_size = 0;  // bytes per object as requested (rounded).
  size_t objects_per_slab = 0;
  size_t slab_bytes = 0;
  uint64_t active_objects = 0;  // handed out and not yet freed.
  uint64_t total_objects = 0;   // capacity of all slabs held.
  uint64_t slabs = 0;           // slabs held (including the spare).
  uint64_t allocs = 0;          // lifetime allocations.
  uint64_t frees = 0;           // lifetime frees.
};

namespace internal {
struct SlabHeader;
}  // namespace internal

class SlabCache {
 public:
  // Objects of `object_size` bytes (rounded up to 16) from slabs of
  // `slab_bytes` (a power of two; 0 picks one that holds >= 8 objects).
  SlabCache(std::string name, size_t object_size, size_t slab_bytes = 0);
  ~SlabCache();
  SlabCache(const SlabCache&) = delete;
  SlabCache& operator=(const SlabCache&) = delete;

  // Returns an object of object_size() bytes, 16-byte aligned, or nullptr if
  // the system is out of memory.
  void* Alloc();

  // Returns `p`, which must come from Alloc() of this cache.
  void Free(void* p);

  // Returns every empty slab to the system (like kmem_cache_shrink).
  void Shrink();

  // True if `p` lies inside a slab of this cache (any object state).
  bool Owns(const void* p) const;

  size_t object_size() const { return object_size_; }
  const std::string& name() const { return name_; }
  SlabCacheStats Stats() const;

  // The cache that owns the slab containing `p`, for slabs of `slab_bytes`.
  // `p` must be a live object of some cache with that slab size.
  static SlabCache* FromObject(const void* p, size_t slab_bytes);

 private:
  internal::SlabHeader* NewSlab();
  void ReleaseSlab(internal::SlabHeader* slab);
  void CheckThread();

  const std::string name_;
  const size_t object_size_;
  const size_t slab_bytes_;
  size_t objects_per_slab_ = 0;
  size_t first_object_offset_ = 0;

  // Slab lists: partial (some free objects), full, and one spare empty slab.
  internal::SlabHeader* partial_ = nullptr;
  internal::SlabHeader* full_ = nullptr;
  internal::SlabHeader* spare_ = nullptr;

  RelaxedCounter active_;
  RelaxedCounter slabs_;
  RelaxedCounter allocs_;
  RelaxedCounter frees_;

#ifndef NDEBUG
  absl::flat_hash_set<uintptr_t> slab_set_;  // for foreign-pointer checks.
  std::thread::id owner_;
#endif
};

// A move-only owner of one slab object; its destructor frees the object.
class SlabObject {
 public:
  SlabObject() = default;
  SlabObject(SlabCache* cache, void* p) : cache_(cache), p_(p) {}

  // Allocates from `cache`; empty (operator bool false) when out of memory.
  static SlabObject Alloc(SlabCache* cache) {
    return SlabObject(cache, cache->Alloc());
  }

  SlabObject(const SlabObject&) = delete;
  SlabObject& operator=(const SlabObject&) = delete;
  SlabObject(SlabObject&& o) noexcept
      : cache_(o.cache_), p_(std::exchange(o.p_, nullptr)) {}
  SlabObject& operator=(SlabObject&& o) noexcept {
    if (this != &o) {
      reset();
      cache_ = o.cache_;
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~SlabObject() { reset(); }

  void reset() {
    if (p_ != nullptr) cache_->Free(std::exchange(p_, nullptr));
  }
  std::byte* data() const { return static_cast<std::byte*>(p_); }
  size_t capacity() const { return p_ ? cache_->object_size() : 0; }
  SlabCache* cache() const { return cache_; }
  explicit operator bool() const { return p_ != nullptr; }

  // Gives up ownership to a Deleter that frees the object.
  Deleter ToDeleter() && { return Deleter::Of(std::move(*this)); }

  // Two words, no pointer into itself: Deleter::Of holds it inline.
  using TriviallyRelocatable = void;

 private:
  SlabCache* cache_ = nullptr;
  void* p_ = nullptr;
};

// The kmalloc size classes and the named caches of one thread.
class SlabAllocator {
 public:
  // The size classes, as in the kernel's kmalloc caches.
  static constexpr size_t kSizeClasses[] = {32,  64,  96,   128,  192,  256,
                                            384, 512, 1024, 2048, 4096, 8192};
  static constexpr size_t kMaxKmalloc = 8192;
  // Every kmalloc cache uses slabs of this size, so Kfree finds the cache.
  static constexpr size_t kKmallocSlabBytes = 128 * 1024;

  SlabAllocator();
  ~SlabAllocator();
  SlabAllocator(const SlabAllocator&) = delete;
  SlabAllocator& operator=(const SlabAllocator&) = delete;

  // Creates a named cache owned by this allocator. The pointer is stable
  // until the allocator is destroyed.
  SlabCache* CreateCache(std::string name, size_t object_size);

  // Returns the kmalloc cache for `size` bytes, or nullptr if size > 8 KiB.
  SlabCache* KmallocCache(size_t size);

  // kmalloc / kfree: objects of up to 8 KiB from the size classes.
  void* Kmalloc(size_t size);
  void Kfree(void* p);

  // Returns every empty slab of every cache to the system.
  void Shrink();

  std::vector<SlabCacheStats> Stats() const;

  // The statistics as text in the layout of /proc/slabinfo.
  std::string SlabInfo() const;

 private:
  std::vector<std::unique_ptr<SlabCache>> kmalloc_;
  std::vector<std::unique_ptr<SlabCache>> named_;
  uint8_t class_of_[kMaxKmalloc / 16 + 1];  // size/16 (rounded up) -> class.
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_SLAB_H_
