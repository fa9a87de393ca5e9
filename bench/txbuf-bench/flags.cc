#include "bench/txbuf-bench/flags.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/socket_util.h"

namespace txbuf::bench {

const char kUsage[] = R"(usage:
  txbuf-bench --server HOST:PORT --workload read|write|mixed|meta [options]
  txbuf-bench --compare [--quick] [options]

Single run against a running txbufd:
  --server HOST[:PORT]    the server (PORT 7390 if not given)
  --token-file FILE       the server's shared secret (as txbufd
                          --token-file and txbuf --token-file), if it
                          requires one
  --workload W            read | write | mixed | meta (LOOKUP/GETATTR/READDIR)
  --size BYTES            bytes per request, each READ or WRITE (default
                          4K; alias: --bs). Careful: not fio's --size
                          (fio's is the file's size: here --file-size)
  --pattern P             seq | rand (default rand)
  --concurrency N         requests outstanding in total (default 1)
                          (alias: --iodepth)
  --connections C         connections they are spread over
                          (default min(N, 4))
  --duration SECONDS      measured interval (default 10) (alias: --runtime)
  --warmup SECONDS        load before it, not measured (default 2)
                          (alias: --ramp_time)
  --file-size BYTES       size of the test file, the range the requests'
                          offsets fall in (default 256M). Alias: --filesize.
                          A read of a file that exists reads it as it is:
                          its size unless --file-size is given (then the
                          file must be at least that long)
  --read-ratio R          mixed: fraction of reads (default 0.5); the report
                          gives reads and writes separately as well
  --file NAME             test file in the export (default txbuf-bench.dat)
                          (alias: --filename)
  --seed N                content seed of the test file
  --server-pid PID        for server CPU (default: the local process
                          listening on PORT, if any)
  --no-setup              do not create or check the test file / meta dir

  The test file (and for meta the directory txbuf-bench-meta) is created
  with pattern data if missing, or rewritten if its size or data are not
  right, except that a read workload never writes a file that exists: it
  reads it (verifying the data only if they are the pattern of --seed), so
  a read-only export (txbufd --read-only) works. Files the run created are
  removed at its end unless --keep-files; files that were there before are
  left.

Compare mode (starts txbufd per engine and the peers on a temporary export):
  --quick                 1 s runs, 0.3 s warmup, repeat 1, 128 MiB file
                          (about 1 minute with the default targets)
  --repeat N              runs per workload and target; median (default 3)
  --duration/--warmup/--file-size   override the mode's defaults
                          (full: 3 s, 1 s, 256 MiB)
  --engines LIST          comma-separated (default copy,msg_zerocopy,
                          uring_zc,auto, and kmod where /dev/txbuf exists)
  --peers LIST            peers to add to raw and grpc (e.g. nfs)
  --peer-set LIST         exactly these peers (e.g. raw)
  --workloads LIST        only these workload ids (e.g. read-4k-rand-c64)
  --txbufd PATH           the server binary
  --server-threads N      txbufd --threads (default: one per CPU, as the
                          raw peer serves each connection on its own thread)
  --cache-size BYTES      txbufd --cache-size (default file size + 256M)
  --export DIR            use DIR (its test file is rewritten, and removed
                          at the end unless --keep-files) instead of a
                          temporary directory
  --html FILE             self-contained report with SVG charts
  --svg-dir DIR           the report's charts as separate SVG files
  --markdown FILE         the tables in Markdown

Both:
  --keep-files            leave the test files the run created in the
                          export (default: remove them at the end)
  --client-engine E       engine of the client's request txbufs (default
                          auto)
  --shared-client         one txbuf client (one loop thread) multiplexing all
                          connections, instead of one client and thread per
                          connection (the peers' model)
  --stats-interval S      sample txbufd's STATS every S seconds during a
                          run (default 0.1; 0: only at its start and end)
  --json FILE             every figure as JSON ("-": standard output; no
                          progress line)
  --check                 exit 1 if any run had errors, verify failures or
                          a missing figure
  --no-progress           no progress output
  --version               print the version and exit
  -h, --help              this text

BYTES take K, M and G suffixes (powers of 1024). Flags take "--flag VALUE"
or "--flag=VALUE"; a flag given twice (or with its alias) and an unknown
flag are errors (exit status 2).
)";

namespace {

constexpr int kDefaultConnectionsCap = 4;

absl::Status Bad(absl::string_view flag, absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad value for --", flag, ": '", value, "'"));
}

template <typename T>
absl::StatusOr<std::vector<T>> ParseList(
    absl::string_view flag, absl::string_view value,
    absl::StatusOr<T> (*parse)(absl::string_view)) {
  std::vector<T> out;
  for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipEmpty())) {
    absl::StatusOr<T> v = parse(part);
    if (!v.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": ", v.status().message()));
    }
    if (std::find(out.begin(), out.end(), *v) == out.end()) out.push_back(*v);
  }
  if (out.empty())
    return absl::InvalidArgumentError(Bad(flag, value).message());
  return out;
}

