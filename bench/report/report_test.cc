#include <string>
#include <vector>

#include "bench/report/checks.h"
#include "bench/report/format.h"
#include "bench/report/report_html.h"
#include "bench/report/report_json.h"
#include "bench/report/report_text.h"
#include "bench/report/test_report.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace txbuf::bench {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;
using testing::CellOf;
using testing::MakeTestReport;
using testing::SetOps;

Struct ParseJson(const std::string& text) {
  Struct s;
  auto status = google::protobuf::util::JsonStringToMessage(text, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text.substr(0, 500);
  return s;
}

const Value& Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  EXPECT_NE(it, s.fields().end()) << key;
  static const Value* null_value = new Value();
  return it == s.fields().end() ? *null_value : it->second;
}

TEST(FormatTest, Numbers) {
  EXPECT_EQ(FormatNumber(kNa), "-");
  EXPECT_EQ(FormatNumber(61234.4), "61234");
  EXPECT_EQ(FormatNumber(123.4), "123");
  EXPECT_EQ(FormatNumber(12.34), "12.3");
  EXPECT_EQ(FormatNumber(1.234), "1.23");
  EXPECT_EQ(FormatNumber(0.1234), "0.123");
  EXPECT_EQ(FormatNumber(0), "0");
  EXPECT_EQ(FormatByteCount(0), "0");
  EXPECT_EQ(FormatByteCount(512), "512 B");
  EXPECT_EQ(FormatByteCount(1536), "1.5 KiB");
  EXPECT_EQ(FormatByteCount(3 << 20), "3.0 MiB");
  EXPECT_EQ(FormatRatio(2), "2.00x");
  EXPECT_EQ(FormatRatio(kNa), "-");
}

// Texts from outside (a path, an error, a note, the host name) may hold
// control characters and bytes that are not UTF-8: the report stays valid
// JSON (each bad byte U+FFFD) and nothing throws.
TEST(ReportJsonTest, ControlCharactersAndInvalidUtf8StayValidJson) {
  CompareReport r = MakeTestReport({"copy", "raw"});
  r.host = std::string("host\xff", 5);
  r.notes.push_back(std::string("a\x01note\n\"quoted\"\xc3(", 17));
  r.workloads[0].file = std::string("/tmp/\xfe\tf", 8);
  r.cells[1][1].error = std::string("failed: \xe2\x82", 10);
  std::string text;
  ASSERT_NO_THROW(text = CompareJson(r, EvaluateTargets(r)));
  EXPECT_EQ(text.find('\n'), text.size() - 1);  // one line
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << text.substr(0, 300);
  EXPECT_EQ(j["environment"]["host"], "host\xef\xbf\xbd");
  EXPECT_EQ(j["notes"][0], "a\x01note\n\"quoted\"\xef\xbf\xbd(");
  EXPECT_EQ(j["workloads"][0]["workload"]["file"], "/tmp/\xef\xbf\xbd\tf");
  EXPECT_EQ(j["workloads"][1]["results"]["raw"]["error"],
            "failed: \xef\xbf\xbd");  // truncated: one U+FFFD
  ParseJson(text);                    // protobuf's JSON parser agrees
}

