#include "server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/counter_set.h"
#include "common/crypto.h"
#include "common/event_loop.h"
#include "common/socket_util.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "proto/stats_json.h"
#include "server/logging.h"
#include "server/stats/op_stats.h"
#include "server/worker.h"

namespace txbuf::server {
namespace {

// Descriptors kept aside for the process itself: stdio, rings, eventfds,
// listening sockets, and the short-lived ones of operations in progress.
constexpr uint64_t kReservedFds = 32;
constexpr uint64_t kReservedFdsPerThread = 8;
// A pool thread's op holds a few descriptors the LRU already let go (the
// directory, the file, a target) until it finishes.
constexpr uint64_t kReservedFdsPerIoThread = 4;
// More cached descriptors than this buy nothing but kernel memory.
constexpr uint64_t kMaxFdBudget = uint64_t{1} << 16;

// Raises the soft descriptor limit to the hard one; returns the limit.
uint64_t RaiseFdLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : rl.rlim_cur;
}

// The largest buffer io_uring registers (it refuses larger ones).
constexpr uint64_t kMaxRegisteredBuffer = uint64_t{1} << 30;

// Raises the soft locked-memory limit to the hard one; returns it in bytes
// (UINT64_MAX: unlimited).
uint64_t RaiseMemlockLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_MEMLOCK, &rl);
    getrlimit(RLIMIT_MEMLOCK, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

// "8 MiB", "1.5 GiB", "64 KiB", "100 bytes".
std::string HumanBytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30))
    return absl::StrFormat("%.4g GiB", n / 1073741824.0);
  if (n >= (uint64_t{1} << 20))
    return absl::StrFormat("%.4g MiB", n / 1048576.0);
  if (n >= (uint64_t{1} << 10)) return absl::StrFormat("%.4g KiB", n / 1024.0);
  return absl::StrCat(n, " bytes");
}

// How much of the page arena each of `threads` event loops registers as an
// io_uring fixed buffer: `wanted` bytes (--fixed-buffer-size, at most the
// arena), within the locked-memory limit `memlock` (each loop's
// registration is charged to it in full, so a loop gets its share) and
// io_uring's largest buffer; a whole number of pages, possibly 0.
uint64_t PlanFixedBuffers(uint64_t wanted, uint64_t memlock, int threads) {
  uint64_t share = memlock == UINT64_MAX
                       ? wanted
                       : memlock / static_cast<uint64_t>(std::max(threads, 1));
  return std::min({wanted, share, kMaxRegisteredBuffer}) / kPageSize *
         kPageSize;
}

// The one line saying that the fixed buffers cover less than was asked
// (`wanted` bytes of the `arena`), and how to change that; empty if they
// cover all of it.
std::string FixedBufferHint(uint64_t arena, uint64_t wanted,
                            uint64_t registered, uint64_t memlock, int threads,
                            const absl::Status& failure) {
  if (registered >= wanted) return "";
  const std::string asked =
      wanted >= arena ? absl::StrCat("the ", HumanBytes(arena), " cache")
                      : absl::StrCat("the ", HumanBytes(wanted),
                                     " asked (fixed-buffer-size; cache ",
                                     HumanBytes(arena), ")");
  const std::string raise = absl::StrCat(
      "raise LimitMEMLOCK= (systemd) or ulimit -l to ",
      HumanBytes(std::min(wanted, kMaxRegisteredBuffer) *
                 static_cast<uint64_t>(threads)),
      wanted >= arena ? " (cache-size x threads)"
                      : " (fixed-buffer-size x threads)",
      " to register ",
      wanted > kMaxRegisteredBuffer ? "the most io_uring allows" : "all of it",
      ", or lower fixed-buffer-size");
  const std::string limit = memlock == UINT64_MAX
                                ? std::string("unlimited")
                                : absl::StrCat(HumanBytes(memlock), " for ",
                                               threads, " event loop(s)");
  if (!failure.ok()) {
    return absl::StrCat("io_uring fixed buffers off: ", failure.message(),
                        " (locked-memory limit ", limit, ")",
                        ErrnoOf(failure) == ENOMEM ? "; " + raise : "");
  }
  if (registered == 0) {
    return absl::StrCat("io_uring fixed buffers off: the locked-memory limit (",
                        limit, ") is under a page per event loop; ", raise);
  }
  if (memlock == UINT64_MAX ||
      registered == std::min(wanted, kMaxRegisteredBuffer)) {
    return absl::StrCat("io_uring fixed buffers cover the first ",
                        HumanBytes(registered), " of ", asked,
                        " (io_uring's largest buffer)");
  }
  return absl::StrCat("io_uring fixed buffers cover ", HumanBytes(registered),
                      " of ", asked, " (locked-memory limit ", limit, "); ",
                      raise);
}

