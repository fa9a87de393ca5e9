#include "common/tx_socket.h"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/internal/txbuf_access.h"
#include "common/internal/uring_compat.h"
#include "common/kmod_engine.h"

namespace txbuf {
namespace {

constexpr size_t kMaxIov = 1024;  // IOV_MAX
using internal::TxBufEngineAccess;

}  // namespace

// A poll on the socket: POLLOUT (one shot) or POLLERR for the error queue
// (multishot).
class TxSocket::PollOp final : public IoCompletion {
 public:
  PollOp(TxSocket* s, bool errqueue) : s_(s), errqueue_(errqueue) {}
  void Arm() {
    if (armed_) return;
    io_uring_sqe* sqe = s_->loop_.GetSqe();
    if (errqueue_) {
      io_uring_prep_poll_multishot(sqe, s_->fd(), POLLERR);
    } else {
      io_uring_prep_poll_add(sqe, s_->fd(), POLLOUT);
    }
    io_uring_sqe_set_data(sqe, this);
    armed_ = true;
    cancelling_ = false;
  }
  void Cancel() {
    if (!armed_ || cancelling_) return;
    cancelling_ = true;
    s_->loop_.Cancel(this);  // our final CQE follows
  }
  void OnCompletion(const io_uring_cqe& cqe) override {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) armed_ = false;
    if (cqe.res != -ECANCELED && !cancelling_) {
      if (errqueue_) {
        s_->OnErrqueue(cqe.res);
      } else {
        s_->OnPollOut(cqe.res);
      }
    }
    s_->MaybeFinishClose();
  }
  bool armed() const { return armed_; }

 private:
  TxSocket* s_;
  bool errqueue_;
  bool armed_ = false;
  bool cancelling_ = false;
};

// One SENDMSG_ZC: the request CQE reports bytes sent, the notification CQE
// says the kernel is done with them (and whether it copied).
class TxSocket::UringSendOp final : public IoCompletion {
 public:
  explicit UringSendOp(TxSocket* s) : s_(s) {}
  void OnCompletion(const io_uring_cqe& cqe) override {
    if (cqe.flags & IORING_CQE_F_NOTIF) {
      s_->OnUringNotification(this, cqe);
    } else {
      s_->OnUringRequest(this, cqe);
    }
  }
  TxSocket* s_;
  TxBuf hold;
  std::vector<iovec> iov;
  msghdr msg{};
  size_t requested = 0;
};

absl::StatusOr<std::unique_ptr<TxSocket>> TxSocket::Create(
    EventLoop& loop, UniqueFd fd, TxSocketOptions options, MemoryStats& stats) {
  if (!fd) return absl::InvalidArgumentError("TxSocket: no socket");
  if (absl::Status s = SetNonBlocking(fd.get()); !s.ok()) return s;
  EngineKind k = options.engine;
  if (k == EngineKind::kUringZc && !loop.features().sendmsg_zc) {
    return absl::FailedPreconditionError(
        "engine uring_zc: this kernel's io_uring lacks SENDMSG_ZC (needs "
        "Linux 6.1+)");
  }
  if (k == EngineKind::kKmod && options.kmod == nullptr) {
    return absl::FailedPreconditionError(
        "engine kmod: /dev/txbuf is not open (is the txbuf module loaded?)");
  }
  if (k == EngineKind::kMsgZerocopy || k == EngineKind::kAuto) {
    if (absl::Status s = SetIntSockOpt(fd.get(), SOL_SOCKET, SO_ZEROCOPY, 1);
        !s.ok()) {
      if (k == EngineKind::kMsgZerocopy) {
        return absl::FailedPreconditionError(
            absl::StrCat("engine msg_zerocopy: SO_ZEROCOPY: ", s.message()));
      }
    }
  }
  return std::unique_ptr<TxSocket>(
      new TxSocket(loop, std::move(fd), options, stats));
}

TxSocket::TxSocket(EventLoop& loop, UniqueFd fd, TxSocketOptions options,
                   MemoryStats& stats)
    : loop_(loop),
      fd_(std::move(fd)),
      options_(options),
      stats_(stats),
      auto_(options.auto_policy),
      pollout_(std::make_unique<PollOp>(this, false)),
      errqueue_(std::make_unique<PollOp>(this, true)) {}

