// engine/send_engine.h: the interface of a send engine, and what an engine
// calls back on its socket.
//
// A send engine is how the head txbuf of a TxSocket's queue reaches the
// kernel: copy, msg_zerocopy, uring_zc, kmod or auto (engine_kind.h,
// docs/LIBTXBUF.md). The socket (tx_socket.h) keeps the ordered queue and
// the close state machine; it hands its engine a view of the unsent rest of
// the head txbuf, and the engine says how much of it the kernel took and
// what the socket waits for before the next Submit(). A zero-copy engine
// holds the bytes of each send until the kernel's notification, and says how
// many sends are outstanding.
//
// One file per engine in common/engine/; adding one is that file, its name in
// engine_kind.h and one row in engine_registry.cc.
//
// Thread-safety: thread-compatible; an engine lives on its socket's event
// loop thread.
#ifndef TXBUF_COMMON_ENGINE_SEND_ENGINE_H_
#define TXBUF_COMMON_ENGINE_SEND_ENGINE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "common/engine/auto_policy.h"
#include "common/engine_kind.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/txbuf.h"

namespace txbuf {

class KmodEngine;

// What one Submit() did.
struct SubmitResult {
  enum class Next {
    kContinue,  // submit the rest of the view (if any) right away.
    kPollOut,   // the socket buffer is full: submit again on POLLOUT.
    kWait,      // over the engine's limits: SendEngineHost::OnRoom() follows.
    kInFlight,  // submitted asynchronously: OnSubmitDone() follows.
    kFailed,    // the socket failed with `error`.
  };
  size_t bytes = 0;  // bytes of the view the kernel took, from its start.
  Next next = Next::kContinue;
  absl::Status error;                 // kFailed: why.
  EngineKind by = EngineKind::kCopy;  // kFailed: the engine that counts it.
};

// What an engine calls back on the socket that owns it. Implemented by
// TxSocket (and by AutoEngine for the two engines it composes). Every call
// comes on the loop thread, never from inside Submit().
class SendEngineHost {
 public:
  // The connected socket.
  virtual int fd() const = 0;
  // A kInFlight submission ended: `r` says what it did, as Submit() would.
  virtual void OnSubmitDone(const SubmitResult& r) = 0;
  // The engine has room again after a kWait.
  virtual void OnRoom() = 0;
  // A zero-copy notification arrived for `sends` submissions (msg_zerocopy
  // reports a range at once); `copied`: the kernel copied after all.
  virtual void OnNotification(bool copied, uint64_t sends) = 0;
  // Notifications arrived or a wait on the socket ended: outstanding() and
  // waiting_on_socket() may have changed (the close may finish).
  virtual void OnSettled() = 0;
  // The error queue woke the engine with no notification on it: the
  // socket's own error (SO_ERROR) may be why.
  virtual void OnErrorQueueEmpty() = 0;

 protected:
  ~SendEngineHost() = default;
};

// What an engine is built from: the socket's loop, statistics and options
// (TxSocketOptions, tx_socket.h).
struct SendEngineSetup {
  EventLoop& loop;
  MemoryStats& stats;
  SendEngineHost& host;
  AutoPolicyOptions auto_policy;  // auto
  bool use_fixed_buffers = true;  // uring_zc
  KmodEngine* kmod = nullptr;     // kmod
  size_t kmod_inline_below = 0;   // kmod
};

class SendEngine {
 public:
  virtual ~SendEngine() = default;

  // Which engine this is.
  virtual EngineKind kind() const = 0;

  // `tx` reached the head of the queue; its Submit() calls follow. (auto
  // chooses the engine of the whole txbuf here.)
  virtual void Begin(const TxBuf& tx) { (void)tx; }

  // Hands (the start of) `view`, the unsent rest of the head txbuf, to the
  // kernel. Holds what a zero-copy send still needs until its notification.
  virtual SubmitResult Submit(const TxBuf& view) = 0;

  // The head txbuf (`bytes` long) was handed over whole; `backlogged`:
  // another txbuf is queued behind it.
  virtual void End(uint64_t bytes, bool backlogged) = 0;

  // Sends whose notification has not arrived.
  virtual size_t outstanding() const = 0;

  // Operations are out whose completion the kernel posts even after an
  // abort (io_uring CQEs, kmod records): the socket waits for them.
  virtual bool completions_due() const = 0;

  // The socket was disconnected abortively: cancel what is in flight, take
  // the notifications already posted, and call OnRoom() no more.
  virtual void Abort() = 0;

  // Whether the engine waits on the socket (a poll). CancelWaits() ends
  // those waits; the end of each calls OnSettled().
  virtual bool waiting_on_socket() const { return false; }
  virtual void CancelWaits() {}

  // The socket is disconnected and about to close: drop every hold whose
  // notification will not come (the kernel has let go).
  virtual void ReleaseAll() {}

  // The auto engine's policy; nullptr for the others.
  virtual const AutoPolicy* auto_policy() const { return nullptr; }
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_SEND_ENGINE_H_
