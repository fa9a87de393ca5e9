#include "bench/cli/flags.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/command_line.h"
#include "common/flag_types.h"

// Single run.
ABSL_FLAG(txbuf::ServiceAddress, server, txbuf::ServiceAddress{},
          "the running txbufd to measure, HOST[:PORT] (port 7390 if not "
          "given)");
ABSL_FLAG(std::string, token_file, "",
          "the server's shared secret (as txbufd --token-file and txbuf "
          "--token-file), if it requires one");
ABSL_FLAG(std::string, export_name, "",
          "the export to measure, by name, on a server with several "
          "(docs/EXPORTS.md); default: the server's first");
ABSL_FLAG(std::string, workload, "",
          "read | write | mixed | meta (LOOKUP/GETATTR/READDIR)");
ABSL_FLAG(txbuf::ByteSize, size, txbuf::ByteSize{4096},
          "bytes per request, each READ or WRITE. Careful: not fio's --size "
          "(fio's is the file's size: here --file-size)");
ABSL_FLAG(std::string, pattern, "rand", "seq | rand");
ABSL_FLAG(int, concurrency, 1, "requests outstanding in total");
ABSL_FLAG(int, connections, 0,
          "connections they are spread over (0: min(--concurrency, 4))");
ABSL_FLAG(txbuf::Seconds, duration, txbuf::Seconds{absl::Seconds(10)},
          "measured interval (compare mode: 3, --quick 1)");
ABSL_FLAG(txbuf::Seconds, warmup, txbuf::Seconds{absl::Seconds(2)},
          "load before it, not measured (compare mode: 1, --quick 0.3)");
ABSL_FLAG(txbuf::ByteSize, file_size, txbuf::ByteSize{uint64_t{256} << 20},
          "size of the test file, the range the requests' offsets fall in "
          "(compare mode --quick: 128M). A read of a file that exists reads "
          "it as it is: its size unless --file-size is given (then the file "
          "must be at least that long)");
ABSL_FLAG(double, read_ratio, 0.5,
          "mixed: fraction of reads; the report gives reads and writes "
          "separately as well");
ABSL_FLAG(std::string, file, txbuf::bench::kDefaultFile,
          "test file in the export");
ABSL_FLAG(uint64_t, seed, txbuf::bench::kDefaultSeed,
          "content seed of the test file");
ABSL_FLAG(int, server_pid, 0,
          "for server CPU (0: the local process listening on the server's "
          "port, if any)");
ABSL_FLAG(bool, no_setup, false,
          "do not create or check the test file / meta dir");
// Compare mode.
ABSL_FLAG(bool, compare, false,
          "compare mode: starts txbufd per engine and the peers on a "
          "temporary export");
ABSL_FLAG(
    bool, quick, false,
    "compare: 1 s runs, 0.3 s warmup, repeat 1, 128 MiB file (about 1 minute "
    "with the default targets)");
ABSL_FLAG(int, repeat, 3,
          "compare: runs per workload and target; median (--quick: 1)");
ABSL_FLAG(std::vector<std::string>, engines, {},
          "compare: comma-separated engines (default "
          "copy,msg_zerocopy,uring_zc,auto, "
          "and kmod where /dev/txbuf exists)");
ABSL_FLAG(std::vector<std::string>, peers, {},
          "compare: peers to add to raw and grpc (e.g. nfs; fio: fio on a "
          "txbuf mount and on the local export)");
ABSL_FLAG(std::vector<std::string>, peer_set, {},
          "compare: exactly these peers (e.g. raw, or raw,fio)");
ABSL_FLAG(std::vector<std::string>, workloads, {},
          "compare: only these workload ids (e.g. read-4k-rand-c64; "
          "read-4k-rand-c16 runs only when named)");
ABSL_FLAG(std::string, txbufd, "",
          "compare: the server binary (default: the built one)");
ABSL_FLAG(
    int, server_threads, 0,
    "compare: txbufd --threads (0: one per CPU, as the raw peer serves each "
    "connection on its own thread)");
ABSL_FLAG(txbuf::ByteSize, cache_size, txbuf::ByteSize{0},
          "compare: txbufd --cache-size (0: file size + 256M)");
ABSL_FLAG(std::string, export, "",
          "compare: use DIR (its test file is rewritten, and removed at the "
          "end unless "
          "--keep-files) instead of a temporary directory");
ABSL_FLAG(std::string, html, "",
          "compare: a self-contained report with SVG charts");
ABSL_FLAG(std::string, svg_dir, "",
          "compare: the report's charts as separate SVG files");