// Whether the socket is bound to a loopback address.
bool BoundToLoopback(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return false;
  }
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
      return a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// Becomes `user` (its uid, primary gid and supplementary groups) for good.
absl::Status DropPrivileges(const std::string& user) {
  errno = 0;
  passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) {
    return absl::NotFoundError(absl::StrCat("--user ", user, ": no such user"));
  }
  if (initgroups(pw->pw_name, pw->pw_gid) != 0) {
    return ErrnoStatus(errno, absl::StrCat("--user ", user, ": initgroups"));
  }
  if (setgid(pw->pw_gid) != 0) {
    return ErrnoStatus(errno, absl::StrCat("--user ", user, ": setgid"));
  }
  if (setuid(pw->pw_uid) != 0) {
    return ErrnoStatus(errno, absl::StrCat("--user ", user, ": setuid"));
  }
  if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    return absl::InternalError(
        absl::StrCat("--user ", user, ": root privileges could be regained"));
  }
  return absl::OkStatus();
}

bool ValidExportName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

// What squashing to other ids takes, beside root: giving files away
// (CAP_CHOWN), then reading, writing and creating in what now belongs to
// someone else (CAP_DAC_OVERRIDE), and changing its mode and times
// (CAP_FOWNER). dist/txbufd.service.d/squash.conf grants exactly these.
constexpr struct {
  int cap;
  const char* name;
} kSquashCapabilities[] = {{CAP_CHOWN, "CAP_CHOWN"},
                           {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
                           {CAP_FOWNER, "CAP_FOWNER"}};

// Whether the calling thread's effective set holds `cap`.
bool HasEffectiveCapability(int cap) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

// Squashing chowns what clients create: txbufd needs root or the
// capabilities of kSquashCapabilities. Checked once at start, so that a
// missing one is one clear line, not every CREATE failing.
absl::Status CheckSquashPossible(const std::vector<ExportConfig>& exports) {
  for (const ExportConfig& e : exports) {
    if ((!e.squash_uid.has_value() || *e.squash_uid == geteuid()) &&
        (!e.squash_gid.has_value() || *e.squash_gid == getegid())) {
      continue;
    }
    std::vector<std::string> missing;
    for (const auto& c : kSquashCapabilities) {
      if (!HasEffectiveCapability(c.cap)) missing.push_back(c.name);
    }
    if (missing.empty()) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "export '", e.name,
        "': squash-uid/squash-gid need root or the capabilities CAP_CHOWN, "
        "CAP_DAC_OVERRIDE and CAP_FOWNER; txbufd runs as uid ",
        geteuid(), " without ", absl::StrJoin(missing, ", "),
        ": under systemd, install the drop-in "
        "/etc/systemd/system/txbufd.service.d/squash.conf (from "
        "/usr/share/doc/txbuf/examples/; docs/OPERATING.md, \"Squashing under "
        "the unit\"), or squash to txbufd's own ids"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ExportConfig>> EffectiveExports(
    const ServerOptions& o) {
  if (o.exports.empty()) {
    if (o.export_dir.empty()) {
      return absl::InvalidArgumentError(
          "--export DIR is required (or [[export]] tables in the --config "
          "file)");
    }
    ExportConfig e;
    e.name = "default";
    e.path = o.export_dir;
    e.read_only = o.read_only;
    return std::vector<ExportConfig>{e};
  }
  if (!o.export_dir.empty()) {
    return absl::InvalidArgumentError(
        "both an export directory and a list of exports");
  }
  std::vector<ExportConfig> out = o.exports;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("export '", out[i].name, "' has no path"));
    }
    if (!ValidExportName(out[i].name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("export name '", out[i].name,
                       "': use 1 to 64 letters, digits, '.', '-' or '_'"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (out[j].name == out[i].name) {
        return absl::InvalidArgumentError(
            absl::StrCat("two exports are named '", out[i].name, "'"));
      }
    }
    if (o.read_only) out[i].read_only = true;
  }
  return out;
}

std::string DescribeExport(const ExportConfig& e, bool all_read_only) {
  std::string out = absl::StrCat(
      e.name, " = ", e.path,
      e.read_only || all_read_only ? " (read-only)" : " (read-write)");
  if (e.clients.empty()) {
    absl::StrAppend(&out, ", every client");
  } else {
    absl::StrAppend(&out, ", clients");
    for (const AccessRule& r : e.clients) {
      absl::StrAppend(&out, " ", r.from.text(), ":", AccessName(r.access));
    }
    absl::StrAppend(&out, " (no one else)");
  }
  if (e.squash_uid.has_value() || e.squash_gid.has_value()) {
    absl::StrAppend(
        &out, ", new files owned by ",
        e.squash_uid.has_value() ? absl::StrCat(*e.squash_uid) : "-", ":",
        e.squash_gid.has_value() ? absl::StrCat(*e.squash_gid) : "-");
  }
  return out;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          bool allow_readable) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    return absl::NotFoundError(
        absl::StrCat("cannot read token file ", path, ": ", strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, " is not a regular file"));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 && !allow_readable) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "token file %s is accessible by its group or others (mode %04o): "
        "chmod 600 it (or pass --allow-readable-token-file)",
        path, st.st_mode & 07777));
  }
  std::string tok;
  char buf[4096];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("reading token file ", path));
    }
    tok.append(buf, static_cast<size_t>(n));
    if (tok.size() > 64 * 1024) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file ", path, " is over 64 KiB"));
    }
  }
  while (!tok.empty() &&
         std::string(" \t\r\n").find(tok.back()) != std::string::npos) {
    tok.pop_back();
  }
  if (tok.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, " is empty"));
  }
  return tok;
}