TxSocket::~TxSocket() {
  if (uring_ops_ != 0 || kmod_ops_ != 0 || pollout_->armed() ||
      errqueue_->armed()) {
    std::fprintf(stderr,
                 "txbuf: TxSocket destroyed with operations in flight; call "
                 "Close() and wait for it\n");
    std::abort();
  }
  DropQueue(absl::CancelledError("socket destroyed"));
  zc_.ReleaseAll();
}

EngineKind TxSocket::KindOf(Mechanism m) const {
  switch (m) {
    case Mechanism::kCopy:
      return EngineKind::kCopy;
    case Mechanism::kMsgZerocopy:
      return EngineKind::kMsgZerocopy;
    case Mechanism::kUringZc:
      return EngineKind::kUringZc;
    case Mechanism::kKmod:
      return EngineKind::kKmod;
  }
  return EngineKind::kCopy;
}

EngineCounters& TxSocket::counters(Mechanism m) {
  return stats_.engine(KindOf(m));
}

size_t TxSocket::zerocopy_outstanding() const {
  return zc_.outstanding() + uring_ops_ + kmod_ops_;
}

void TxSocket::Send(TxBuf tx) {
  TxBufEngineAccess::MarkSubmitted(tx, MonoNowNs());
  if (state_ != State::kOpen || !error_.ok()) {
    TxBufEngineAccess::SetError(
        tx, error_.ok() ? absl::CancelledError("connection closed") : error_);
    return;  // dropped: the destructor runs now.
  }
  if (tx.empty()) {
    stats_.engine(options_.engine)
        .txbufs.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint64_t bytes = tx.size();
  queued_bytes_ += bytes;
  queue_.push_back({.tx = std::move(tx), .bytes = bytes});
  if (queue_.size() == 1) Pump();
}

TxSocket::Mechanism TxSocket::Choose(Pending& p) {
  switch (options_.engine) {
    case EngineKind::kCopy:
      return Mechanism::kCopy;
    case EngineKind::kMsgZerocopy:
      return Mechanism::kMsgZerocopy;
    case EngineKind::kUringZc:
      return Mechanism::kUringZc;
    case EngineKind::kKmod:
      return Mechanism::kKmod;
    case EngineKind::kAuto: {
      AutoPolicy::Choice c = auto_.Choose(p.tx.size());
      p.measured = c.measured;
      p.timed = c.timed;
      if (!c.zerocopy) return Mechanism::kCopy;
      return loop_.features().sendmsg_zc ? Mechanism::kUringZc
                                         : Mechanism::kMsgZerocopy;
    }
  }
  return Mechanism::kCopy;
}

void TxSocket::Pump() {
  bool sending =
      state_ == State::kOpen || (state_ == State::kClosing && !aborted_);
  while (sending && !queue_.empty() && !head_in_flight_ && !pollout_->armed() &&
         error_.ok()) {
    Pending& p = queue_.front();
    if (!p.chosen) {
      p.mech = Choose(p);
      p.chosen = true;
    }
    if (p.mech == Mechanism::kUringZc) {
      SubmitUring(p);
      return;
    }
    if (p.mech == Mechanism::kKmod) {
      if (!SendKmod(p)) return;
      continue;
    }
    if (!SendSync(p)) return;
  }
  if (queue_.empty()) {
    if (on_drained_) on_drained_();
    MaybeFinishClose();
  }
}

bool TxSocket::SendSync(Pending& p) {
  iovec iov[kMaxIov];
  size_t len = 0;
  size_t n = p.tx.FillIovecs(0, absl::MakeSpan(iov, kMaxIov), &len);
  int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
  if (p.mech == Mechanism::kMsgZerocopy) flags |= MSG_ZEROCOPY;
  EngineCounters& c = counters(p.mech);
  for (;;) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t r = sendmsg(fd_.get(), &msg, flags);
    c.submissions.fetch_add(1, std::memory_order_relaxed);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) {
        c.would_block.fetch_add(1, std::memory_order_relaxed);
        ArmPollOut();
        return false;
      }
      if ((flags & MSG_ZEROCOPY) && (err == ENOBUFS || err == ENOMEM)) {
        // optmem for the notification is exhausted: send the same bytes as a
        // copy, right here, so the stream order is kept.
        c.nobufs_fallbacks.fetch_add(1, std::memory_order_relaxed);
        flags &= ~MSG_ZEROCOPY;
        continue;
      }
      c.errors.fetch_add(1, std::memory_order_relaxed);
      Fail(ErrnoStatus(err, "sendmsg"));
      return false;
    }
    c.bytes.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    if (static_cast<size_t>(r) < len) {
      c.partial_sends.fetch_add(1, std::memory_order_relaxed);
    }
    if (flags & MSG_ZEROCOPY) {
      zc_.Add(p.tx.Slice(0, static_cast<size_t>(r)));
      ArmErrqueue();
    } else {
      TxBufEngineAccess::MarkCopied(p.tx);
    }
    HeadSent(static_cast<size_t>(r));
    return true;
  }
}

