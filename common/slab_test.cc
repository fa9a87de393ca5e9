#include "common/slab.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

using ::testing::HasSubstr;

TEST(SlabCacheTest, AllocatesDistinctAlignedObjects) {
  SlabCache cache("test_obj", 40);
  EXPECT_EQ(cache.object_size(), 48u);  // rounded to 16
  std::set<void*> seen;
  std::vector<void*> objs;
  for (int i = 0; i < 1000; ++i) {
    void* p = cache.Alloc();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    EXPECT_TRUE(seen.insert(p).second) << "object handed out twice";
    EXPECT_TRUE(cache.Owns(p));
    std::memset(p, i & 0xff, 48);  // must not corrupt other objects
    objs.push_back(p);
  }
  for (size_t i = 0; i < objs.size(); ++i) {
    auto* b = static_cast<unsigned char*>(objs[i]);
    ASSERT_EQ(b[0], i & 0xff);
    ASSERT_EQ(b[47], i & 0xff);
  }
  SlabCacheStats st = cache.Stats();
  EXPECT_EQ(st.active_objects, 1000u);
  EXPECT_GE(st.total_objects, 1000u);
  EXPECT_EQ(st.total_objects, st.slabs * st.objects_per_slab);
  EXPECT_EQ(st.allocs, 1000u);
  for (void* p : objs) cache.Free(p);
  st = cache.Stats();
  EXPECT_EQ(st.active_objects, 0u);
  EXPECT_EQ(st.frees, 1000u);
}

TEST(SlabCacheTest, EmptySlabsAreReturned) {
  SlabCache cache("ret", 256);
  std::vector<void*> objs;
  for (int i = 0; i < 5000; ++i) objs.push_back(cache.Alloc());
  uint64_t slabs_full = cache.Stats().slabs;
  EXPECT_GT(slabs_full, 10u);
  for (void* p : objs) cache.Free(p);
  // One empty slab is kept as a spare; the rest went back to the system.
  EXPECT_EQ(cache.Stats().slabs, 1u);
  cache.Shrink();
  EXPECT_EQ(cache.Stats().slabs, 0u);
  EXPECT_EQ(cache.Stats().total_objects, 0u);
}

TEST(SlabCacheTest, ReusesFreedObjectsBeforeGrowing) {
  SlabCache cache("reuse", 64);
  void* a = cache.Alloc();
  void* b = cache.Alloc();
  cache.Free(a);
  void* c = cache.Alloc();
  EXPECT_EQ(a, c);
  cache.Free(b);
  cache.Free(c);
}

TEST(SlabCacheTest, RandomAllocFreeKeepsCountsExact) {
  SlabCache cache("random", 100);
  std::mt19937 rng(42);
  std::vector<void*> live;
  for (int step = 0; step < 100000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      live.push_back(cache.Alloc());
    } else {
      size_t i = rng() % live.size();
      cache.Free(live[i]);
      live[i] = live.back();
      live.pop_back();
    }
    if (step % 9973 == 0) {
      ASSERT_EQ(cache.Stats().active_objects, live.size());
    }
  }
  for (void* p : live) cache.Free(p);
  EXPECT_EQ(cache.Stats().active_objects, 0u);
  EXPECT_LE(cache.Stats().slabs, 1u);
}

TEST(SlabAllocatorTest, KmallocPicksTheSmallestFittingClass) {
  SlabAllocator slabs;
  EXPECT_EQ(slabs.KmallocCache(1)->object_size(), 32u);
  EXPECT_EQ(slabs.KmallocCache(32)->object_size(), 32u);
  EXPECT_EQ(slabs.KmallocCache(33)->object_size(), 64u);
  EXPECT_EQ(slabs.KmallocCache(100)->object_size(), 128u);
  EXPECT_EQ(slabs.KmallocCache(300)->object_size(), 384u);
  EXPECT_EQ(slabs.KmallocCache(8192)->object_size(), 8192u);
  EXPECT_EQ(slabs.KmallocCache(8193), nullptr);
  EXPECT_EQ(slabs.Kmalloc(8193), nullptr);
}

