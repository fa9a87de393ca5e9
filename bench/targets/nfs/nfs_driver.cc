// The NFS peer's driver: libnfs's async API. Each connection is its own
// nfs_context (own TCP connection, own NFSv3 mount of the export) driven by
// its own client thread with a poll()/nfs_service() event loop. The file is
// opened once per connection (nfs_open, O_RDWR); requests are
// nfs_pread_async / nfs_pwrite_async on that nfsfh, and every completion
// immediately issues the next request, so the connection's share of the
// outstanding count stays in flight. libnfs defaults otherwise (no page
// cache, no readahead; writes are UNSTABLE, no COMMIT: like the other peers,
// which do not fsync). A request larger than the server's READ/WRITE maximum
// is sent as consecutive chunks (libnfs returns short counts); latency is
// from the first chunk's submission to the last chunk's completion.
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/types.h>

// clang-format off
#include <nfsc/libnfs.h>
// clang-format on

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/load/harness.h"
#include "bench/targets/nfs/nfs_mount.h"
#include "bench/targets/peer_factories.h"
#include "common/clock.h"

namespace txbuf::peers::internal {
namespace {

class NfsConnection;

struct Slot {
  NfsConnection* conn = nullptr;
  int64_t start_ns = 0;
  uint64_t offset = 0;
  uint64_t done = 0;
  bool verified = true;
  bool busy = false;
  // Write payload when there is no pattern image: per slot, since libnfs
  // may still refer to it after nfs_pwrite_async returns.
  std::vector<uint8_t> scratch;
};

class NfsConnection {
 public:
  NfsConnection(ConnContext& ctx, NfsMount& mount, nfsfh* fh)
      : ctx_(ctx),
        w_(ctx.workload()),
        nfs_(mount.context()),
        fh_(fh),
        is_read_(w_.kind == WorkloadKind::kRead),
        max_chunk_(std::max<uint64_t>(
            4096, is_read_ ? nfs_get_readmax(nfs_) : nfs_get_writemax(nfs_))),
        slots_(static_cast<size_t>(ctx.slots())) {}

  // Runs the load; false if the connection broke or wedged (requests were
  // left outstanding).
  bool Run() {
    for (Slot& s : slots_) {
      s.conn = this;
      if (!ctx_.ShouldIssue(MonoNowNs())) break;
      Issue(s);
    }
    int64_t last_progress = MonoNowNs();
    uint64_t seen = completions_;
    while (outstanding_ > 0) {
      pollfd pfd{nfs_get_fd(nfs_), static_cast<short>(nfs_which_events(nfs_)),
                 0};
      int pr = poll(&pfd, 1, 100);
      if (pr < 0 && errno != EINTR) break;
      if (nfs_service(nfs_, pr > 0 ? pfd.revents : 0) < 0) break;
      const int64_t now = MonoNowNs();
      if (completions_ != seen) {
        seen = completions_;
        last_progress = now;
      } else if (now - last_progress > kOpTimeoutNs) {
        break;  // Wedged: count what is left as errors.
      }
    }
    ctx_.AddErrors(static_cast<uint64_t>(outstanding_));
    abandoned_ = true;  // Callbacks run by nfs_destroy_context are ignored.
    return outstanding_ == 0;
  }

 private:
  void Issue(Slot& s) {
    s.offset = ctx_.NextOffset();
    s.done = 0;
    s.verified = true;
    s.busy = true;
    s.start_ns = MonoNowNs();
    ++outstanding_;
    SubmitChunk(s);
  }

  void SubmitChunk(Slot& s) {
    const uint64_t off = s.offset + s.done;
    const uint64_t n = std::min(w_.size - s.done, max_chunk_);
    int rc;
    if (is_read_) {
      rc = nfs_pread_async(nfs_, fh_, off, n, &NfsConnection::Callback, &s);
    } else {
      const uint8_t* data = ctx_.pattern().Data(off, n, s.scratch);
      rc = nfs_pwrite_async(nfs_, fh_, off, n, data, &NfsConnection::Callback,
                            &s);
    }
    if (rc != 0) Finish(s, false);
  }

  static void Callback(int err, nfs_context* /*nfs*/, void* data,
                       void* private_data) {
    Slot& s = *static_cast<Slot*>(private_data);
    s.conn->OnReply(s, err, data);
  }

  void OnReply(Slot& s, int err, void* data) {
    if (abandoned_ || !s.busy) return;
    if (err <= 0) {  // Error, or EOF / zero-length write: the op failed.
      Finish(s, false);
      return;
    }
    const auto n = static_cast<uint64_t>(err);
    if (is_read_ &&
        !ctx_.pattern().Check(
            s.offset + s.done,
            absl::MakeConstSpan(static_cast<const uint8_t*>(data), n))) {
      s.verified = false;
    }
    s.done += n;
    if (s.done < w_.size) {
      SubmitChunk(s);
      return;
    }
    Finish(s, true);
  }

  void Finish(Slot& s, bool ok) {
    const int64_t now = MonoNowNs();
    s.busy = false;
    --outstanding_;
    ++completions_;
    ctx_.Complete(s.start_ns, now, w_.size, ok, s.verified);
    if (ctx_.ShouldIssue(now)) Issue(s);
  }

  ConnContext& ctx_;
  const Workload& w_;
  nfs_context* nfs_;
  nfsfh* fh_;
  const bool is_read_;
  const uint64_t max_chunk_;
  std::vector<Slot> slots_;
  int outstanding_ = 0;
  uint64_t completions_ = 0;
  bool abandoned_ = false;
};

class NfsDriver : public PeerDriver {
 public:
  NfsDriver(NfsAddress addr, std::string export_path)
      : addr_(std::move(addr)), export_path_(std::move(export_path)) {}

  absl::StatusOr<RunResult> Run(const Workload& w, pid_t server_pid) override {
    return RunHarness(w, server_pid, [this](int /*index*/, ConnContext& ctx) {
      Connection(ctx);
    });
  }

 private:
  void Connection(ConnContext& ctx) const {
    // Declared first, destroyed last: libnfs may still call back into it
    // while the context is torn down.
    std::unique_ptr<NfsConnection> conn;
    absl::StatusOr<std::unique_ptr<NfsMount>> mount =
        NfsMount::Mount(addr_, export_path_);
    nfsfh* fh = nullptr;
    absl::Status setup = mount.status();
    if (setup.ok()) {
      const std::string path = "/" + ctx.workload().file;
      if (nfs_open((*mount)->context(), path.c_str(), O_RDWR, &fh) != 0) {
        setup = absl::UnavailableError(absl::StrCat(
            "libnfs: open ", path, ": ", nfs_get_error((*mount)->context())));
      }
    }
    bool clean = true;
    if (ctx.Start(setup) && ctx.slots() > 0) {
      conn = std::make_unique<NfsConnection>(ctx, **mount, fh);
      clean = conn->Run();
    }
    // A sync close on a broken or wedged connection could block: skip it,
    // destroying the context frees the handle.
    if (fh != nullptr && clean) nfs_close((*mount)->context(), fh);
  }

  NfsAddress addr_;
  std::string export_path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PeerDriver>> MakeNfsDriver(
    const std::string& host_port, const std::string& export_dir) {
  absl::StatusOr<NfsAddress> addr = ParseNfsAddress(host_port);
  if (!addr.ok()) return addr.status();
  char real[4096];
  if (realpath(export_dir.c_str(), real) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("NFS peer: no such export dir ", export_dir));
  }
  return std::make_unique<NfsDriver>(*std::move(addr), real);
}

}  // namespace txbuf::peers::internal
