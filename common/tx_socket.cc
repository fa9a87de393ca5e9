#include "common/tx_socket.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "common/clock.h"
#include "common/engine/engine_registry.h"
#include "common/internal/txbuf_access.h"

namespace txbuf {
namespace {

using internal::TxBufEngineAccess;

}  // namespace

absl::StatusOr<std::unique_ptr<TxSocket>> TxSocket::Create(
    EventLoop& loop, UniqueFd fd, TxSocketOptions options, MemoryStats& stats) {
  if (!fd) return absl::InvalidArgumentError("TxSocket: no socket");
  if (absl::Status s = SetNonBlocking(fd.get()); !s.ok()) return s;
  auto sock = std::unique_ptr<TxSocket>(
      new TxSocket(loop, std::move(fd), options, stats));
  absl::StatusOr<std::unique_ptr<SendEngine>> engine = NewSendEngine(
      options.engine, {.loop = loop,
                       .stats = stats,
                       .host = *sock,
                       .auto_policy = options.auto_policy,
                       .use_fixed_buffers = options.use_fixed_buffers,
                       .kmod = options.kmod,
                       .kmod_inline_below = options.kmod_inline_below});
  if (!engine.ok()) return engine.status();
  sock->engine_ = std::move(*engine);
  return sock;
}

TxSocket::TxSocket(EventLoop& loop, UniqueFd fd, TxSocketOptions options,
                   MemoryStats& stats)
    : loop_(loop),
      fd_(std::move(fd)),
      options_(options),
      stats_(stats),
      pollout_(
          loop, POLLOUT, [this](int res) { OnPollOut(res); },
          [this] { MaybeFinishClose(); }) {}

TxSocket::~TxSocket() {
  if (pollout_.armed() ||
      (engine_ != nullptr &&
       (engine_->completions_due() || engine_->waiting_on_socket()))) {
    std::fprintf(stderr,
                 "txbuf: TxSocket destroyed with operations in flight; call "
                 "Close() and wait for it\n");
    std::abort();
  }
  DropQueue(absl::CancelledError("socket destroyed"));
  if (engine_ != nullptr) engine_->ReleaseAll();
}

const AutoPolicy& TxSocket::auto_policy() const {
  if (const AutoPolicy* p = engine_->auto_policy(); p != nullptr) return *p;
  static const AutoPolicy kIdle(AutoPolicyOptions{});  // trivially destructible
  return kIdle;
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

void TxSocket::Pump() {
  bool sending =
      state_ == State::kOpen || (state_ == State::kClosing && !aborted_);
  while (sending && !queue_.empty() && !head_in_flight_ && !pollout_.armed() &&
         error_.ok()) {
    Pending& p = queue_.front();
    if (!p.started) {
      engine_->Begin(p.tx);
      p.started = true;
    }
    if (!TakeResult(engine_->Submit(p.tx))) return;
  }
  if (queue_.empty()) {
    if (on_drained_) on_drained_();
    MaybeFinishClose();
  }
}

bool TxSocket::TakeResult(const SubmitResult& r) {
  if (r.bytes > 0) HeadSent(r.bytes);
  switch (r.next) {
    case SubmitResult::Next::kContinue:
      return true;
    case SubmitResult::Next::kPollOut:
      pollout_.Arm(fd_.get());
      return false;
    case SubmitResult::Next::kWait:  // OnRoom() resumes.
      return false;
    case SubmitResult::Next::kInFlight:  // OnSubmitDone() resumes.
      head_in_flight_ = true;
      return false;
    case SubmitResult::Next::kFailed:
      stats_.engine(r.by).errors.fetch_add(1, std::memory_order_relaxed);
      Fail(r.error);
      return false;
  }
  return false;
}

void TxSocket::OnSubmitDone(const SubmitResult& r) {
  head_in_flight_ = false;
  bool sending = !queue_.empty() && !aborted_ && state_ != State::kClosed;
  if (sending) {
    TakeResult(r);
    Pump();
  }
  MaybeFinishClose();
}

void TxSocket::HeadSent(size_t n) {
  Pending& p = queue_.front();
  queued_bytes_ -= n;
  p.tx.Advance(n);  // releases what nothing else holds.
  if (p.tx.empty()) PopHead();
}

void TxSocket::PopHead() {
  // `p` is still the head: anything else queued is behind it.
  engine_->End(queue_.front().bytes, queue_.size() > 1);
  queue_.pop_front();
}

void TxSocket::OnPollOut(int res) {
  if (res < 0) {
    Fail(ErrnoStatus(-res, "poll"));
    return;
  }
  Pump();
}

void TxSocket::OnErrorQueueEmpty() {
  if (state_ != State::kOpen) return;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
      err != 0) {
    Fail(ErrnoStatus(err, "socket"));
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
  engine_->Abort();
  MaybeFinishClose();
}

void TxSocket::MaybeFinishClose() {
  if (state_ != State::kClosing) return;
  if (!aborted_) {
    // Graceful: everything sent and every notification in.
    if (!queue_.empty() || head_in_flight_ || engine_->outstanding() != 0) {
      return;
    }
  } else {
    // io_uring and kmod notifications always come: wait for them.
    if (engine_->completions_due()) return;
  }
  if (pollout_.armed() || engine_->waiting_on_socket()) {
    // Nothing more will be sent or read: a shut-down socket reports POLLHUP,
    // which ends single-shot polls by itself; cancel ends the rest.
    shutdown(fd_.get(), SHUT_RDWR);
    pollout_.Cancel();
    engine_->CancelWaits();
    return;  // their final CQEs call back here.
  }
  if (close_timer_ != 0) {
    loop_.CancelTimer(close_timer_);
    close_timer_ = 0;
  }
  // The socket is disconnected and its queues purged; anything still held
  // for msg_zerocopy has no notification coming and the kernel has dropped
  // its references.
  engine_->ReleaseAll();
  fd_.reset();
  state_ = State::kClosed;
  if (on_closed_) loop_.Post(std::move(on_closed_));
}

}  // namespace txbuf
