#include "server/flags.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/flag_types.h"
#include "server/config_file.h"
#include "server/logging.h"

namespace txbuf::server {

// A log level by name (debug, info, warning, error) as a flag's value.
bool AbslParseFlag(absl::string_view text, LogLevel* out, std::string* error) {
  absl::StatusOr<LogLevel> l = ParseLogLevel(text);
  if (!l.ok()) {
    *error = std::string(l.status().message());
    return false;
  }
  *out = *l;
  return true;
}

std::string AbslUnparseFlag(LogLevel l) { return std::string(LogLevelName(l)); }

// --listen: one or more "HOST[:PORT]", separated by commas (a repeated
// --listen and a TOML array are joined so).
struct ListenAddresses {
  std::vector<ServiceAddress> list;
};

bool AbslParseFlag(absl::string_view text, ListenAddresses* out,
                   std::string* error) {
  out->list.clear();
  if (text.empty()) return true;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    ServiceAddress a;
    if (!AbslParseFlag(part, &a, error)) return false;
    if (a.empty()) {
      *error = "an empty address";
      return false;
    }
    out->list.push_back(std::move(a));
  }
  return true;
}

std::string AbslUnparseFlag(const ListenAddresses& v) {
  std::vector<std::string> parts;
  parts.reserve(v.list.size());
  for (const ServiceAddress& a : v.list) parts.push_back(AbslUnparseFlag(a));
  return absl::StrJoin(parts, ",");
}

}  // namespace txbuf::server

namespace {

// The defaults are ServerOptions' (server/server.h).
const txbuf::server::ServerOptions& Defaults() {
  static const auto* d = new txbuf::server::ServerOptions();
  return *d;
}

}  // namespace

ABSL_FLAG(std::string, config, "",
          "read flags from FILE (TOML: `name = value`, one per flag below, "
          "without the \"--\"; switches take true or false); the command "
          "line wins; SIGHUP reads it again and applies the token file, "
          "budgets, intervals and log level (docs/OPERATING.md)");
ABSL_FLAG(std::string, export, "",
          "directory to export (required, unless the --config file has "
          "[[export]] tables: docs/EXPORTS.md)");
ABSL_FLAG(txbuf::server::ListenAddresses, listen,
          (txbuf::server::ListenAddresses{
              {txbuf::ServiceAddress{{Defaults().host, Defaults().port}}}}),
          "address to listen on (without a port: 7390, the default port; "
          "port 0 picks a free port); give it again, or a TOML array in the "
          "file, to listen on several (\"[::]\" takes both IPv4 and IPv6); "
          "prints \"listening on HOST:PORT\" for each when ready");
ABSL_FLAG(txbuf::EngineKind, engine, Defaults().engine,
          "copy | msg_zerocopy | uring_zc | kmod | auto");
ABSL_FLAG(int, threads, Defaults().threads,
          "event-loop threads, SO_REUSEPORT (1 to 256)");
ABSL_FLAG(bool, read_only, Defaults().read_only, "refuse every change (ROFS)");
ABSL_FLAG(std::string, token_file, "",
          "require the shared secret in FILE (challenge-response; the secret "
          "never crosses the wire); FILE must be readable by its owner only "
          "(chmod 600); SIGHUP reads FILE again");
ABSL_FLAG(bool, allow_readable_token_file, Defaults().allow_readable_token_file,
          "accept a token file that its group or others may read (refused "
          "otherwise, as ssh refuses such keys)");
ABSL_FLAG(bool, allow_unauthenticated, Defaults().allow_unauthenticated,
          "listen on a non-loopback address without a token file (refused "
          "otherwise: anyone who reaches the port could read and change the "
          "export)");
ABSL_FLAG(std::string, user, "",
          "once listening with the export open, run as NAME (its uid, gid "
          "and groups): files are accessed with that user's permissions "
          "(see docs/SECURITY.md)");
ABSL_FLAG(txbuf::ByteSize, conn_budget, txbuf::ByteSize{Defaults().conn_budget},
          "pinned bytes per connection");
ABSL_FLAG(txbuf::ByteSize, budget, txbuf::ByteSize{Defaults().budget},
          "pinned bytes for the whole server (0, the default: half of "
          "--cache-size; more than that half is lowered to it, with a "
          "warning)");
ABSL_FLAG(txbuf::Seconds, budget_deadline,
          txbuf::Seconds{Defaults().budget_deadline},
          "close a connection over its budget this long");
ABSL_FLAG(txbuf::ByteSize, cache_size, txbuf::ByteSize{Defaults().cache_bytes},
          "page cache and staging memory (at least 1M)");
