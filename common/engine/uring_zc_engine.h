// engine/uring_zc_engine.h: the `uring_zc` send engine, io_uring
// SENDMSG_ZC on the socket's event loop.
//
// One SQE per submission carries the view's iovec array (from the loop's
// registered arena, as a fixed buffer, where the kernel supports it). The
// request CQE says how many bytes were sent; the notification CQE that
// follows says the kernel is done with them (and whether it copied), and
// drops the hold on them. Both CQEs always come, even after an abort.
//
// Thread-safety: thread-compatible; on its socket's loop thread.
#ifndef TXBUF_COMMON_ENGINE_URING_ZC_ENGINE_H_
#define TXBUF_COMMON_ENGINE_URING_ZC_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/engine/send_engine.h"

namespace txbuf {

class UringZcEngine final : public SendEngine {
 public:
  // FailedPrecondition if the loop's io_uring lacks SENDMSG_ZC.
  static absl::StatusOr<std::unique_ptr<SendEngine>> Create(
      const SendEngineSetup& setup);
  // For a loop that has SENDMSG_ZC (auto).
  explicit UringZcEngine(const SendEngineSetup& setup);

  EngineKind kind() const override { return EngineKind::kUringZc; }
  SubmitResult Submit(const TxBuf& view) override;
  void End(uint64_t bytes, bool backlogged) override;
  size_t outstanding() const override { return ops_; }
  bool completions_due() const override { return ops_ != 0; }
  void Abort() override;

 private:
  class SendOp;
  void OnRequest(SendOp* op, const io_uring_cqe& cqe);
  void OnNotification(SendOp* op, const io_uring_cqe& cqe);

  EventLoop& loop_;
  SendEngineHost& host_;
  EngineCounters& counters_;
  bool use_fixed_buffers_;
  size_t ops_ = 0;             // sends whose CQEs are not all in.
  SendOp* head_op_ = nullptr;  // the send whose request CQE is due.
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_URING_ZC_ENGINE_H_
