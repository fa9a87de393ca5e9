#include "common/engine/auto_engine.h"

#include <sys/socket.h>

#include "common/clock.h"
#include "common/engine/msg_zerocopy_engine.h"
#include "common/engine/uring_zc_engine.h"
#include "common/socket_util.h"

namespace txbuf {

absl::StatusOr<std::unique_ptr<SendEngine>> AutoEngine::Create(
    const SendEngineSetup& setup) {
  // Without it MSG_ZEROCOPY copies; the policy then sees no notification.
  (void)SetIntSockOpt(setup.host.fd(), SOL_SOCKET, SO_ZEROCOPY, 1);
  return std::make_unique<AutoEngine>(setup);
}

SendEngineSetup AutoEngine::ForEngines(const SendEngineSetup& setup) {
  return {.loop = setup.loop,
          .stats = setup.stats,
          .host = *this,
          .auto_policy = setup.auto_policy,
          .use_fixed_buffers = setup.use_fixed_buffers};
}

AutoEngine::AutoEngine(const SendEngineSetup& setup)
    : host_(setup.host),
      counters_(setup.stats.engine(EngineKind::kAuto)),
      policy_(setup.auto_policy),
      copy_(ForEngines(setup)) {
  if (setup.loop.features().sendmsg_zc) {
    zerocopy_ = std::make_unique<UringZcEngine>(ForEngines(setup));
  } else {
    zerocopy_ = std::make_unique<MsgZerocopyEngine>(ForEngines(setup));
  }
}

void AutoEngine::Begin(const TxBuf& tx) {
  AutoPolicy::Choice c = policy_.Choose(tx.size());
  measured_ = c.measured;
  timed_ = c.timed;
  head_ = c.zerocopy ? zerocopy_.get() : &copy_;
  head_->Begin(tx);
}

// auto measures each kind's pace: the time between one large txbuf being
// fully handed to the kernel and the next, and the bytes handed over in
// between (smaller txbufs included). See auto_policy.h.
void AutoEngine::End(uint64_t bytes, bool backlogged) {
  head_->End(bytes, backlogged);
  // What auto sent, also counted under the engine it chose: txbufs, bytes,
  // notifications (OnNotification) and errors (Count).
  counters_.txbufs.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (!measured_) {
    measure_bytes_ += bytes;
    return;
  }
  const int64_t now = MonoNowNs();
  if (timed_ && measure_mark_ns_ != 0) {
    policy_.OnSendCost(head_ != &copy_,
                       static_cast<uint64_t>(now - measure_mark_ns_),
                       measure_bytes_ + bytes, backlogged);
  }
  measure_mark_ns_ = now;
  measure_bytes_ = 0;
}

void AutoEngine::Abort() {
  copy_.Abort();
  zerocopy_->Abort();
}

const SubmitResult& AutoEngine::Count(const SubmitResult& r) {
  if (r.next == SubmitResult::Next::kFailed) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
  }
  return r;
}

void AutoEngine::OnNotification(bool copied, uint64_t sends) {
  counters_.zc_notifications.fetch_add(sends, std::memory_order_relaxed);
  if (copied) counters_.zc_copied.fetch_add(sends, std::memory_order_relaxed);
  policy_.OnNotification(copied);
  host_.OnNotification(copied, sends);
}

}  // namespace txbuf
