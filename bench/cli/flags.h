// flags.h: txbuf-bench's command line.
//
//   single run:  txbuf-bench --server HOST:PORT --workload read|write|mixed|
//                meta --size BYTES --pattern seq|rand --concurrency N
//                --connections C --duration S --warmup S --file-size BYTES
//                [--read-ratio R] [--token-file F] [--json FILE] ...
//   compare:     txbuf-bench --compare [--quick] [--repeat N] [--peers nfs]
//                [--json FILE] [--html FILE] ...
//
// The flags are Abseil flags defined in flags.cc with their help (BenchHelp
// prints them); common/command_line.h reads the arguments into them
// ("--flag value" or "--flag=value"; switches "--flag", "--noflag",
// "--flag=true|false"); byte counts take K/M/G suffixes (powers of 1024),
// seconds a plain number or a duration ("500ms"). fio's names are aliases
// (--bs for --size, the request size; --iodepth, --runtime, --ramp_time,
// --filename, --filesize). Parsing checks the whole command line before
// anything runs; an unknown flag is an error naming it, and so is a flag
// given twice (also as its alias).
//
// ParseFlags is a function of its arguments: it sets the process's Abseil
// flags to their defaults, then from `args`, and converts them into a
// Flags, so it can run many times in one process (flags_test.cc does).
//
// Thread-safety: ParseFlags must not run on two threads at once (it uses
// the process's flags for a moment); the rest are pure functions.
//
// Example:
//   absl::StatusOr<Flags> f = ParseFlags({"--compare", "--quick"});
#ifndef TXBUF_BENCH_CLI_FLAGS_H_
#define TXBUF_BENCH_CLI_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load/workload.h"
#include "bench/targets/peer.h"
#include "common/engine_kind.h"

namespace txbuf::bench {

// The summary at the head of --help (absl::SetProgramUsageMessage).
extern const char kUsage[];

// The --help text: kUsage (as set with absl::SetProgramUsageMessage), then
// every flag, generated from the flags' definitions.
std::string BenchHelp();

struct Flags {
  bool help = false;
  bool version = false;  // --version
  bool compare = false;
  // Single run.
  std::string server_host;
  uint16_t server_port = 0;
  pid_t server_pid = 0;     // 0: look for the process listening on the port
  bool setup = true;        // create/fix the test file (or meta dir) first
  std::string token_file;   // the server's shared secret (--token-file)
  std::string export_name;  // --export-name (empty: the server's first)
  bool file_size_given = false;  // --file-size (or --filesize) was given
  Workload workload;
  // Compare.
  bool quick = false;
  int repeat = 3;
  std::vector<EngineKind> engines;     // empty: every available engine
  std::vector<peers::PeerKind> peers;  // raw and grpc, plus --peers
  // "fio" among --peers / --peer-set: fio on a txbuf mount and on the local
  // export (bench/targets/fio/fio_target.h).
  bool fio = false;
  std::vector<std::string> workloads;  // ids to run; empty: all
  std::string txbufd;
  int server_threads = 0;   // 0: one per CPU
  uint64_t cache_size = 0;  // 0: file size + 256 MiB
  std::string export_dir;   // empty: a temporary one
  std::string html_path;
  std::string svg_dir;
  std::string markdown_path;
  // Both.
  EngineKind client_engine = EngineKind::kAuto;
  bool shared_client = false;     // one txbuf Client for all connections
  double stats_interval_s = 0.1;  // STATS sampling; 0: start and end only
  std::string json_path;          // "-": standard output
  bool check = false;             // exit 1 on errors or missing figures
  bool progress = true;           // --no-progress
  bool keep_files = false;        // --keep-files: leave the test files
};

// `args` excludes the program name.
absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args);

// Engines to compare by default: copy, msg_zerocopy, uring_zc, auto, and
// kmod if `have_kmod`.
std::vector<EngineKind> DefaultEngines(bool have_kmod);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_CLI_FLAGS_H_
