// stream.cc: see stream.h.
#include "common/stream.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace txbuf {

Stream::Stream(EventLoop& loop, std::unique_ptr<TxSocket> tx,
               StreamOptions options)
    : loop_(loop),
      tx_(std::move(tx)),
      options_(std::move(options)),
      self_(std::make_shared<Stream*>(this)) {}

Stream::~Stream() = default;

template <typename Fn>
void Stream::PostSelf(Fn fn) {
  loop_.Post([weak = std::weak_ptr<Stream*>(self_), fn = std::move(fn)]() {
    if (std::shared_ptr<Stream*> s = weak.lock()) fn(**s);
  });
}

void Stream::Start(Handler& handler) {
  handler_ = &handler;
  tx_->set_error_callback([this](const absl::Status& s) {
    // Inside the TxSocket's own call stack: close from the loop.
    PostSelf([why = s](Stream& st) { st.Close(CloseMode::kAbort, why); });
  });
}

void Stream::Receive(absl::Span<std::byte> into) {
  if (recv_armed_ || state_ != State::kOpen) return;
  recv_into_ = into;
  ArmRecv();
}

void Stream::ArmRecv() {
  // A recv takes an int-sized length.
  const size_t len = std::min<size_t>(recv_into_.size(), size_t{1} << 30);
  io_uring_sqe* sqe = loop_.GetSqe();
  io_uring_prep_recv(sqe, tx_->fd(), recv_into_.data(), len, 0);
  io_uring_sqe_set_data(sqe, static_cast<IoCompletion*>(this));
  recv_armed_ = true;
}

void Stream::OnCompletion(const io_uring_cqe& cqe) {
  recv_armed_ = false;
  if (state_ != State::kOpen) {  // the close cancelled it (or data raced)
    MaybeCloseSocket();          // it waited for this
    MaybeFinish();
    return;
  }
  if (cqe.res == 0) {
    Close(options_.peer_close_mode,
          absl::UnavailableError(
              absl::StrCat(options_.peer_name, " closed the connection")));
    return;
  }
  if (cqe.res < 0) {
    if (cqe.res == -EINTR || cqe.res == -EAGAIN) {
      ArmRecv();
      return;
    }
    Close(CloseMode::kAbort, absl::UnavailableError(absl::StrCat(
                                 "receive: ", strerror(-cqe.res))));
    return;
  }
  handler_->OnReceived(static_cast<size_t>(cqe.res));
}

void Stream::Send(TxBuf tx) { tx_->Send(std::move(tx)); }

void Stream::Close(CloseMode mode, absl::Status why) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kClosing) {
    // An abort overrides a graceful close still waiting for its holds.
    if (mode == CloseMode::kAbort && !socket_close_started_) {
      close_mode_ = mode;
      MaybeCloseSocket();
    }
    return;
  }
  state_ = State::kClosing;
  close_mode_ = mode;
  if (recv_armed_) {
    // No more bytes: a pending recv completes with 0 at once; the cancel
    // covers one that has not reached the socket yet. Its completion ends
    // the receive side.
    shutdown(tx_->fd(), SHUT_RD);
    loop_.Cancel(this);
  }
  if (handler_ != nullptr) {
    PostSelf([why = std::move(why)](Stream& s) { s.handler_->OnClosing(why); });
  }
  MaybeCloseSocket();
}

void Stream::Release() {
  --holds_;
  if (state_ == State::kClosing) MaybeCloseSocket();
  MaybeFinish();
}

void Stream::MaybeCloseSocket() {
  // Not while the recv is armed: closing the socket closes its descriptor,
  // and a recv armed this loop turn is not submitted yet (io_uring looks
  // the descriptor up only then), so it would run on whatever socket or
  // file is next given that number and take its bytes. Close() shut the
  // receive side down and cancelled the recv: its completion comes at once
  // and calls back here.
  if (socket_close_started_ || recv_armed_ ||
      (holds_ > 0 && close_mode_ == CloseMode::kGraceful)) {
    return;
  }
  socket_close_started_ = true;
  // `done` runs from the loop, never inside this call.
  tx_->Close(close_mode_, [this] {
    socket_closed_ = true;
    MaybeFinish();
  });
}

void Stream::MaybeFinish() {
  if (state_ != State::kClosing || recv_armed_ || !socket_closed_ ||
      holds_ > 0 || closed_posted_) {
    return;
  }
  closed_posted_ = true;
  PostSelf([](Stream& s) {
    s.state_ = State::kClosed;
    if (s.handler_ != nullptr) s.handler_->OnClosed();
  });
}

}  // namespace txbuf
