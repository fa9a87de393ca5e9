// txbufd: the txbuf file server.
//
//   txbufd --export DIR [--listen HOST:PORT] [--engine E] [--threads N] ...
//   txbufd --config /etc/txbuf/txbufd.conf [options that win over it]
//
// Prints "listening on HOST:PORT" on stdout when ready. On SIGTERM or SIGINT
// it stops accepting, finishes or aborts what is in flight, waits for every
// txbuf destructor, writes back cached data, prints one JSON line of final
// statistics (pinned_bytes is 0) and exits 0; SIGQUIT does the same. On SIGHUP
// it reads the token file again (connections authenticating from then on need
// the new token; an unreadable or empty file keeps the old one) and, with
// --config, the file's budgets and intervals, and goes on (docs/OPERATING.md).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/socket_util.h"
#include "server/config_file.h"
#include "server/logging.h"
#include "server/server.h"

namespace {

constexpr char kUsage[] = R"(usage: txbufd --export DIR [options]

Serves DIR over the txbuf protocol (docs/PROTOCOL.md).

  --config FILE           read options from FILE (TOML: `name = value`, one
                          per option below, without the "--"; switches take
                          true/false); the command line wins; SIGHUP reads it
                          again and applies the token file, budgets and
                          intervals (docs/OPERATING.md)
  --export DIR            directory to export (required)
  --listen HOST[:PORT]    address to listen on (default 127.0.0.1:7390, the
                          default port if none is given; port 0 picks a
                          free port; prints "listening on HOST:PORT")
  --engine E              copy | msg_zerocopy | uring_zc | kmod | auto
                          (default auto)
  --threads N             event-loop threads, SO_REUSEPORT (default 1)
  --read-only             refuse every change (ROFS)
  --token-file FILE       require the shared secret in FILE (challenge-
                          response; the secret never crosses the wire);
                          FILE must be readable by its owner only (chmod
                          600); SIGHUP reads FILE again
  --allow-readable-token-file
                          accept a token file that its group or others may
                          read (refused otherwise, as ssh refuses such keys)
  --allow-unauthenticated listen on a non-loopback address without a token
                          file (refused otherwise: anyone who reaches the
                          port could read and change the export)
  --user NAME             once listening with the export open, run as NAME
                          (its uid, gid and groups): files are accessed with
                          that user's permissions (see docs/SECURITY.md)
  --conn-budget BYTES     pinned bytes per connection (default 64M)
  --budget BYTES          pinned bytes for the whole server (default 1G,
                          at most half of --cache-size)
  --budget-deadline SECS  close a connection over its budget this long
                          (default 10)
  --cache-size BYTES      page cache and staging memory (default 1G)
  --io-threads N          threads for file work that may block: fsync, cache
                          misses, opens, directory operations (default 4)
  --max-connections N     connections at once (default 1024, lowered to fit
                          the descriptor limit); past it a new connection
                          gets Reply{DELAY} and is closed
  --max-pending-connections N
                          connections not yet authenticated (or, without a
                          token, without a first request) at once (default
                          64, shared by the --threads event loops); past
                          its share, a loop closes its oldest one
  --frame-timeout SECS    close a connection whose frame stops arriving for
                          this long (default 30)
  --revalidate SECS       a READ or WRITE of a cached file first checks it on
                          disk (one fstat) when its last check is older than
                          this (default 0.1; 0: every time); LOOKUP, GETATTR
                          and READDIR always check (docs/PAGE_CACHE.md)
  --dirty-expire SECS     unstable writes not committed are written back
                          once this old (default 30), within
                          --writeback-interval more
  --writeback-interval SECS
                          how often to look for them (default 5)
  --metrics-listen HOST:PORT
                          serve Prometheus metrics on http://HOST:PORT/metrics
                          (port 0 picks one; the start-up log line says
                          which); no authentication: keep it on a trusted
                          address (docs/OPERATING.md, "Metrics")
  --log-level L           debug | info | warning | error (default info):
                          what goes to stderr (server/logging.h; debug adds
                          every connection opened and closed)
  --stage-threshold BYTES copy objects shorter than this into staging pages,
                          reference longer ones (default 1024; 0: reference all)
  --no-fixed-buffers      do not register the page arena with io_uring
                          (used by uring_zc and auto)
  --version               print the version and exit
  -h, --help              this text

BYTES accept K, M and G suffixes (powers of 1024). An option given twice
takes its last value, except --export and --config (an error).
)";