const std::set<std::string>& BoolFlags() {
  static const auto* s = new std::set<std::string>{
      "compare",  "quick",         "check", "no-progress",
      "no-setup", "shared-client", "help",  "keep-files"};
  return *s;
}

// Flags that take a value.
const std::set<std::string>& ValueFlags() {
  static const auto* s = new std::set<std::string>{
      "server",         "token-file", "workload",
      "size",           "pattern",    "concurrency",
      "connections",    "duration",   "warmup",
      "file-size",      "read-ratio", "file",
      "seed",           "server-pid", "repeat",
      "engines",        "peers",      "peer-set",
      "workloads",      "txbufd",     "server-threads",
      "cache-size",     "export",     "html",
      "svg-dir",        "markdown",   "client-engine",
      "stats-interval", "json"};
  return *s;
}

// fio's names for our flags (same meaning and units).
const std::map<std::string, std::string>& Aliases() {
  static const auto* m = new std::map<std::string, std::string>{
      {"bs", "size"},          {"iodepth", "concurrency"},
      {"runtime", "duration"}, {"ramp_time", "warmup"},
      {"filename", "file"},    {"filesize", "file-size"}};
  return *m;
}

const std::set<std::string>& SingleOnly() {
  static const auto* s = new std::set<std::string>{
      "server",      "workload",    "size",       "pattern",
      "concurrency", "connections", "read-ratio", "file",
      "seed",        "server-pid",  "no-setup",   "token-file"};
  return *s;
}

const std::set<std::string>& CompareOnly() {
  static const auto* s = new std::set<std::string>{
      "quick",     "repeat",  "engines",        "peers",      "peer-set",
      "workloads", "txbufd",  "server-threads", "cache-size", "export",
      "html",      "svg-dir", "markdown"};
  return *s;
}

}  // namespace

