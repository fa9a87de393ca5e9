#include "bench/report/figures.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace txbuf::bench {
namespace {

// The nearest-rank percentile of a sorted array: the ceil(q * n)-th
// smallest value, the definition LogHistogram::Percentile approximates.
uint64_t SortedPercentile(const std::vector<uint64_t>& sorted, double q) {
  auto rank =
      static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

void ExpectClose(double got, double want, const char* what) {
  // A bucket is 1/32 of its power of two wide; its midpoint is within
  // 1/64 of any value in it (plus the value 0.5 rounding of tiny values).
  EXPECT_NEAR(got, want, want / 32 + 1) << what;
}

class PercentileTest : public ::testing::TestWithParam<int> {};

TEST_P(PercentileTest, HistogramPercentilesMatchSortedReference) {
  std::mt19937_64 rng(static_cast<uint64_t>(GetParam()));
  std::vector<uint64_t> v;
  // Latency-like: log-normal around 50 us with a long tail, in ns.
  std::lognormal_distribution<double> dist(std::log(50000.0), 1.0);
  const int n = 1000 + GetParam() * 7919;
  for (int i = 0; i < n; ++i) v.push_back(static_cast<uint64_t>(dist(rng)));
  LogHistogram h;
  for (uint64_t x : v) h.Record(x);
  std::sort(v.begin(), v.end());

  LatencyFigures f = LatencyOf(h);
  EXPECT_EQ(f.count, v.size());
  ExpectClose(f.p50_us * 1e3, static_cast<double>(SortedPercentile(v, 0.5)),
              "p50");
  ExpectClose(f.p90_us * 1e3, static_cast<double>(SortedPercentile(v, 0.9)),
              "p90");
  ExpectClose(f.p99_us * 1e3, static_cast<double>(SortedPercentile(v, 0.99)),
              "p99");
  ExpectClose(f.p999_us * 1e3, static_cast<double>(SortedPercentile(v, 0.999)),
              "p999");
  EXPECT_DOUBLE_EQ(f.max_us * 1e3, static_cast<double>(v.back()));
  double sum = 0;
  for (uint64_t x : v) sum += static_cast<double>(x);
  EXPECT_NEAR(f.mean_us * 1e3, sum / static_cast<double>(v.size()), 1);
}

INSTANTIATE_TEST_SUITE_P(Seeds, PercentileTest, ::testing::Range(0, 8));

TEST(FiguresTest, SmallValuesAreExact) {
  LogHistogram h;
  for (uint64_t x = 1; x <= 50; ++x) h.Record(x * 1000);
  LatencyFigures f = LatencyOf(h);
  EXPECT_NEAR(f.p50_us, 25, 25.0 / 32);
  EXPECT_DOUBLE_EQ(f.max_us, 50);
}

TEST(FiguresTest, EmptyHistogramIsNotApplicable) {
  LatencyFigures f = LatencyOf(LogHistogram());
  EXPECT_EQ(f.count, 0u);
  EXPECT_TRUE(std::isnan(f.p50_us));
  EXPECT_TRUE(std::isnan(f.max_us));
}

TEST(FiguresTest, ComputeFigures) {
  RunResult r;
  r.ops = 2000;
  r.bytes = 2000 * 4096;
  r.elapsed_s = 2;
  r.client_cpu_us = 20000;
  r.server_cpu_us = 10000;
  r.errors = 1;
  r.latency_ns.Record(100000, 2000);
  Figures f = ComputeFigures(r);
  EXPECT_DOUBLE_EQ(f.ops_s, 1000);
  EXPECT_DOUBLE_EQ(f.mib_s, 1000 * 4096.0 / (1 << 20));
  EXPECT_DOUBLE_EQ(f.client_cpu_us_op, 10);
  EXPECT_DOUBLE_EQ(f.server_cpu_us_op, 5);
  EXPECT_EQ(f.total_errors(), 1u);
  EXPECT_FALSE(f.has_server_memory);
  EXPECT_TRUE(std::isnan(f.destructor.p99_us));
  EXPECT_TRUE(std::isnan(f.pinned_max_bytes));

  r.server_cpu_us = -1;  // unknown server
  ServerMemory m;
  m.destructor_latency_ns.Record(40000, 10);
  m.pinned_max = 8192;
  m.copied_completions = 10;
  r.server = m;
  f = ComputeFigures(r);
  EXPECT_TRUE(std::isnan(f.server_cpu_us_op));
  EXPECT_TRUE(f.has_server_memory);
  EXPECT_NEAR(f.destructor.p99_us, 40, 40.0 / 32);
  EXPECT_DOUBLE_EQ(f.pinned_max_bytes, 8192);
  EXPECT_DOUBLE_EQ(f.copied_completions, 10);
}

TEST(MedianTest, OddEvenAndNaN) {
  EXPECT_DOUBLE_EQ(Median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(Median({kNa, 5, kNa}), 5);
  EXPECT_TRUE(std::isnan(Median({})));
  EXPECT_TRUE(std::isnan(Median({kNa})));
}

TEST(MedianTest, MedianFiguresPerFigureAndErrorsSummed) {
  std::vector<Figures> runs(3);
  runs[0].ops_s = 100;
  runs[1].ops_s = 300;
  runs[2].ops_s = 200;
  runs[0].latency.p99_us = 9;
  runs[1].latency.p99_us = 1;
  runs[2].latency.p99_us = 5;
  runs[0].errors = 1;
  runs[2].verify_failures = 2;
  runs[1].server_cpu_us_op = 7;  // NaN in the others
  Figures m = MedianFigures(runs);
  EXPECT_DOUBLE_EQ(m.ops_s, 200);
  EXPECT_DOUBLE_EQ(m.latency.p99_us, 5);
  EXPECT_EQ(m.errors, 1u);
  EXPECT_EQ(m.verify_failures, 2u);
  EXPECT_DOUBLE_EQ(m.server_cpu_us_op, 7);
  EXPECT_TRUE(std::isnan(m.destructor.p99_us));
  EXPECT_EQ(MedianRunIndex(runs), 2);
  EXPECT_EQ(MedianRunIndex({}), -1);
}

}  // namespace
}  // namespace txbuf::bench
