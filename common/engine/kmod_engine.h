// engine/kmod_engine.h: the `kmod` send engine, one ioctl on /dev/txbuf per
// txbuf.
//
// The kernel module (kmod-shim/, docs/KMOD.md) builds the chain inside the
// kernel and sends it with one kernel sendmsg and its own ubuf_info,
// continuing partial sends itself; it posts one completion record per SEND
// when its destructor ran. This engine turns a txbuf into SEND segments:
// small pieces (below the txbuf stage threshold) as INLINE (the module copies
// them into kmalloc'd objects), pages and large buffers as USER (pinned), and
// keeps a hold on the txbuf per SEND until its completion record arrives, so
// the txbuf's destructor runs after the module's.
//
// A `KmodEngine` is the device of one event loop, shared by the loop's
// sockets: it reads the completion records and hands each to the socket that
// sent it. Each socket's send engine (CreateSendEngine(), for
// engine_registry.cc) submits through it.
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
#ifndef TXBUF_COMMON_ENGINE_KMOD_ENGINE_H_
#define TXBUF_COMMON_ENGINE_KMOD_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/engine/send_engine.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"

namespace txbuf {

class KmodEngine {
 public:
  // Opens the device. FailedPrecondition with a clear message when
  // /dev/txbuf does not exist (the module is not loaded).
  static absl::StatusOr<std::unique_ptr<KmodEngine>> Open(
      EventLoop& loop, MemoryStats& stats, const char* path = "/dev/txbuf");
  ~KmodEngine();

  // The send engine of one socket, through `setup.kmod`: FailedPrecondition
  // when that is null (the device is not open).
  static absl::StatusOr<std::unique_ptr<SendEngine>> CreateSendEngine(
      const SendEngineSetup& setup);

 private:
  class Impl;
  class SocketEngine;
  explicit KmodEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_KMOD_ENGINE_H_
