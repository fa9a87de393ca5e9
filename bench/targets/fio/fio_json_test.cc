// fio_json_test.cc: ParseFioJson on a captured fio 3.33 json+ report
// (testdata/, trimmed: one randread job, 12 histogram bins) and on edge
// cases; FioCommand's job mapping.
//
// Thread-safety: single-threaded tests.
#include "bench/targets/fio/fio_json.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/targets/fio/fio_target.h"

namespace txbuf::bench {
namespace {

std::string Sample() {
  std::ifstream in(TXBUF_FIO_TESTDATA "/fio-randread-4k-jsonplus.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FioJsonTest, ParsesCapturedRandReadReport) {
  const std::string text = Sample();
  ASSERT_FALSE(text.empty());
  absl::StatusOr<RunResult> r = ParseFioJson(text, WorkloadKind::kRead);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ops, 25455u);
  EXPECT_EQ(r->bytes, 104263680u);
  EXPECT_DOUBLE_EQ(r->elapsed_s, 1.001);
  EXPECT_EQ(r->errors, 0u);
  EXPECT_EQ(r->server_cpu_us, -1);
  // usr 3.85 % + sys 22.15 % of 2000 ms of job run time.
  EXPECT_NEAR(r->client_cpu_us, 0.26 * 2000 * 1000, 1);
  // The 12 bins hold every op; the median bin is 64256 ns (3.5 %-wide
  // buckets: within 4 %).
  EXPECT_EQ(r->latency_ns.count(), 25455u);
  EXPECT_NEAR(static_cast<double>(r->latency_ns.Percentile(0.5)), 64256,
              64256 * 0.04);
  // 99.1 % of the ops are at or below the 317440 ns bin.
  EXPECT_NEAR(static_cast<double>(r->latency_ns.Percentile(0.99)), 317440,
              317440 * 0.04);
}

TEST(FioJsonTest, WriteSideOfAReadJobIsEmpty) {
  absl::StatusOr<RunResult> r = ParseFioJson(Sample(), WorkloadKind::kWrite);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ops, 0u);
  EXPECT_EQ(r->latency_ns.count(), 0u);
}

TEST(FioJsonTest, PercentilesStandInForMissingBins) {
  // Plain --output-format=json: percentiles only (keys sort as text).
  const char* text = R"({"jobs": [{"error": 5, "job_runtime": 1000,
      "usr_cpu": 1.0, "sys_cpu": 1.0,
      "write": {"total_ios": 100, "io_bytes": 104857600, "runtime": 2000,
        "clat_ns": {"percentile": {"10.000000": 1000, "50.000000": 5000,
                                   "100.000000": 9000, "90.000000": 8000}}}}]})";
  absl::StatusOr<RunResult> r = ParseFioJson(text, WorkloadKind::kWrite);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ops, 100u);
  EXPECT_DOUBLE_EQ(r->elapsed_s, 2.0);
  EXPECT_EQ(r->errors, 1u);
  EXPECT_EQ(r->latency_ns.count(), 100u);
  EXPECT_NEAR(static_cast<double>(r->latency_ns.Percentile(0.5)), 5000, 200);
}

TEST(FioJsonTest, RejectsWhatIsNotOneFioJob) {
  EXPECT_FALSE(ParseFioJson("fio: no such file", WorkloadKind::kRead).ok());
  EXPECT_FALSE(ParseFioJson("{\"jobs\": [", WorkloadKind::kRead).ok());
  EXPECT_FALSE(ParseFioJson("{\"jobs\": []}", WorkloadKind::kRead).ok());
  EXPECT_FALSE(
      ParseFioJson("{\"jobs\": [{\"read\": {}}]}", WorkloadKind::kRead).ok());
  EXPECT_FALSE(ParseFioJson(Sample(), WorkloadKind::kMixed).ok());
}

bool Has(const std::vector<std::string>& argv, const std::string& arg) {
  return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

TEST(FioCommandTest, MapsConcurrencyToJobsAndDurationToRuntime) {
  Workload w;
  w.kind = WorkloadKind::kRead;
  w.size = 4096;
  w.random = true;
  w.concurrency = 16;
  w.duration_s = 1.5;
  w.warmup_s = 0.3;
  w.file_size = uint64_t{64} << 20;
  std::vector<std::string> a = FioCommand("fio", w, "/m/f", true);
  EXPECT_EQ(a[0], "fio");
  EXPECT_TRUE(Has(a, "--rw=randread"));
  EXPECT_TRUE(Has(a, "--bs=4096"));
  EXPECT_TRUE(Has(a, "--numjobs=16"));
  EXPECT_TRUE(Has(a, "--direct=1"));
  EXPECT_TRUE(Has(a, "--runtime=1500ms"));
  EXPECT_TRUE(Has(a, "--ramp_time=300ms"));
  EXPECT_TRUE(Has(a, "--time_based"));
  EXPECT_TRUE(Has(a, "--size=67108864"));
  EXPECT_TRUE(Has(a, "--filename=/m/f"));

  w.kind = WorkloadKind::kWrite;
  w.size = 1 << 20;
  w.random = false;
  w.concurrency = 4;
  a = FioCommand("fio", w, "/m/f", false);
  EXPECT_TRUE(Has(a, "--rw=write"));
  EXPECT_TRUE(Has(a, "--direct=0"));
  // Four slices of 16 MiB, one per job.
  EXPECT_TRUE(Has(a, "--size=16777216"));
  EXPECT_TRUE(Has(a, "--offset_increment=16777216"));
}

}  // namespace
}  // namespace txbuf::bench
