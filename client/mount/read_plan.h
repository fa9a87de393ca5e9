// client/mount/read_plan.h: how the mount sends a READ the kernel asked
// for. Small READs are answered from the client's loop thread (no FUSE
// thread waits for them); a large READ is sent as pieces spread over the
// client's connections while few large READs run at once (the pieces
// then use connections and cores that would idle), and whole once the
// large READs at once fill the connections (pieces then only multiply the
// server's per-request work: fio 1 MiB O_DIRECT reads, 8 jobs, 4
// connections: 0.49-0.58x of the library-level figure in pieces, 0.59-0.63x
// whole; 1 job: 0.68-0.72x in pieces, 0.50-0.53x whole).
//
// Thread-safety: a pure function; thread-safe.
//
// Example:
//   switch (PlanRead({.size = 1 << 20, .async_read_max = 128 << 10,
//                     .read_split = 256 << 10, .connections = 4,
//                     .large_reads_at_once = 1})) {
//     case ReadPlan::kPieces: ...  // four 256 KiB READs at once
//   }
#ifndef TXBUF_CLIENT_MOUNT_READ_PLAN_H_
#define TXBUF_CLIENT_MOUNT_READ_PLAN_H_

#include <cstddef>

namespace txbuf::client::mount {

enum class ReadPlan {
  // Sent; the client's loop thread answers the kernel (MountOptions::
  // async_read_max).
  kFromLoop,
  // Sent as pieces of read_split bytes at once; the FUSE thread waits for
  // them and answers with the pieces gathered.
  kPieces,
  // Sent whole; the FUSE thread waits and answers.
  kWhole,
};

struct ReadPlanInputs {
  size_t size = 0;            // bytes the kernel asked for
  size_t async_read_max = 0;  // MountOptions::async_read_max (0: none)
  size_t read_split = 0;      // MountOptions::read_split (0: never)
  int connections = 1;        // the client's open connections
  // Large READs (at least twice read_split) being served by the mount now,
  // this one included.
  int large_reads_at_once = 1;
};

// A READ that may go in pieces: at least twice `read_split` bytes (0:
// none is).
inline bool IsLargeRead(size_t size, size_t read_split) {
  return read_split != 0 && size >= 2 * read_split;
}

// kFromLoop for a READ of at most async_read_max bytes; kPieces for one of
// at least twice read_split bytes while there are 2 or more connections
// and fewer large READs at once than connections; otherwise kWhole.
ReadPlan PlanRead(const ReadPlanInputs& in);

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_READ_PLAN_H_