std::vector<EngineKind> DefaultEngines(bool have_kmod) {
  std::vector<EngineKind> e = {EngineKind::kCopy, EngineKind::kMsgZerocopy,
                               EngineKind::kUringZc, EngineKind::kAuto};
  if (have_kmod) e.insert(e.begin() + 3, EngineKind::kKmod);
  return e;
}

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags f;
  std::map<std::string, std::string> kv;
  std::set<std::string> given;
  std::map<std::string, std::string> spelled;  // flag -> name as given
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      f.help = true;
      return f;
    }
    if (a == "--version") {
      f.version = true;
      return f;
    }
    if (absl::StartsWith(a, "-") && !absl::StartsWith(a, "--") &&
        a.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", a.substr(0, a.find('='))));
    }
    if (!absl::StartsWith(a, "--") || a.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected '", a, "'"));
    }
    std::string name = a.substr(2);
    std::string value;
    size_t eq = name.find('=');
    bool has_value = false;
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    // Known before anything else: an unknown flag must not take the next
    // argument as its value.
    const std::string as_given = name;
    if (auto alias = Aliases().find(name); alias != Aliases().end()) {
      name = alias->second;
    }
    if (BoolFlags().count(name) == 0 && ValueFlags().count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", as_given));
    }
    if (has_value) {
      if (BoolFlags().count(name) != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", as_given, " takes no value"));
      }
    } else if (BoolFlags().count(name) == 0) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", as_given, " needs a value"));
      }
      value = args[++i];
    }
    if (!given.insert(name).second) {
      const std::string& first = spelled[name];
      return absl::InvalidArgumentError(
          first == as_given ? absl::StrCat("--", as_given, " given twice")
                            : absl::StrCat("--", first, " and --", as_given,
                                           " are the same flag (given twice)"));
    }
    spelled[name] = as_given;
    kv[name] = value;
  }
  f.compare = given.count("compare") != 0;
  for (const std::string& name : given) {
    if (f.compare && SingleOnly().count(name) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", spelled[name], " is not a --compare option"));
    }
    if (!f.compare && CompareOnly().count(name) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", spelled[name], " needs --compare"));
    }
  }
  f.quick = given.count("quick") != 0;
  f.check = given.count("check") != 0;
  f.setup = given.count("no-setup") == 0;
  f.progress = given.count("no-progress") == 0;
  f.shared_client = given.count("shared-client") != 0;
  f.keep_files = given.count("keep-files") != 0;
  f.file_size_given = given.count("file-size") != 0;

  // Mode defaults first; explicit flags override them below.
  BenchWorkload& w = f.workload;
  if (f.compare) {
    w.duration_s = f.quick ? 1.0 : 3.0;
    w.warmup_s = f.quick ? 0.3 : 1.0;
    w.file_size = f.quick ? uint64_t{128} << 20 : uint64_t{256} << 20;
    f.repeat = f.quick ? 1 : 3;
  }
  bool connections_given = false;
  for (const auto& [k, v] : kv) {
    bool ok = true;
    if (BoolFlags().count(k) != 0) {
      continue;
    } else if (k == "token-file") {
      f.token_file = v;
      ok = !v.empty();
    } else if (k == "server") {
      absl::StatusOr<std::pair<std::string, uint16_t>> hp =
          SplitHostPort(v, kDefaultPort);
      ok = hp.ok() && hp->second != 0;
      if (ok) {
        f.server_host = hp->first;
        f.server_port = hp->second;
      }
    } else if (k == "workload") {
      absl::StatusOr<WorkloadKind> kind = ParseWorkloadKind(v);
      if (!kind.ok()) return kind.status();
      w.kind = *kind;
    } else if (k == "size" || k == "file-size" || k == "cache-size") {
      absl::StatusOr<uint64_t> n = ParseBytes(v);
      if (!n.ok()) return Bad(spelled[k], v);
      (k == "size"        ? w.size
       : k == "file-size" ? w.file_size
                          : f.cache_size) = *n;
    } else if (k == "pattern") {
      ok = v == "seq" || v == "rand";
      w.random = v == "rand";
    } else if (k == "concurrency") {
      ok = absl::SimpleAtoi(v, &w.concurrency) && w.concurrency >= 1;
    } else if (k == "connections") {
      ok = absl::SimpleAtoi(v, &w.connections) && w.connections >= 1;
      connections_given = true;
    } else if (k == "duration") {
      ok = absl::SimpleAtod(v, &w.duration_s) && w.duration_s > 0;
    } else if (k == "warmup") {
      ok = absl::SimpleAtod(v, &w.warmup_s) && w.warmup_s >= 0;
    } else if (k == "read-ratio") {
      ok = absl::SimpleAtod(v, &w.read_ratio) && w.read_ratio >= 0 &&
           w.read_ratio <= 1;
    } else if (k == "file") {
      w.file = v;
      ok = !v.empty();
    } else if (k == "seed") {
      ok = absl::SimpleAtoi(v, &w.seed);
    } else if (k == "server-pid") {
      ok = absl::SimpleAtoi(v, &f.server_pid) && f.server_pid > 0;
    } else if (k == "repeat") {
      ok = absl::SimpleAtoi(v, &f.repeat) && f.repeat >= 1;
    } else if (k == "engines") {
      absl::StatusOr<std::vector<EngineKind>> e =
          ParseList<EngineKind>(k, v, &ParseEngineKind);
      if (!e.ok()) return e.status();
      f.engines = *std::move(e);
    } else if (k == "peers" || k == "peer-set") {
      absl::StatusOr<std::vector<peers::PeerKind>> p =
          ParseList<peers::PeerKind>(k, v, &peers::ParsePeerKind);
      if (!p.ok()) return p.status();
      f.peers = *std::move(p);
    } else if (k == "workloads") {
      for (absl::string_view id : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        f.workloads.emplace_back(id);
      }
      ok = !f.workloads.empty();
    } else if (k == "txbufd") {
      f.txbufd = v;
    } else if (k == "server-threads") {
      ok = absl::SimpleAtoi(v, &f.server_threads) && f.server_threads >= 1 &&
           f.server_threads <= 256;
    } else if (k == "export") {
      f.export_dir = v;
    } else if (k == "html") {
      f.html_path = v;
    } else if (k == "svg-dir") {
      f.svg_dir = v;
    } else if (k == "markdown") {
      f.markdown_path = v;
    } else if (k == "client-engine") {
      absl::StatusOr<EngineKind> e = ParseEngineKind(v);
      if (!e.ok()) return e.status();
      f.client_engine = *e;
    } else if (k == "stats-interval") {
      ok = absl::SimpleAtod(v, &f.stats_interval_s) &&
           f.stats_interval_s >= 0 && f.stats_interval_s <= 3600;
    } else if (k == "json") {
      f.json_path = v;
      ok = !v.empty();
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", k));
    }
    if (!ok) return Bad(spelled[k], v);
  }
  if (given.count("peers") != 0 && given.count("peer-set") != 0) {
    return absl::InvalidArgumentError(
        "--peers and --peer-set exclude each other");
  }
  if (given.count("peer-set") == 0) {
    std::vector<peers::PeerKind> p = {peers::PeerKind::kRaw,
                                      peers::PeerKind::kGrpc};
    for (peers::PeerKind k : f.peers) {
      if (std::find(p.begin(), p.end(), k) == p.end()) p.push_back(k);
    }
    f.peers = std::move(p);
  }
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
  if (given.count("workload") == 0) {
    return absl::InvalidArgumentError("--workload is required");
  }
  if (!connections_given) {
    w.connections = std::min(w.concurrency, kDefaultConnectionsCap);
  }
  if (absl::Status s = ValidateBenchWorkload(w); !s.ok()) return s;
  return f;
}

}  // namespace txbuf::bench
