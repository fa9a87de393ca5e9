// server.h: txbufd, the file server: threads, connections, budgets, stats.
//
// One `Worker` per thread runs an io_uring event loop with its own listening
// socket (SO_REUSEPORT), slab allocator and txbuf context. A `Session`
// (session/session.h), one per accepted connection, receives request frames,
// runs each compound on the shared `Executor`, and sends the reply as one
// txbuf through its `TxSocket`. Pinned bytes are budgeted per connection and
// globally (session/budget.h): over budget, a connection's requests are not
// read until memory comes back; one that stays over its own budget past the
// deadline is closed.
//
// The server owns what its workers and sessions share and hands it to
// them through explicit accessors: the settings a reload changes
// (settings.h), the counters STATS reports (stats/server_counters.h), the
// executor, the blocking pool and the page pool.
//
// Thread-safety: Server's public methods are thread-safe.
//
// Example:
//   ServerOptions o;
//   o.export_dir = "/srv/data";
//   auto server = txbuf::server::Server::Start(o).value();
//   printf("listening on %s\n", server->address().c_str());
//   server->Shutdown();  // from a signal handler thread, e.g.
#ifndef TXBUF_SERVER_SERVER_H_
#define TXBUF_SERVER_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/engine_kind.h"
#include "common/histogram.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/socket_util.h"
#include "server/access_rules.h"
#include "server/compound/blocking_pool.h"
#include "server/compound/executor.h"
#include "server/fs/export.h"
#include "server/fs/export_config.h"
#include "server/fs/page_cache.h"
#include "server/logging.h"
#include "server/settings.h"
#include "server/stats/metrics_exporter.h"
#include "server/stats/server_counters.h"

namespace txbuf::server {

// Reads a token file: its contents without trailing white space. An error
// if it cannot be read, is not a regular file, holds nothing or over 64 KiB,
// or (unless `allow_readable`) its group or others have any access to it
// (PermissionDenied, saying to chmod 600 it).
absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          bool allow_readable = false);

// An address to listen on besides ServerOptions' host and port.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;  // 0: pick a free port
  bool operator==(const ListenAddress&) const = default;
};

struct ServerOptions {
  // The export: `export_dir` (--export), unless `exports` lists several.
  std::string export_dir;
  std::vector<ExportConfig> exports;
  std::string host = "127.0.0.1";
  uint16_t port = kDefaultPort;  // 0: pick a free port
  // More addresses to listen on (--listen given again, or a `listen`
  // array in the file); every event loop accepts on each of them.
  std::vector<ListenAddress> more_listen;
  EngineKind engine = EngineKind::kAuto;
  int threads = 1;
  bool read_only = false;            // every export read-only, whatever it says
  std::optional<std::string> token;  // shared secret; enables auth
  std::string token_file;            // where `token` came from (SIGHUP)
  // Accept a token file its group or others may access (refused
  // otherwise, as ssh refuses such keys).
  bool allow_readable_token_file = false;
  // Without a token, listening on anything but loopback is refused unless
  // this is set (anyone who reaches the port could use the export).
  bool allow_unauthenticated = false;
  // If set, the user to run as once the listeners are bound and the export
  // is open: file access is then checked as that user (and its groups).
  std::string user;
  uint64_t conn_budget = 64ull << 20;  // pinned bytes per connection
  // Pinned bytes, whole server: at most half of cache_bytes (0: that half).
  uint64_t budget = 0;
  absl::Duration budget_deadline = absl::Seconds(10);
  absl::Duration auth_timeout = absl::Seconds(10);
  absl::Duration shutdown_grace = absl::Seconds(5);
  uint64_t cache_bytes = 1ull << 30;  // page pool (cache + staging)
  // Threads for file work that may block (fsync, cache misses, opens,
  // directory operations); the event loops never wait for the disk.
  int io_threads = 4;
  size_t stage_threshold = 1024;  // see TxBufOptions
  bool fixed_buffers = true;      // register the arena (uring_zc, auto)
  // How much of the arena each event loop registers (its first bytes: the
  // pool hands out pages from the bottom first), within RLIMIT_MEMLOCK:
  // registered memory is locked and resident from the start, so not the
  // whole cache unless asked (cache_bytes or more: all of it; 0: none).
  uint64_t fixed_buffer_bytes = 64ull << 20;
  // Connections at once (lowered to fit RLIMIT_NOFILE); past it a new
  // connection gets Reply{DELAY} and is closed.
  uint64_t max_connections = 1024;
  // Connections that have not yet authenticated (or, without a token, not
  // yet sent a complete request) at once; past it the oldest of them is
  // closed to make room, so a flood of idle connections cannot lock
  // well-behaved clients out.
  uint64_t max_pending_connections = 64;
  // A frame (or the handshake) that has begun arriving must be complete
  // within this time, or the connection is closed.
  absl::Duration frame_timeout = absl::Seconds(30);
  // Coherence with the disk (docs/PAGE_CACHE.md): a READ or WRITE of a
  // cached file checks it on disk when its last check is older than this
  // (0: every time); LOOKUP, GETATTR and READDIR always check.
  absl::Duration revalidate_interval = absl::Milliseconds(100);
  // Background write-back: every `writeback_interval` the dirty pages of
  // files dirty for `dirty_expire` or longer are written back (and more,
  // oldest first, while over half the dirty limit), without COMMIT.
  absl::Duration dirty_expire = absl::Seconds(30);
  absl::Duration writeback_interval = absl::Seconds(5);
  // Write-behind (PageCacheOptions::write_behind_pages): a file's unstable
  // writes are written back as soon as they complete a run of this many
  // bytes of whole pages (0: off; they wait for the above or COMMIT).
  uint64_t write_behind_bytes = 256 << 10;
  // Write-around (PageCacheOptions::write_around_bytes): an unstable write
  // of at least this many bytes of whole pages goes to the file at once,
  // from the receive buffer, without passing through the cache (0: off).
  uint64_t write_around_bytes = 256 << 10;
  // If set, "HOST:PORT" of the Prometheus endpoint (GET /metrics).
  std::string metrics_listen;
  // What goes to the log (server/logging.h); Reload changes it.
  LogLevel log_level = LogLevel::kInfo;
  ServerLimits limits;
};

