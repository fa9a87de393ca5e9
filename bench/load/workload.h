// workload.h: what txbuf-bench runs: one workload (operation mix, request
// size, offset pattern, concurrency, connections, timing, file) and the
// fixed set of workloads of compare mode.
//
// The one workload type of bench/: the txbufd driver and the peer drivers
// take it as it is and run the identical loop (bench/load/harness.h).
// `mixed` (reads and writes, `read_ratio` of them reads) and `meta`
// (LOOKUP/GETATTR/READDIR) exist only for txbufd (PeersCanRun).
//
// Thread-safety: plain values and pure functions.
//
// Example:
//   txbuf::bench::Workload w{.kind = WorkloadKind::kRead, .size = 4096,
//                            .concurrency = 64, .connections = 4};
//   std::string id = w.Id();   // "read-4k-rand-c64"
#ifndef TXBUF_BENCH_LOAD_WORKLOAD_H_
#define TXBUF_BENCH_LOAD_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf::bench {

enum class WorkloadKind { kRead, kWrite, kMixed, kMeta };

// "read", "write", "mixed", "meta".
absl::StatusOr<WorkloadKind> ParseWorkloadKind(absl::string_view name);
const char* WorkloadKindName(WorkloadKind kind);

// The default seed of test files ("txbuf" in ASCII).
inline constexpr uint64_t kDefaultSeed = 0x7478627566;
// The default test file, relative to the export root.
inline constexpr char kDefaultFile[] = "txbuf-bench.dat";
// The directory of small files the `meta` workload looks up and lists.
inline constexpr char kMetaDir[] = "txbuf-bench-meta";
inline constexpr int kMetaFiles = 64;
inline constexpr uint64_t kMetaFileSize = 1000;

struct Workload {
  WorkloadKind kind = WorkloadKind::kRead;
  uint64_t size = 4096;  // bytes per READ/WRITE
  bool random = true;    // random (true) or sequential offsets
  int concurrency = 1;   // requests outstanding in total
  int connections = 1;   // connections they are spread over
  double duration_s = 10;
  double warmup_s = 2;
  double read_ratio = 0.5;  // kMixed: fraction of ops that are reads
  std::string file = kDefaultFile;
  uint64_t file_size = uint64_t{256} << 20;
  uint64_t seed = kDefaultSeed;
  // READ data are compared with the pattern of `seed`; false for a read of
  // an existing file that does not hold it (file_setup.h).
  bool verify_reads = true;

  // A short identifier: "read-4k-rand-c64", "write-1m-seq-c4",
  // "mixed70-4k-rand-c16", "meta-c8".
  std::string Id() const;
  // For humans: "read 4 KiB rand, c64 over 4 connections".
  std::string Describe() const;
  // Whether the peers can run it (read and write only).
  bool PeersCanRun() const {
    return kind == WorkloadKind::kRead || kind == WorkloadKind::kWrite;
  }
};

// Checks sizes, counts, durations and the ratio.
absl::Status ValidateWorkload(const Workload& w);

// "4 KiB", "1 MiB", "1000 B". (Byte counts are read by
// common/flag_types.h's ParseByteSize.)
std::string FormatBytes(uint64_t bytes);

// The workloads of compare mode (the set), each with `duration_s`,
// `warmup_s`, `file` and `file_size` filled in by the caller:
//   read 4 KiB random c1 and c64, read 1 MiB sequential c1 and c8,
//   write 4 KiB random c16, write 1 MiB sequential c4;
// connections = min(concurrency, 4), as the peers' default.
std::vector<Workload> CompareWorkloads();

// Workloads compare mode runs only when --workloads names them:
// read-4k-rand-c16 (issue 13's fio goal: 4 KiB random reads at queue depth
// 16).
std::vector<Workload> OptInCompareWorkloads();

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_LOAD_WORKLOAD_H_
