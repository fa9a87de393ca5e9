// file_setup.h: makes sure a txbufd export holds what a workload needs,
// through the client (so it works against any server), and removes what it
// created afterwards:
//   read              a file that exists is read as it is, never written
//                     (so a read-only export works): `file_size` becomes its
//                     size unless the caller gave one (then the file must be
//                     at least that long), and `verify_reads` whether its
//                     first and last 4 KiB (of `file_size`) hold the pattern
//                     of `seed`. A missing file is created as below.
//   write/mixed       the test file: `file_size` bytes of the pattern of
//                     `seed` (bench/load/pattern.h). An existing file of
//                     the right size whose first and last 4 KiB hold the
//                     pattern is kept; otherwise it is (re)written with
//                     pipelined 1 MiB WRITEs, then COMMIT.
//   meta              the directory kMetaDir with kMetaFiles files of
//                     kMetaFileSize bytes each.
//
// Thread-safety: thread-compatible (uses the given client).
//
// Example:
//   SetupResult setup = EnsureWorkloadFiles(*client, workload, false, stderr);
//   if (setup.status.ok()) { ... run ... }
//   absl::Status s = RemoveCreatedFiles(*client, setup.created);
#ifndef TXBUF_BENCH_TARGETS_TXBUFD_FILE_SETUP_H_
#define TXBUF_BENCH_TARGETS_TXBUFD_FILE_SETUP_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/load/workload.h"
#include "client/client.h"

namespace txbuf::bench {

// What EnsureWorkloadFiles created (files and directories that did not
// exist), in the order created.
struct CreatedFiles {
  struct Entry {
    std::string path;  // relative to the export root
    bool is_dir = false;
  };
  std::vector<Entry> entries;
};

// Prepares what `w` needs, adjusting `w` for a read of an existing file (see
// above; `file_size_given`: the caller chose `file_size`); says what it
// writes on `log` (may be null). What it created is in the result, also
// when it fails part way (then with the error in `status`).
struct SetupResult {
  absl::Status status;
  CreatedFiles created;
};
SetupResult EnsureWorkloadFiles(client::Client& client, Workload& w,
                                bool file_size_given, FILE* log);

// Removes `created`, the newest first. Keeps going past a failure; returns
// the first one.
absl::Status RemoveCreatedFiles(client::Client& client,
                                const CreatedFiles& created);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_TXBUFD_FILE_SETUP_H_
