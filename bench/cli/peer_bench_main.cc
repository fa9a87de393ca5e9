// txbuf-peer-bench: runs one workload against one peer, standalone.
//
//   txbuf-peer-bench --peer raw|grpc|nfs --op read|write --size N
//       --pattern seq|rand --concurrency N [--connections C] --duration S
//       --warmup S --file-size N [--seed N] [--export DIR] [--check]
//       [--skip-unavailable] [--connect ADDRESS --export DIR]
//   txbuf-peer-bench --peer P --serve --export DIR [--file-size N]
//
// The flags are Abseil flags read with common/command_line.h (as
// txbuf-bench's): "--flag value" or "--flag=value"; --help lists them.
// Sizes take K/M/G suffixes (powers of 1024). Without --export a temporary
// export directory with a pattern file is created (and removed). The peer's
// server is started, the workload run, and the figures printed: ops/s,
// MiB/s, latency percentiles, server CPU us/op (/proc/PID/stat utime+stime
// over the measured interval), client CPU us/op (getrusage), errors, verify
// failures; the last line is the same as key=value pairs.
// --check: exit 1 unless ops > 0, errors == 0 and verify_failures == 0.
// --skip-unavailable: exit 77 (CTest's skip code) when the peer is not
// built or its server cannot start here, printing why.
// --serve: start the peer's server on DIR, print its address, and wait for
// SIGINT/SIGTERM (for running a peer by hand).
// --connect ADDRESS: drive an already running server (e.g. one started with
// --serve or by hand) exporting --export DIR instead of starting one; the
// file peer-bench.dat in DIR is created unless it has --file-size bytes
// (then it must hold --seed's pattern). No server CPU figure then.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/load/pattern.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"
#include "bench/targets/peer.h"
#include "common/command_line.h"
#include "common/flag_types.h"

ABSL_FLAG(std::string, peer, "raw", "raw | grpc | nfs");
ABSL_FLAG(std::string, op, "read", "read | write");
ABSL_FLAG(txbuf::ByteSize, size, txbuf::ByteSize{4096}, "bytes per request");
ABSL_FLAG(std::string, pattern, "rand", "seq | rand");
ABSL_FLAG(int, concurrency, 1, "requests outstanding in total");
ABSL_FLAG(int, connections, 0,
          "connections they are spread over (0: min(--concurrency, 4))");
ABSL_FLAG(txbuf::Seconds, duration, txbuf::Seconds{absl::Seconds(3)},
          "measured interval");
ABSL_FLAG(txbuf::Seconds, warmup, txbuf::Seconds{absl::Seconds(1)},
          "load before it, not measured");
ABSL_FLAG(txbuf::ByteSize, file_size, txbuf::ByteSize{uint64_t{256} << 20},
          "size of the test file");
ABSL_FLAG(uint64_t, seed, txbuf::bench::kDefaultSeed,
          "content seed of the test file");
ABSL_FLAG(std::string, export, "",
          "the exported directory (default: a temporary one)");
ABSL_FLAG(std::string, connect, "",
          "drive an already running server at this address instead of "
          "starting one (with --export DIR)");
ABSL_FLAG(bool, check, false,
          "exit 1 unless ops > 0 and there were no errors or verify "
          "failures");
ABSL_FLAG(bool, skip_unavailable, false,
          "exit 77 when the peer cannot run here");
ABSL_FLAG(bool, serve, false,
          "start the peer's server on --export DIR and wait for SIGINT");