void TxSocket::HeadSent(size_t n) {
  Pending& p = queue_.front();
  queued_bytes_ -= n;
  p.tx.Advance(n);  // releases what nothing else holds.
  if (p.tx.empty()) PopHead();
}

void TxSocket::PopHead() {
  Pending& p = queue_.front();
  counters(p.mech).txbufs.fetch_add(1, std::memory_order_relaxed);
  if (options_.engine == EngineKind::kAuto) {
    stats_.engine(EngineKind::kAuto)
        .txbufs.fetch_add(1, std::memory_order_relaxed);
    if (p.measured) {
      MeasureHandOver(p);
    } else {
      measure_bytes_ += p.bytes;
    }
  }
  queue_.pop_front();
}

// auto measures each kind's pace: the time between one large txbuf being
// fully handed to the kernel and the next, and the bytes handed over in
// between (smaller txbufs included). See auto_policy.h.
void TxSocket::MeasureHandOver(const Pending& p) {
  const int64_t now = MonoNowNs();
  if (p.timed && measure_mark_ns_ != 0) {
    // `p` is still the head: anything else queued is behind it.
    auto_.OnSendCost(p.mech != Mechanism::kCopy,
                     static_cast<uint64_t>(now - measure_mark_ns_),
                     measure_bytes_ + p.bytes, queue_.size() > 1);
  }
  measure_mark_ns_ = now;
  measure_bytes_ = 0;
}

void TxSocket::SubmitUring(Pending& p) {
  auto* op = new UringSendOp(this);
  size_t segs = std::min(p.tx.SegmentCount(), kMaxIov);
  op->iov.resize(segs);
  size_t len = 0;
  size_t n = p.tx.FillIovecs(0, absl::MakeSpan(op->iov), &len);
  op->hold = p.tx.Slice(0, len);
  op->requested = len;
  op->msg.msg_iov = op->iov.data();
  op->msg.msg_iovlen = n;
  io_uring_sqe* sqe = loop_.GetSqe();
  io_uring_prep_sendmsg_zc(sqe, fd_.get(), &op->msg,
                           MSG_NOSIGNAL | MSG_WAITALL);
  const UringFeatures& f = loop_.features();
  if (f.report_usage) sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
  EngineCounters& c = counters(Mechanism::kUringZc);
  const iovec& arena = loop_.registered_arena();
  if (options_.use_fixed_buffers && f.fixed_sendmsg_zc && arena.iov_len > 0) {
    auto* lo = static_cast<std::byte*>(arena.iov_base);
    bool inside = true;
    for (size_t i = 0; i < n && inside; ++i) {
      auto* b = static_cast<std::byte*>(op->iov[i].iov_base);
      inside = b >= lo && b + op->iov[i].iov_len <= lo + arena.iov_len;
    }
    if (inside) {
      sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
      sqe->buf_index = 0;
      c.fixed_buffer_sends.fetch_add(1, std::memory_order_relaxed);
    }
  }
  io_uring_sqe_set_data(sqe, op);
  c.submissions.fetch_add(1, std::memory_order_relaxed);
  ++uring_ops_;
  head_in_flight_ = true;
  head_op_ = op;
}

