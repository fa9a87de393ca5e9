// The short end-to-end run of txbuf-bench: compare mode against one txbufd
// engine (copy) and the raw peer, 1 s per workload; checks that the run
// succeeds (--check: no errors, no verify failures, no missing figure) and
// that the JSON carries every figure of every workload and target.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace txbuf::bench {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const Value& Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  EXPECT_NE(it, s.fields().end()) << "missing " << key;
  static const Value* null_value = new Value();
  return it == s.fields().end() ? *null_value : it->second;
}

void ExpectNumber(const Struct& s, const std::string& key,
                  const std::string& where) {
  EXPECT_EQ(Field(s, key).kind_case(), Value::kNumberValue)
      << where << ": " << key << " is not a number";
}

TEST(TxbufBenchE2eTest, CompareOneEngineAndRawPeer) {
  char json_path[] = "/tmp/txbuf-bench-e2e-XXXXXX";
  int fd = mkstemp(json_path);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string cmd =
      absl::StrCat(TXBUF_BENCH_PATH, " --compare --engines copy --peer-set raw",
                   " --duration 1 --warmup 0.2 --repeat 1 --file-size 32M",
                   " --txbufd ", TXBUF_TXBUFD_PATH, " --json ", json_path,
                   " --check --no-progress > /dev/null");
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc)) << cmd;
  ASSERT_EQ(WEXITSTATUS(rc), 0) << cmd;

  std::ifstream in(json_path);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(json_path);
  Struct root;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ss.str(), &root).ok())
      << ss.str().substr(0, 300);
  EXPECT_EQ(Field(root, "notes").list_value().values_size(), 0);
  const auto& workloads = Field(root, "workloads").list_value();
  ASSERT_EQ(workloads.values_size(), 6);
  for (const Value& wv : workloads.values()) {
    const Struct& w = wv.struct_value();
    const Struct& desc = Field(w, "workload").struct_value();
    const std::string id = Field(desc, "id").string_value();
    const bool writes = Field(desc, "kind").string_value() == "write";
    const Struct& results = Field(w, "results").struct_value();
    for (const char* target : {"copy", "raw"}) {
      const std::string where = absl::StrCat(id, " ", target);
      const Struct& res = Field(results, target).struct_value();
      EXPECT_EQ(Field(res, "error").kind_case(), Value::kNullValue) << where;
      const Struct& m = Field(res, "median").struct_value();
      for (const char* k :
           {"ops_s", "mib_s", "server_cpu_us_per_op", "client_cpu_us_per_op"}) {
        ExpectNumber(m, k, where);
      }
      EXPECT_GT(Field(m, "ops").number_value(), 0) << where;
      EXPECT_EQ(Field(m, "errors").number_value(), 0) << where;
      EXPECT_EQ(Field(m, "verify_failures").number_value(), 0) << where;
      const Struct& lat = Field(m, "latency_us").struct_value();
      for (const char* k : {"p50", "p90", "p99", "p999", "max"}) {
        ExpectNumber(lat, k, where + " latency");
      }
      ExpectNumber(res, "ratio_to_raw", where);
      EXPECT_GT(Field(res, "latency_buckets_ns").list_value().values_size(), 0)
          << where;
      if (std::string(target) == "raw") {
        EXPECT_EQ(Field(m, "server_memory").kind_case(), Value::kNullValue);
        continue;
      }
      const Struct& sm = Field(m, "server_memory").struct_value();
      const Struct& dl = Field(sm, "destructor_latency_us").struct_value();
      for (const char* k : {"p50", "p99", "p999", "max"}) {
        ExpectNumber(dl, k, where + " destructor latency");
      }
      EXPECT_GT(Field(dl, "count").number_value(), 0) << where;
      for (const char* k : {"pinned_max_bytes", "zerocopy_completions",
                            "copied_completions", "cow_copies"}) {
        ExpectNumber(sm, k, where + " server memory");
      }
      EXPECT_GT(Field(res, "pinned_samples").list_value().values_size(), 5)
          << where;
      if (writes) {
        const Struct& cm = Field(m, "client_memory").struct_value();
        const Struct& rl = Field(cm, "write_release_latency_us").struct_value();
        ExpectNumber(rl, "p99", where + " client WRITE release");
        EXPECT_GT(Field(rl, "count").number_value(), 0) << where;
      } else {
        EXPECT_EQ(Field(m, "client_memory").kind_case(), Value::kNullValue)
            << where;
      }
    }
  }
  EXPECT_GT(Field(root, "checks").list_value().values_size(), 0);
}

}  // namespace
}  // namespace txbuf::bench
