// histogram.h: a log-bucketed histogram of non-negative integers (latencies).
//
// 32 sub-buckets per power of two: a reported percentile is within 1/32
// (about 3%) of the true value; min and max are exact. Recording is one
// relaxed atomic add, so several threads may record into one histogram.
//
// Thread-safety: thread-safe.
//
// Example:
//   txbuf::LogHistogram h;
//   h.Record(1500);  // e.g. nanoseconds
//   txbuf::HistogramSummary s = h.Summary();
//   printf("p99 %llu ns\n", s.p99);
#ifndef TXBUF_COMMON_HISTOGRAM_H_
#define TXBUF_COMMON_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace txbuf {

struct HistogramSummary {
  uint64_t count = 0;
  uint64_t min = 0;
  uint64_t max = 0;
  double mean = 0;
  uint64_t p50 = 0;
  uint64_t p90 = 0;
  uint64_t p99 = 0;
  uint64_t p999 = 0;
};

class LogHistogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // 32
  static constexpr size_t kBuckets = 2 * kSub + (63 - kSubBits) * kSub;

  LogHistogram() = default;
  LogHistogram(const LogHistogram& o) { Merge(o); }
  LogHistogram& operator=(const LogHistogram& o) {
    if (this != &o) {
      Reset();
      Merge(o);
    }
    return *this;
  }

  void Record(uint64_t v, uint64_t times = 1);
  // Adds every sample of `o`.
  void Merge(const LogHistogram& o);
  // Removes every sample of `earlier` (a snapshot taken before), giving the
  // samples recorded in between. Min/max stay those of this histogram.
  void Subtract(const LogHistogram& earlier);
  void Reset();

  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // The value at quantile q in [0, 1]: the midpoint of the bucket holding
  // the ceil(q * count)-th smallest sample, clamped to [min, max].
  uint64_t Percentile(double q) const;
  HistogramSummary Summary() const;

  // Non-empty buckets as (lower bound, upper bound exclusive, count).
  struct Bucket {
    uint64_t lo, hi, count;
  };
  std::vector<Bucket> Buckets() const;

  static size_t BucketOf(uint64_t v);
  static uint64_t BucketLow(size_t idx);
  static uint64_t BucketHigh(size_t idx);  // exclusive

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> min_{UINT64_MAX};
  std::atomic<uint64_t> max_{0};
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_HISTOGRAM_H_
