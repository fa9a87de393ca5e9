// engine/msg_zerocopy_engine.h: the `msg_zerocopy` send engine,
// sendmsg(MSG_ZEROCOPY) on a socket with SO_ZEROCOPY.
//
// Each send's bytes stay held (ZerocopyTracker) until the kernel reports its
// id range on the socket's error queue, which a multishot POLLERR watches.
// ENOBUFS/ENOMEM (optmem exhausted) sends the same bytes as a copy, in
// place, so nothing is reordered. An abortive disconnect makes the kernel
// post every outstanding range at once; what is still held when the socket
// closes has no notification coming and is released then.
//
// Thread-safety: thread-compatible; on its socket's loop thread.
#ifndef TXBUF_COMMON_ENGINE_MSG_ZEROCOPY_ENGINE_H_
#define TXBUF_COMMON_ENGINE_MSG_ZEROCOPY_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/engine/send_engine.h"
#include "common/engine/socket_poll.h"
#include "common/engine/zerocopy_tracker.h"

namespace txbuf {

class MsgZerocopyEngine final : public SendEngine {
 public:
  // Turns SO_ZEROCOPY on; FailedPrecondition if the socket refuses it.
  static absl::StatusOr<std::unique_ptr<SendEngine>> Create(
      const SendEngineSetup& setup);
  // For a socket that has SO_ZEROCOPY on (auto).
  explicit MsgZerocopyEngine(const SendEngineSetup& setup);

  EngineKind kind() const override { return EngineKind::kMsgZerocopy; }
  SubmitResult Submit(const TxBuf& view) override;
  void End(uint64_t bytes, bool backlogged) override;
  size_t outstanding() const override { return tracker_.outstanding(); }
  bool completions_due() const override { return false; }
  void Abort() override { DrainErrqueue(); }
  bool waiting_on_socket() const override { return errqueue_.armed(); }
  void CancelWaits() override { errqueue_.Cancel(); }
  void ReleaseAll() override;

 private:
  void OnErrqueue(int res);
  // Reads every notification on the error queue.
  void DrainErrqueue();

  SendEngineHost& host_;
  EngineCounters& counters_;
  internal::ZerocopyTracker tracker_;
  SocketPoll errqueue_;
  bool closed_ = false;  // ReleaseAll() ran: no more polls.
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_MSG_ZEROCOPY_ENGINE_H_
