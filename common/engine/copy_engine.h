// engine/copy_engine.h: the `copy` send engine, plain sendmsg.
//
// The kernel copies the bytes during sendmsg(), so the txbuf is released as
// they are handed over and nothing is outstanding. SendmsgHead() is the
// sendmsg() loop that msg_zerocopy shares.
//
// Thread-safety: thread-compatible; on its socket's loop thread.
#ifndef TXBUF_COMMON_ENGINE_COPY_ENGINE_H_
#define TXBUF_COMMON_ENGINE_COPY_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/engine/send_engine.h"

namespace txbuf {

// One sendmsg(MSG_DONTWAIT) of as much of `view` as one iovec array holds,
// retried on EINTR, counted in `counters`. With `zerocopy` it passes
// MSG_ZEROCOPY, and sends the same bytes again without it if the kernel
// has no room for the notification (ENOBUFS/ENOMEM), so the stream order
// is kept; `*zerocopy` says on return whether the bytes went zero-copy.
// EAGAIN: kPollOut; another error: kFailed.
SubmitResult SendmsgHead(int fd, const TxBuf& view, EngineKind kind,
                         EngineCounters& counters, bool* zerocopy);

class CopyEngine final : public SendEngine {
 public:
  // Never fails.
  static absl::StatusOr<std::unique_ptr<SendEngine>> Create(
      const SendEngineSetup& setup);
  explicit CopyEngine(const SendEngineSetup& setup);

  EngineKind kind() const override { return EngineKind::kCopy; }
  SubmitResult Submit(const TxBuf& view) override;
  void End(uint64_t bytes, bool backlogged) override;
  size_t outstanding() const override { return 0; }
  bool completions_due() const override { return false; }
  void Abort() override {}

 private:
  SendEngineHost& host_;
  EngineCounters& counters_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_COPY_ENGINE_H_
