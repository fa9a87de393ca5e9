// op_stats.h: what the executor did, for STATS and the metrics endpoint:
// ops by kind and status, the bytes READ returned and WRITE took, and the
// request latency by op kind.
//
// Counting is a relaxed atomic add (an error also finds its status's slot
// in a table built once); recording a latency is a LogHistogram::Record
// (relaxed atomics, no lock, no allocation). Fill() reads the counters while
// ops go on, so a STATS result is not one instant's.
//
// The latency of an op is that of the request that ran it: from the
// request's frame arriving (taken from the receive buffer) to its reply
// handed to the send engine, the interval of ServerCounters::request_latency.
// The session records it, with the clock read it already takes for the
// request latency, once for each op the request ran (the failing one
// included, as Count() counts it), under that op's kind: a compound
// PUTFH + READ records its latency under "putfh" and under "read".
//
// Thread-safety: thread-safe.
#ifndef TXBUF_SERVER_STATS_OP_STATS_H_
#define TXBUF_SERVER_STATS_OP_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "common/histogram.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "proto/txbuf.pb.h"

namespace txbuf::server {

// Sets `l` to the summary of `h` and appends its non-empty buckets to
// `buckets` (for STATS).
void FillLatency(
    const LogHistogram& h, rpc::LatencySummary* l,
    google::protobuf::RepeatedPtrField<rpc::HistogramBucket>* buckets);

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
  // Records `ns`, the latency of a request that ran an op of kind `op`.
  //
  // Example:
  //   for (int i = 0; i < reply.results_size(); ++i)
  //     stats.RecordLatency(req.ops(i).op_case(), ns);
  void RecordLatency(int op, uint64_t ns) {
    if (static_cast<unsigned>(op) >= kOps) return;
    latency_[op].Record(ns);
  }
  // The latency histogram of op kind `op` (0 <= op < kOps).
  const LogHistogram& latency(int op) const { return latency_[op]; }
  void AddReadBytes(uint64_t n) {
    read_bytes_.fetch_add(n, std::memory_order_relaxed);
  }
  void AddWriteBytes(uint64_t n) {
    write_bytes_.fetch_add(n, std::memory_order_relaxed);
  }

  // Adds the non-zero counts to `r->ops` (op named as in the protocol:
  // "read", "lookup", ...), the non-empty latency histograms to
  // `r->op_latency`, and sets r->read_bytes, r->write_bytes.
  void Fill(rpc::StatsResult* r) const;

 private:
  // The slot of a status other than OK (OK's is 0), or -1.
  static int ErrorSlot(rpc::Status status);

  std::array<std::atomic<uint64_t>, kOps * kStatuses> counts_{};
  std::array<LogHistogram, kOps> latency_;
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> write_bytes_{0};
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_STATS_OP_STATS_H_
