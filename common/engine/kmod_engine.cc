#include "common/engine/kmod_engine.h"

#include <poll.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/engine/txbuf_device.h"
#include "common/internal/txbuf_access.h"

namespace txbuf {
namespace {

constexpr size_t kMaxSegs = 1024;  // TXBUF_MAX_SEGS

}  // namespace

// One socket's kmod send engine: counts, and waits for what the device
// reports back.
class KmodEngine::SocketEngine final : public SendEngine {
 public:
  SocketEngine(const SendEngineSetup& setup, Impl& impl)
      : host_(setup.host),
        counters_(setup.stats.engine(EngineKind::kKmod)),
        impl_(impl),
        inline_below_(setup.kmod_inline_below) {}
  ~SocketEngine() override;

  EngineKind kind() const override { return EngineKind::kKmod; }
  SubmitResult Submit(const TxBuf& view) override;
  void End(uint64_t, bool) override {
    counters_.txbufs.fetch_add(1, std::memory_order_relaxed);
  }
  size_t outstanding() const override { return ops_; }
  bool completions_due() const override { return ops_ != 0; }
  void Abort() override;

  // The module's destructor of one SEND ran.
  void OnCompletion(bool copied) {
    counters_.zc_notifications.fetch_add(1, std::memory_order_relaxed);
    if (copied) counters_.zc_copied.fetch_add(1, std::memory_order_relaxed);
    host_.OnNotification(copied, 1);
    --ops_;
    host_.OnSettled();
  }
  // Completions made room under the module's caps.
  void OnRoom() { host_.OnRoom(); }
  int fd() const { return host_.fd(); }

 private:
  SendEngineHost& host_;
  EngineCounters& counters_;
  Impl& impl_;
  size_t inline_below_;
  size_t ops_ = 0;  // SENDs whose completion record is not in.
};

class KmodEngine::Impl final : public IoCompletion {
 public:
  struct Sent {
    size_t accepted = 0;  // bytes of `view` the module took, from its start
    size_t sends = 0;     // SENDs accepted: one OnCompletion() each
    int err = 0;          // 0: all accepted; ENOBUFS: over the module's
                          // caps, OnRoom() follows; else a send error
  };

  Impl(EventLoop& loop, TxbufDevice dev) : loop_(loop), dev_(std::move(dev)) {}

  ~Impl() {
    if (armed_) loop_.Cancel(this);
  }

  // Sends `view` (the unsent rest of `sock`'s head txbuf) with as few SENDs
  // as the module's 1024-segment limit allows.
  Sent Submit(SocketEngine* sock, const TxBuf& view, size_t stage_bytes) {
    Sent r;
    // Pieces of the view, adjacent ones merged, INLINE below stage_bytes.
    std::vector<txbuf_seg> segs;
    std::vector<size_t> seg_end;  // view offset after each segment
    size_t at = 0;
    view.ForEachSegment([&](const std::byte* p, size_t len, SegmentKind kind) {
      bool small = kind == SegmentKind::kBuffered || len < stage_bytes;
      uint32_t type = small ? TXBUF_SEG_INLINE : TXBUF_SEG_USER;
      if (!segs.empty() && segs.back().type == type &&
          segs.back().addr + segs.back().len ==
              reinterpret_cast<uintptr_t>(p)) {
        segs.back().len += len;
      } else {
        segs.push_back(small ? TxbufDevice::Inline(p, len)
                             : TxbufDevice::User(p, len));
        seg_end.push_back(0);
      }
      at += len;
      seg_end.back() = at;
    });
    size_t first = 0;
    while (first < segs.size()) {
      size_t n = std::min(kMaxSegs, segs.size() - first);
      size_t from = r.accepted;
      size_t to = seg_end[first + n - 1];
      uint64_t cookie = next_cookie_++;
      r.err = dev_.SendErrno(sock->fd(), cookie, 0,
                             absl::MakeConstSpan(segs).subspan(first, n));
      if (r.err != 0) {
        if (r.err == ENOBUFS) waiting_.emplace(sock, true);
        return r;
      }
      // The module has the bytes; hold them until its destructor ran.
      inflight_.emplace(cookie, InFlight{sock, view.Slice(from, to - from)});
      r.accepted = to;
      ++r.sends;
      first += n;
      Arm();
    }
    return r;
  }

