// kmod_engine.h: the `kmod` send engine, one ioctl on /dev/txbuf per txbuf.
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

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/txbuf.h"

namespace txbuf {

class TxSocket;

class KmodEngine {
 public:
  // Opens the device. FailedPrecondition with a clear message when
  // /dev/txbuf does not exist (the module is not loaded).
  static absl::StatusOr<std::unique_ptr<KmodEngine>> Open(
      EventLoop& loop, MemoryStats& stats, const char* path = "/dev/txbuf");
  ~KmodEngine();

  struct SubmitResult {
    size_t accepted = 0;  // bytes of `view` the module took, from its start
    size_t sends = 0;     // SENDs accepted: one OnKmodCompletion() each
    absl::Status status;  // OK; ResourceExhausted: over the module's caps,
                          // OnKmodRoom() follows; else a send error
  };

  // Sends `view` (the unsent rest of `sock`'s head txbuf) with as few SENDs
  // as the module's 1024-segment limit allows. For each SEND accepted,
  // `sock` gets one OnKmodCompletion() later.
  SubmitResult Submit(TxSocket* sock, const TxBuf& view, size_t stage_bytes);

  // `sock` is closing: no OnKmodRoom() calls for it any more (its
  // completions still arrive).
  void Forget(TxSocket* sock);

 private:
  class Impl;
  explicit KmodEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_KMOD_ENGINE_H_
