#include "bench/report/checks.h"

#include <string>
#include <vector>

#include "bench/report/test_report.h"
#include "gtest/gtest.h"

namespace txbuf::bench {
namespace {

using testing::CellOf;
using testing::MakeTestReport;
using testing::SetOps;

const TargetCheck* Find(const std::vector<TargetCheck>& checks,
                        const std::string& workload, const std::string& goal) {
  for (const TargetCheck& c : checks) {
    if (c.workload == workload && c.goal == goal) return &c;
  }
  return nullptr;
}

TEST(ChecksTest, BestPeerExcludesRawAndEngines) {
  CompareReport r = MakeTestReport({"copy", "auto", "raw", "grpc", "nfs"});
  const int w = r.WorkloadIndex("read-4k-rand-c64");
  SetOps(r, "read-4k-rand-c64", "raw", 100000);
  SetOps(r, "read-4k-rand-c64", "copy", 90000);
  SetOps(r, "read-4k-rand-c64", "grpc", 20000);
  SetOps(r, "read-4k-rand-c64", "nfs", 30000);
  EXPECT_EQ(BestPeerByOps(r, w), r.TargetIndex("nfs"));
  CellOf(r, "read-4k-rand-c64", "grpc").median.latency.p99_us = 500;
  CellOf(r, "read-4k-rand-c64", "nfs").median.latency.p99_us = 900;
  EXPECT_EQ(BestPeerByP99(r, w), r.TargetIndex("grpc"));
  EXPECT_EQ(RawIndex(r), r.TargetIndex("raw"));
  EXPECT_DOUBLE_EQ(OpsRatio(r, w, r.TargetIndex("copy"), RawIndex(r)), 0.9);
}

TEST(ChecksTest, PassMissAndNumbers) {
  CompareReport r = MakeTestReport({"copy", "uring_zc", "auto", "raw", "grpc"});
  const std::string id = "read-4k-rand-c64";
  SetOps(r, id, "raw", 100000);
  SetOps(r, id, "grpc", 20000);
  SetOps(r, id, "auto", 80000);  // 4x grpc, 0.8x raw
  SetOps(r, id, "copy", 82000);  // auto is 0.976x: within 5%
  SetOps(r, id, "uring_zc", 50000);
  CellOf(r, id, "auto").median.latency.p99_us = 600;
  CellOf(r, id, "grpc").median.latency.p99_us = 1000;  // 0.6x: MISS
  std::vector<TargetCheck> checks = EvaluateTargets(r);

  const TargetCheck* c = Find(checks, id, "ops/s >= 2x best peer");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->outcome, CheckOutcome::kPass);
  EXPECT_EQ(c->detail, "auto 80000 ops/s vs best peer grpc 20000 ops/s: 4.00x");
  c = Find(checks, id, "p99 <= 0.5x best peer");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->outcome, CheckOutcome::kMiss);
  c = Find(checks, id, "ops/s >= 0.75x raw floor");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->outcome, CheckOutcome::kPass);
  c = Find(checks, id, "auto ops/s >= 0.95x best fixed engine");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->outcome, CheckOutcome::kPass);
  EXPECT_NE(c->detail.find("copy"), std::string::npos);

  SetOps(r, id, "copy", 90000);  // auto now 0.89x
  checks = EvaluateTargets(r);
  c = Find(checks, id, "auto ops/s >= 0.95x best fixed engine");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->outcome, CheckOutcome::kMiss);
}

TEST(ChecksTest, EveryIssueTargetIsChecked) {
  CompareReport r = MakeTestReport({"copy", "auto", "raw", "grpc"});
  std::vector<TargetCheck> checks = EvaluateTargets(r);
  for (const auto& [w, goal] : std::vector<std::pair<std::string, std::string>>{
           {"read-4k-rand-c64", "ops/s >= 2x best peer"},
           {"read-4k-rand-c64", "p99 <= 0.5x best peer"},
           {"read-4k-rand-c64", "ops/s >= 0.75x raw floor"},
           {"read-1m-seq-c1", "MiB/s >= 0.9x raw floor"},
           {"read-1m-seq-c1", "MiB/s >= 1.3x best peer"},
           {"read-1m-seq-c8", "MiB/s >= 0.9x raw floor"},
           {"read-1m-seq-c8", "MiB/s >= 1.3x best peer"},
           {"write-4k-rand-c16", "ops/s >= 2x best peer"},
           {"write-1m-seq-c4", "ops/s >= 2x best peer"},
           {"read-4k-rand-c1", "server CPU/op <= 0.5x best peer"},
           {"read-4k-rand-c64", "server CPU/op <= 0.5x best peer"},
       }) {
    const TargetCheck* c = Find(checks, w, goal);
    ASSERT_NE(c, nullptr) << w << ": " << goal;
    EXPECT_NE(c->outcome, CheckOutcome::kNotApplicable) << w << ": " << goal;
  }
  for (const Workload& w : r.workloads) {
    EXPECT_NE(Find(checks, w.Id(), "auto ops/s >= 0.95x best fixed engine"),
              nullptr);
  }
}

TEST(ChecksTest, MissingPeersAreNotApplicable) {
  CompareReport r = MakeTestReport({"copy", "auto"});
  for (const TargetCheck& c : EvaluateTargets(r)) {
    if (c.goal.find("engine") != std::string::npos) {
      EXPECT_NE(c.outcome, CheckOutcome::kNotApplicable) << c.goal;
    } else {
      EXPECT_EQ(c.outcome, CheckOutcome::kNotApplicable) << c.goal;
      EXPECT_NE(c.detail.find("did not run"), std::string::npos) << c.detail;
    }
  }
  // Without auto, the best engine is the subject and says so.
  CompareReport no_auto = MakeTestReport({"copy", "uring_zc", "raw", "grpc"});
  SetOps(no_auto, "read-4k-rand-c64", "uring_zc", 5000);
  const std::vector<TargetCheck> checks = EvaluateTargets(no_auto);
  const TargetCheck* c =
      Find(checks, "read-4k-rand-c64", "ops/s >= 2x best peer");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->detail.rfind("uring_zc", 0), 0u) << c->detail;
}

TEST(ChecksTest, FigureProblems) {
  CompareReport r = MakeTestReport({"copy", "raw"});
  EXPECT_TRUE(ReportProblems(r).empty());
  Cell& c = CellOf(r, "write-1m-seq-c4", "copy");
  c.figures[0].has_client_memory = false;
  c.figures[0].errors = 2;
  std::vector<std::string> p = ReportProblems(r);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], "write-1m-seq-c4 copy: 2 errors");
  EXPECT_EQ(p[1], "write-1m-seq-c4 copy: client memory recovery missing");
  Cell& raw = CellOf(r, "read-1m-seq-c1", "raw");
  raw.error = "connection refused";
  raw.figures[0].server_cpu_us_op = kNa;
  p = ReportProblems(r);
  EXPECT_EQ(p.size(), 4u);
}

}  // namespace
}  // namespace txbuf::bench
