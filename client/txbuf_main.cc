// txbuf: the command-line client of a txbufd server.
//
//   txbuf --server HOST:PORT [--token-file F] [--engine E] CMD ARGS
//
// Exit status: 0 on success, 1 on failure (one line on stderr:
// "txbuf: <what>: <error>"), 2 for usage errors; --help and --version
// exit 0.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/internal/format.h"
#include "client/internal/paths.h"
#include "client/status.h"
#include "common/engine_kind.h"
#include "common/socket_util.h"

namespace txbuf::client {
namespace {

constexpr char kUsage[] =
    R"(usage: txbuf --server HOST:PORT [options] COMMAND [ARGS]

A client of a txbufd file server. Paths are relative to the server's export
root ('/'-separated; "/" or no path is the root).

Commands:
  ls [PATH]              list a directory: type and mode, size, mtime, name
  stat PATH              show the attributes of PATH
  get REMOTE LOCAL|-     download REMOTE to LOCAL (a file, a directory, or -
                         for standard output)
  put LOCAL|- REMOTE     upload LOCAL (or standard input) to REMOTE (a path,
                         or a directory ending in '/'); unstable writes, then
                         COMMIT
  rm PATH                remove a file
  mkdir PATH             create a directory
  rmdir PATH             remove an empty directory
  mv FROM TO             rename FROM to TO
  stats [--json]         the server's memory-recovery statistics (pinned
                         bytes, destructor latency, completions, engines,
                         slabs, page cache, connections); --json prints one
                         JSON object
  df                     size, free space and inodes of the export

Options:
  --server HOST[:PORT]   the server (default: $TXBUF_SERVER); PORT 7390 if
                         not given; IPv6 as [::1]:PORT
  --token-file FILE      the shared secret, if the server requires
                         authentication (trailing whitespace is ignored)
  --engine ENGINE        how requests reach the kernel: copy, msg_zerocopy,
                         uring_zc, kmod or auto (default auto)
  --connections N        connections to open (default 1)
  --timeout SECONDS      per-request timeout (default 60)
  --version              print the version and exit
  -h, --help             this text

get and put show a progress bar on standard error when it is a terminal.
Exit status: 0 on success (and for --help, --version), 1 on failure (one
line on standard error), 2 for usage errors.
)";

// A usage error: one line, exit 2. Names in it are escaped as `ls` prints
// them (internal::EscapeName).
int UsageError(absl::string_view what) {
  std::fprintf(stderr, "txbuf: %s (try 'txbuf --help')\n",
               internal::EscapeName(what).c_str());
  return 2;
}

// A failure: "txbuf: <what>: <error>" on one line, exit 1, escaped as `ls`
// prints names (names are bytes; the server's text quotes them).
int Fail(absl::string_view what, const absl::Status& s) {
  std::string msg = internal::EscapeName(
      s.message().empty() ? s.ToString() : std::string(s.message()));
  if (what.empty()) {
    std::fprintf(stderr, "txbuf: %s\n", msg.c_str());
  } else {
    std::fprintf(stderr, "txbuf: %s: %s\n", internal::EscapeName(what).c_str(),
                 msg.c_str());
  }
  return 1;
}

// Writes the progress line to stderr at most 10 times a second.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label)
      : enabled_(isatty(STDERR_FILENO) == 1),
        label_(std::move(label)),
        start_(absl::Now()) {}
  ~ProgressBar() { Finish(); }

  void Update(uint64_t done, uint64_t total) {
    if (!enabled_) return;
    done_ = done;
    total_ = total;
    absl::Time now = absl::Now();
    if (now - last_ < absl::Milliseconds(100) && done != total) return;
    last_ = now;
    Draw();
  }
  void Finish() {
    if (!enabled_ || finished_) return;
    finished_ = true;
    if (last_ != absl::InfinitePast()) {
      if (drawn_ != done_) Draw();
      std::fputc('\n', stderr);
    }
  }

 private:
  void Draw() {
    drawn_ = done_;
    double secs = absl::ToDoubleSeconds(absl::Now() - start_);
    std::string line =
        absl::StrCat(label_, " ", internal::ProgressLine(done_, total_, secs));
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    std::fflush(stderr);
  }

  const bool enabled_;
  const std::string label_;
  const absl::Time start_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t done_ = 0;
  uint64_t total_ = 0;
  uint64_t drawn_ = ~uint64_t{0};
  bool finished_ = false;
};