ABSL_FLAG(std::string, markdown, "", "compare: the tables in Markdown");
// Both.
ABSL_FLAG(bool, keep_files, false,
          "leave the test files the run created in the export (default: "
          "remove them at the end)");
ABSL_FLAG(txbuf::EngineKind, client_engine, txbuf::EngineKind::kAuto,
          "engine of the client's request txbufs");
ABSL_FLAG(bool, shared_client, false,
          "one txbuf client (one loop thread) multiplexing all connections, "
          "instead of one client and thread per connection (the peers' "
          "model)");
ABSL_FLAG(txbuf::Seconds, stats_interval,
          txbuf::Seconds{absl::Milliseconds(100)},
          "sample txbufd's STATS every SECS during a run (0: only at its "
          "start and end; at most 3600)");
ABSL_FLAG(std::string, json, "",
          "every figure as JSON (\"-\": standard output; no progress line)");
ABSL_FLAG(bool, check, false,
          "exit 1 if any run had errors, verify failures or a missing figure");
ABSL_FLAG(bool, no_progress, false, "no progress output");

namespace txbuf::bench {

const char kUsage[] = R"(usage:
  txbuf-bench --server HOST:PORT --workload read|write|mixed|meta [flags]
  txbuf-bench --compare [--quick] [flags]

Single run against a running txbufd (--server): the test file (and for meta
the directory txbuf-bench-meta) is created with pattern data if missing, or
rewritten if its size or data are not right, except that a read workload
never writes a file that exists: it reads it (verifying the data only if they
are the pattern of --seed), so a read-only export (txbufd --read-only) works.
Files the run created are removed at its end unless --keep-files; files that
were there before are left.

Compare mode (--compare) starts txbufd per engine and the peers on a
temporary export; --duration, --warmup and --file-size override the mode's
defaults (full: 3 s, 1 s, 256M). Flags marked "compare:" need --compare;
the single-run ones (--server, --workload, --size, ...) refuse it.

Flags take "--flag VALUE" or "--flag=VALUE"; switches "--flag", "--noflag" or
"--flag=true|false". BYTES take K, M and G suffixes (powers of 1024); SECS are
seconds (0.5) or a duration with its unit (500ms). fio's names are aliases:
--bs, --iodepth, --runtime, --ramp_time, --filename, --filesize. A flag given
twice (or with its alias) and an unknown flag are errors (exit status 2).)";

namespace {

constexpr int kDefaultConnectionsCap = 4;
constexpr char kDefinedIn[] = "bench/cli/flags.cc";

// fio's names for our flags (same meaning and units).
const FlagAliases& Aliases() {
  static const auto* m =
      new FlagAliases{{"bs", "size"},          {"iodepth", "concurrency"},
                      {"runtime", "duration"}, {"ramp_time", "warmup"},
                      {"filename", "file"},    {"filesize", "file-size"}};
  return *m;
}

// Single-run flags (by Abseil name).
const std::set<std::string>& SingleOnly() {
  static const auto* s = new std::set<std::string>{
      "server",      "workload",   "size",       "pattern", "concurrency",
      "connections", "read_ratio", "file",       "seed",    "server_pid",
      "no_setup",    "token_file", "export_name"};
  return *s;
}

const std::set<std::string>& CompareOnly() {
  static const auto* s = new std::set<std::string>{
      "quick",     "repeat",  "engines",        "peers",      "peer_set",
      "workloads", "txbufd",  "server_threads", "cache_size", "export",
      "html",      "svg_dir", "markdown"};
  return *s;
}

template <typename T>
absl::StatusOr<std::vector<T>> ParseList(
    absl::string_view spelled, const std::vector<std::string>& names,
    absl::StatusOr<T> (*parse)(absl::string_view)) {
  std::vector<T> out;
  for (const std::string& name : names) {
    if (name.empty()) continue;
    absl::StatusOr<T> v = parse(name);
    if (!v.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(spelled, ": ", v.status().message()));
    }
    if (std::find(out.begin(), out.end(), *v) == out.end()) out.push_back(*v);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(spelled, " is empty"));
  }
  return out;
}

// The flags of `line` by Abseil name. InvalidArgument if one is given
// twice (also as its alias).
absl::StatusOr<std::map<std::string, GivenFlag>> ByName(
    const CommandLine& line) {
  std::map<std::string, GivenFlag> given;
  for (const GivenFlag& g : line.flags) {
    auto [it, fresh] = given.emplace(g.name, g);
    if (fresh) continue;
    const std::string& first = it->second.spelled;
    return absl::InvalidArgumentError(
        first == g.spelled ? absl::StrCat(g.spelled, " given twice")
                           : absl::StrCat(first, " and ", g.spelled,
                                          " are the same flag (given twice)"));
  }
  return given;
}