ABSL_FLAG(int, io_threads, Defaults().io_threads,
          "threads for file work that may block: fsync, cache misses, opens, "
          "directory operations (1 to 256)");
ABSL_FLAG(uint64_t, max_connections, Defaults().max_connections,
          "connections at once (lowered to fit the descriptor limit); past "
          "it a new connection gets Reply{DELAY} and is closed");
ABSL_FLAG(uint64_t, max_pending_connections, Defaults().max_pending_connections,
          "connections not yet authenticated (or, without a token, without a "
          "first request) at once, shared by the --threads event loops; past "
          "its share, a loop closes its oldest one");
ABSL_FLAG(txbuf::Seconds, frame_timeout,
          txbuf::Seconds{Defaults().frame_timeout},
          "close a connection whose frame stops arriving for this long");
ABSL_FLAG(txbuf::Seconds, revalidate,
          txbuf::Seconds{Defaults().revalidate_interval},
          "a READ or WRITE of a cached file first checks it on disk (one "
          "fstat) when its last check is older than this (0: every time); "
          "LOOKUP, GETATTR and READDIR always check (docs/PAGE_CACHE.md)");
ABSL_FLAG(txbuf::Seconds, dirty_expire, txbuf::Seconds{Defaults().dirty_expire},
          "unstable writes not committed are written back once this old, "
          "within --writeback-interval more");
ABSL_FLAG(txbuf::Seconds, writeback_interval,
          txbuf::Seconds{Defaults().writeback_interval},
          "how often to look for unstable writes as old as --dirty-expire "
          "(more than 0)");
ABSL_FLAG(txbuf::HostPort, metrics_listen, txbuf::HostPort{},
          "serve Prometheus metrics on http://HOST:PORT/metrics (port 0 "
          "picks one; the start-up log line says which); no authentication: "
          "keep it on a trusted address (docs/OPERATING.md, \"Metrics\")");
ABSL_FLAG(txbuf::server::LogLevel, log_level, Defaults().log_level,
          "debug | info | warning | error: what goes to stderr "
          "(server/logging.h; debug adds every connection opened and "
          "closed)");
ABSL_FLAG(txbuf::ByteSize, stage_threshold,
          txbuf::ByteSize{Defaults().stage_threshold},
          "copy objects shorter than this into staging pages, reference "
          "longer ones (0: reference all)");
ABSL_FLAG(bool, no_fixed_buffers, !Defaults().fixed_buffers,
          "do not register the page arena with io_uring (used by uring_zc "
          "and auto)");
ABSL_FLAG(txbuf::ByteSize, write_behind,
          txbuf::ByteSize{Defaults().write_behind_bytes},
          "write a file's unstable writes back as soon as they complete a "
          "run of this many bytes of whole pages (one large WRITE or a "
          "sequential stream), while they are still in the CPU's caches "
          "(0: only at COMMIT, dirty-expire or the dirty limit)");
ABSL_FLAG(txbuf::ByteSize, write_around,
          txbuf::ByteSize{Defaults().write_around_bytes},
          "write an unstable WRITE of at least this many bytes of whole "
          "pages straight to the file from the receive buffer, dropping "
          "the range's cached pages, instead of copying it into the cache "
          "to write back later (0: every WRITE goes through the cache)");
ABSL_FLAG(txbuf::ByteSize, fixed_buffer_size,
          txbuf::ByteSize{Defaults().fixed_buffer_bytes},
          "how much of the page cache each event loop registers with "
          "io_uring (uring_zc, auto): its first BYTES, the pages it fills "
          "first; locked and resident from the start, within LimitMEMLOCK / "
          "ulimit -l (cache-size or more: all of it; 0: none)");

namespace txbuf::server {

const char kTxbufdUsage[] = R"(usage: txbufd --export DIR [flags]
       txbufd --config /etc/txbuf/txbufd.conf [flags that win over it]

Serves DIR over the txbuf protocol (docs/PROTOCOL.md). Prints "listening on
HOST:PORT" on stdout when ready; SIGTERM, SIGINT or SIGQUIT drain, write back
and exit 0 after one JSON line of statistics; SIGHUP reloads the token file
and, with --config, the file (docs/OPERATING.md).

Flags take "--flag VALUE" or "--flag=VALUE"; switches "--flag", "--noflag"
or "--flag=true|false". BYTES take K, M and G suffixes (powers of 1024); SECS
are seconds (0.5) or a duration with its unit (500ms, 2m). A flag given twice
takes its last value, except --listen (each is listened on) and --export
and --config (an error).)";