namespace {

// The budget in effect for `budget` (0: the default) with a cache of
// `cache_bytes`: half the cache, or less if asked.
uint64_t EffectiveBudget(uint64_t budget, uint64_t cache_bytes) {
  return budget == 0 ? cache_bytes / 2 : std::min(budget, cache_bytes / 2);
}

// The reloadable settings `o` gives: its budget at most half the cache
// (`cache_bytes`, what the server started with).
ReloadableSettings ReloadableOf(const ServerOptions& o, uint64_t cache_bytes) {
  return ReloadableSettings{
      .token = o.token,
      .conn_budget = o.conn_budget,
      .budget = EffectiveBudget(o.budget, cache_bytes),
      .budget_deadline = o.budget_deadline,
      .dirty_expire = o.dirty_expire,
      .writeback_interval = o.writeback_interval,
  };
}

}  // namespace

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      settings_(ReloadableOf(options_, options_.cache_bytes)) {}

absl::Status Server::ReloadToken() {
  if (options_.token_file.empty()) {
    return absl::FailedPreconditionError("no --token-file to reload");
  }
  absl::StatusOr<std::string> tok =
      ReadTokenFile(options_.token_file, options_.allow_readable_token_file);
  if (!tok.ok()) return tok.status();
  settings_.set_token(*std::move(tok));
  return absl::OkStatus();
}

