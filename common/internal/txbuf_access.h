// internal/txbuf_access.h: what send engines record on a txbuf.
//
// Not for callers outside common/: engines mark when a txbuf was first
// submitted (the start of destructor latency), whether the kernel copied
// any of it, and why a send was cut short.
//
// Thread-safety: called on the txbuf's event-loop thread.
#ifndef TXBUF_COMMON_INTERNAL_TXBUF_ACCESS_H_
#define TXBUF_COMMON_INTERNAL_TXBUF_ACCESS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/txbuf.h"

namespace txbuf::internal {

class TxBufEngineAccess {
 public:
  // Records the first submission time (later calls keep the first).
  static void MarkSubmitted(const TxBuf& t, int64_t now_ns) {
    if (t.node_ != nullptr && t.node_->ctl->submit_ns == 0) {
      t.node_->ctl->submit_ns = now_ns;
    }
  }
  static void MarkCopied(const TxBuf& t) {
    if (t.node_ != nullptr) {
      t.node_->ctl->copied.store(true, std::memory_order_relaxed);
    }
  }
  static void SetError(const TxBuf& t, absl::Status s) {
    if (t.node_ != nullptr && t.node_->ctl->status.ok()) {
      t.node_->ctl->status = std::move(s);
    }
  }
};

}  // namespace txbuf::internal

#endif  // TXBUF_COMMON_INTERNAL_TXBUF_ACCESS_H_