void TxSocket::OnUringRequest(UringSendOp* op, const io_uring_cqe& cqe) {
  head_in_flight_ = false;
  head_op_ = nullptr;
  EngineCounters& c = counters(Mechanism::kUringZc);
  int res = cqe.res;
  if (res >= 0) {
    c.bytes.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    if (static_cast<size_t>(res) < op->requested) {
      c.partial_sends.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if ((cqe.flags & IORING_CQE_F_MORE) == 0) {  // no notification will come.
    --uring_ops_;
    delete op;
  }
  bool sending = !queue_.empty() && !aborted_ && state_ != State::kClosed;
  if (sending) {
    if (res >= 0) {
      HeadSent(static_cast<size_t>(res));
    } else if (res != -EAGAIN && res != -EINTR) {
      c.errors.fetch_add(1, std::memory_order_relaxed);
      Fail(ErrnoStatus(-res, "io_uring sendmsg_zc"));
    }
    Pump();
  }
  MaybeFinishClose();
}

void TxSocket::OnUringNotification(UringSendOp* op, const io_uring_cqe& cqe) {
  EngineCounters& c = counters(Mechanism::kUringZc);
  c.zc_notifications.fetch_add(1, std::memory_order_relaxed);
  bool copied =
      (static_cast<uint32_t>(cqe.res) & IORING_NOTIF_USAGE_ZC_COPIED) != 0;
  if (copied) {
    c.zc_copied.fetch_add(1, std::memory_order_relaxed);
    TxBufEngineAccess::MarkCopied(op->hold);
  }
  if (options_.engine == EngineKind::kAuto) auto_.OnNotification(copied);
  --uring_ops_;
  delete op;  // drops the hold: the destructor may run here.
  MaybeFinishClose();
}

bool TxSocket::SendKmod(Pending& p) {
  EngineCounters& c = counters(Mechanism::kKmod);
  KmodEngine::SubmitResult r =
      options_.kmod->Submit(this, p.tx, options_.kmod_inline_below);
  c.submissions.fetch_add(r.sends, std::memory_order_relaxed);
  kmod_ops_ += r.sends;  // one completion record each
  if (r.accepted > 0) {
    c.bytes.fetch_add(r.accepted, std::memory_order_relaxed);
    HeadSent(r.accepted);
  }
  if (r.status.ok()) return true;
  if (r.status.code() == absl::StatusCode::kResourceExhausted) {
    c.would_block.fetch_add(1, std::memory_order_relaxed);
    kmod_waiting_ = true;  // OnKmodRoom() resumes
    return false;
  }
  c.errors.fetch_add(1, std::memory_order_relaxed);
  Fail(r.status);
  return false;
}

void TxSocket::OnKmodRoom() {
  kmod_waiting_ = false;
  Pump();
}

void TxSocket::OnKmodCompletion(bool copied) {
  EngineCounters& c = counters(Mechanism::kKmod);
  c.zc_notifications.fetch_add(1, std::memory_order_relaxed);
  if (copied) c.zc_copied.fetch_add(1, std::memory_order_relaxed);
  --kmod_ops_;
  MaybeFinishClose();
}

void TxSocket::ArmPollOut() { pollout_->Arm(); }

void TxSocket::ArmErrqueue() {
  if (state_ != State::kClosed) errqueue_->Arm();
}

void TxSocket::OnPollOut(int res) {
  if (res < 0) {
    Fail(ErrnoStatus(-res, "poll"));
    return;
  }
  Pump();
}

void TxSocket::OnErrqueue(int res) {
  if (res < 0) return;
  DrainErrqueue();
  if (!zc_.empty() && !errqueue_->armed() && state_ != State::kClosed) {
    errqueue_->Arm();
  }
}

void TxSocket::DrainErrqueue() {
  if (!fd_) return;
  EngineCounters& c = counters(Mechanism::kMsgZerocopy);
  bool any = false;
  for (;;) {
    alignas(cmsghdr) char control[256];
    msghdr msg{};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t r = recvmsg(fd_.get(), &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr;
         cm = CMSG_NXTHDR(&msg, cm)) {
      bool recverr =
          (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
          (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR);
      if (!recverr) continue;
      sock_extended_err serr;
      std::memcpy(&serr, CMSG_DATA(cm), sizeof(serr));
      if (serr.ee_origin != SO_EE_ORIGIN_ZEROCOPY || serr.ee_errno != 0) {
        continue;
      }
      any = true;
      bool copied = (serr.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) != 0;
      uint32_t lo = serr.ee_info, hi = serr.ee_data;
      uint64_t ids = static_cast<uint32_t>(hi - lo) + uint64_t{1};
      c.zc_notifications.fetch_add(ids, std::memory_order_relaxed);
      if (copied) c.zc_copied.fetch_add(ids, std::memory_order_relaxed);
      if (options_.engine == EngineKind::kAuto) auto_.OnNotification(copied);
      zc_.Complete(lo, hi, copied);  // destructors may run here.
    }
  }
  if (!any && state_ == State::kOpen) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
        err != 0) {
      Fail(ErrnoStatus(err, "socket"));
    }
  }
}

void TxSocket::Fail(absl::Status s) {
  if (!error_.ok()) return;
  error_ = std::move(s);
  DropQueue(error_);
  if (on_error_) on_error_(error_);
}

void TxSocket::DropQueue(const absl::Status& why) {
  for (Pending& p : queue_) TxBufEngineAccess::SetError(p.tx, why);
  std::deque<Pending> dropped;
  dropped.swap(queue_);
  queued_bytes_ = 0;
  dropped.clear();  // destructors of unsent txbufs may run here.
}

void TxSocket::Close(CloseMode mode, absl::AnyInvocable<void()> done) {
  if (state_ != State::kOpen) {
    std::fprintf(stderr, "txbuf: TxSocket::Close called twice\n");
    std::abort();
  }
  state_ = State::kClosing;
  close_mode_ = mode;
  on_closed_ = std::move(done);
  if (mode == CloseMode::kGraceful && error_.ok()) {
    close_timer_ = loop_.RunAfter(options_.graceful_close_timeout, [this] {
      close_timer_ = 0;
      StartAbort();
    });
    Pump();
    MaybeFinishClose();
  } else {
    StartAbort();
  }
}

void TxSocket::StartAbort() {
  if (aborted_) return;
  aborted_ = true;
  if (close_timer_ != 0) {
    loop_.CancelTimer(close_timer_);
    close_timer_ = 0;
  }
  DropQueue(error_.ok() ? absl::CancelledError("connection closed") : error_);
  // Make the kernel let go of everything queued on the socket: a reset and a
  // purge of the write queue. The zero-copy notifications of the purged data
  // are posted at once (measured: all id ranges arrive on the error queue).
  linger lg{1, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  // Fails harmlessly if the socket is already disconnected.
  (void)connect(fd_.get(), &unspec, sizeof(unspec));
  if (head_op_ != nullptr) loop_.Cancel(head_op_);
  DrainErrqueue();
  if (options_.kmod != nullptr) options_.kmod->Forget(this);
  MaybeFinishClose();
}

void TxSocket::MaybeFinishClose() {
  if (state_ != State::kClosing) return;
  if (!aborted_) {
    // Graceful: everything sent and every notification in.
    if (!queue_.empty() || head_in_flight_ || uring_ops_ != 0 ||
        kmod_ops_ != 0 || !zc_.empty()) {
      return;
    }
  } else {
    // io_uring and kmod notifications always come: wait for them.
    if (uring_ops_ != 0 || kmod_ops_ != 0) return;
  }
  if (pollout_->armed() || errqueue_->armed()) {
    // Nothing more will be sent or read: a shut-down socket reports POLLHUP,
    // which ends single-shot polls by itself; cancel ends the rest.
    shutdown(fd_.get(), SHUT_RDWR);
    pollout_->Cancel();
    errqueue_->Cancel();
    return;  // their final CQEs call back here.
  }
  if (close_timer_ != 0) {
    loop_.CancelTimer(close_timer_);
    close_timer_ = 0;
  }
  // The socket is disconnected and its queues purged; anything still held
  // for msg_zerocopy has no notification coming and the kernel has dropped
  // its references.
  zc_.ReleaseAll();
  fd_.reset();
  state_ = State::kClosed;
  if (on_closed_) loop_.Post(std::move(on_closed_));
}

}  // namespace txbuf
