// tx_socket.h: the send side of one TCP connection: txbufs in, in order.
//
// A `TxSocket` owns a connected socket and a queue of txbufs. Each txbuf goes
// to the kernel as one submission (one sendmsg / one io_uring SQE with an
// iovec array), continued after partial sends, strictly in the order Send()
// was called. Its send engine (common/engine/, one file each) decides how:
//   copy          plain sendmsg; the txbuf is released as bytes are copied.
//   msg_zerocopy  sendmsg(MSG_ZEROCOPY); each send's bytes stay held until
//                 its id range comes back on the error queue. ENOBUFS/ENOMEM
//                 (optmem exhausted) falls back to a copy of the same bytes,
//                 in place, so nothing is reordered.
//   uring_zc      io_uring SENDMSG_ZC on the event loop; the notification CQE
//                 releases the bytes. From the registered page arena when
//                 the kernel supports it.
//   kmod          one ioctl on /dev/txbuf (see engine/kmod_engine.h).
//   auto          copy or zero-copy per txbuf, from what notifications report
//                 (engine/auto_policy.h).
// The socket keeps the queue and the close state machine; the engine holds
// what the kernel still needs (engine/send_engine.h). The txbuf's destructor
// runs when every hold is gone: the queue's (bytes not yet handed over) and
// each zero-copy send's (until its notification).
//
// Close() with txbufs in flight drops what was not sent, makes the kernel let
// go of what was (abortive disconnect), waits for every notification, closes
// the socket and then reports done: every destructor has run by then.
//
// Thread-safety: thread-compatible; use on the event loop's thread.
//
// Example:
//   auto sock = txbuf::TxSocket::Create(loop, std::move(fd),
//                                       {.engine = txbuf::EngineKind::kAuto},
//                                       stats).value();
//   sock->Send(std::move(tx));
//   ...
//   sock->Close(txbuf::TxSocket::CloseMode::kAbort, [] { /* all released */ });
#ifndef TXBUF_COMMON_TX_SOCKET_H_
#define TXBUF_COMMON_TX_SOCKET_H_

#include <cstdint>
#include <deque>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/engine/auto_policy.h"
#include "common/engine/send_engine.h"
#include "common/engine/socket_poll.h"
#include "common/engine_kind.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/socket_util.h"
#include "common/txbuf.h"

namespace txbuf {

struct TxSocketOptions {
  EngineKind engine = EngineKind::kAuto;
  AutoPolicyOptions auto_policy;
  // Use the loop's registered arena for uring_zc sends that lie inside it,
  // where the kernel supports fixed buffers with SENDMSG_ZC.
  bool use_fixed_buffers = true;
  // The /dev/txbuf engine of this loop, for EngineKind::kKmod.
  KmodEngine* kmod = nullptr;
  // kmod: pieces shorter than this go as INLINE (copied into kmalloc'd
  // objects by the module), longer ones as USER (pinned).
  size_t kmod_inline_below = 1024;
  // A graceful Close() waits this long for the queue and notifications
  // before it aborts.
  absl::Duration graceful_close_timeout = absl::Seconds(5);
};

class TxSocket final : private SendEngineHost {
 public:
  enum class CloseMode {
    kGraceful,  // send what is queued, wait for notifications, then close.
    kAbort,     // drop what is unsent, disconnect at once, then close.
  };

  // Takes `fd` (a connected TCP socket). Sets it non-blocking; turns on
  // SO_ZEROCOPY for the msg_zerocopy and auto engines.
  static absl::StatusOr<std::unique_ptr<TxSocket>> Create(
      EventLoop& loop, UniqueFd fd, TxSocketOptions options,
      MemoryStats& stats);
  ~TxSocket();
  TxSocket(const TxSocket&) = delete;
  TxSocket& operator=(const TxSocket&) = delete;

  // Queues `tx` behind earlier txbufs and starts sending if it is first.
  // After Close() or a socket error the txbuf is dropped at once (its
  // destructor sees a non-OK status).
  void Send(TxBuf tx);

  // Called once if the socket fails (peer reset, ...). Sending stops; the
  // owner should Close().
  void set_error_callback(absl::AnyInvocable<void(const absl::Status&)> cb) {
    on_error_ = std::move(cb);
  }
  // Called whenever the queue becomes empty (everything handed over).
  void set_drained_callback(absl::AnyInvocable<void()> cb) {
    on_drained_ = std::move(cb);
  }

  // Closes as described above; `done` runs on the loop (never inside this
  // call) once every destructor has run and the fd is closed. Call once.
  void Close(CloseMode mode, absl::AnyInvocable<void()> done);

  int fd() const override { return fd_.get(); }
  EngineKind engine() const { return options_.engine; }
  // Bytes queued and not yet handed to the kernel.
  uint64_t queued_bytes() const { return queued_bytes_; }
  size_t queued_txbufs() const { return queue_.size(); }
  // Zero-copy sends whose notification has not arrived.
  size_t zerocopy_outstanding() const { return engine_->outstanding(); }
  const absl::Status& error() const { return error_; }
  bool closing() const { return state_ != State::kOpen; }
  // The auto engine's policy (an idle one for the other engines).
  const AutoPolicy& auto_policy() const;

 private:
  enum class State { kOpen, kClosing, kClosed };
  struct Pending {
    TxBuf tx;
    uint64_t bytes = 0;    // tx.size() when queued.
    bool started = false;  // the engine began it (SendEngine::Begin).
  };

  TxSocket(EventLoop& loop, UniqueFd fd, TxSocketOptions options,
           MemoryStats& stats);
  void Pump();
  // Applies what a submission of the head did; true: submit again now.
  bool TakeResult(const SubmitResult& r);
  void HeadSent(size_t n);
  void PopHead();
  void OnPollOut(int res);
  void Fail(absl::Status s);
  void DropQueue(const absl::Status& why);
  void StartAbort();
  void MaybeFinishClose();

  // SendEngineHost (and fd() above).
  void OnSubmitDone(const SubmitResult& r) override;
  void OnRoom() override { Pump(); }
  void OnNotification(bool, uint64_t) override {}
  void OnSettled() override { MaybeFinishClose(); }
  void OnErrorQueueEmpty() override;

  EventLoop& loop_;
  UniqueFd fd_;
  TxSocketOptions options_;
  MemoryStats& stats_;
  std::unique_ptr<SendEngine> engine_;  // set by Create()
  State state_ = State::kOpen;
  absl::Status error_;

  std::deque<Pending> queue_;
  uint64_t queued_bytes_ = 0;
  bool head_in_flight_ = false;  // an async submission of the head is out.
  SocketPoll pollout_;

  CloseMode close_mode_ = CloseMode::kAbort;
  absl::AnyInvocable<void()> on_closed_;
  EventLoop::TimerId close_timer_ = 0;
  bool aborted_ = false;
  absl::AnyInvocable<void(const absl::Status&)> on_error_;
  absl::AnyInvocable<void()> on_drained_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_TX_SOCKET_H_
