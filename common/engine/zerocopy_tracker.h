// engine/zerocopy_tracker.h: MSG_ZEROCOPY notification ids -> held bytes.
//
// Each sendmsg(MSG_ZEROCOPY) that sends at least one byte consumes the next
// 32-bit id of the socket (the kernel's sk_zckey, starting at 0). The error
// queue reports completed ids as inclusive ranges [lo, hi], possibly
// coalesced, possibly out of order. The tracker holds the txbuf slice of each
// id until its range is reported, then drops it (the destructor runs when the
// last hold on a chain goes).
//
// Thread-safety: thread-compatible (one per socket, on its loop thread).
#ifndef TXBUF_COMMON_ENGINE_ZEROCOPY_TRACKER_H_
#define TXBUF_COMMON_ENGINE_ZEROCOPY_TRACKER_H_

#include <cstdint>
#include <deque>
#include <utility>

#include "common/internal/txbuf_access.h"
#include "common/txbuf.h"

namespace txbuf::internal {

class ZerocopyTracker {
 public:
  // Ids start at `first_id` (the kernel starts at 0; tests start near 2^32).
  explicit ZerocopyTracker(uint32_t first_id = 0)
      : front_id_(first_id), next_id_(first_id) {}

  // Records the next id as holding `hold`; returns the id.
  uint32_t Add(TxBuf hold) {
    uint32_t id = next_id_++;
    pending_.push_back({std::move(hold), false});
    return id;
  }

  // Handles the report of ids [lo, hi]. Returns how many were pending.
  size_t Complete(uint32_t lo, uint32_t hi, bool copied) {
    size_t done = 0;
    for (uint32_t id = lo;; ++id) {
      uint32_t idx = id - front_id_;  // wraps like the kernel's ids.
      if (idx < pending_.size() && !pending_[idx].done) {
        if (copied) TxBufEngineAccess::MarkCopied(pending_[idx].hold);
        pending_[idx].hold.reset();
        pending_[idx].done = true;
        ++done;
      }
      if (id == hi) break;
    }
    while (!pending_.empty() && pending_.front().done) {
      pending_.pop_front();
      ++front_id_;
    }
    return done;
  }

  // Drops every hold (the socket is gone and the kernel let go).
  void ReleaseAll() {
    front_id_ += static_cast<uint32_t>(pending_.size());
    pending_.clear();
  }

  size_t outstanding() const {
    size_t n = 0;
    for (const auto& p : pending_) n += p.done ? 0 : 1;
    return n;
  }
  bool empty() const { return pending_.empty(); }
  uint32_t next_id() const { return next_id_; }

 private:
  struct Pending {
    TxBuf hold;
    bool done;
  };
  std::deque<Pending> pending_;
  uint32_t front_id_ = 0;  // id of pending_.front()
  uint32_t next_id_ = 0;
};

}  // namespace txbuf::internal

#endif  // TXBUF_COMMON_ENGINE_ZEROCOPY_TRACKER_H_
