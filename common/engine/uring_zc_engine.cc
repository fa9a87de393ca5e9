#include "common/engine/uring_zc_engine.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "common/internal/txbuf_access.h"
#include "common/internal/uring_compat.h"
#include "common/socket_util.h"

namespace txbuf {
namespace {

constexpr size_t kMaxIov = 1024;  // IOV_MAX

}  // namespace

// One SENDMSG_ZC: the request CQE reports bytes sent, the notification CQE
// says the kernel is done with them (and whether it copied).
class UringZcEngine::SendOp final : public IoCompletion {
 public:
  explicit SendOp(UringZcEngine* e) : e_(e) {}
  void OnCompletion(const io_uring_cqe& cqe) override {
    if (cqe.flags & IORING_CQE_F_NOTIF) {
      e_->OnNotification(this, cqe);
    } else {
      e_->OnRequest(this, cqe);
    }
  }
  UringZcEngine* e_;
  TxBuf hold;
  std::vector<iovec> iov;
  msghdr msg{};
  size_t requested = 0;
};

absl::StatusOr<std::unique_ptr<SendEngine>> UringZcEngine::Create(
    const SendEngineSetup& setup) {
  if (!setup.loop.features().sendmsg_zc) {
    return absl::FailedPreconditionError(
        "engine uring_zc: this kernel's io_uring lacks SENDMSG_ZC (needs "
        "Linux 6.1+)");
  }
  return std::make_unique<UringZcEngine>(setup);
}

UringZcEngine::UringZcEngine(const SendEngineSetup& setup)
    : loop_(setup.loop),
      host_(setup.host),
      counters_(setup.stats.engine(EngineKind::kUringZc)),
      use_fixed_buffers_(setup.use_fixed_buffers) {}

SubmitResult UringZcEngine::Submit(const TxBuf& view) {
  auto* op = new SendOp(this);
  size_t segs = std::min(view.SegmentCount(), kMaxIov);
  op->iov.resize(segs);
  size_t len = 0;
  size_t n = view.FillIovecs(0, absl::MakeSpan(op->iov), &len);
  op->hold = view.Slice(0, len);
  op->requested = len;
  op->msg.msg_iov = op->iov.data();
  op->msg.msg_iovlen = n;
  io_uring_sqe* sqe = loop_.GetSqe();
  io_uring_prep_sendmsg_zc(sqe, host_.fd(), &op->msg,
                           MSG_NOSIGNAL | MSG_WAITALL);
  const UringFeatures& f = loop_.features();
  if (f.report_usage) sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
  const iovec& arena = loop_.registered_arena();
  if (use_fixed_buffers_ && f.fixed_sendmsg_zc && arena.iov_len > 0) {
    auto* lo = static_cast<std::byte*>(arena.iov_base);
    bool inside = true;
    for (size_t i = 0; i < n && inside; ++i) {
      auto* b = static_cast<std::byte*>(op->iov[i].iov_base);
      inside = b >= lo && b + op->iov[i].iov_len <= lo + arena.iov_len;
    }
    if (inside) {
      sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
      sqe->buf_index = 0;
      counters_.fixed_buffer_sends.fetch_add(1, std::memory_order_relaxed);
    }
  }
  io_uring_sqe_set_data(sqe, op);
  counters_.submissions.fetch_add(1, std::memory_order_relaxed);
  ++ops_;
  head_op_ = op;
  return {.next = SubmitResult::Next::kInFlight};
}

void UringZcEngine::End(uint64_t, bool) {
  counters_.txbufs.fetch_add(1, std::memory_order_relaxed);
}

void UringZcEngine::Abort() {
  if (head_op_ != nullptr) loop_.Cancel(head_op_);
}

void UringZcEngine::OnRequest(SendOp* op, const io_uring_cqe& cqe) {
  head_op_ = nullptr;
  int res = cqe.res;
  if (res >= 0) {
    counters_.bytes.fetch_add(static_cast<uint64_t>(res),
                              std::memory_order_relaxed);
    if (static_cast<size_t>(res) < op->requested) {
      counters_.partial_sends.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if ((cqe.flags & IORING_CQE_F_MORE) == 0) {  // no notification will come.
    --ops_;
    delete op;
  }
  SubmitResult r;
  if (res >= 0) {
    r.bytes = static_cast<size_t>(res);
  } else if (res != -EAGAIN && res != -EINTR) {
    r = {.next = SubmitResult::Next::kFailed,
         .error = ErrnoStatus(-res, "io_uring sendmsg_zc"),
         .by = EngineKind::kUringZc};
  }  // else: sent nothing, submit again.
  host_.OnSubmitDone(r);
}

void UringZcEngine::OnNotification(SendOp* op, const io_uring_cqe& cqe) {
  counters_.zc_notifications.fetch_add(1, std::memory_order_relaxed);
  bool copied =
      (static_cast<uint32_t>(cqe.res) & IORING_NOTIF_USAGE_ZC_COPIED) != 0;
  if (copied) {
    counters_.zc_copied.fetch_add(1, std::memory_order_relaxed);
    internal::TxBufEngineAccess::MarkCopied(op->hold);
  }
  host_.OnNotification(copied, 1);
  --ops_;
  delete op;  // drops the hold: the destructor may run here.
  host_.OnSettled();
}

}  // namespace txbuf
