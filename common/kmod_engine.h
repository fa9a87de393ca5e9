// kmod_engine.h: the `kmod` send engine, one ioctl on /dev/txbuf per txbuf.
//
// The kernel module (kmod-shim/) builds the chain inside the kernel, sends it
// with one kernel sendmsg and its own ubuf_info, continues partial sends
// itself, and posts a completion record per txbuf that this engine reads
// from the device (polled on the event loop). The record releases the
// txbuf's hold, so the destructor runs when the kernel module's destructor
// ran.
//
// Thread-safety: thread-compatible; one engine per event loop, used on the
// loop thread.
//
// Example:
//   absl::StatusOr<std::unique_ptr<txbuf::KmodEngine>> kmod =
//       txbuf::KmodEngine::Open(loop, stats);
//   if (!kmod.ok()) { /* no /dev/txbuf: say so */ }
//   auto sock = txbuf::TxSocket::Create(loop, std::move(fd),
//       {.engine = txbuf::EngineKind::kKmod, .kmod = kmod->get()}, stats);
#ifndef TXBUF_COMMON_KMOD_ENGINE_H_
#define TXBUF_COMMON_KMOD_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/txbuf.h"

namespace txbuf {

class TxSocket;

class KmodEngine {
 public:
  // Opens the device. NotFound/FailedPrecondition with a clear message when
  // /dev/txbuf does not exist (the module is not loaded).
  static absl::StatusOr<std::unique_ptr<KmodEngine>> Open(
      EventLoop& loop, MemoryStats& stats, const char* path = "/dev/txbuf");
  ~KmodEngine();

  // Sends all of `tx` on `sock`'s socket with one ioctl. Calls back
  // sock->OnKmodSent() when the module accepted (or refused) it and
  // sock->OnKmodCompletion() when its completion record arrives.
  void Submit(TxSocket* sock, TxBuf tx);

  // `sock` is closing: its completions are still awaited, but it no longer
  // wants OnKmodSent calls for txbufs it dropped.
  void Forget(TxSocket* sock);

 private:
  KmodEngine() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_KMOD_ENGINE_H_