// The Flags the process's flags hold now; `given` says which the command
// line set (for the checks, their mode and the mode's defaults).
absl::StatusOr<Flags> FromAbslFlags(
    const std::map<std::string, GivenFlag>& given) {
  auto was_given = [&](const char* name) { return given.count(name) != 0; };
  // "bad value for --bs: '0'", named as written.
  auto bad = [&](const char* name) {
    auto it = given.find(name);
    if (it == given.end()) {  // not from the command line: a default
      return absl::InternalError(absl::StrCat("bad default of --", name));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "bad value for ", it->second.spelled, ": '", it->second.value, "'"));
  };
  Flags f;
  f.compare = absl::GetFlag(FLAGS_compare);
  for (const auto& [name, g] : given) {
    if (f.compare && SingleOnly().count(name) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(g.spelled, " is not a --compare option"));
    }
    if (!f.compare && CompareOnly().count(name) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(g.spelled, " needs --compare"));
    }
  }
  f.quick = absl::GetFlag(FLAGS_quick);
  f.check = absl::GetFlag(FLAGS_check);
  f.setup = !absl::GetFlag(FLAGS_no_setup);
  f.progress = !absl::GetFlag(FLAGS_no_progress);
  f.shared_client = absl::GetFlag(FLAGS_shared_client);
  f.keep_files = absl::GetFlag(FLAGS_keep_files);
  f.file_size_given = was_given("file_size");

  Workload& w = f.workload;
  w.size = absl::GetFlag(FLAGS_size).bytes;
  w.file_size = absl::GetFlag(FLAGS_file_size).bytes;
  w.duration_s = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_duration).value);
  w.warmup_s = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_warmup).value);
  f.repeat = absl::GetFlag(FLAGS_repeat);
  // The mode's defaults, unless the flag was given.
  if (f.compare) {
    if (!was_given("duration")) w.duration_s = f.quick ? 1.0 : 3.0;
    if (!was_given("warmup")) w.warmup_s = f.quick ? 0.3 : 1.0;
    if (!was_given("file_size")) {
      w.file_size = f.quick ? uint64_t{128} << 20 : uint64_t{256} << 20;
    }
    if (!was_given("repeat")) f.repeat = f.quick ? 1 : 3;
  }
  if (w.duration_s <= 0) return bad("duration");
  if (f.repeat < 1) return bad("repeat");

  const HostPort server = absl::GetFlag(FLAGS_server);
  if (was_given("server") && server.port == 0) return bad("server");
  f.server_host = server.host;
  f.server_port = server.port;
  f.token_file = absl::GetFlag(FLAGS_token_file);
  if (was_given("token_file") && f.token_file.empty()) return bad("token_file");
  f.export_name = absl::GetFlag(FLAGS_export_name);
  if (was_given("workload")) {
    absl::StatusOr<WorkloadKind> kind =
        ParseWorkloadKind(absl::GetFlag(FLAGS_workload));
    if (!kind.ok()) return kind.status();
    w.kind = *kind;
  }
  const std::string pattern = absl::GetFlag(FLAGS_pattern);
  if (pattern != "seq" && pattern != "rand") return bad("pattern");
  w.random = pattern == "rand";
  w.concurrency = absl::GetFlag(FLAGS_concurrency);
  if (w.concurrency < 1) return bad("concurrency");
  w.connections = absl::GetFlag(FLAGS_connections);
  if (w.connections < 0) return bad("connections");
  if (w.connections == 0) {
    w.connections = std::min(w.concurrency, kDefaultConnectionsCap);
  }
  w.read_ratio = absl::GetFlag(FLAGS_read_ratio);
  if (!(w.read_ratio >= 0 && w.read_ratio <= 1)) return bad("read_ratio");
  w.file = absl::GetFlag(FLAGS_file);
  if (w.file.empty()) return bad("file");
  w.seed = absl::GetFlag(FLAGS_seed);
  f.server_pid = absl::GetFlag(FLAGS_server_pid);
  if (f.server_pid < 0) return bad("server_pid");

  if (was_given("engines")) {
    absl::StatusOr<std::vector<EngineKind>> e =
        ParseList<EngineKind>(given.at("engines").spelled,
                              absl::GetFlag(FLAGS_engines), &ParseEngineKind);
    if (!e.ok()) return e.status();
    f.engines = *std::move(e);
  }
  if (was_given("peers") && was_given("peer_set")) {
    return absl::InvalidArgumentError(
        "--peers and --peer-set exclude each other");
  }
  // "fio" is a target family, not a peer server: taken out of the lists.
  auto without_fio = [&f](std::vector<std::string> names) {
    auto fio = std::remove(names.begin(), names.end(), "fio");
    if (fio != names.end()) f.fio = true;
    names.erase(fio, names.end());
    return names;
  };
  if (was_given("peer_set")) {
    std::vector<std::string> names = without_fio(absl::GetFlag(FLAGS_peer_set));
    if (!f.fio || !names.empty()) {
      absl::StatusOr<std::vector<peers::PeerKind>> p =
          ParseList<peers::PeerKind>(given.at("peer_set").spelled, names,
                                     &peers::ParsePeerKind);
      if (!p.ok()) return p.status();
      f.peers = *std::move(p);
    }
  } else {
    f.peers = {peers::PeerKind::kRaw, peers::PeerKind::kGrpc};
    std::vector<std::string> names = without_fio(absl::GetFlag(FLAGS_peers));
    if (was_given("peers") && (!f.fio || !names.empty())) {
      absl::StatusOr<std::vector<peers::PeerKind>> p =
          ParseList<peers::PeerKind>(given.at("peers").spelled, names,
                                     &peers::ParsePeerKind);
      if (!p.ok()) return p.status();
      for (peers::PeerKind k : *p) {
        if (std::find(f.peers.begin(), f.peers.end(), k) == f.peers.end()) {
          f.peers.push_back(k);
        }
      }
    }
  }
  for (const std::string& id : absl::GetFlag(FLAGS_workloads)) {
    if (!id.empty()) f.workloads.push_back(id);
  }
  if (was_given("workloads") && f.workloads.empty()) return bad("workloads");
  f.txbufd = absl::GetFlag(FLAGS_txbufd);
  f.server_threads = absl::GetFlag(FLAGS_server_threads);
  if (f.server_threads < 0 || f.server_threads > 256) {
    return bad("server_threads");
  }
  f.cache_size = absl::GetFlag(FLAGS_cache_size).bytes;
  f.export_dir = absl::GetFlag(FLAGS_export);
  f.html_path = absl::GetFlag(FLAGS_html);
  f.svg_dir = absl::GetFlag(FLAGS_svg_dir);
  f.markdown_path = absl::GetFlag(FLAGS_markdown);
  f.client_engine = absl::GetFlag(FLAGS_client_engine);
  f.stats_interval_s =
      absl::ToDoubleSeconds(absl::GetFlag(FLAGS_stats_interval).value);
  if (f.stats_interval_s > 3600) return bad("stats_interval");
  f.json_path = absl::GetFlag(FLAGS_json);
  if (was_given("json") && f.json_path.empty()) return bad("json");
  if (f.json_path == "-") f.progress = false;

  if (f.compare) {
    if (w.file_size < (uint64_t{1} << 20)) {
      return absl::InvalidArgumentError(
          "--file-size must be at least 1M in compare mode");
    }
    return f;
  }
  if (f.server_port == 0) {
    return absl::InvalidArgumentError(
        "--server HOST:PORT or --compare is required");
  }
  if (!was_given("workload")) {
    return absl::InvalidArgumentError("--workload is required");
  }
  if (absl::Status s = ValidateWorkload(w); !s.ok()) return s;
  return f;
}

}  // namespace