namespace {

// Where the flags are defined: FlagsHelp and ResetFlagsToDefaults take
// those of this file only.
constexpr char kDefinedIn[] = "server/flags.cc";

// Checks what flag `name` holds now beyond what its type does. The reason
// it is bad, or "".
std::string CheckFlag(absl::string_view name) {
  auto secs = [](const absl::Flag<Seconds>& f) {
    return absl::GetFlag(f).value;
  };
  if (name == "threads" || name == "io_threads") {
    const int n =
        absl::GetFlag(name == "threads" ? FLAGS_threads : FLAGS_io_threads);
    if (n < 1 || n > 256) return "1 to 256";
  } else if (name == "cache_size") {
    if (absl::GetFlag(FLAGS_cache_size).bytes < (1 << 20)) {
      return "at least 1M";
    }
  } else if (name == "max_connections" || name == "max_pending_connections") {
    if (absl::GetFlag(name == "max_connections"
                          ? FLAGS_max_connections
                          : FLAGS_max_pending_connections) < 1) {
      return "at least 1";
    }
  } else if (name == "frame_timeout") {
    if (secs(FLAGS_frame_timeout) <= absl::ZeroDuration()) {
      return "more than 0";
    }
  } else if (name == "revalidate" || name == "dirty_expire" ||
             name == "writeback_interval") {
    const absl::Duration d =
        secs(name == "revalidate"     ? FLAGS_revalidate
             : name == "dirty_expire" ? FLAGS_dirty_expire
                                      : FLAGS_writeback_interval);
    if (d > absl::Seconds(1e6)) return "at most 1000000 s";
    if (name == "writeback_interval" && d == absl::ZeroDuration()) {
      return "more than 0";
    }
  } else if (name == "listen") {
    if (absl::GetFlag(FLAGS_listen).list.empty()) return "HOST[:PORT]";
  } else if (name == "user") {
    if (absl::GetFlag(FLAGS_user).empty()) return "a user name";
  }
  return "";
}

// Sets flag `name` from `text` and checks it; the error names the flag as
// `spelled`.
absl::Status SetAndCheck(absl::string_view name, const std::string& text,
                         absl::string_view spelled) {
  if (absl::Status s = SetFlagFromText(name, text, spelled); !s.ok()) return s;
  if (std::string why = CheckFlag(name); !why.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad value for ", spelled, ": '", text, "' (", why, ")"));
  }
  return absl::OkStatus();
}

// Applies the configuration file at `path`.
absl::Status ApplyConfigFile(const std::string& path) {
  absl::StatusOr<std::vector<ConfigEntry>> entries = ReadConfigFile(path);
  if (!entries.ok()) return entries.status();
  for (const ConfigEntry& e : *entries) {
    const std::string where = absl::StrCat(path, ":", e.line, ": ", e.key);
    const absl::CommandLineFlag* flag = FindFlag(e.key);
    if (flag == nullptr || !absl::EndsWith(flag->Filename(), kDefinedIn)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown key (not a txbufd flag)"));
    }
    if (flag->Name() == "config") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": not allowed in the file"));
    }
    // A switch is a TOML boolean (read as "true" or "false").
    if (flag->IsOfType<bool>() && e.value != "true" && e.value != "false") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": takes true or false"));
    }
    if (absl::Status s =
            SetAndCheck(flag->Name(), e.value, absl::StrCat("--", e.key));
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

// The options the flags hold now.
ServerOptions OptionsFromFlags() {
  ServerOptions o;
  o.export_dir = absl::GetFlag(FLAGS_export);
  const std::vector<ServiceAddress> listen = absl::GetFlag(FLAGS_listen).list;
  if (!listen.empty()) {
    o.host = listen.front().host;
    o.port = listen.front().port;
  }
  for (size_t i = 1; i < listen.size(); ++i) {
    o.more_listen.push_back({listen[i].host, listen[i].port});
  }
  o.engine = absl::GetFlag(FLAGS_engine);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.read_only = absl::GetFlag(FLAGS_read_only);
  o.token_file = absl::GetFlag(FLAGS_token_file);
  o.allow_readable_token_file = absl::GetFlag(FLAGS_allow_readable_token_file);
  o.allow_unauthenticated = absl::GetFlag(FLAGS_allow_unauthenticated);
  o.user = absl::GetFlag(FLAGS_user);
  o.conn_budget = absl::GetFlag(FLAGS_conn_budget).bytes;
  o.budget = absl::GetFlag(FLAGS_budget).bytes;
  o.budget_deadline = absl::GetFlag(FLAGS_budget_deadline).value;
  o.cache_bytes = absl::GetFlag(FLAGS_cache_size).bytes;
  o.io_threads = absl::GetFlag(FLAGS_io_threads);
  o.max_connections = absl::GetFlag(FLAGS_max_connections);
  o.max_pending_connections = absl::GetFlag(FLAGS_max_pending_connections);
  o.frame_timeout = absl::GetFlag(FLAGS_frame_timeout).value;
  o.revalidate_interval = absl::GetFlag(FLAGS_revalidate).value;
  o.dirty_expire = absl::GetFlag(FLAGS_dirty_expire).value;
  o.writeback_interval = absl::GetFlag(FLAGS_writeback_interval).value;
  const HostPort metrics = absl::GetFlag(FLAGS_metrics_listen);
  if (!metrics.empty()) o.metrics_listen = AbslUnparseFlag(metrics);
  o.log_level = absl::GetFlag(FLAGS_log_level);
  o.stage_threshold = absl::GetFlag(FLAGS_stage_threshold).bytes;
  o.fixed_buffers = !absl::GetFlag(FLAGS_no_fixed_buffers);
  o.fixed_buffer_bytes = absl::GetFlag(FLAGS_fixed_buffer_size).bytes;
  o.write_behind_bytes = absl::GetFlag(FLAGS_write_behind).bytes;
  o.write_around_bytes = absl::GetFlag(FLAGS_write_around).bytes;
  return o;
}

}  // namespace