Server::~Server() {
  Shutdown();
  metrics_.reset();  // its HTTP threads read the rest
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  if (options.threads < 1)
    return absl::InvalidArgumentError("--threads must be >= 1");
  absl::StatusOr<std::vector<ExportConfig>> exports = EffectiveExports(options);
  if (!exports.ok()) return exports.status();
  options.exports = *std::move(exports);
  // Descriptors: connections get at most a quarter of what is left after
  // the reserve, the export (O_PATH descriptors and cached files) the rest.
  const uint64_t nofile = RaiseFdLimit();
  const uint64_t reserved =
      kReservedFds +
      kReservedFdsPerThread * static_cast<uint64_t>(options.threads) +
      kReservedFdsPerIoThread *
          static_cast<uint64_t>(std::max(options.io_threads, 1));
  if (nofile < reserved + 64) {
    return absl::FailedPreconditionError(
        absl::StrCat("the descriptor limit (", nofile,
                     ", ulimit -n) is too low: txbufd "
                     "needs at least ",
                     reserved + 64));
  }
  const uint64_t conn_cap = (nofile - reserved) / 4;
  if (options.max_connections > conn_cap) {
    TXBUF_LOG(WARNING) << "--max-connections " << options.max_connections
                       << " lowered to " << conn_cap
                       << " to fit the descriptor limit of " << nofile
                       << " (ulimit -n)";
    options.max_connections = conn_cap;
  }
  options.max_pending_connections =
      std::min(options.max_pending_connections, options.max_connections);
  // Replies in flight must never hold the whole page pool: flow control
  // starts while half of it is still free for the cache and for writes.
  // Unset (0), the budget is that half; one asked for over it is lowered.
  if (options.budget > options.cache_bytes / 2) {
    TXBUF_LOG(WARNING) << "--budget " << options.budget << " lowered to "
                       << options.cache_bytes / 2
                       << ", half the cache (--cache-size)";
  }
  options.budget = EffectiveBudget(options.budget, options.cache_bytes);
  const uint64_t fd_budget =
      std::min(nofile - reserved - options.max_connections, kMaxFdBudget);
  std::unique_ptr<Server> s(new Server(std::move(options)));
  const ServerOptions& o = s->options_;
  uint8_t v[8];
  RandomBytes(v);
  std::memcpy(&s->verifier_, v, sizeof(v));
  s->pool_ = std::make_unique<PagePool>(o.cache_bytes);
  size_t pages = o.cache_bytes / kPageSize;
  // Keep a tenth of the pool for staging pages and copy-on-write copies.
  s->cache_ = std::make_unique<PageCache>(
      *s->pool_,
      PageCacheOptions{
          .max_pages = pages - pages / 10,
          .revalidate_interval = o.revalidate_interval,
          .write_behind_pages =
              static_cast<size_t>(o.write_behind_bytes / kPageSize),
          .write_around_bytes = static_cast<size_t>(o.write_around_bytes)});
  // Each export gets an equal share of the descriptors.
  const size_t fd_share =
      static_cast<size_t>(std::max<uint64_t>(fd_budget / o.exports.size(), 64));
  std::vector<Executor::ServedExport> served;
  for (const ExportConfig& e : o.exports) {
    absl::StatusOr<std::unique_ptr<Export>> ex =
        Export::Open(e.path, {.read_only = e.read_only || o.read_only,
                              .squash_uid = e.squash_uid,
                              .squash_gid = e.squash_gid,
                              .fd_budget = fd_share});
    if (!ex.ok()) return ex.status();
    for (size_t i = 0; i < s->exports_.size(); ++i) {
      if (s->exports_[i]->export_id() == (*ex)->export_id()) {
        return absl::InvalidArgumentError(
            absl::StrCat("exports '", o.exports[i].name, "' and '", e.name,
                         "' are the same directory"));
      }
    }
    (*ex)->set_cache(s->cache_.get());
    served.push_back({e.name, ex->get(), e.clients});
    s->exports_.push_back(std::move(*ex));
  }
  s->blocking_ = std::make_unique<BlockingPool>(o.io_threads);
  Server* self = s.get();
  s->executor_ = std::make_unique<Executor>(
      std::move(served), o.limits, s->verifier_,
      [self](rpc::StatsResult* r) { self->FillStats(r); });

  // Every address: one socket per event loop (SO_REUSEPORT with more than
  // one), each loop accepting on one socket of every address.
  std::vector<ListenAddress> listen = {{o.host, o.port}};
  listen.insert(listen.end(), o.more_listen.begin(), o.more_listen.end());
  const bool reuse = o.threads > 1;
  std::vector<std::vector<UniqueFd>> fds(static_cast<size_t>(o.threads));
  for (const ListenAddress& a : listen) {
    absl::StatusOr<UniqueFd> first = ListenTcp(a.host, a.port, reuse);
    if (!first.ok()) return first.status();
    absl::StatusOr<uint16_t> port = LocalPort(first->get());
    if (!port.ok()) return port.status();
    const std::string host = a.host.find(':') != std::string::npos
                                 ? absl::StrCat("[", a.host, "]")
                                 : a.host;
    const std::string address = absl::StrCat(host, ":", *port);
    if (!o.token.has_value() && !BoundToLoopback(first->get())) {
      if (!o.allow_unauthenticated) {
        return absl::FailedPreconditionError(absl::StrCat(
            "refusing to listen on ", address,
            " without --token-file: anyone who can reach it could read and "
            "change the export (pass --allow-unauthenticated to do it "
            "anyway)"));
      }
      TXBUF_LOG(WARNING) << "no token file: anyone who can reach " << address
                         << " can read and change the export";
    }
    s->addresses_.push_back(address);
    fds[0].push_back(std::move(*first));
    for (int i = 1; i < o.threads; ++i) {
      absl::StatusOr<UniqueFd> fd = ListenTcp(a.host, *port, true);
      if (!fd.ok()) return fd.status();
      fds[static_cast<size_t>(i)].push_back(std::move(*fd));
    }
  }
  if (!o.user.empty()) {
    // Listeners are bound and the export is open: from now on every file
    // access is checked as this user.
    if (absl::Status st = DropPrivileges(o.user); !st.ok()) return st;
    for (auto& ex : s->exports_) ex->ProbeKernelHandles();
    TXBUF_LOG(NOTICE) << "running as user " << o.user << " (uid " << getuid()
                      << ", gid " << getgid()
                      << "); files are accessed with its permissions";
  }
  // As the user it runs as from now on.
  if (absl::Status st = CheckSquashPossible(o.exports); !st.ok()) return st;
  // io_uring fixed buffers (uring_zc, auto): the page arena, as much of it
  // as the locked-memory limit allows; never a reason not to start.
  const bool may_use_uring_zc =
      o.engine == EngineKind::kUringZc || o.engine == EngineKind::kAuto;
  const uint64_t memlock = RaiseMemlockLimit();
  const uint64_t arena = s->pool_->arena().iov_len;
  // Not the whole cache unless asked: what is registered is locked and
  // resident from the start (ServerOptions::fixed_buffer_bytes).
  const uint64_t wanted =
      std::min(arena, o.fixed_buffer_bytes) / kPageSize * kPageSize;
  const bool wants_fixed_buffers = may_use_uring_zc && o.fixed_buffers &&
                                   wanted > 0 &&
                                   ProbeUringFeatures().fixed_sendmsg_zc;
  if (wants_fixed_buffers) {
    s->fixed_buffer_bytes_ = PlanFixedBuffers(wanted, memlock, o.threads);
  }
  for (int i = 0; i < o.threads; ++i) {
    s->workers_.push_back(
        std::make_unique<Worker>(*s, std::move(fds[static_cast<size_t>(i)])));
  }
  for (auto& w : s->workers_) {
    if (absl::Status st = w->Start(); !st.ok()) {
      s->Shutdown();
      return st;
    }
  }
  if (wants_fixed_buffers) {
    uint64_t registered = s->fixed_buffer_bytes_;
    absl::Status failure;
    for (const auto& w : s->workers_) {
      registered = std::min(registered, w->registered_bytes());
      if (!w->register_status().ok()) failure = w->register_status();
    }
    if (std::string hint = FixedBufferHint(arena, wanted, registered, memlock,
                                           o.threads, failure);
        !hint.empty()) {
      TXBUF_LOG(NOTICE) << hint;
    }
  }
  // Whether STATS can count uring_zc's copied sends at all (before Linux
  // 6.2, or a kernel without the backport, every notification counts as
  // zero-copy): said once, as the guest NIC test reads it.
  if (may_use_uring_zc && ProbeUringFeatures().sendmsg_zc) {
    TXBUF_LOG(NOTICE)
        << (ProbeUringFeatures().report_usage
                ? "io_uring zero-copy notifications say whether the kernel "
                  "copied"
                : "io_uring zero-copy notifications cannot say whether the "
                  "kernel copied (no IORING_SEND_ZC_REPORT_USAGE): STATS "
                  "count every uring_zc completion as zero-copy");
  }
  // Unstable data reach the disk within about dirty_expire +
  // writeback_interval even if no COMMIT comes (and sooner under
  // pressure); a write-back error waits for the file's next COMMIT.
  // Write-behind runs (large or sequential unstable writes) are written
  // back as soon as they are queued, while their bytes are still in the
  // CPU's caches.
  s->flusher_ = std::thread([self] {
    absl::Time due = absl::Now() + self->settings_.writeback_interval();
    while (true) {
      const bool queued = self->cache_->WaitForWriteBehind(due - absl::Now());
      if (self->stop_flusher_.HasBeenNotified()) break;
      absl::Status error;
      if (queued) self->cache_->WriteBehind(&error);
      if (absl::Now() >= due) {
        self->cache_->WriteBackDue(self->settings_.dirty_expire(), &error);
        due = absl::Now() + self->settings_.writeback_interval();
      }
      if (!error.ok()) {
        TXBUF_LOG(ERROR) << "background write-back: " << error.message()
                         << " (kept for the file's next COMMIT)";
      }
    }
  });
  if (!o.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsExporter>> m = MetricsExporter::Start(
        o.metrics_listen, [self](rpc::StatsResult* r) { self->FillStats(r); });
    if (!m.ok()) {
      s->Shutdown();
      return m.status();
    }
    s->metrics_ = std::move(*m);
  }
  for (const ExportConfig& e : o.exports) {
    TXBUF_LOG(NOTICE) << "export " << DescribeExport(e, o.read_only);
  }
  TXBUF_LOG(NOTICE)
      << "serving " << o.exports.front().path << " on "
      << absl::StrJoin(s->addresses_, " and ")
      << (o.exports.front().read_only || o.read_only ? " read-only"
                                                     : " read-write")
      << (o.exports.size() > 1
              ? absl::StrCat(" and ", o.exports.size() - 1, " more export(s)")
              : std::string())
      << (o.token.has_value() ? " with token " + o.token_file
                              : std::string(" without a token"))
      << "; engine " << EngineName(o.engine) << ", " << o.threads
      << " event loop(s), " << o.io_threads << " I/O thread(s), "
      << "cache " << o.cache_bytes << " bytes, conn-budget " << o.conn_budget
      << ", budget " << o.budget << ", max-connections " << o.max_connections
      << ", revalidate " << absl::FormatDuration(o.revalidate_interval)
      << ", dirty-expire " << absl::FormatDuration(o.dirty_expire)
      << ", write-behind " << o.write_behind_bytes << ", write-around "
      << o.write_around_bytes << ", log level " << LogLevelName(GetLogLevel())
      << (s->metrics_ != nullptr
              ? "; metrics on http://" + s->metrics_->address() + "/metrics"
              : std::string());
  return s;
}