namespace txbuf::peers {
namespace {

constexpr int kSkipExit = 77;
constexpr char kUsage[] =
    "txbuf-peer-bench: runs one workload against one peer (raw, grpc, "
    "nfs).\n"
    "  txbuf-peer-bench --peer P --op read|write --size N ...\n"
    "  txbuf-peer-bench --peer P --serve --export DIR";
constexpr char kFileName[] = "peer-bench.dat";

// The command line, read from the flags above.
struct Flags {
  bool help = false;
  bool version = false;
  std::string peer = "raw";
  std::string op = "read";
  uint64_t size = 4096;
  std::string pattern = "rand";
  int concurrency = 1;
  int connections = 0;  // 0: min(concurrency, 4)
  double duration = 3;
  double warmup = 1;
  uint64_t file_size = uint64_t{256} << 20;
  uint64_t seed = 0x7478627566;  // "txbuf"
  std::string export_dir;
  std::string connect;  // drive an already running server
  bool check = false;
  bool skip_unavailable = false;
  bool serve = false;
};

constexpr char kDefinedIn[] = "bench/cli/peer_bench_main.cc";

// Reads the command line (Abseil flags, common/command_line.h) into Flags.
absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> line = SplitCommandLine(args);
  if (!line.ok()) return line.status();
  Flags f;
  if (line->help || line->version) {
    f.help = line->help;
    f.version = !line->help;
    return f;
  }
  if (!line->positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected '", line->positional.front(), "'"));
  }
  ResetFlagsToDefaults(kDefinedIn);
  if (absl::Status s = ApplyCommandLine(*line); !s.ok()) return s;
  auto bad = [](absl::string_view name, absl::string_view value) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad value for --", name, ": '", value, "'"));
  };
  f.peer = absl::GetFlag(FLAGS_peer);
  f.op = absl::GetFlag(FLAGS_op);
  if (f.op != "read" && f.op != "write") return bad("op", f.op);
  f.size = absl::GetFlag(FLAGS_size).bytes;
  f.pattern = absl::GetFlag(FLAGS_pattern);
  if (f.pattern != "seq" && f.pattern != "rand") {
    return bad("pattern", f.pattern);
  }
  f.concurrency = absl::GetFlag(FLAGS_concurrency);
  f.connections = absl::GetFlag(FLAGS_connections);
  f.duration = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_duration).value);
  f.warmup = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_warmup).value);
  f.file_size = absl::GetFlag(FLAGS_file_size).bytes;
  f.seed = absl::GetFlag(FLAGS_seed);
  f.export_dir = absl::GetFlag(FLAGS_export);
  f.connect = absl::GetFlag(FLAGS_connect);
  f.check = absl::GetFlag(FLAGS_check);
  f.skip_unavailable = absl::GetFlag(FLAGS_skip_unavailable);
  f.serve = absl::GetFlag(FLAGS_serve);
  if (f.connections <= 0) f.connections = std::min(f.concurrency, 4);
  return f;
}

// Sets up the file: (re)creates it unless it already has the right size.
absl::Status PrepareFile(const std::string& path, const Flags& f) {
  std::error_code ec;
  if (std::filesystem::file_size(path, ec) == f.file_size && !ec) {
    return absl::OkStatus();  // Reused: must hold this seed's pattern.
  }
  return bench::CreatePatternFile(path, f.seed, f.file_size);
}

void PrintResult(const Flags& f, const bench::Workload& w,
                 const bench::RunResult& r) {
  HistogramSummary s = r.latency_ns.Summary();
  const double secs = r.elapsed_s > 0 ? r.elapsed_s : 1;
  const double ops_s = static_cast<double>(r.ops) / secs;
  const double mib_s = static_cast<double>(r.bytes) / secs / (1 << 20);
  const double ops = r.ops > 0 ? static_cast<double>(r.ops) : 1;
  const double srv = r.server_cpu_us >= 0 ? r.server_cpu_us / ops : -1;
  const double cli = r.client_cpu_us / ops;
  std::printf(
      "peer %s: %s %s %s, concurrency %d over %d connections, %.1f s "
      "(+%.1f s warmup), file %s\n",
      f.peer.c_str(), f.op.c_str(),
      absl::StrCat(w.size >= (1 << 20) && w.size % (1 << 20) == 0
                       ? absl::StrCat(w.size >> 20, " MiB")
                   : w.size % 1024 == 0 ? absl::StrCat(w.size >> 10, " KiB")
                                        : absl::StrCat(w.size, " B"))
          .c_str(),
      f.pattern.c_str(), w.concurrency, w.connections, r.elapsed_s, w.warmup_s,
      absl::StrCat(w.file_size >> 20, " MiB").c_str());
  std::printf("  ops/s %.0f   MiB/s %.1f   ops %llu\n", ops_s, mib_s,
              static_cast<unsigned long long>(r.ops));
  std::printf(
      "  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p999 %.1f  max %.1f\n",
      s.p50 / 1e3, s.p90 / 1e3, s.p99 / 1e3, s.p999 / 1e3, s.max / 1e3);
  std::printf("  CPU us/op: server %.2f  client %.2f\n", srv, cli);
  std::printf("  errors %llu  verify_failures %llu\n",
              static_cast<unsigned long long>(r.errors),
              static_cast<unsigned long long>(r.verify_failures));
  std::printf(
      "RESULT peer=%s op=%s size=%llu pattern=%s concurrency=%d "
      "connections=%d ops=%llu ops_s=%.1f mib_s=%.2f p50_us=%.1f p90_us=%.1f "
      "p99_us=%.1f p999_us=%.1f max_us=%.1f server_cpu_us_op=%.3f "
      "client_cpu_us_op=%.3f errors=%llu verify_failures=%llu\n",
      f.peer.c_str(), f.op.c_str(), static_cast<unsigned long long>(w.size),
      f.pattern.c_str(), w.concurrency, w.connections,
      static_cast<unsigned long long>(r.ops), ops_s, mib_s, s.p50 / 1e3,
      s.p90 / 1e3, s.p99 / 1e3, s.p999 / 1e3, s.max / 1e3, srv, cli,
      static_cast<unsigned long long>(r.errors),
      static_cast<unsigned long long>(r.verify_failures));
  std::fflush(stdout);
}

