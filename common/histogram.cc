#include "common/histogram.h"

#include <bit>
#include <cmath>

namespace txbuf {

size_t LogHistogram::BucketOf(uint64_t v) {
  if (v < 2 * kSub) return static_cast<size_t>(v);
  int e = 63 - std::countl_zero(v);  // >= kSubBits + 1
  int shift = e - kSubBits;
  uint64_t mantissa = (v >> shift) & (kSub - 1);
  return static_cast<size_t>(2 * kSub + (e - kSubBits - 1) * kSub + mantissa);
}

uint64_t LogHistogram::BucketLow(size_t idx) {
  if (idx < 2 * kSub) return idx;
  size_t k = idx - 2 * kSub;
  int e = static_cast<int>(k / kSub) + kSubBits + 1;
  uint64_t mantissa = k % kSub;
  return (kSub + mantissa) << (e - kSubBits);
}

uint64_t LogHistogram::BucketHigh(size_t idx) {
  if (idx + 1 >= kBuckets) return UINT64_MAX;
  return BucketLow(idx + 1);
}

void LogHistogram::Record(uint64_t v, uint64_t times) {
  if (times == 0) return;
  buckets_[BucketOf(v)].fetch_add(times, std::memory_order_relaxed);
  count_.fetch_add(times, std::memory_order_relaxed);
  sum_.fetch_add(v * times, std::memory_order_relaxed);
  uint64_t m = min_.load(std::memory_order_relaxed);
  while (v < m &&
         !min_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
  }
  m = max_.load(std::memory_order_relaxed);
  while (v > m &&
         !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
  }
}

void LogHistogram::Merge(const LogHistogram& o) {
  for (size_t i = 0; i < kBuckets; ++i) {
    uint64_t c = o.buckets_[i].load(std::memory_order_relaxed);
    if (c != 0) buckets_[i].fetch_add(c, std::memory_order_relaxed);
  }
  count_.fetch_add(o.count_.load(), std::memory_order_relaxed);
  sum_.fetch_add(o.sum_.load(), std::memory_order_relaxed);
  uint64_t v = o.min_.load();
  uint64_t m = min_.load();
  while (v < m && !min_.compare_exchange_weak(m, v)) {
  }
  v = o.max_.load();
  m = max_.load();
  while (v > m && !max_.compare_exchange_weak(m, v)) {
  }
}

void LogHistogram::Subtract(const LogHistogram& earlier) {
  for (size_t i = 0; i < kBuckets; ++i) {
    uint64_t c = earlier.buckets_[i].load(std::memory_order_relaxed);
    if (c != 0) buckets_[i].fetch_sub(c, std::memory_order_relaxed);
  }
  count_.fetch_sub(earlier.count_.load(), std::memory_order_relaxed);
  sum_.fetch_sub(earlier.sum_.load(), std::memory_order_relaxed);
}

void LogHistogram::Reset() {
  for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  count_.store(0);
  sum_.store(0);
  min_.store(UINT64_MAX);
  max_.store(0);
}

uint64_t LogHistogram::Percentile(double q) const {
  uint64_t n = count();
  if (n == 0) return 0;
  if (q <= 0) return min_.load();
  if (q >= 1) return max_.load();
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(n)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      uint64_t lo = BucketLow(i);
      uint64_t hi = BucketHigh(i);
      uint64_t mid = hi - lo <= 1 ? lo : lo + (hi - lo) / 2;
      uint64_t mn = min_.load(), mx = max_.load();
      if (mid < mn) mid = mn;
      if (mid > mx) mid = mx;
      return mid;
    }
  }
  return max_.load();
}

HistogramSummary LogHistogram::Summary() const {
  HistogramSummary s;
  s.count = count();
  if (s.count == 0) return s;
  s.min = min_.load();
  s.max = max_.load();
  s.mean = static_cast<double>(sum_.load()) / static_cast<double>(s.count);
  s.p50 = Percentile(0.50);
  s.p90 = Percentile(0.90);
  s.p99 = Percentile(0.99);
  s.p999 = Percentile(0.999);
  return s;
}

std::vector<LogHistogram::Bucket> LogHistogram::Buckets() const {
  std::vector<Bucket> out;
  for (size_t i = 0; i < kBuckets; ++i) {
    uint64_t c = buckets_[i].load(std::memory_order_relaxed);
    if (c != 0) out.push_back({BucketLow(i), BucketHigh(i), c});
  }
  return out;
}

}  // namespace txbuf