bool ParseBytes(absl::string_view s, uint64_t* out) {
  uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k':
      case 'K':
        mult = 1ull << 10;
        break;
      case 'm':
      case 'M':
        mult = 1ull << 20;
        break;
      case 'g':
      case 'G':
        mult = 1ull << 30;
        break;
      default:
        break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) return false;
  *out = v * mult;
  return true;
}

[[noreturn]] void Die(const std::string& msg, int code = 2) {
  std::fprintf(stderr, "txbufd: %s\n", msg.c_str());
  if (code == 2) std::fprintf(stderr, "Try 'txbufd --help'.\n");
  std::exit(code);
}

}  // namespace

// The options that take no value on the command line (true or false in
// the configuration file, or --NAME=false).
bool IsSwitch(absl::string_view flag) {
  return flag == "--read-only" || flag == "--allow-unauthenticated" ||
         flag == "--allow-readable-token-file" || flag == "--no-fixed-buffers";
}

// Applies option `flag` ("--name") with `value` to `o`. InvalidArgument for
// a bad value or an unknown option; FailedPrecondition when the token file
// cannot be read.
absl::Status ApplyOption(const std::string& flag, const std::string& value,
                         txbuf::server::ServerOptions& o) {
  uint64_t n = 0;
  bool on = false;
  if (IsSwitch(flag)) {
    if (value == "true") {
      on = true;
    } else if (value != "false") {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " takes true or false"));
    }
  }
  if (flag == "--export") {
    o.export_dir = value;
  } else if (flag == "--listen") {
    absl::StatusOr<std::pair<std::string, uint16_t>> hp =
        txbuf::SplitHostPort(value, txbuf::kDefaultPort);
    if (!hp.ok())
      return absl::InvalidArgumentError(std::string(hp.status().message()));
    o.host = hp->first;
    o.port = hp->second;
  } else if (flag == "--engine") {
    absl::StatusOr<txbuf::EngineKind> e = txbuf::ParseEngineKind(value);
    if (!e.ok())
      return absl::InvalidArgumentError(std::string(e.status().message()));
    o.engine = *e;
  } else if (flag == "--threads") {
    if (!ParseBytes(value, &n) || n < 1 || n > 256)
      return absl::InvalidArgumentError("bad --threads");
    o.threads = static_cast<int>(n);
  } else if (flag == "--read-only") {
    o.read_only = on;
  } else if (flag == "--token-file") {
    o.token_file = value;  // read once every option is known
  } else if (flag == "--allow-readable-token-file") {
    o.allow_readable_token_file = on;
  } else if (flag == "--allow-unauthenticated") {
    o.allow_unauthenticated = on;
  } else if (flag == "--user") {
    o.user = value;
    if (o.user.empty())
      return absl::InvalidArgumentError("--user needs a user name");
  } else if (flag == "--conn-budget") {
    if (!ParseBytes(value, &o.conn_budget))
      return absl::InvalidArgumentError("bad --conn-budget");
  } else if (flag == "--budget") {
    if (!ParseBytes(value, &o.budget))
      return absl::InvalidArgumentError("bad --budget");
  } else if (flag == "--budget-deadline") {
    double secs = 0;
    if (!absl::SimpleAtod(value, &secs) || secs < 0) {
      return absl::InvalidArgumentError("bad --budget-deadline");
    }
    o.budget_deadline = absl::Seconds(secs);
  } else if (flag == "--cache-size") {
    if (!ParseBytes(value, &o.cache_bytes) || o.cache_bytes < (1 << 20)) {
      return absl::InvalidArgumentError("bad --cache-size (at least 1M)");
    }
  } else if (flag == "--io-threads") {
    if (!ParseBytes(value, &n) || n < 1 || n > 256)
      return absl::InvalidArgumentError("bad --io-threads");
    o.io_threads = static_cast<int>(n);
  } else if (flag == "--max-connections") {
    if (!ParseBytes(value, &n) || n < 1)
      return absl::InvalidArgumentError("bad --max-connections");
    o.max_connections = n;
  } else if (flag == "--max-pending-connections") {
    if (!ParseBytes(value, &n) || n < 1) {
      return absl::InvalidArgumentError("bad --max-pending-connections");
    }
    o.max_pending_connections = n;
  } else if (flag == "--frame-timeout") {
    double secs = 0;
    if (!absl::SimpleAtod(value, &secs) || secs <= 0) {
      return absl::InvalidArgumentError("bad --frame-timeout");
    }
    o.frame_timeout = absl::Seconds(secs);
  } else if (flag == "--revalidate" || flag == "--dirty-expire" ||
             flag == "--writeback-interval") {
    double secs = 0;
    if (!absl::SimpleAtod(value, &secs) || secs < 0 || secs > 1e6 ||
        (secs == 0 && flag == "--writeback-interval")) {
      return absl::InvalidArgumentError(absl::StrCat("bad ", flag));
    }
    (flag == "--revalidate"     ? o.revalidate_interval
     : flag == "--dirty-expire" ? o.dirty_expire
                                : o.writeback_interval) = absl::Seconds(secs);
  } else if (flag == "--metrics-listen") {
    if (absl::StatusOr<std::pair<std::string, uint16_t>> hp =
            txbuf::SplitHostPort(value);
        !hp.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --metrics-listen: ", hp.status().message()));
    }
    o.metrics_listen = value;
  } else if (flag == "--log-level") {
    absl::StatusOr<txbuf::server::LogLevel> l =
        txbuf::server::ParseLogLevel(value);
    if (!l.ok())
      return absl::InvalidArgumentError(std::string(l.status().message()));
    o.log_level = *l;
  } else if (flag == "--stage-threshold") {
    if (!ParseBytes(value, &n))
      return absl::InvalidArgumentError("bad --stage-threshold");
    o.stage_threshold = n;
  } else if (flag == "--no-fixed-buffers") {
    o.fixed_buffers = !on;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown option ", flag));
  }
  return absl::OkStatus();
}