int Serve(PeerKind kind, const Flags& f) {
  if (f.export_dir.empty()) {
    std::fprintf(stderr, "--serve needs --export DIR\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  absl::StatusOr<std::unique_ptr<PeerServer>> server =
      StartPeerServer(kind, f.export_dir);
  if (!server.ok()) {
    std::fprintf(stderr, "txbuf-peer-bench: %s\n",
                 server.status().ToString().c_str());
    return 1;
  }
  std::printf("%s peer serving %s at %s (pid %d); Ctrl-C stops it\n",
              PeerKindName(kind), f.export_dir.c_str(),
              (*server)->host_port().c_str(),
              static_cast<int>((*server)->pid()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  absl::Status s = (*server)->Stop();
  if (!s.ok()) std::fprintf(stderr, "stop: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}

int Main(int argc, char** argv) {
  absl::StatusOr<Flags> flags =
      ParseFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::fprintf(stderr, "txbuf-peer-bench: %s\n",
                 flags.status().ToString().c_str());
    return 2;
  }
  const Flags& f = *flags;
  if (f.version) {
    std::printf("txbuf-peer-bench %s\n", TXBUF_VERSION);
    return 0;
  }
  if (f.help) {
    absl::SetProgramUsageMessage(kUsage);
    std::fputs(FlagsHelp(kDefinedIn, {},
                         {{"export", "DIR"},
                          {"connect", "ADDRESS"},
                          {"peer", "P"},
                          {"op", "OP"},
                          {"pattern", "P"}})
                   .c_str(),
               stdout);
    return 0;
  }
  absl::StatusOr<PeerKind> kind = ParsePeerKind(f.peer);
  if (!kind.ok()) {
    std::fprintf(stderr, "txbuf-peer-bench: %s\n",
                 kind.status().ToString().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (f.serve) return Serve(*kind, f);

  auto unavailable = [&](const absl::Status& s) {
    std::fprintf(stderr, "txbuf-peer-bench: %s peer unavailable: %s\n",
                 f.peer.c_str(), s.ToString().c_str());
    return f.skip_unavailable && absl::IsUnavailable(s) ? kSkipExit : 1;
  };
  if (!PeerBuilt(*kind)) {
    return unavailable(MakePeerDriver(*kind, "", "").status());
  }

  std::string dir = f.export_dir;
  bool temp_dir = dir.empty();
  if (temp_dir) {
    char tmpl[] = "/tmp/txbuf-peer-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  struct Cleanup {
    std::string dir;
    bool on;
    ~Cleanup() {
      std::error_code ec;
      if (on) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir, temp_dir};

  if (absl::Status s = PrepareFile(dir + "/" + kFileName, f); !s.ok()) {
    std::fprintf(stderr, "txbuf-peer-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<PeerServer> server;
  if (f.connect.empty()) {
    absl::StatusOr<std::unique_ptr<PeerServer>> started =
        StartPeerServer(*kind, dir);
    if (!started.ok()) return unavailable(started.status());
    server = *std::move(started);
  }
  absl::StatusOr<std::unique_ptr<PeerDriver>> driver = MakePeerDriver(
      *kind, server != nullptr ? server->host_port() : f.connect, dir);
  if (!driver.ok()) return unavailable(driver.status());

  bench::Workload w;
  w.kind =
      f.op == "read" ? bench::WorkloadKind::kRead : bench::WorkloadKind::kWrite;
  w.size = f.size;
  w.random = f.pattern == "rand";
  w.concurrency = f.concurrency;
  w.connections = f.connections;
  w.duration_s = f.duration;
  w.warmup_s = f.warmup;
  w.file = kFileName;
  w.file_size = f.file_size;
  w.seed = f.seed;
  absl::StatusOr<bench::RunResult> r =
      (*driver)->Run(w, server != nullptr ? server->pid() : 0);
  absl::Status stop = server != nullptr ? server->Stop() : absl::OkStatus();
  if (!r.ok()) {
    std::fprintf(stderr, "txbuf-peer-bench: run failed: %s\n",
                 r.status().ToString().c_str());
    return 1;
  }
  PrintResult(f, w, *r);
  if (!stop.ok()) {
    std::fprintf(stderr, "txbuf-peer-bench: stopping the server: %s\n",
                 stop.ToString().c_str());
  }
  if (f.check && (r->ops == 0 || r->errors != 0 || r->verify_failures != 0)) {
    std::fprintf(stderr,
                 "txbuf-peer-bench: CHECK FAILED (ops %llu, errors "
                 "%llu, verify_failures %llu)\n",
                 static_cast<unsigned long long>(r->ops),
                 static_cast<unsigned long long>(r->errors),
                 static_cast<unsigned long long>(r->verify_failures));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace txbuf::peers

int main(int argc, char** argv) { return txbuf::peers::Main(argc, argv); }