uint64_t Server::HeldBytes() const {
  const uint64_t pinned = stats_.pinned_bytes();
  const uint64_t shared = pool_->tx_segment_bytes();
  const uint64_t pages = pool_->tx_pages() * kPageSize;
  return pinned > shared ? pinned - shared + pages : pages;
}

void Server::Shutdown() {
  if (shut_down_.exchange(true)) return;
  for (auto& w : workers_) w->RequestShutdown();
  for (auto& w : workers_) w->Join();
  // Every connection waited for its job: the pool is idle.
  blocking_.reset();
  stop_flusher_.Notify();
  if (cache_ != nullptr) cache_->WakeWriteBehind();
  if (flusher_.joinable()) flusher_.join();
  if (cache_ != nullptr) {
    absl::Status s = cache_->SyncAll();
    if (!s.ok()) {
      TXBUF_LOG(ERROR) << "writing back cached data: " << s.message();
    }
  }
}

std::vector<std::string> Server::Reload(const ServerOptions& fresh) {
  std::vector<std::string> said;
  auto bytes = [](uint64_t v) { return absl::StrCat(v); };
  auto secs = [](absl::Duration d) { return absl::FormatDuration(d); };
  // The reloadable ones.
  ReloadableSettings next = ReloadableOf(fresh, options_.cache_bytes);
  if (fresh.budget > options_.cache_bytes / 2) {
    said.push_back(absl::StrCat("budget: ", fresh.budget, " lowered to ",
                                options_.cache_bytes / 2,
                                ", half the cache (cache-size)"));
  }
  const std::optional<std::string> token = settings_.token();
  if (fresh.token_file != options_.token_file || fresh.token != token) {
    if (fresh.token.has_value()) {
      said.push_back(
          absl::StrCat("reloaded the token file ", fresh.token_file));
    } else {
      said.push_back(
          "token-file: removed from the configuration: needs a restart "
          "(the old token stays)");
    }
  }
  if (!next.token.has_value()) next.token = token;
  const ReloadableSettings prev = settings_.Store(next);
  if (prev.conn_budget != next.conn_budget) {
    said.push_back(absl::StrCat("conn-budget: ", bytes(prev.conn_budget),
                                " -> ", bytes(next.conn_budget), " bytes"));
  }
  if (prev.budget != next.budget) {
    said.push_back(absl::StrCat("budget: ", bytes(prev.budget), " -> ",
                                bytes(next.budget), " bytes"));
  }
  auto duration = [&](const char* name, absl::Duration was,
                      absl::Duration now) {
    if (absl::ToInt64Nanoseconds(was) != absl::ToInt64Nanoseconds(now)) {
      said.push_back(absl::StrCat(name, ": ", secs(was), " -> ", secs(now)));
    }
  };
  if (LogLevel old_level = GetLogLevel(); old_level != fresh.log_level) {
    SetLogLevel(fresh.log_level);
    said.push_back(absl::StrCat("log-level: ", LogLevelName(old_level), " -> ",
                                LogLevelName(fresh.log_level)));
  }
  duration("budget-deadline", prev.budget_deadline, next.budget_deadline);
  duration("dirty-expire", prev.dirty_expire, next.dirty_expire);
  duration("writeback-interval", prev.writeback_interval,
           next.writeback_interval);
  if (absl::Duration old = cache_->revalidate_interval();
      old != fresh.revalidate_interval) {
    cache_->set_revalidate_interval(fresh.revalidate_interval);
    said.push_back(absl::StrCat("revalidate: ", secs(old), " -> ",
                                secs(fresh.revalidate_interval)));
  }
  // The others: kept.
  auto restart = [&](const char* name, bool differs) {
    if (differs) said.push_back(absl::StrCat(name, ": needs a restart"));
  };
  const ServerOptions& o = options_;
  {
    absl::StatusOr<std::vector<ExportConfig>> exports = EffectiveExports(fresh);
    bool same = exports.ok() && exports->size() == o.exports.size();
    for (size_t i = 0; same && i < o.exports.size(); ++i) {
      same = DescribeExport((*exports)[i], false) ==
             DescribeExport(o.exports[i], false);
    }
    restart("export", !same);
  }
  restart("listen", fresh.host != o.host || fresh.port != o.port ||
                        fresh.more_listen != o.more_listen);
  restart("engine", fresh.engine != o.engine);
  restart("threads", fresh.threads != o.threads);
  restart("read-only", fresh.read_only != o.read_only);
  restart("allow-unauthenticated",
          fresh.allow_unauthenticated != o.allow_unauthenticated);
  restart("user", fresh.user != o.user);
  restart("cache-size", fresh.cache_bytes != o.cache_bytes);
  restart("io-threads", fresh.io_threads != o.io_threads);
  restart("max-connections", fresh.max_connections != o.max_connections);
  restart("max-pending-connections",
          fresh.max_pending_connections != o.max_pending_connections);
  restart("frame-timeout", fresh.frame_timeout != o.frame_timeout);
  restart("stage-threshold", fresh.stage_threshold != o.stage_threshold);
  restart("no-fixed-buffers", fresh.fixed_buffers != o.fixed_buffers);
  restart("write-behind", fresh.write_behind_bytes != o.write_behind_bytes);
  restart("write-around", fresh.write_around_bytes != o.write_around_bytes);
  restart("fixed-buffer-size",
          fresh.fixed_buffer_bytes != o.fixed_buffer_bytes);
  restart("metrics-listen", fresh.metrics_listen != o.metrics_listen);
  return said;
}

