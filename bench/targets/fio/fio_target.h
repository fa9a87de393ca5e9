// fio_target.h: fio as a target family of compare mode (`txbuf-bench
// --compare --peers fio`): the workloads that map to fio jobs, run by fio
// itself (Debian's `fio`), reported in the same tables and JSON as the other
// targets.
//
//   fio-mount  fio on a `txbuf mount` of the txbufd that compare mode
//              started (the engine "auto" if it runs, else the first);
//              O_DIRECT (--direct=1), so every op crosses FUSE to txbufd
//              instead of being served from the mount's page cache;
//   fio-local  fio on the export directory itself (--direct=0,
//              --invalidate=0): the ceiling, the kernel page cache with no
//              network and no FUSE.
//
// Job mapping: concurrency -> --numjobs (that many threads, --thread, each
// one synchronous op at a time with --ioengine=psync; --group_reporting
// sums them); size -> --bs; random reads/writes -> randread/randwrite over
// the whole file per job; sequential -> read/write, each job its own
// 1/numjobs slice of the file (--offset_increment); --duration ->
// --runtime + --time_based, --warmup -> --ramp_time. The file is its own
// (fio-bench.dat, same size as the test file, pattern data), so fio's
// writes never touch the file the other targets verify. The mount uses
// `txbuf --connections N` with N the workloads' largest connection count.
//
// A member of the family that cannot run here (no fio, no /dev/fuse, not
// root without fusermount3, txbuf built without the mount) is left out with
// the reason; the mount is always unmounted on Stop and in the destructor
// (fusermount3 -u, SIGTERM to `txbuf mount -f`, then fusermount3 -u -z).
//
// Thread-safety: not thread-safe; start, run and stop from the main thread
// (the mount process dies with the thread that started it).
#ifndef TXBUF_BENCH_TARGETS_FIO_FIO_TARGET_H_
#define TXBUF_BENCH_TARGETS_FIO_FIO_TARGET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/load/workload.h"
#include "bench/targets/target.h"

namespace txbuf::bench {

inline constexpr char kFioFile[] = "fio-bench.dat";

struct FioOptions {
  std::string fio;        // binary; empty: $TXBUF_FIO, else fio on $PATH
  std::string txbuf_cli;  // the txbuf binary; empty: found (FindTxbufCli)
  std::string export_dir;
  std::string server;  // txbufd's "host:port"; empty: no fio-mount
  int connections = 4;
  uint64_t file_size = uint64_t{256} << 20;
  uint64_t seed = kDefaultSeed;
};

struct FioFamily {
  std::vector<std::unique_ptr<Target>> targets;
  std::vector<std::string> notes;  // members left out, and why
  std::string created_file;        // fio's file, for the caller to remove
};

// Starts the members of the family that can run here (creates fio's file,
// mounts). Never fails: what cannot run is a note.
FioFamily StartFioTargets(const FioOptions& o);

// Whether fio runs `w` (reads and writes).
bool FioCanRun(const Workload& w);

// fio's command line for `w` on `path` (the mapping above).
std::vector<std::string> FioCommand(const std::string& fio, const Workload& w,
                                    const std::string& path, bool direct);

// Where the txbuf binary is: `flag` if given, else $TXBUF_CLI, else the path
// CMake built it at, else ../../client/txbuf from the running executable.
std::string FindTxbufCli(const std::string& flag);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_FIO_FIO_TARGET_H_
