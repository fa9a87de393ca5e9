// Micro-benchmarks of the memory side: slab caches against malloc, and
// composing/releasing a typical compound reply as a txbuf against the same
// reply built from malloc'd copies and a vector of iovecs.
//
//   build/bench/micro/slab_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <sys/uio.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "common/txbuf.h"

namespace txbuf {
namespace {

// One object allocated and freed per iteration (the hot-cache case).
void BM_SlabAllocFree(benchmark::State& state) {
  SlabCache cache("bench", static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    void* p = cache.Alloc();
    benchmark::DoNotOptimize(p);
    cache.Free(p);
  }
}
BENCHMARK(BM_SlabAllocFree)->Arg(64)->Arg(256)->Arg(1024);

void BM_MallocFree(benchmark::State& state) {
  size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(n);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_MallocFree)->Arg(64)->Arg(256)->Arg(1024);

// 512 objects live at once, freed in allocation order (a compound's worth of
// directory entries).
void BM_SlabBatch512(benchmark::State& state) {
  SlabCache cache("bench", static_cast<size_t>(state.range(0)));
  void* ps[512];
  for (auto _ : state) {
    for (void*& p : ps) p = cache.Alloc();
    benchmark::DoNotOptimize(ps);
    for (void* p : ps) cache.Free(p);
  }
  state.SetItemsProcessed(state.iterations() * 512);
}
BENCHMARK(BM_SlabBatch512)->Arg(64)->Arg(256);

void BM_MallocBatch512(benchmark::State& state) {
  size_t n = static_cast<size_t>(state.range(0));
  void* ps[512];
  for (auto _ : state) {
    for (void*& p : ps) p = std::malloc(n);
    benchmark::DoNotOptimize(ps);
    for (void* p : ps) std::free(p);
  }
  state.SetItemsProcessed(state.iterations() * 512);
}
BENCHMARK(BM_MallocBatch512)->Arg(64)->Arg(256);

// A typical READ reply: frame header + envelope, 3 small op results
// (LOOKUP, GETATTR, READ header), and 256 page-cache pages (1 MiB).
constexpr int kPages = 256;

void BM_ComposeCompound_Txbuf(benchmark::State& state) {
  SlabAllocator slabs;
  PagePool pool(8 << 20);
  MemoryStats stats;
  TxBufContext ctx(slabs, pool, stats);
  SlabCache* results = slabs.CreateCache("op_result", 160);
  std::vector<PageRef> cache_pages;
  for (int i = 0; i < kPages; ++i) cache_pages.push_back(pool.Allocate());
  char header[48] = {};
  for (auto _ : state) {
    TxBufBuilder b(ctx);
    b.AppendBytes(header, sizeof(header));
    for (int i = 0; i < 3; ++i) {
      SlabObject r = SlabObject::Alloc(results);
      std::memset(r.data(), i, 120);
      b.AppendSlab(std::move(r), 120);
    }
    for (const PageRef& p : cache_pages) b.AppendPage(p.Share(), 0, kPageSize);
    absl::StatusOr<TxBuf> t = b.Finish();
    benchmark::DoNotOptimize(t->size());
    // Released here, as after the last zero-copy notification.
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ComposeCompound_Txbuf);

// The baseline: each small result malloc'd, pages held by shared_ptr, an
// iovec vector for sendmsg, everything freed after.
void BM_ComposeCompound_MallocIovec(benchmark::State& state) {
  std::vector<std::shared_ptr<char[]>> cache_pages;
  for (int i = 0; i < kPages; ++i) {
    cache_pages.emplace_back(new char[kPageSize]);
  }
  char header[48] = {};
  for (auto _ : state) {
    std::vector<iovec> iov;
    std::vector<void*> owned;
    std::vector<std::shared_ptr<char[]>> pinned;
    void* h = std::malloc(sizeof(header));
    std::memcpy(h, header, sizeof(header));
    owned.push_back(h);
    iov.push_back({h, sizeof(header)});
    for (int i = 0; i < 3; ++i) {
      void* r = std::malloc(160);
      std::memset(r, i, 120);
      owned.push_back(r);
      iov.push_back({r, 120});
    }
    for (const auto& p : cache_pages) {
      pinned.push_back(p);
      iov.push_back({p.get(), kPageSize});
    }
    benchmark::DoNotOptimize(iov.data());
    for (void* p : owned) std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ComposeCompound_MallocIovec);

}  // namespace
}  // namespace txbuf

int main(int argc, char** argv) {
  // A server has threads. Start one so libstdc++ stops treating the process
  // as single-threaded (it then skips atomics in shared_ptr, which would
  // flatter the malloc/shared_ptr baseline).
  std::thread([] {}).join();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