bool PrintOut(absl::string_view s) {
  return std::fwrite(s.data(), 1, s.size(), stdout) == s.size();
}

int Run(int argc, char** argv) {
  std::string server;
  if (const char* env = std::getenv("TXBUF_SERVER")) server = env;
  std::string token_file;
  std::string engine = "auto";
  int connections = 1;
  double timeout_s = 60;
  std::vector<std::string> args;

  // Global options come before the command; after it, arguments (and the
  // command's own options) follow.
  int i = 1;
  auto value = [&](absl::string_view arg, absl::string_view name,
                   std::string* out) -> int {
    // Returns 1 if consumed, 0 if not this option, -1 on error.
    if (arg == name) {
      if (i + 1 >= argc) return -1;
      *out = argv[++i];
      return 1;
    }
    if (absl::StartsWith(arg, absl::StrCat(name, "="))) {
      absl::string_view v = arg.substr(name.size() + 1);
      out->assign(v.data(), v.size());
      return 1;
    }
    return 0;
  };
  for (; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("txbuf %s\n", TXBUF_VERSION);
      return 0;
    }
    if (!absl::StartsWith(a, "-") || a == "-") break;
    if (a == "--") {
      ++i;
      break;
    }
    std::string v;
    int r = 0;
    if ((r = value(a, "--server", &server)) != 0 ||
        (r = value(a, "--token-file", &token_file)) != 0 ||
        (r = value(a, "--engine", &engine)) != 0) {
      if (r < 0) return UsageError(absl::StrCat(a, " needs a value"));
      continue;
    }
    if ((r = value(a, "--connections", &v)) != 0) {
      if (r < 0 || !absl::SimpleAtoi(v, &connections) || connections < 1) {
        return UsageError("--connections needs a number >= 1");
      }
      continue;
    }
    if ((r = value(a, "--timeout", &v)) != 0) {
      if (r < 0 || !absl::SimpleAtod(v, &timeout_s) || !(timeout_s > 0)) {
        return UsageError("--timeout needs a positive number of seconds");
      }
      continue;
    }
    return UsageError(absl::StrCat("unknown option '", a, "'"));
  }
  if (i >= argc) return UsageError("no command given");
  std::string cmd = argv[i++];
  for (; i < argc; ++i) args.emplace_back(argv[i]);

  // Check the command line completely before connecting.
  bool json = false;
  auto nargs = [&](size_t lo, size_t hi) {
    return args.size() >= lo && args.size() <= hi;
  };
  if (cmd == "ls") {
    if (!nargs(0, 1)) return UsageError("usage: ls [PATH]");
  } else if (cmd == "stat" || cmd == "rm" || cmd == "mkdir" || cmd == "rmdir") {
    if (!nargs(1, 1)) return UsageError(absl::StrCat("usage: ", cmd, " PATH"));
  } else if (cmd == "get") {
    if (!nargs(2, 2)) return UsageError("usage: get REMOTE LOCAL|-");
  } else if (cmd == "put") {
    if (!nargs(2, 2)) return UsageError("usage: put LOCAL|- REMOTE");
  } else if (cmd == "mv") {
    if (!nargs(2, 2)) return UsageError("usage: mv FROM TO");
  } else if (cmd == "stats") {
    if (args.size() == 1 && args[0] == "--json") {
      json = true;
    } else if (!args.empty()) {
      return UsageError("usage: stats [--json]");
    }
  } else if (cmd == "df") {
    if (!args.empty()) return UsageError("usage: df");
  } else {
    return UsageError(absl::StrCat("unknown command '", cmd, "'"));
  }

  if (server.empty()) {
    return UsageError("no server given (--server HOST:PORT)");
  }
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(server, kDefaultPort);
  if (!hp.ok() || hp->second == 0) {
    return UsageError(
        absl::StrCat("bad --server '", server, "' (want HOST[:PORT])"));
  }
  absl::StatusOr<EngineKind> kind = ParseEngineKind(engine);
  if (!kind.ok()) return UsageError(kind.status().message());

  ClientOptions opts;
  opts.host = hp->first;
  opts.port = hp->second;
  opts.engine = *kind;
  opts.connections = connections;
  opts.request_timeout = absl::Seconds(timeout_s);
  if (!token_file.empty()) {
    absl::StatusOr<std::string> tok = ReadTokenFile(token_file);
    if (!tok.ok()) return Fail("", tok.status());
    opts.token = *tok;
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(opts);
  if (!client.ok()) return Fail("", client.status());
  Client& c = **client;

  auto what = [&] {
    std::string w = cmd;
    for (const std::string& a : args) {
      if (a != "--json") absl::StrAppend(&w, " ", a);
    }
    return w;
  };

  if (cmd == "ls") {
    std::string path = args.empty() ? "" : args[0];
    absl::StatusOr<std::vector<rpc::DirEntry>> list = c.List(path);
    if (!list.ok() && RpcStatusOf(list.status()) == rpc::STATUS_NOTDIR) {
      // ls of a file lists the file.
      absl::StatusOr<rpc::Attr> attr = c.Stat(path);
      if (!attr.ok()) return Fail(what(), attr.status());
      rpc::DirEntry e;
      e.set_name(internal::NormalizePath(path));
      *e.mutable_attr() = *attr;
      list = std::vector<rpc::DirEntry>{e};
    }
    if (!list.ok()) return Fail(what(), list.status());
    std::string out = internal::FormatListing(*std::move(list));
    if (!out.empty()) out += '\n';
    PrintOut(out);
  } else if (cmd == "stat") {
    absl::StatusOr<rpc::Attr> attr = c.Stat(args[0]);
    if (!attr.ok()) return Fail(what(), attr.status());
    PrintOut(internal::FormatStat(internal::NormalizePath(args[0]), *attr));
  } else if (cmd == "get") {
    std::string local = args[1];
    struct stat sb;
    if (local != "-" && stat(local.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) {
      local = absl::StrCat(local, "/", internal::BaseName(args[0]));
    }
    ProgressBar bar(internal::BaseName(args[0]));
    absl::StatusOr<uint64_t> n = c.GetFile(
        args[0], local,
        [&](uint64_t done, uint64_t total) { bar.Update(done, total); });
    bar.Finish();
    if (!n.ok()) return Fail(what(), n.status());
  } else if (cmd == "put") {
    std::string remote = args[1];
    if (absl::EndsWith(remote, "/") ||
        internal::NormalizePath(remote).empty()) {
      if (args[0] == "-") {
        return UsageError("put from standard input needs a remote file name");
      }
      remote = absl::StrCat(remote, "/", internal::BaseName(args[0]));
    }
    ProgressBar bar(internal::BaseName(args[0] == "-" ? remote : args[0]));
    absl::StatusOr<uint64_t> n = c.PutFile(
        args[0], remote,
        [&](uint64_t done, uint64_t total) { bar.Update(done, total); });
    bar.Finish();
    if (!n.ok()) return Fail(what(), n.status());
  } else if (cmd == "rm") {
    if (absl::Status s = c.Remove(args[0]); !s.ok()) return Fail(what(), s);
  } else if (cmd == "mkdir") {
    if (absl::StatusOr<rpc::FhResult> r = c.Mkdir(args[0]); !r.ok()) {
      return Fail(what(), r.status());
    }
  } else if (cmd == "rmdir") {
    if (absl::Status s = c.Rmdir(args[0]); !s.ok()) return Fail(what(), s);
  } else if (cmd == "mv") {
    if (absl::Status s = c.Rename(args[0], args[1]); !s.ok()) {
      return Fail(what(), s);
    }
  } else if (cmd == "stats") {
    absl::StatusOr<rpc::StatsResult> st = c.Stats();
    if (!st.ok()) return Fail(what(), st.status());
    PrintOut(json ? absl::StrCat(internal::MessageToJson(*st), "\n")
                  : internal::FormatStats(*st));
  } else if (cmd == "df") {
    absl::StatusOr<rpc::StatFsResult> fs = c.StatFs();
    if (!fs.ok()) return Fail(what(), fs.status());
    PrintOut(internal::FormatStatFs(*fs));
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    return Fail("standard output", absl::InternalError("write error"));
  }
  return 0;
}

}  // namespace
}  // namespace txbuf::client

int main(int argc, char** argv) { return txbuf::client::Run(argc, argv); }