std::string TxbufdHelp() {
  return FlagsHelp(kDefinedIn, {},
                   {{"config", "FILE"},
                    {"export", "DIR"},
                    {"listen", "HOST[:PORT]"},
                    {"token-file", "FILE"},
                    {"user", "NAME"},
                    {"log-level", "LEVEL"}});
}

absl::StatusOr<CommandLine> ReadTxbufdCommandLine(
    const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> cli = SplitCommandLine(args);
  if (!cli.ok()) return cli.status();
  if (!cli->positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected '", cli->positional.front(), "' (not a flag)"));
  }
  // A later flag wins over an earlier one (as the command line's win over
  // the file), except the export: a second --export would silently replace
  // the first, and txbufd serves one.
  int exports = 0;
  int configs = 0;
  for (const GivenFlag& f : cli->flags) {
    if (f.name == "export" && ++exports == 2) {
      return absl::InvalidArgumentError(
          "--export given twice (txbufd serves one)");
    }
    if (f.name == "config" && ++configs == 2) {
      return absl::InvalidArgumentError("--config given twice");
    }
  }
  return cli;
}

std::string ConfigPath(const CommandLine& cli) {
  for (const GivenFlag& f : cli.flags) {
    if (f.name == "config") return f.value;
  }
  return "";
}

absl::StatusOr<ServerOptions> BuildServerOptions(const CommandLine& cli) {
  // Not absl::FlagSaver: it logs each flag it puts back on stderr.
  ResetFlagsToDefaults(kDefinedIn);
  const std::string config = ConfigPath(cli);
  std::vector<ExportConfig> exports;  // the file's [[export]] tables
  if (!config.empty()) {
    if (absl::Status s = ApplyConfigFile(config); !s.ok()) return s;
    absl::StatusOr<std::vector<ExportConfig>> e = ReadConfigExports(config);
    if (!e.ok()) return e.status();
    exports = *std::move(e);
  }
  bool export_given = false;
  // Every --listen is listened on: together they replace the file's.
  std::vector<std::string> listen;
  for (const GivenFlag& f : cli.flags) {
    if (f.name == "listen") {
      // Checked one by one, so that an error shows the bad one.
      if (absl::Status s = SetAndCheck(f.name, f.value, f.spelled); !s.ok()) {
        return s;
      }
      listen.push_back(f.value);
      continue;
    }
    if (absl::Status s = SetAndCheck(f.name, f.value, f.spelled); !s.ok()) {
      return s;
    }
    export_given = export_given || f.name == "export";
  }
  if (absl::Status s =
          listen.empty()
              ? absl::OkStatus()
              : SetAndCheck("listen", absl::StrJoin(listen, ","), "--listen");
      !s.ok()) {
    return s;
  }
  ServerOptions o = OptionsFromFlags();
  // --export DIR replaces the file's exports, as any flag does.
  if (!export_given) o.exports = std::move(exports);
  if (absl::StatusOr<std::vector<ExportConfig>> e = EffectiveExports(o);
      !e.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.empty() ? "" : config + ": ", e.status().message()));
  }
  if (!o.token_file.empty()) {
    absl::StatusOr<std::string> tok =
        ReadTokenFile(o.token_file, o.allow_readable_token_file);
    if (!tok.ok()) {
      return absl::FailedPreconditionError(std::string(tok.status().message()));
    }
    o.token = *std::move(tok);
  }
  return o;
}

}  // namespace txbuf::server
