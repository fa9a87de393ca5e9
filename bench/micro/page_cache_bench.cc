// page_cache_bench: what an unstable 1 MiB WRITE costs the server's page
// cache once the dirty page limit is reached, against a plain pwrite() of
// the same 1 MiB to the same file in the same process (the baseline).
//
// A sequential writer into a large cached file keeps the cache at its dirty
// limit: every WRITE first writes back a batch of this file's oldest dirty
// pages. That choice must cost in proportion to what it writes back, not to
// how many pages the file has cached (issue 12: walking the whole page map
// per WRITE showed up as ~10% of a 1 MiB write workload's server CPU).
//
// Run: build-release/bench/micro/page_cache_bench
//      [--benchmark_filter=...] [--benchmark_repetitions=N]
// Read the ratio BM_UnstableWrite1MiB / BM_Pwrite1MiB for each file size;
// with a cost per cached page it grows with the file, without it stays flat.
//
// Thread-safety: single-threaded benchmark program.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "benchmark/benchmark.h"
#include "common/page_pool.h"
#include "server/fs/page_cache.h"

namespace txbuf {
namespace {

constexpr size_t kWrite = size_t{1} << 20;

// A file under TMPDIR (or /tmp), removed when done.
class ScratchFile {
 public:
  ScratchFile() {
    const char* dir = std::getenv("TMPDIR");
    path_ =
        std::string(dir != nullptr ? dir : "/tmp") + "/page_cache_bench.XXXXXX";
    fd_ = ::mkstemp(path_.data());
    if (fd_ < 0) std::perror("mkstemp");
  }
  ~ScratchFile() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Sequential unstable 1 MiB writes, wrapping around a file of
// state.range(0) MiB, all of it cached; dirty limit: a quarter of the cache.
void BM_UnstableWrite1MiB(benchmark::State& state) {
  const uint64_t file_bytes = static_cast<uint64_t>(state.range(0)) << 20;
  const size_t pages = static_cast<size_t>(file_bytes / kPageSize) + 512;
  PagePool pool(pages * kPageSize);
  PageCache cache(pool, {.max_pages = pages});
  ScratchFile scratch;
  auto file = cache.GetFile({1, 1}, [&]() -> absl::StatusOr<int> {
    return ::open(scratch.path().c_str(), O_RDWR | O_CLOEXEC);
  });
  if (!file.ok()) {
    state.SkipWithError(std::string(file.status().message()).c_str());
    return;
  }
  const std::vector<std::byte> data(kWrite, std::byte{0x5a});
  uint64_t offset = 0;
  auto write = [&]() {
    absl::Status s =
        (*file)->Write(offset, absl::MakeConstSpan(data), Stability::kUnstable);
    offset = (offset + kWrite) % file_bytes;
    return s;
  };
  // Fill the file and the cache; then the dirty limit is reached.
  for (uint64_t i = 0; i < file_bytes / kWrite; ++i) {
    if (absl::Status s = write(); !s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
  }
  for (auto _ : state) {
    if (absl::Status s = write(); !s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
  }
  state.counters["dirty_limit_pages"] =
      static_cast<double>(cache.max_dirty_pages());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kWrite));
  (void)cache.SyncAll();
}

// The baseline: pwrite() of 1 MiB, wrapping around the same file size.
void BM_Pwrite1MiB(benchmark::State& state) {
  const uint64_t file_bytes = static_cast<uint64_t>(state.range(0)) << 20;
  ScratchFile scratch;
  const std::vector<std::byte> data(kWrite, std::byte{0x5a});
  uint64_t offset = 0;
  for (auto _ : state) {
    ssize_t n = ::pwrite(scratch.fd(), data.data(), data.size(),
                         static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(data.size())) {
      state.SkipWithError(n < 0 ? "pwrite failed" : "short pwrite");
      break;
    }
    offset = (offset + kWrite) % file_bytes;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kWrite));
}

BENCHMARK(BM_Pwrite1MiB)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_UnstableWrite1MiB)
    ->Arg(64)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace txbuf

BENCHMARK_MAIN();