// A figure that does not apply is null, integers stay exact.
TEST(ReportJsonTest, NotApplicableIsNullAndCountsAreExact) {
  Figures f;
  f.ops = 18446744073709551615ull;
  f.ops_s = kNa;
  const Json j = FiguresJson(f);
  EXPECT_EQ(j["ops"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_TRUE(j["ops_s"].is_null());
  EXPECT_TRUE(j["server_memory"].is_null());
  EXPECT_EQ(j.begin().key(), "ops");  // the order fields were written in
}

TEST(ReportTextTest, TablesRatiosAndChecks) {
  CompareReport r = MakeTestReport({"copy", "auto", "raw", "grpc"});
  const std::string id = "read-4k-rand-c64";
  SetOps(r, id, "raw", 100000);
  SetOps(r, id, "grpc", 25000);
  SetOps(r, id, "auto", 60000);
  r.notes.push_back("peer nfs left out: not built");
  const std::string text =
      CompareText(r, EvaluateTargets(r), TextStyle::kPlain);
  EXPECT_NE(text.find("read-4k-rand-c64: read 4 KiB rand, c64 over 4 "
                      "connections"),
            std::string::npos);
  EXPECT_NE(text.find("x grpc"), std::string::npos);
  EXPECT_NE(text.find("2.40x  0.60x"), std::string::npos) << text;
  EXPECT_NE(text.find("note: peer nfs left out"), std::string::npos);
  EXPECT_NE(text.find("PASS  read-4k-rand-c64: ops/s >= 2x best peer"),
            std::string::npos);
  EXPECT_NE(text.find("MISS  read-4k-rand-c64: ops/s >= 0.75x raw floor"),
            std::string::npos);
  EXPECT_NE(text.find("Targets: "), std::string::npos);
  // Every workload has a table with every target.
  for (const Workload& w : r.workloads) {
    EXPECT_NE(text.find(w.Id() + ": "), std::string::npos) << w.Id();
  }

  const std::string md =
      CompareText(r, EvaluateTargets(r), TextStyle::kMarkdown);
  EXPECT_NE(md.find("| target | ops/s |"), std::string::npos);
  EXPECT_NE(md.find("|---|---:|"), std::string::npos);
  EXPECT_NE(md.find("- **PASS** read-4k-rand-c64"), std::string::npos);
}

TEST(ReportTextTest, FailedAndSkippedCells) {
  CompareReport r = MakeTestReport({"auto", "raw"});
  Cell& c = CellOf(r, "read-1m-seq-c1", "raw");
  c.runs.clear();
  c.figures.clear();
  c.error = "connection refused";
  const std::string text =
      CompareText(r, EvaluateTargets(r), TextStyle::kPlain);
  EXPECT_NE(text.find("failed: connection refused"), std::string::npos);
}

TEST(ReportJsonTest, EveryFigureIsThere) {
  CompareReport r = MakeTestReport({"copy", "auto", "raw", "grpc"});
  const Struct root = ParseJson(CompareJson(r, EvaluateTargets(r)));
  EXPECT_EQ(Field(root, "mode").string_value(), "compare");
  EXPECT_EQ(Field(root, "targets").list_value().values_size(), 4);
  const auto& workloads = Field(root, "workloads").list_value();
  ASSERT_EQ(workloads.values_size(), 6);
  for (const Value& w : workloads.values()) {
    const Struct& results = Field(w.struct_value(), "results").struct_value();
    ASSERT_EQ(results.fields_size(), 4);
    EXPECT_EQ(Field(w.struct_value(), "best_peer").string_value(), "grpc");
    for (const auto& [name, res] : results.fields()) {
      const Struct& m = Field(res.struct_value(), "median").struct_value();
      for (const char* k : {"ops_s", "mib_s", "server_cpu_us_per_op",
                            "client_cpu_us_per_op", "errors"}) {
        EXPECT_EQ(Field(m, k).kind_case(), Value::kNumberValue) << name << k;
      }
      const Struct& lat = Field(m, "latency_us").struct_value();
      for (const char* k : {"p50", "p90", "p99", "p999", "max"}) {
        EXPECT_EQ(Field(lat, k).kind_case(), Value::kNumberValue) << k;
      }
      const bool engine = name == "copy" || name == "auto";
      EXPECT_EQ(Field(m, "server_memory").kind_case(),
                engine ? Value::kStructValue : Value::kNullValue)
          << name;
      EXPECT_EQ(Field(res.struct_value(), "ratio_to_raw").kind_case(),
                Value::kNumberValue);
      EXPECT_GT(Field(res.struct_value(), "latency_buckets_ns")
                    .list_value()
                    .values_size(),
                0);
      EXPECT_EQ(Field(res.struct_value(), "runs").list_value().values_size(),
                1);
    }
  }
  EXPECT_GT(Field(root, "checks").list_value().values_size(), 10);
}

TEST(ReportJsonTest, SingleRun) {
  CompareReport r = MakeTestReport({"auto"});
  const Cell& c = CellOf(r, "write-4k-rand-c16", "auto");
  const Struct root = ParseJson(
      SingleRunJson(r.workloads[4], "127.0.0.1:7000", c.figures[0], c.runs[0]));
  EXPECT_EQ(Field(root, "mode").string_value(), "single");
  const Struct& res = Field(root, "result").struct_value();
  EXPECT_EQ(Field(res, "client_memory").kind_case(), Value::kStructValue);
  EXPECT_EQ(Field(root, "pinned_samples").list_value().values_size(), 3);
  EXPECT_EQ(Field(Field(root, "workload").struct_value(), "id").string_value(),
            "write-4k-rand-c16");
}

// A mixed run: the reads and the writes each have their figures, over the
// same interval as the totals.
RunResult MixedRun() {
  RunResult run;
  run.ops = 300;
  run.bytes = 300 * 4096;
  run.elapsed_s = 2;
  for (int i = 0; i < 300; ++i) run.latency_ns.Record(50000);
  OpCounts reads, writes;
  reads.ops = 200;
  reads.bytes = 200 * 4096;
  for (int i = 0; i < 200; ++i) reads.latency_ns.Record(40000);
  writes.ops = 100;
  writes.bytes = 100 * 4096;
  writes.errors = 1;
  for (int i = 0; i < 100; ++i) writes.latency_ns.Record(70000);
  run.reads = reads;
  run.writes = writes;
  return run;
}

TEST(ReportJsonTest, MixedRunHasReadsAndWrites) {
  Workload w;
  w.kind = WorkloadKind::kMixed;
  const RunResult run = MixedRun();
  const Figures f = ComputeFigures(run);
  const Struct res =
      Field(ParseJson(SingleRunJson(w, "127.0.0.1:7000", f, run)), "result")
          .struct_value();
  EXPECT_EQ(Field(res, "ops").number_value(), 300);  // unchanged
  const Struct& reads = Field(res, "reads").struct_value();
  const Struct& writes = Field(res, "writes").struct_value();
  EXPECT_EQ(Field(reads, "ops").number_value(), 200);
  EXPECT_DOUBLE_EQ(Field(reads, "ops_s").number_value(), 100);
  EXPECT_DOUBLE_EQ(Field(reads, "mib_s").number_value(),
                   100 * 4096.0 / (1 << 20));
  EXPECT_EQ(Field(writes, "ops").number_value(), 100);
  EXPECT_EQ(Field(writes, "errors").number_value(), 1);
  EXPECT_NEAR(
      Field(Field(reads, "latency_us").struct_value(), "p50").number_value(),
      40, 40 * 0.03);
  EXPECT_NEAR(
      Field(Field(writes, "latency_us").struct_value(), "p50").number_value(),
      70, 70 * 0.03);

  const std::string text = SingleRunText(w, "127.0.0.1:7000", f);
  EXPECT_NE(text.find("reads: ops/s 100 "), std::string::npos) << text;
  EXPECT_NE(text.find("writes: ops/s 50 "), std::string::npos) << text;

  // The median of runs keeps the split.
  const Figures m = MedianFigures({f, f, f});
  EXPECT_TRUE(m.has_split);
  EXPECT_EQ(m.reads.ops, 200u);
  EXPECT_DOUBLE_EQ(m.writes.ops_s, 50);
  EXPECT_EQ(m.writes.errors, 3u);  // errors are summed
}

TEST(ReportJsonTest, OnlyMixedRunsHaveTheSplit) {
  CompareReport r = MakeTestReport({"auto"});
  const Cell& c = CellOf(r, "read-4k-rand-c64", "auto");
  const Struct res = Field(ParseJson(SingleRunJson(r.workloads[1], "h:1",
                                                   c.figures[0], c.runs[0])),
                           "result")
                         .struct_value();
  EXPECT_EQ(Field(res, "reads").kind_case(), Value::kNullValue);
  EXPECT_EQ(Field(res, "writes").kind_case(), Value::kNullValue);
  EXPECT_EQ(SingleRunText(r.workloads[1], "h:1", c.figures[0]).find("reads:"),
            std::string::npos);
}

TEST(ReportHtmlTest, SelfContained) {
  CompareReport r = MakeTestReport({"copy", "auto", "raw", "grpc"});
  const std::string html = CompareHtml(r, EvaluateTargets(r));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  // Three chart grids inline, no scripts, nothing fetched.
  int grids = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos;
       at = html.find("<svg", at + 1)) {
    ++grids;
  }
  EXPECT_EQ(grids, 3 * 7);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_NE(html.find("memory-recovery"), std::string::npos);
  EXPECT_NE(html.find("read-4k-rand-c64"), std::string::npos);
}

TEST(ReportTextTest, SingleRun) {
  CompareReport r = MakeTestReport({"auto"});
  const Cell& c = CellOf(r, "write-4k-rand-c16", "auto");
  const std::string text =
      SingleRunText(r.workloads[4], "127.0.0.1:7000", c.figures[0]);
  for (const char* s :
       {"ops/s 1000", "latency us: p50", "p999", "CPU us/op: server 10",
        "server memory recovery: destructor us", "pinned max 4.0 KiB",
        "client memory recovery (WRITE buffers)", "errors 0"}) {
    EXPECT_NE(text.find(s), std::string::npos) << s << "\n" << text;
  }
}

}  // namespace
}  // namespace txbuf::bench
