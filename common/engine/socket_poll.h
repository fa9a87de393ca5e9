// engine/socket_poll.h: one poll on a socket through the event loop, as the
// send path uses it: POLLOUT one shot (TxSocket waits for room) or POLLERR
// multishot (msg_zerocopy waits for its error queue).
//
// `on_ready(res)` runs for each result that was not cancelled; `on_end()`
// runs after every completion, when the poll may have ended (armed()).
//
// Thread-safety: thread-compatible; on the loop thread.
#ifndef TXBUF_COMMON_ENGINE_SOCKET_POLL_H_
#define TXBUF_COMMON_ENGINE_SOCKET_POLL_H_

#include <poll.h>

#include <cerrno>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "common/event_loop.h"

namespace txbuf {

class SocketPoll final : public IoCompletion {
 public:
  // `events` is POLLOUT (one shot) or POLLERR (multishot).
  SocketPoll(EventLoop& loop, short events,
             absl::AnyInvocable<void(int res)> on_ready,
             absl::AnyInvocable<void()> on_end)
      : loop_(loop),
        events_(events),
        on_ready_(std::move(on_ready)),
        on_end_(std::move(on_end)) {}

  // Starts polling `fd`, unless already armed.
  void Arm(int fd) {
    if (armed_) return;
    io_uring_sqe* sqe = loop_.GetSqe();
    if (events_ == POLLERR) {
      io_uring_prep_poll_multishot(sqe, fd, POLLERR);
    } else {
      io_uring_prep_poll_add(sqe, fd, events_);
    }
    io_uring_sqe_set_data(sqe, this);
    armed_ = true;
    cancelling_ = false;
  }

  // Ends an armed poll; its final completion still calls on_end().
  void Cancel() {
    if (!armed_ || cancelling_) return;
    cancelling_ = true;
    loop_.Cancel(this);
  }

  // Called by the event loop.
  void OnCompletion(const io_uring_cqe& cqe) override {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) armed_ = false;
    if (cqe.res != -ECANCELED && !cancelling_) on_ready_(cqe.res);
    on_end_();
  }

  // A completion is still to come.
  bool armed() const { return armed_; }

 private:
  EventLoop& loop_;
  short events_;
  absl::AnyInvocable<void(int res)> on_ready_;
  absl::AnyInvocable<void()> on_end_;
  bool armed_ = false;
  bool cancelling_ = false;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_SOCKET_POLL_H_