namespace {

// Sets each counter of `snapshot` (a counter set, common/counter_set.h) in
// the uint64 field of `m` that has the counter's name. A counter without one
// is a programming error: it aborts at the first STATS request.
template <typename Snapshot>
void SetCounterFields(const Snapshot& snapshot, google::protobuf::Message& m) {
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::Reflection* r = m.GetReflection();
  Snapshot::ForEach(
      [&](std::string_view name, uint64_t value) {
        const google::protobuf::FieldDescriptor* f =
            d->FindFieldByName(std::string(name));
        if (f == nullptr ||
            f->cpp_type() !=
                google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
          std::fprintf(stderr,
                       "txbufd: counter %.*s has no uint64 field in %s\n",
                       static_cast<int>(name.size()), name.data(),
                       d->full_name().c_str());
          std::abort();
        }
        r->SetUInt64(&m, f, value);
      },
      snapshot);
}

}  // namespace

void Server::FillStats(rpc::StatsResult* r) const {
  MemoryStatsSnapshot m = stats_.Snapshot();
  r->set_pinned_bytes(m.pinned_bytes);
  r->set_pinned_bytes_max(m.pinned_bytes_max);
  r->set_txbufs_in_flight(m.txbufs_in_flight);
  r->set_txbufs_created(m.txbufs_created);
  r->set_txbufs_destroyed(m.txbufs_destroyed);
  for (const std::unique_ptr<Worker>& w : workers_) {
    r->add_loop_connections(static_cast<uint64_t>(std::max(0, w->assigned())));
  }
  FillLatency(stats_.destructor_latency(), r->mutable_destructor_latency(),
              r->mutable_destructor_latency_buckets());
  FillLatency(counters_.request_latency, r->mutable_request_latency(),
              r->mutable_request_latency_buckets());
  r->set_zerocopy_completions(m.zerocopy_completions);
  r->set_copied_completions(m.copied_completions);
  for (int i = 0; i < kNumEngines; ++i) {
    rpc::EngineStats* es = r->add_engines();
    es->set_name(std::string(kEngineNames[i]));
    SetCounterFields(m.engines[i], *es);
  }
  // Slab caches: the same caches exist on every worker; sum them.
  std::map<std::string, SlabCacheStats> slabs;
  for (const auto& w : workers_) {
    for (const SlabCacheStats& c : w->SlabStats()) {
      SlabCacheStats& t = slabs[c.name];
      t.name = c.name;
      t.object_size = c.object_size;
      t.active_objects += c.active_objects;
      t.total_objects += c.total_objects;
      t.slabs += c.slabs;
    }
  }
  for (const auto& [name, c] : slabs) {
    rpc::SlabStats* ss = r->add_slabs();
    ss->set_name(name);
    ss->set_object_size(c.object_size);
    ss->set_active_objects(c.active_objects);
    ss->set_total_objects(c.total_objects);
    ss->set_slabs(c.slabs);
  }
  PageCacheStats pc = cache_->Stats();
  rpc::PageCacheStats* p = r->mutable_page_cache();
  SetCounterFields(pc, *p);
  p->set_pinned_pages(pc.pinned_pages);
  SetCounterFields(counters_.Load(), *r);
  r->set_engine(std::string(EngineName(options_.engine)));
  r->set_held_bytes(HeldBytes());
  uint64_t fds = 0, nodes = 0;
  for (const auto& ex : exports_) {
    fds += ex->open_fds();
    nodes += ex->nodes();
  }
  r->set_open_descriptors(fds);
  r->set_nodes(nodes);
  r->set_conn_budget(settings_.conn_budget());
  r->set_budget(settings_.budget());
  executor_->op_stats().Fill(r);
}

std::string Server::StatsJson() const {
  rpc::StatsResult r;
  FillStats(&r);
  // A log line: journald splits lines over LineMax (48K by default), and
  // the per-op buckets alone reach ~35 KB. Their summaries stay; STATS has
  // the buckets.
  for (rpc::OpLatency& l : *r.mutable_op_latency()) l.clear_buckets();
  return StatsJsonLine(r);
}

}  // namespace txbuf::server
