// op_stats.h: what the executor did, for STATS and the metrics endpoint:
// ops by kind and status, and the bytes READ returned and WRITE took.
//
// Counting is a relaxed atomic add (an error also finds its status's slot
// in a table built once); Fill() reads the counters while ops go on, so a
// STATS result is not one instant's.
//
// Thread-safety: thread-safe.
#ifndef TXBUF_SERVER_STATS_OP_STATS_H_
#define TXBUF_SERVER_STATS_OP_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "proto/txbuf.pb.h"

namespace txbuf::server {

class OpStats {
 public:
  // Op kinds are the Op oneof's field numbers (below kOps); statuses are
  // the Status enum's values (kStatuses distinct ones at most).
  static constexpr int kOps = 32;
  static constexpr int kStatuses = 48;

  // Counts one op of kind `op` (rpc::Op::op_case()) that ended in `status`.
  //
  // Example:
  //   stats.Count(op.op_case(), rpc::STATUS_OK);
  void Count(int op, rpc::Status status) {
    const int slot = status == rpc::STATUS_OK ? 0 : ErrorSlot(status);
    if (static_cast<unsigned>(op) >= kOps || slot < 0) return;
    counts_[op * kStatuses + slot].fetch_add(1, std::memory_order_relaxed);
  }
  void AddReadBytes(uint64_t n) {
    read_bytes_.fetch_add(n, std::memory_order_relaxed);
  }
  void AddWriteBytes(uint64_t n) {
    write_bytes_.fetch_add(n, std::memory_order_relaxed);
  }

  // Adds the non-zero counts to `r->ops` (op named as in the protocol:
  // "read", "lookup", ...) and sets r->read_bytes, r->write_bytes.
  void Fill(rpc::StatsResult* r) const;

 private:
  // The slot of a status other than OK (OK's is 0), or -1.
  static int ErrorSlot(rpc::Status status);

  std::array<std::atomic<uint64_t>, kOps * kStatuses> counts_{};
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> write_bytes_{0};
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_STATS_OP_STATS_H_