TEST(SlabAllocatorTest, KfreeFindsTheCache) {
  SlabAllocator slabs;
  std::vector<void*> ps;
  for (size_t size : {1, 40, 96, 200, 1000, 4000, 8192}) {
    void* p = slabs.Kmalloc(size);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0xab, size);
    ps.push_back(p);
  }
  uint64_t active = 0;
  for (const auto& s : slabs.Stats()) active += s.active_objects;
  EXPECT_EQ(active, 7u);
  for (void* p : ps) slabs.Kfree(p);
  active = 0;
  for (const auto& s : slabs.Stats()) active += s.active_objects;
  EXPECT_EQ(active, 0u);
}

TEST(SlabAllocatorTest, SlabInfoLooksLikeProcSlabinfo) {
  SlabAllocator slabs;
  SlabCache* c = slabs.CreateCache("attr_reply", 112);
  void* p = c->Alloc();
  std::string info = slabs.SlabInfo();
  EXPECT_THAT(info, HasSubstr("slabinfo - version: 2.1"));
  EXPECT_THAT(info, HasSubstr("# name"));
  EXPECT_THAT(info, HasSubstr("attr_reply"));
  EXPECT_THAT(info, HasSubstr("kmalloc-8192"));
  // attr_reply: 1 active object of 112 bytes.
  size_t at = info.find("attr_reply");
  std::string line = info.substr(at, info.find('\n', at) - at);
  EXPECT_THAT(line, ::testing::ContainsRegex("attr_reply +1 +[0-9]+ +112 "));
  c->Free(p);
}

TEST(SlabObjectTest, FreesOnDestructionAndMove) {
  SlabAllocator slabs;
  SlabCache* c = slabs.CreateCache("owner", 64);
  {
    SlabObject a = SlabObject::Alloc(c);
    ASSERT_TRUE(a);
    EXPECT_EQ(c->Stats().active_objects, 1u);
    SlabObject b = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(c->Stats().active_objects, 1u);
  }
  EXPECT_EQ(c->Stats().active_objects, 0u);
  {
    SlabObject a = SlabObject::Alloc(c);
    Deleter d = std::move(a).ToDeleter();
    EXPECT_EQ(c->Stats().active_objects, 1u);
  }
  EXPECT_EQ(c->Stats().active_objects, 0u);
}

#ifndef NDEBUG
using SlabDeathTest = ::testing::Test;

TEST(SlabDeathTest, DoubleFreeIsDetected) {
  EXPECT_DEATH(
      {
        SlabCache cache("df", 64);
        void* p = cache.Alloc();
        void* q = cache.Alloc();  // keep the slab alive
        cache.Free(p);
        cache.Free(p);
        cache.Free(q);
      },
      "double free");
}

TEST(SlabDeathTest, ForeignPointerIsDetected) {
  EXPECT_DEATH(
      {
        SlabCache cache("foreign", 64);
        void* keep = cache.Alloc();
        static char not_ours[128];
        cache.Free(not_ours);
        cache.Free(keep);
      },
      "did not allocate");
}

TEST(SlabDeathTest, PointerFromAnotherCacheIsDetected) {
  EXPECT_DEATH(
      {
        SlabCache a("cache_a", 64);
        SlabCache b("cache_b", 64);
        void* p = a.Alloc();
        void* q = b.Alloc();
        b.Free(p);
        a.Free(p);
        b.Free(q);
      },
      "did not allocate");
}

TEST(SlabDeathTest, InteriorPointerIsDetected) {
  EXPECT_DEATH(
      {
        SlabCache cache("interior", 64);
        auto* p = static_cast<char*>(cache.Alloc());
        cache.Free(p + 8);
      },
      "not an object start");
}

TEST(SlabDeathTest, UseFromSecondThreadIsDetected) {
  EXPECT_DEATH(
      {
        SlabCache cache("threads", 64);
        void* p = cache.Alloc();
        std::thread t([&] { cache.Free(p); });
        t.join();
      },
      "second thread");
}

TEST(SlabDeathTest, LeakAtDestructionIsDetected) {
  EXPECT_DEATH(
      {
        SlabCache cache("leak", 64);
        (void)cache.Alloc();
      },
      "live objects");
}
#else
TEST(SlabDeathTest, DebugChecksNeedADebugBuild) {
  GTEST_SKIP() << "double-free / foreign-pointer detection is compiled only "
                  "without NDEBUG";
}
#endif

}  // namespace
}  // namespace txbuf
