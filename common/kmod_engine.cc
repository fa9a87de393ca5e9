#include "common/kmod_engine.h"

#include <poll.h>

#include <cerrno>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/internal/txbuf_access.h"
#include "common/tx_socket.h"
#include "kmod-shim/user/txbuf_device.h"

namespace txbuf {
namespace {

constexpr size_t kMaxSegs = 1024;  // TXBUF_MAX_SEGS

}  // namespace

class KmodEngine::Impl final : public IoCompletion {
 public:
  Impl(EventLoop& loop, TxbufDevice dev) : loop_(loop), dev_(std::move(dev)) {}

  ~Impl() {
    if (armed_) loop_.Cancel(this);
  }

  SubmitResult Submit(TxSocket* sock, const TxBuf& view, size_t stage_bytes) {
    SubmitResult r;
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
      absl::Status s = dev_.Send(sock->fd(), cookie, 0,
                                 absl::MakeConstSpan(segs).subspan(first, n));
      if (!s.ok()) {
        if (TxbufErrno(s) == ENOBUFS) {
          waiting_.emplace(sock, true);
          r.status = absl::ResourceExhaustedError(s.message());
        } else {
          r.status = s;
        }
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

  void Forget(TxSocket* sock) { waiting_.erase(sock); }

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
    TxSocket* sock;
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
        f.sock->OnKmodCompletion(copied);
      }
      if (*n < 64) break;
    }
    // Completions free room under the module's caps: wake waiting sockets.
    if (!waiting_.empty()) {
      auto waiting = std::move(waiting_);
      waiting_.clear();
      for (auto& [sock, unused] : waiting) sock->OnKmodRoom();
    }
  }

  EventLoop& loop_;
  TxbufDevice dev_;
  bool armed_ = false;
  uint64_t next_cookie_ = 1;
  absl::flat_hash_map<uint64_t, InFlight> inflight_;
  absl::flat_hash_map<TxSocket*, bool> waiting_;
};

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

KmodEngine::SubmitResult KmodEngine::Submit(TxSocket* sock, const TxBuf& view,
                                            size_t stage_bytes) {
  return impl_->Submit(sock, view, stage_bytes);
}

void KmodEngine::Forget(TxSocket* sock) { impl_->Forget(sock); }

}  // namespace txbuf
