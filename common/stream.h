// stream.h: one connected byte stream on the event loop: the socket, its
// receive op, its TxSocket and the one close state machine of a connection.
//
// txbufd's sessions (server/session/session.h) and the client library's
// connections (client/internal/connection.h) are handlers on top of a
// `Stream`: they decide what to read and what the bytes mean; the stream
// owns everything a connection's transport needs and closes it in one way.
//
// Receiving. The handler owns its receive buffer (for RPC, proto's
// FrameReader) and asks for bytes with Receive(span): the stream arms one
// io_uring recv into that span (retried on EINTR/EAGAIN) and reports the
// bytes with OnReceived(n). It arms nothing by itself: a handler that does
// not call Receive() again (its budget is spent, a job reads the buffer,
// it yields to other connections) is not read from. Why the handler owns the
// buffer rather than the stream owning a framer behind an interface:
// common/ knows nothing of RPC; the buffer's policy (growth, shrinking,
// tighter limits before authentication, keeping a payload in place while a
// job uses it) is the handler's anyway; and there is still one receive path
// (this op) and one close machine (below) for both sides.
//
// Closing. Close(mode, why) (or the stream itself: the peer closed its side,
// a receive failed, the TxSocket failed) stops receiving (shutdown(SHUT_RD)
// and a synchronous cancel of a recv in flight), waits for every Hold() to
// be released if graceful (the handler's work whose reply must go out
// first, e.g. a compound on a pool thread), closes the TxSocket once the
// recv has completed (its descriptor is never closed under an op not yet
// submitted; graceful: what is queued is sent first; abort: dropped),
// and reports OnClosed()
// once the recv has completed, every hold is released and the TxSocket has
// closed, i.e. after every txbuf's destructor ran. An abort overrides a
// graceful close whose TxSocket close has not begun. The peer closing its
// side closes with StreamOptions::peer_close_mode; a receive or send error
// aborts.
//
// Callbacks are never re-entrant: no handler method runs inside a call the
// handler made into the stream. OnClosing and OnClosed are posted to the
// loop; OnReceived runs from the recv's own completion, at the loop's top
// level (posting it would cost an eventfd write per receive). After
// OnClosing, OnReceived is not called again.
//
// Lifetime: destroy a stream only after OnClosed (the handler may do so from
// inside OnClosed), or before Start().
//
// Thread-safety: thread-compatible; use on the event loop's thread.
//
// Example:
//   auto stream = std::make_unique<txbuf::Stream>(loop, std::move(tx_socket),
//                                                 txbuf::StreamOptions{});
//   stream->Start(handler);  // handler: a Stream::Handler
//   stream->Receive(reader.WritableSpan(16 << 10));
//   stream->Send(std::move(reply));
//   stream->Close(txbuf::TxSocket::CloseMode::kGraceful, absl::OkStatus());
#ifndef TXBUF_COMMON_STREAM_H_
#define TXBUF_COMMON_STREAM_H_

#include <liburing.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/event_loop.h"
#include "common/tx_socket.h"
#include "common/txbuf.h"

namespace txbuf {

struct StreamOptions {
  // How the stream closes when the peer closes its side (a recv returns 0).
  TxSocket::CloseMode peer_close_mode = TxSocket::CloseMode::kGraceful;
  // Who the peer is in messages ("the server" closed the connection).
  std::string peer_name = "the peer";
};

class Stream final : private IoCompletion {
 public:
  using CloseMode = TxSocket::CloseMode;

  class Handler {
   public:
    // `n` (> 0) bytes arrived at the start of the span last given to
    // Receive(). No receive is armed now; call Receive() for more.
    virtual void OnReceived(size_t n) = 0;
    // The stream began closing: the handler's Close(), the peer closed
    // (UnavailableError "<peer> closed the connection"), or a receive or
    // send failed (its error). Posted; once per stream.
    virtual void OnClosing(const absl::Status& why) = 0;
    // Fully closed (see the banner). Posted; once; the last call.
    virtual void OnClosed() = 0;

   protected:
    ~Handler() = default;
  };

  Stream(EventLoop& loop, std::unique_ptr<TxSocket> tx,
         StreamOptions options = {});
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Binds the handler (which must outlive the stream's callbacks). Nothing
  // is received until Receive().
  void Start(Handler& handler);

  // Arms a recv into `into` (non-empty; it must stay valid until
  // OnReceived or OnClosed). No effect while one is armed or once closing.
  void Receive(absl::Span<std::byte> into);

  // Queues `tx` on the TxSocket. Once the socket close has begun (or it
  // failed) the txbuf is dropped at once (its destructor sees an error).
  void Send(TxBuf tx);

  // Closes as described in the banner. `why` goes to OnClosing. Later calls
  // have no effect but an abort overriding a graceful close that waits for
  // holds.
  void Close(CloseMode mode, absl::Status why = absl::OkStatus());

  // Work of the handler's that a close waits for: a graceful close sends
  // nothing more and closes the socket only after the last Release(); no
  // close reports OnClosed before it.
  void Hold() { ++holds_; }
  void Release();

  int fd() const { return tx_->fd(); }
  TxSocket& socket() { return *tx_; }
  const TxSocket& socket() const { return *tx_; }
  // A recv is armed.
  bool receiving() const { return recv_armed_; }
  // Close() was called (or the stream began closing itself).
  bool closing() const { return state_ != State::kOpen; }
  // Send() still reaches the socket (open, or a graceful close waiting for
  // its holds).
  bool can_send() const { return !socket_close_started_ && tx_->error().ok(); }
  bool closed() const { return state_ == State::kClosed; }

 private:
  enum class State { kOpen, kClosing, kClosed };

  void OnCompletion(const io_uring_cqe& cqe) override;  // the recv
  void ArmRecv();
  void MaybeCloseSocket();
  void MaybeFinish();
  // Runs `fn` on the loop later, unless the stream is gone by then.
  template <typename Fn>
  void PostSelf(Fn fn);

  EventLoop& loop_;
  std::unique_ptr<TxSocket> tx_;
  const StreamOptions options_;
  Handler* handler_ = nullptr;
  State state_ = State::kOpen;

  absl::Span<std::byte> recv_into_;
  bool recv_armed_ = false;

  int holds_ = 0;
  CloseMode close_mode_ = CloseMode::kGraceful;
  bool socket_close_started_ = false;
  bool socket_closed_ = false;
  bool closed_posted_ = false;
  // Posted callbacks hold a weak reference: a stream destroyed before Start
  // or by its owner's teardown drops them.
  std::shared_ptr<Stream*> self_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_STREAM_H_
