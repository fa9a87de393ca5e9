#include "common/slab.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"

namespace txbuf {
namespace internal {

inline constexpr uint64_t kSlabMagic = 0x74786275665f736cULL;  // "txbuf_sl"

struct SlabHeader {
  uint64_t magic;
  SlabCache* cache;
  SlabHeader* prev;
  SlabHeader* next;
  void* freelist;    // singly linked through the first word of free objects.
  uint32_t inuse;    // objects handed out.
  uint32_t bumped;   // objects [0, bumped) have been handed out at least once.
  std::byte* first;  // the first object.
#ifndef NDEBUG
  uint64_t live[1];  // debug: bitmap of live objects (sized per cache).
#endif
};

}  // namespace internal

namespace {

using internal::SlabHeader;

[[noreturn]] void SlabPanic(const std::string& cache, const char* what,
                            const void* p) {
  std::fprintf(stderr, "txbuf slab: cache '%s': %s (%p)\n", cache.c_str(), what,
               p);
  std::abort();
}

size_t RoundUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

size_t NextPow2(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

void ListPush(SlabHeader*& head, SlabHeader* s) {
  s->prev = nullptr;
  s->next = head;
  if (head != nullptr) head->prev = s;
  head = s;
}

void ListRemove(SlabHeader*& head, SlabHeader* s) {
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    head = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
}

}  // namespace

SlabCache::SlabCache(std::string name, size_t object_size, size_t slab_bytes)
    : name_(std::move(name)),
      object_size_(RoundUp(object_size == 0 ? 1 : object_size, 16)),
      slab_bytes_(
          slab_bytes != 0
              ? slab_bytes
              : std::max<size_t>(16 * 1024, NextPow2(object_size_ * 8 + 256))) {
  if ((slab_bytes_ & (slab_bytes_ - 1)) != 0) {
    SlabPanic(name_, "slab size is not a power of two", nullptr);
  }
  // Fixed header, plus (in debug builds) one live bit per object.
  size_t n = (slab_bytes_ - sizeof(SlabHeader)) / object_size_;
  for (;;) {
#ifndef NDEBUG
    size_t header = sizeof(SlabHeader) + ((n + 63) / 64) * 8;
#else
    size_t header = sizeof(SlabHeader);
#endif
    header = RoundUp(header, 16);
    if (header + n * object_size_ <= slab_bytes_) {
      first_object_offset_ = header;
      break;
    }
    --n;
  }
  if (n == 0) SlabPanic(name_, "object larger than its slab", nullptr);
  objects_per_slab_ = n;
}

SlabCache::~SlabCache() {
#ifndef NDEBUG
  if (active_.Get() != 0) {
    std::fprintf(stderr,
                 "txbuf slab: cache '%s' destroyed with %llu live "
                 "objects\n",
                 name_.c_str(), static_cast<unsigned long long>(active_.Get()));
    std::abort();
  }
#endif
  for (SlabHeader* list : {partial_, full_}) {
    while (list != nullptr) {
      SlabHeader* next = list->next;
      std::free(list);
      list = next;
    }
  }
  if (spare_ != nullptr) std::free(spare_);
}

void SlabCache::CheckThread() {
#ifndef NDEBUG
  if (owner_ == std::thread::id()) {
    owner_ = std::this_thread::get_id();
  } else if (owner_ != std::this_thread::get_id()) {
    SlabPanic(name_, "used from a second thread", nullptr);
  }
#endif
}

SlabHeader* SlabCache::NewSlab() {
  void* mem = nullptr;
  if (posix_memalign(&mem, slab_bytes_, slab_bytes_) != 0) return nullptr;
  auto* s = static_cast<SlabHeader*>(mem);
  s->magic = internal::kSlabMagic;
  s->cache = this;
  s->prev = s->next = nullptr;
  s->freelist = nullptr;
  s->inuse = 0;
  s->bumped = 0;
  s->first = static_cast<std::byte*>(mem) + first_object_offset_;
#ifndef NDEBUG
  std::memset(s->live, 0, ((objects_per_slab_ + 63) / 64) * 8);
  slab_set_.insert(reinterpret_cast<uintptr_t>(s));
#endif
  slabs_.Add(1);
  return s;
}

void SlabCache::ReleaseSlab(SlabHeader* s) {
#ifndef NDEBUG
  slab_set_.erase(reinterpret_cast<uintptr_t>(s));
#endif
  s->magic = 0;
  slabs_.Add(-1);
  std::free(s);
}

void* SlabCache::Alloc() {
  CheckThread();
  SlabHeader* s = partial_;
  if (s == nullptr) {
    s = spare_ != nullptr ? std::exchange(spare_, nullptr) : NewSlab();
    if (s == nullptr) return nullptr;
    ListPush(partial_, s);
  }
  void* obj;
  if (s->freelist != nullptr) {
    obj = s->freelist;
    s->freelist = *static_cast<void**>(obj);
  } else {
    obj = s->first + static_cast<size_t>(s->bumped) * object_size_;
    ++s->bumped;
  }
  ++s->inuse;
  if (s->inuse == objects_per_slab_) {
    ListRemove(partial_, s);
    ListPush(full_, s);
  }
#ifndef NDEBUG
  size_t idx = (static_cast<std::byte*>(obj) - s->first) / object_size_;
  s->live[idx / 64] |= uint64_t{1} << (idx % 64);
#endif
  active_.Add(1);
  allocs_.Add(1);
  return obj;
}

void SlabCache::Free(void* p) {
  CheckThread();
  if (p == nullptr) return;
  auto* s = reinterpret_cast<SlabHeader*>(reinterpret_cast<uintptr_t>(p) &
                                          ~(slab_bytes_ - 1));
#ifndef NDEBUG
  if (!slab_set_.contains(reinterpret_cast<uintptr_t>(s)) ||
      s->magic != internal::kSlabMagic || s->cache != this) {
    SlabPanic(name_, "free of a pointer this cache did not allocate", p);
  }
  auto* b = static_cast<std::byte*>(p);
  if (b < s->first || (b - s->first) % object_size_ != 0 ||
      static_cast<size_t>(b - s->first) / object_size_ >= s->bumped) {
    SlabPanic(name_, "free of a pointer that is not an object start", p);
  }
  size_t idx = (b - s->first) / object_size_;
  uint64_t bit = uint64_t{1} << (idx % 64);
  if ((s->live[idx / 64] & bit) == 0) SlabPanic(name_, "double free", p);
  s->live[idx / 64] &= ~bit;
#endif
  if (s->inuse == objects_per_slab_) {
    ListRemove(full_, s);
    ListPush(partial_, s);
  }
  *static_cast<void**>(p) = s->freelist;
  s->freelist = p;
  --s->inuse;
  active_.Add(-1);
  frees_.Add(1);
  if (s->inuse == 0) {
    ListRemove(partial_, s);
    if (spare_ == nullptr) {
      // Keep one empty slab so alternating alloc/free does not thrash.
      s->freelist = nullptr;
      s->bumped = 0;
      spare_ = s;
    } else {
      ReleaseSlab(s);
    }
  }
}

void SlabCache::Shrink() {
  CheckThread();
  if (spare_ != nullptr) ReleaseSlab(std::exchange(spare_, nullptr));
}

bool SlabCache::Owns(const void* p) const {
  auto base = reinterpret_cast<uintptr_t>(p) & ~(slab_bytes_ - 1);
#ifndef NDEBUG
  return slab_set_.contains(base);
#else
  for (SlabHeader* list : {partial_, full_, spare_}) {
    for (SlabHeader* s = list; s != nullptr; s = s->next) {
      if (reinterpret_cast<uintptr_t>(s) == base) return true;
      if (list == spare_) break;
    }
  }
  return false;
#endif
}

SlabCacheStats SlabCache::Stats() const {
  SlabCacheStats st;
  st.name = name_;
  st.object_size = object_size_;
  st.objects_per_slab = objects_per_slab_;
  st.slab_bytes = slab_bytes_;
  st.active_objects = active_.Get();
  st.slabs = slabs_.Get();
  st.total_objects = st.slabs * objects_per_slab_;
  st.allocs = allocs_.Get();
  st.frees = frees_.Get();
  return st;
}

SlabCache* SlabCache::FromObject(const void* p, size_t slab_bytes) {
  auto* s = reinterpret_cast<SlabHeader*>(reinterpret_cast<uintptr_t>(p) &
                                          ~(slab_bytes - 1));
  if (s->magic != internal::kSlabMagic) {
    SlabPanic("?", "pointer is not inside a slab", p);
  }
  return s->cache;
}

SlabAllocator::SlabAllocator() {
  size_t ci = 0;
  for (size_t c : kSizeClasses) {
    kmalloc_.push_back(std::make_unique<SlabCache>(
        absl::StrFormat("kmalloc-%d", c), c, kKmallocSlabBytes));
  }
  for (size_t i = 0; i <= kMaxKmalloc / 16; ++i) {
    size_t size = i * 16;
    while (kSizeClasses[ci] < size) ++ci;
    class_of_[i] = static_cast<uint8_t>(ci);
  }
}

SlabAllocator::~SlabAllocator() = default;

SlabCache* SlabAllocator::CreateCache(std::string name, size_t object_size) {
  named_.push_back(std::make_unique<SlabCache>(std::move(name), object_size));
  return named_.back().get();
}

SlabCache* SlabAllocator::KmallocCache(size_t size) {
  if (size > kMaxKmalloc) return nullptr;
  return kmalloc_[class_of_[(size + 15) / 16]].get();
}

void* SlabAllocator::Kmalloc(size_t size) {
  SlabCache* c = KmallocCache(size);
  return c != nullptr ? c->Alloc() : nullptr;
}

void SlabAllocator::Kfree(void* p) {
  if (p == nullptr) return;
#ifndef NDEBUG
  bool ours = false;
  for (const auto& c : kmalloc_) ours = ours || c->Owns(p);
  if (!ours)
    SlabPanic("kmalloc", "kfree of a pointer kmalloc did not return", p);
#endif
  SlabCache::FromObject(p, kKmallocSlabBytes)->Free(p);
}

void SlabAllocator::Shrink() {
  for (auto& c : kmalloc_) c->Shrink();
  for (auto& c : named_) c->Shrink();
}

std::vector<SlabCacheStats> SlabAllocator::Stats() const {
  std::vector<SlabCacheStats> out;
  for (const auto& c : named_) out.push_back(c->Stats());
  for (const auto& c : kmalloc_) out.push_back(c->Stats());
  return out;
}

std::string SlabAllocator::SlabInfo() const {
  std::string out =
      "slabinfo - version: 2.1\n"
      "# name            <active_objs> <num_objs> <objsize> <objperslab> "
      "<pagesperslab> : slabdata <active_slabs> <num_slabs>\n";
  for (const SlabCacheStats& s : Stats()) {
    absl::StrAppendFormat(
        &out, "%-17s %6d %6d %6d %4d %4d : slabdata %6d %6d\n", s.name,
        s.active_objects, s.total_objects, s.object_size, s.objects_per_slab,
        s.slab_bytes / 4096, s.slabs, s.slabs);
  }
  return out;
}

}  // namespace txbuf
