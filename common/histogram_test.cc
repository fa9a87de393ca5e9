#include "common/histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace txbuf {
namespace {

// The nearest-rank percentile of a sorted array.
uint64_t Reference(const std::vector<uint64_t>& sorted, double q) {
  auto rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  if (rank == 0) rank = 1;
  return sorted[rank - 1];
}

void ExpectClose(uint64_t got, uint64_t want) {
  // One bucket is 1/32 of its power of two wide; the midpoint is within
  // 1/32 of any value in it.
  double tol = std::max(1.0, static_cast<double>(want) / 32.0);
  EXPECT_NEAR(static_cast<double>(got), static_cast<double>(want), tol)
      << "got " << got << " want " << want;
}

TEST(LogHistogramTest, BucketsCoverEveryValueOnce) {
  const uint64_t values[] = {0,
                             1,
                             63,
                             64,
                             65,
                             1000,
                             123456789,
                             (uint64_t{1} << 40) + 12345,
                             UINT64_MAX / 2,
                             UINT64_MAX};
  for (uint64_t v : values) {
    size_t b = LogHistogram::BucketOf(v);
    ASSERT_LT(b, LogHistogram::kBuckets);
    EXPECT_LE(LogHistogram::BucketLow(b), v);
    if (b + 1 < LogHistogram::kBuckets) {
      EXPECT_LT(v, LogHistogram::BucketHigh(b));
    }
  }
  for (size_t b = 1; b < LogHistogram::kBuckets; ++b) {
    EXPECT_EQ(LogHistogram::BucketHigh(b - 1), LogHistogram::BucketLow(b));
  }
}

class PercentileTest : public ::testing::TestWithParam<int> {};

TEST_P(PercentileTest, MatchesSortedArrayReference) {
  std::mt19937_64 rng(GetParam());
  std::vector<uint64_t> values;
  LogHistogram h;
  int n = 1 + GetParam() * 997;
  for (int i = 0; i < n; ++i) {
    uint64_t v;
    switch (GetParam() % 3) {
      case 0:  // uniform
        v = rng() % 1000000;
        break;
      case 1:  // log-normal-ish latencies
        v = static_cast<uint64_t>(
            std::exp(std::normal_distribution<double>(10, 2)(rng)));
        break;
      default:  // heavy tail
        v = (rng() % 100 == 0) ? 50000000 + rng() % 1000 : 70000 + rng() % 50;
    }
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  HistogramSummary s = h.Summary();
  EXPECT_EQ(s.count, values.size());
  EXPECT_EQ(s.min, values.front());
  EXPECT_EQ(s.max, values.back());
  ExpectClose(s.p50, Reference(values, 0.50));
  ExpectClose(s.p90, Reference(values, 0.90));
  ExpectClose(s.p99, Reference(values, 0.99));
  ExpectClose(s.p999, Reference(values, 0.999));
  for (double q : {0.01, 0.25, 0.75, 0.95}) {
    ExpectClose(h.Percentile(q), Reference(values, q));
  }
}

INSTANTIATE_TEST_SUITE_P(Distributions, PercentileTest,
                         ::testing::Range(1, 10));

TEST(LogHistogramTest, EmptyIsZero) {
  LogHistogram h;
  HistogramSummary s = h.Summary();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p99, 0u);
  EXPECT_EQ(s.max, 0u);
}

TEST(LogHistogramTest, MergeAndSubtract) {
  LogHistogram a, b;
  for (int i = 1; i <= 100; ++i) a.Record(i * 10);
  for (int i = 1; i <= 100; ++i) b.Record(i * 1000);
  LogHistogram before = a;
  a.Merge(b);
  EXPECT_EQ(a.count(), 200u);
  EXPECT_EQ(a.Summary().max, 100000u);
  a.Subtract(before);  // leaves b's samples
  EXPECT_EQ(a.count(), 100u);
  ExpectClose(a.Percentile(0.5), 50000);
}

TEST(LogHistogramTest, ConcurrentRecordsAreAllCounted) {
  LogHistogram h;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&h, t] {
      for (int i = 0; i < 100000; ++i) h.Record(t * 1000 + i % 1000);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(h.count(), 400000u);
  uint64_t sum = 0;
  for (const auto& b : h.Buckets()) sum += b.count;
  EXPECT_EQ(sum, 400000u);
}

}  // namespace
}  // namespace txbuf