std::string BenchHelp() {
  return FlagsHelp(kDefinedIn, Aliases(),
                   {{"token-file", "FILE"},
                    {"workload", "W"},
                    {"pattern", "P"},
                    {"file", "NAME"},
                    {"txbufd", "PATH"},
                    {"export", "DIR"},
                    {"export-name", "NAME"},
                    {"html", "FILE"},
                    {"svg-dir", "DIR"},
                    {"markdown", "FILE"},
                    {"json", "FILE"}});
}

std::vector<EngineKind> DefaultEngines(bool have_kmod) {
  std::vector<EngineKind> e = {EngineKind::kCopy, EngineKind::kMsgZerocopy,
                               EngineKind::kUringZc, EngineKind::kAuto};
  if (have_kmod) e.insert(e.begin() + 3, EngineKind::kKmod);
  return e;
}

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> line = SplitCommandLine(args, Aliases());
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
  absl::StatusOr<std::map<std::string, GivenFlag>> given = ByName(*line);
  if (!given.ok()) return given.status();
  // From the defaults, whatever an earlier call set. (Not absl::FlagSaver:
  // it logs each flag it puts back on stderr.)
  ResetFlagsToDefaults(kDefinedIn);
  if (absl::Status s = ApplyCommandLine(*line); !s.ok()) return s;
  return FromAbslFlags(*given);
}

}  // namespace txbuf::bench
