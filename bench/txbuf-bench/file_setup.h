// file_setup.h: makes sure a txbufd export holds what a workload needs,
// through the client (so it works against any server):
//   read/write/mixed  the test file: `file_size` bytes of the pattern of
//                     `seed` (bench/peers/pattern.h). An existing file of
//                     the right size whose first and last 4 KiB hold the
//                     pattern is kept; otherwise it is (re)written with
//                     pipelined 1 MiB WRITEs, then COMMIT.
//   meta              the directory kMetaDir with kMetaFiles files of
//                     kMetaFileSize bytes each.
//
// Thread-safety: thread-compatible (uses the given client).
//
// Example:
//   absl::Status s = EnsureWorkloadFiles(*client, workload, &std::cerr);
#ifndef TXBUF_BENCH_TXBUF_BENCH_FILE_SETUP_H_
#define TXBUF_BENCH_TXBUF_BENCH_FILE_SETUP_H_

#include <cstdio>

#include "absl/status/status.h"
#include "bench/txbuf-bench/workload.h"
#include "client/client.h"

namespace txbuf::bench {

// Prepares what `w` needs; says what it writes on `log` (may be null).
absl::Status EnsureWorkloadFiles(client::Client& client, const BenchWorkload& w,
                                 FILE* log);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TXBUF_BENCH_FILE_SETUP_H_
