// engine/auto_engine.h: the `auto` send engine: copy or zero-copy per txbuf,
// chosen by AutoPolicy (auto_policy.h) from what the connection measures.
//
// It composes two engines, copy and a zero-copy one (uring_zc where the
// loop's io_uring has SENDMSG_ZC, else msg_zerocopy), and stands between
// them and the socket as their host: the zero-copy engine's notifications
// feed the policy. It clocks the hand-over of each measured txbuf and
// reports the cost to the policy (AutoPolicy::OnSendCost).
//
// Thread-safety: thread-compatible; on its socket's loop thread.
#ifndef TXBUF_COMMON_ENGINE_AUTO_ENGINE_H_
#define TXBUF_COMMON_ENGINE_AUTO_ENGINE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "common/engine/auto_policy.h"
#include "common/engine/copy_engine.h"
#include "common/engine/send_engine.h"

namespace txbuf {

class AutoEngine final : public SendEngine, private SendEngineHost {
 public:
  // Turns SO_ZEROCOPY on where it can (a socket that refuses it still
  // copies). Never fails.
  static absl::StatusOr<std::unique_ptr<SendEngine>> Create(
      const SendEngineSetup& setup);
  explicit AutoEngine(const SendEngineSetup& setup);

  EngineKind kind() const override { return EngineKind::kAuto; }
  void Begin(const TxBuf& tx) override;
  SubmitResult Submit(const TxBuf& view) override {
    return Count(head_->Submit(view));
  }
  void End(uint64_t bytes, bool backlogged) override;
  size_t outstanding() const override {
    return copy_.outstanding() + zerocopy_->outstanding();
  }
  bool completions_due() const override { return zerocopy_->completions_due(); }
  void Abort() override;
  bool waiting_on_socket() const override {
    return zerocopy_->waiting_on_socket();
  }
  void CancelWaits() override { zerocopy_->CancelWaits(); }
  void ReleaseAll() override { zerocopy_->ReleaseAll(); }
  const AutoPolicy* auto_policy() const override { return &policy_; }

 private:
  // SendEngineHost, for the two engines: passed on to the socket's host.
  int fd() const override { return host_.fd(); }
  void OnSubmitDone(const SubmitResult& r) override {
    host_.OnSubmitDone(Count(r));
  }
  void OnRoom() override { host_.OnRoom(); }
  void OnNotification(bool copied, uint64_t sends) override;
  void OnSettled() override { host_.OnSettled(); }
  void OnErrorQueueEmpty() override { host_.OnErrorQueueEmpty(); }

  SendEngineSetup ForEngines(const SendEngineSetup& setup);
  // Counts a failed submission under auto too (the socket counts it under
  // the engine that made it); returns `r`.
  const SubmitResult& Count(const SubmitResult& r);

  SendEngineHost& host_;
  EngineCounters& counters_;
  AutoPolicy policy_;
  CopyEngine copy_;
  std::unique_ptr<SendEngine> zerocopy_;
  SendEngine* head_ = &copy_;    // the engine of the head txbuf.
  bool measured_ = false;        // the head's hand-over is clocked (Choice)...
  bool timed_ = false;           // ... and reported.
  int64_t measure_mark_ns_ = 0;  // the last measured hand-over...
  uint64_t measure_bytes_ = 0;   // ... and bytes handed over since.
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_AUTO_ENGINE_H_