// The exports `o` describes: its `exports`, or else one named "default" of
// `export_dir`; `read_only` makes them all read-only. InvalidArgument for
// none, both, a missing path, or a name that is invalid or used twice.
//
// Example:
//   ServerOptions o;
//   o.export_dir = "/srv/data";
//   EffectiveExports(o)->front().name;  // "default"
absl::StatusOr<std::vector<ExportConfig>> EffectiveExports(
    const ServerOptions& o);

// One line for the log: "NAME = PATH (read-write), clients 10.0.0.0/8:rw
// (no one else), new files owned by 1000:1000".
std::string DescribeExport(const ExportConfig& e, bool all_read_only);

class Worker;

class Server {
 public:
  // Binds, starts every worker thread and returns when they accept.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();

  // "HOST:PORT" actually bound (the first address, host and port).
  const std::string& address() const { return addresses_.front(); }
  // Every "HOST:PORT" bound: address(), then one per more_listen.
  const std::vector<std::string>& addresses() const { return addresses_; }

  // Stops accepting, finishes replies in flight (then aborts after the
  // grace period), waits for every txbuf destructor, writes back cached
  // data, joins the threads. Idempotent; thread-safe.
  void Shutdown();

  // The STATS result.
  void FillStats(rpc::StatsResult* out) const;
  // The final stats line: FillStats's result as one line of JSON, in the
  // layout of `txbuf stats --json` (proto/stats_json.h, docs/STATS.md).
  std::string StatsJson() const;

  MemoryStats& memory_stats() { return stats_; }
  const ServerOptions& options() const { return options_; }
  // The event loops (all created before the first starts; the vector does
  // not change until the server is destroyed).
  const std::vector<std::unique_ptr<Worker>>& workers() const {
    return workers_;
  }

  // Reads options().token_file again (SIGHUP): connections authenticating
  // from now on need the new secret; authenticated ones go on. On an error
  // the old secret stays. Thread-safe.
  //
  // Example:
  //   if (absl::Status s = server->ReloadToken(); !s.ok()) LOG(...) << s;
  absl::Status ReloadToken();

  // Applies what can change under running connections from `fresh` (the
  // options as the configuration file and command line give them now):
  // the token, conn_budget, budget (at most half the cache, as at start),
  // budget_deadline, revalidate_interval, dirty_expire, writeback_interval
  // and the log level. Returns a line per setting changed, and a line per
  // other setting that differs ("needs a restart"; it is kept).
  //
  // Example:
  //   for (const std::string& line : server->Reload(fresh))
  //     fprintf(stderr, "txbufd: SIGHUP: %s\n", line.c_str());
  std::vector<std::string> Reload(const ServerOptions& fresh);

  // What replies in flight really keep from being freed: pinned bytes with
  // each page-cache page counted once, however many replies share it.
  uint64_t HeldBytes() const;

  // What the server's workers and sessions (worker.h, session/session.h)
  // share. Owned by the server; valid until it is destroyed.
  //
  // The settings in effect (the token, the budgets; Reload changes them).
  const ServerSettings& settings() const { return settings_; }
  // The counters they update (STATS reports them).
  ServerCounters& counters() { return counters_; }
  // Runs compounds.
  Executor& executor() { return *executor_; }
  // Runs what may block (the rest of a compound).
  BlockingPool& blocking_pool() { return *blocking_; }
  // The pages of the cache, staging and replies.
  PagePool& page_pool() { return *pool_; }
  // Bytes at the start of the page arena each worker registers with
  // io_uring (0: no fixed buffers): the cache, or what the locked-memory
  // limit allows (PlanFixedBuffers in server.cc).
  uint64_t fixed_buffer_bytes() const { return fixed_buffer_bytes_; }

 private:
  explicit Server(ServerOptions options);

  ServerOptions options_;
  uint64_t fixed_buffer_bytes_ = 0;  // see fixed_buffer_bytes()
  ServerSettings settings_;
  ServerCounters counters_;
  std::vector<std::string> addresses_;
  uint64_t verifier_ = 0;
  MemoryStats stats_;
  std::unique_ptr<PagePool> pool_;
  std::unique_ptr<PageCache> cache_;
  std::vector<std::unique_ptr<Export>> exports_;  // as options' exports
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<BlockingPool> blocking_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<MetricsExporter> metrics_;  // if --metrics-listen
  // Background write-back (PageCache::WriteBackDue, every
  // writeback_interval) and write-behind (PageCache::WriteBehind, as soon as
  // a run is queued) until stop_flusher_.
  absl::Notification stop_flusher_;
  std::thread flusher_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_SERVER_H_