// The options in effect: the configuration file's (`config`, if not
// empty), then the command line's `cli` (which win).
absl::Status BuildOptions(
    const std::string& config,
    const std::vector<std::pair<std::string, std::string>>& cli,
    txbuf::server::ServerOptions& o) {
  if (!config.empty()) {
    absl::StatusOr<std::vector<txbuf::server::ConfigEntry>> entries =
        txbuf::server::ReadConfigFile(config);
    if (!entries.ok()) return entries.status();
    for (const txbuf::server::ConfigEntry& e : *entries) {
      const std::string flag = absl::StrCat("--", e.key);
      absl::Status s = flag == "--config" || flag == "--help"
                           ? absl::InvalidArgumentError("not an option here")
                           : ApplyOption(flag, e.value, o);
      if (!s.ok()) {
        return absl::Status(
            s.code(), absl::StrCat(config, ": ", e.key, ": ", s.message()));
      }
    }
    absl::StatusOr<std::vector<txbuf::server::ExportConfig>> exports =
        txbuf::server::ReadConfigExports(config);
    if (!exports.ok()) return exports.status();
    o.exports = *std::move(exports);
  }
  for (const auto& [flag, value] : cli) {
    if (absl::Status s = ApplyOption(flag, value, o); !s.ok()) return s;
    // --export DIR replaces the file's exports, as any option does.
    if (flag == "--export") o.exports.clear();
  }
  if (absl::StatusOr<std::vector<txbuf::server::ExportConfig>> e =
          txbuf::server::EffectiveExports(o);
      !e.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.empty() ? "" : config + ": ", e.status().message()));
  }
  if (!o.token_file.empty()) {
    absl::StatusOr<std::string> tok =
        txbuf::server::ReadTokenFile(o.token_file, o.allow_readable_token_file);
    if (!tok.ok())
      return absl::FailedPreconditionError(std::string(tok.status().message()));
    o.token = *std::move(tok);
  }
  return absl::OkStatus();
}

