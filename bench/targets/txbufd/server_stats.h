// server_stats.h: turning two STATS snapshots of txbufd (taken at the start
// and at the end of a measured interval) into the interval's memory-recovery
// figures.
//
// STATS returns the destructor-latency histogram's non-empty buckets
// (lo, hi, count) with the binning of common/histogram.h, so the interval's
// histogram is the bucket-wise difference; it is rebuilt as a LogHistogram
// by recording each bucket's midpoint, so its percentiles are those the
// server would report for the interval (within ~3%). Counters (zero-copy and
// copied completions, copy-on-write copies, budget waits) are subtracted.
// The pinned-bytes maximum of the interval is the server's high-water mark
// if that rose during the interval (then it was reached inside it), else
// the largest sample taken in between.
//
// Thread-safety: pure functions.
//
// Example:
//   ServerMemory m = ServerMemoryDelta(before, after, samples);
#ifndef TXBUF_BENCH_TARGETS_TXBUFD_SERVER_STATS_H_
#define TXBUF_BENCH_TARGETS_TXBUFD_SERVER_STATS_H_

#include <vector>

#include "bench/load/run_result.h"
#include "common/histogram.h"
#include "proto/txbuf.pb.h"

namespace txbuf::bench {

// The histogram of the samples in `after`'s buckets but not in `before`'s.
// Buckets that shrank (a different server) count as empty.
LogHistogram HistogramDelta(
    const google::protobuf::RepeatedPtrField<rpc::HistogramBucket>& before,
    const google::protobuf::RepeatedPtrField<rpc::HistogramBucket>& after);

// The interval's figures; `samples` are the pinned bytes seen in between
// (also kept in the result for the pinned-over-time chart).
ServerMemory ServerMemoryDelta(const rpc::StatsResult& before,
                               const rpc::StatsResult& after,
                               std::vector<PinnedSample> samples);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_TXBUFD_SERVER_STATS_H_