  // `sock` is closing: no OnRoom() calls for it any more (its completions
  // still arrive).
  void Forget(SocketEngine* sock) { waiting_.erase(sock); }

  void OnCompletion(const io_uring_cqe& cqe) override {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) armed_ = false;
    if (cqe.res < 0 && cqe.res != -ECANCELED) {
      std::fprintf(stderr, "txbuf: kmod engine: poll on /dev/txbuf: %d\n",
                   cqe.res);
    }
    Drain();
    if (!inflight_.empty()) Arm();
  }

 private:
  struct InFlight {
    SocketEngine* sock;
    TxBuf hold;
  };

  void Arm() {
    if (armed_) return;
    io_uring_sqe* sqe = loop_.GetSqe();
    io_uring_prep_poll_multishot(sqe, dev_.fd(), POLLIN);
    io_uring_sqe_set_data(sqe, this);
    armed_ = true;
  }

  void Drain() {
    txbuf_completion recs[64];
    for (;;) {
      absl::StatusOr<size_t> n = dev_.ReadCompletions(absl::MakeSpan(recs));
      if (!n.ok() || *n == 0) break;
      for (size_t i = 0; i < *n; ++i) {
        auto it = inflight_.find(recs[i].cookie);
        if (it == inflight_.end()) continue;
        InFlight f = std::move(it->second);
        inflight_.erase(it);
        bool copied = (recs[i].flags & TXBUF_COMPL_COPIED) != 0;
        if (copied) internal::TxBufEngineAccess::MarkCopied(f.hold);
        if (recs[i].status != 0) {
          internal::TxBufEngineAccess::SetError(
              f.hold, absl::CancelledError(absl::StrCat(
                          "kmod send ended with errno ", -recs[i].status)));
        }
        f.hold.reset();  // the txbuf's destructor may run here
        f.sock->OnCompletion(copied);
      }
      if (*n < 64) break;
    }
    // Completions free room under the module's caps: wake waiting sockets.
    if (!waiting_.empty()) {
      auto waiting = std::move(waiting_);
      waiting_.clear();
      for (auto& [sock, unused] : waiting) sock->OnRoom();
    }
  }

  EventLoop& loop_;
  TxbufDevice dev_;
  bool armed_ = false;
  uint64_t next_cookie_ = 1;
  absl::flat_hash_map<uint64_t, InFlight> inflight_;
  absl::flat_hash_map<SocketEngine*, bool> waiting_;
};

KmodEngine::SocketEngine::~SocketEngine() { impl_.Forget(this); }

SubmitResult KmodEngine::SocketEngine::Submit(const TxBuf& view) {
  Impl::Sent r = impl_.Submit(this, view, inline_below_);
  counters_.submissions.fetch_add(r.sends, std::memory_order_relaxed);
  ops_ += r.sends;  // one completion record each
  if (r.accepted > 0) {
    counters_.bytes.fetch_add(r.accepted, std::memory_order_relaxed);
  }
  if (r.err == 0) return {.bytes = r.accepted};
  if (r.err == ENOBUFS) {
    counters_.would_block.fetch_add(1, std::memory_order_relaxed);
    return {.bytes = r.accepted, .next = SubmitResult::Next::kWait};
  }
  return {.bytes = r.accepted,
          .next = SubmitResult::Next::kFailed,
          .error = DeviceErrnoStatus(r.err, "TXBUF_IOC_SEND"),
          .by = EngineKind::kKmod};
}

void KmodEngine::SocketEngine::Abort() { impl_.Forget(this); }

absl::StatusOr<std::unique_ptr<KmodEngine>> KmodEngine::Open(EventLoop& loop,
                                                             MemoryStats&,
                                                             const char* path) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open(path);
  if (!dev.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("engine kmod: ", dev.status().message()));
  }
  return std::unique_ptr<KmodEngine>(
      new KmodEngine(std::make_unique<Impl>(loop, std::move(*dev))));
}

KmodEngine::KmodEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KmodEngine::~KmodEngine() = default;

absl::StatusOr<std::unique_ptr<SendEngine>> KmodEngine::CreateSendEngine(
    const SendEngineSetup& setup) {
  if (setup.kmod == nullptr) {
    return absl::FailedPreconditionError(
        "engine kmod: /dev/txbuf is not open (is the txbuf module loaded?)");
  }
  return std::make_unique<SocketEngine>(setup, *setup.kmod->impl_);
}

}  // namespace txbuf