int main(int argc, char** argv) {
  std::string config;
  std::vector<std::pair<std::string, std::string>> cli;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    const std::string flag = a.substr(0, eq);
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (flag == "--version") {
      std::printf("txbufd %s\n", TXBUF_VERSION);
      return 0;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else if (IsSwitch(flag)) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      Die(absl::StrCat(a, " needs a value"));
    }
    // A later option wins over an earlier one (as a command line's wins over
    // the file), except the export: a second --export would silently
    // replace the first, and txbufd serves one.
    if (flag == "--export") {
      for (const auto& [seen, unused] : cli) {
        if (seen == flag) Die("--export given twice (txbufd serves one)");
      }
    }
    if (flag == "--config") {
      if (!config.empty()) Die("--config given twice");
      config = value;
    } else {
      cli.emplace_back(flag, value);
    }
  }
  txbuf::server::ServerOptions o;
  if (absl::Status s = BuildOptions(config, cli, o); !s.ok()) {
    Die(std::string(s.message()),
        s.code() == absl::StatusCode::kFailedPrecondition ? 1 : 2);
  }
  // Each log line's time goes through mktime, whose tzset frees and reloads
  // the zone (reading /etc/localtime) on every call while TZ is unset: name
  // the same zone once, so it is read once (as systemd advises), unless the
  // environment chose one. (ThreadSanitizer also reported the reload's
  // free/strdup across threads: glibc's own lock is invisible to it.)
  setenv("TZ", ":/etc/localtime", /*overwrite=*/0);
  txbuf::server::InitLogging(argv[0], o.log_level);
  // CREATE, MKDIR and SYMLINK get the modes the client asks for, whatever
  // the shell's umask (the client applies its own, as with NFS).
  umask(0);

  // Signals: handled by sigwait on this thread; blocked in every worker.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<txbuf::server::Server>> server =
      txbuf::server::Server::Start(o);
  if (!server.ok()) Die(std::string(server.status().message()), 1);
  std::printf("listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);

  // SIGHUP reloads what can change under running connections (the token
  // file; with --config, the file's budgets and intervals too); SIGTERM,
  // SIGINT and SIGQUIT drain, write back and exit 0.
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
    if (!config.empty()) {
      txbuf::server::ServerOptions fresh;
      if (absl::Status s = BuildOptions(config, cli, fresh); !s.ok()) {
        TXBUF_LOG(ERROR) << "SIGHUP: kept the running settings: "
                         << s.message();
        continue;
      }
      std::vector<std::string> said = (*server)->Reload(fresh);
      if (said.empty()) said.push_back("nothing changed");
      for (const std::string& line : said) {
        TXBUF_LOG(NOTICE) << "SIGHUP: " << config << ": " << line;
      }
    } else if (o.token_file.empty()) {
      TXBUF_LOG(NOTICE) << "SIGHUP: nothing to reload";
    } else if (absl::Status s = (*server)->ReloadToken(); s.ok()) {
      TXBUF_LOG(NOTICE) << "SIGHUP: reloaded the token file " << o.token_file;
    } else {
      TXBUF_LOG(ERROR) << "SIGHUP: kept the old token: " << s.message();
    }
  }
  TXBUF_LOG(NOTICE) << "stopping on SIG" << sigabbrev_np(sig)
                    << ": draining, then writing back cached data";
  (*server)->Shutdown();
  std::printf("%s\n", (*server)->StatsJson().c_str());
  std::fflush(stdout);
  return 0;
}
