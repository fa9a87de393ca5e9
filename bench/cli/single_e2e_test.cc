// txbuf-bench single runs against a real txbufd (tests/server_process.h),
// as a user runs them: the command line (token file, fio's names, unknown
// flags, --help), the mixed workload's separate read and write figures, the
// test files removed unless --keep-files, and a read of an existing file on
// a read-only export. Each run is short (0.5 s, 1 MiB file) and only checks
// behaviour (exit status, messages, JSON fields, files), never speed.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace txbuf::bench {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::Not;
using txbuf::testing::ReadFileOrDie;
using txbuf::testing::ServerProcess;
using txbuf::testing::TempDir;
using txbuf::testing::WriteFile;
using txbuf::testing::WriteSecretFile;

// A short run: no warmup, 0.5 s measured, a 1 MiB file, no progress line.
constexpr char kShort[] =
    " --duration 0.5 --warmup 0 --file-size 1M --no-progress";

struct Outcome {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

// The binary under test: $TXBUF_BENCH_UNDER_TEST if set (e.g. an older
// build, to see these tests fail on it), else the one built here.
std::string BenchPath() {
  const char* env = getenv("TXBUF_BENCH_UNDER_TEST");
  return env != nullptr && *env != '\0' ? env : TXBUF_BENCH_PATH;
}

// Runs txbuf-bench with `args`; stdout and stderr together.
Outcome Bench(const std::string& args) {
  const std::string cmd = absl::StrCat(BenchPath(), " ", args, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  Outcome o;
  if (p == nullptr) return o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) o.out.append(buf, n);
  const int st = pclose(p);
  o.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

const Value& Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  static const Value* null_value = new Value();
  return it == s.fields().end() ? *null_value : it->second;
}

bool Has(const Struct& s, const std::string& key) {
  return s.fields().contains(key);
}

Struct ParseJson(const std::string& text) {
  Struct root;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &root).ok())
      << text.substr(0, 300);
  return root;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

class BenchSingleE2eTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--export", export_.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start(std::move(args));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }
  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop().exit_code, 0);
    }
  }
  std::string Server() const {
    return absl::StrCat(" --server ", server_->address());
  }
  std::string JsonPath() const { return out_.Join("run.json"); }

  TempDir export_, out_;
  std::unique_ptr<ServerProcess> server_;
};

// Today it cannot benchmark a server that needs a token.
TEST_F(BenchSingleE2eTest, TokenFileReachesAServerThatNeedsIt) {
  WriteSecretFile(out_.Join("token"), "s3cret\n");
  StartServer({"--token-file", out_.Join("token")});
  Outcome o =
      Bench(absl::StrCat(Server(), " --workload read --token-file ",
                         out_.Join("token"), kShort, " --json ", JsonPath()));
  ASSERT_EQ(o.exit_code, 0) << o.out;
  Struct root = ParseJson(ReadFileOrDie(JsonPath()));
  const Struct& r = Field(root, "result").struct_value();
  EXPECT_GT(Field(r, "ops").number_value(), 0);
  EXPECT_EQ(Field(r, "errors").number_value(), 0);

  // Without the token the server refuses it, and the bench says so.
  Outcome refused = Bench(absl::StrCat(Server(), " --workload read", kShort));
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("--token-file"));
}

TEST_F(BenchSingleE2eTest, FioNamesAreAliases) {
  StartServer();
  Outcome o = Bench(absl::StrCat(Server(),
                                 " --workload read --bs 8K --iodepth 2"
                                 " --runtime 0.5 --ramp_time 0 --filesize 1M"
                                 " --filename fio.dat --no-progress --json ",
                                 JsonPath()));
  ASSERT_EQ(o.exit_code, 0) << o.out;
  Struct root = ParseJson(ReadFileOrDie(JsonPath()));
  const Struct& w = Field(root, "workload").struct_value();
  EXPECT_EQ(Field(w, "size").number_value(), 8192);
  EXPECT_EQ(Field(w, "concurrency").number_value(), 2);
  EXPECT_EQ(Field(w, "duration_s").number_value(), 0.5);
  EXPECT_EQ(Field(w, "warmup_s").number_value(), 0);
  EXPECT_EQ(Field(w, "file").string_value(), "fio.dat");
  EXPECT_EQ(Field(w, "file_size").number_value(), 1 << 20);

  // An alias and its flag together are one flag given twice.
  Outcome twice = Bench(
      absl::StrCat(Server(), " --workload read --bs 8K --size 4K", kShort));
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_THAT(twice.out, HasSubstr("--size"));
  EXPECT_THAT(twice.out, HasSubstr("--bs"));
}

TEST_F(BenchSingleE2eTest, VersionPrintsTheVersion) {
  Outcome o = Bench("--version");
  ASSERT_EQ(o.exit_code, 0);
  EXPECT_THAT(
      o.out, ::testing::MatchesRegex("txbuf-bench [0-9]+\\.[0-9]+\\.[0-9]+\n"));
}

TEST_F(BenchSingleE2eTest, HelpDocumentsEveryFlagAndTheSizes) {
  Outcome o = Bench("--help");
  ASSERT_EQ(o.exit_code, 0);
  std::vector<std::string> missing;
  for (const char* flag :
       {"--token-file", "--keep-files", "--bs", "--iodepth", "--runtime",
        "--ramp_time", "--filename", "--filesize", "--size", "--file-size"}) {
    if (o.out.find(flag) == std::string::npos) missing.push_back(flag);
  }
  EXPECT_THAT(missing, ::testing::IsEmpty());
  // fio's --size is the file's size; ours is the request size. Say so.
  EXPECT_THAT(o.out, HasSubstr("not fio's --size"));
  // Generated from the flags' definitions (Abseil flags): each flag with
  // the kind of value it takes, its aliases and its default.
  EXPECT_THAT(o.out, HasSubstr("  --size=BYTES, --bs=BYTES  (default 4K)\n"));
  EXPECT_THAT(o.out,
              HasSubstr("  --duration=SECS, --runtime=SECS  (default 10)"));
  // -h is --help (issue 14: -h/--help exit 0 on every binary).
  Outcome h = Bench("-h");
  EXPECT_EQ(h.exit_code, 0) << h.out;
  EXPECT_EQ(h.out, o.out);
}

// Unknown flags are rejected by name, wherever they are, with exit 2 and
// before any value is taken from the next argument.
TEST_F(BenchSingleE2eTest, UnknownFlagsAreRejectedByName) {
  for (const char* args : {"--server 127.0.0.1:1 --bogus --workload read",
                           "--server 127.0.0.1:1 --workload read --bogus",
                           "--server 127.0.0.1:1 --bogus=1 --workload read",
                           "--compare --bogus --quick", "--bogus"}) {
    Outcome o = Bench(args);
    EXPECT_EQ(o.exit_code, 2) << args << ": " << o.out;
    EXPECT_THAT(o.out, HasSubstr("unknown flag --bogus")) << args;
  }
  Outcome dash = Bench("-x --workload read");
  EXPECT_EQ(dash.exit_code, 2) << dash.out;
  EXPECT_THAT(dash.out, HasSubstr("unknown flag -x"));
}

TEST_F(BenchSingleE2eTest, MixedReportsReadsAndWritesSeparately) {
  StartServer();
  Outcome o = Bench(absl::StrCat(Server(),
                                 " --workload mixed --read-ratio 0.5"
                                 " --concurrency 2",
                                 kShort, " --json ", JsonPath()));
  ASSERT_EQ(o.exit_code, 0) << o.out;
  EXPECT_THAT(o.out, HasSubstr("reads: ops/s"));
  EXPECT_THAT(o.out, HasSubstr("writes: ops/s"));
  Struct root = ParseJson(ReadFileOrDie(JsonPath()));
  const Struct& r = Field(root, "result").struct_value();
  ASSERT_TRUE(Has(r, "reads")) << ReadFileOrDie(JsonPath());
  ASSERT_TRUE(Has(r, "writes"));
  const Struct& reads = Field(r, "reads").struct_value();
  const Struct& writes = Field(r, "writes").struct_value();
  EXPECT_GT(Field(reads, "ops").number_value(), 0);
  EXPECT_GT(Field(writes, "ops").number_value(), 0);
  // Every counted op is a read or a write.
  EXPECT_EQ(
      Field(reads, "ops").number_value() + Field(writes, "ops").number_value(),
      Field(r, "ops").number_value());
  for (const Struct* s : {&reads, &writes}) {
    for (const char* k : {"ops_s", "mib_s", "errors"}) {
      EXPECT_EQ(Field(*s, k).kind_case(), Value::kNumberValue) << k;
    }
    const Struct& lat = Field(*s, "latency_us").struct_value();
    EXPECT_EQ(Field(lat, "p99").kind_case(), Value::kNumberValue);
  }

  // A read-only workload has no split: the fields are null.
  Outcome read = Bench(absl::StrCat(Server(), " --workload read", kShort,
                                    " --json ", JsonPath()));
  ASSERT_EQ(read.exit_code, 0) << read.out;
  Struct rr = ParseJson(ReadFileOrDie(JsonPath()));
  const Struct& rres = Field(rr, "result").struct_value();
  EXPECT_EQ(Field(rres, "reads").kind_case(), Value::kNullValue);
  EXPECT_EQ(Field(rres, "writes").kind_case(), Value::kNullValue);
}

TEST_F(BenchSingleE2eTest, TestFilesAreRemovedUnlessKept) {
  StartServer();
  for (const char* kind : {"read", "write", "mixed", "meta"}) {
    Outcome o = Bench(absl::StrCat(Server(), " --workload ", kind, kShort));
    ASSERT_EQ(o.exit_code, 0) << kind << ": " << o.out;
    EXPECT_THAT(Entries(export_.path()), ::testing::IsEmpty()) << kind;
  }
  Outcome kept =
      Bench(absl::StrCat(Server(), " --workload read --keep-files", kShort));
  ASSERT_EQ(kept.exit_code, 0) << kept.out;
  EXPECT_THAT(Entries(export_.path()),
              ::testing::ElementsAre("txbuf-bench.dat"));
  // A file that was there before the run is not the bench's to remove.
  Outcome again = Bench(absl::StrCat(Server(), " --workload write", kShort));
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_THAT(Entries(export_.path()),
              ::testing::ElementsAre("txbuf-bench.dat"));
}

// Compare mode with --export DIR removes the test file it wrote there.
TEST_F(BenchSingleE2eTest, CompareRemovesItsTestFileFromTheExport) {
  const std::string compare = absl::StrCat(
      "--compare --engines copy --peer-set raw --workloads read-4k-rand-c1",
      " --duration 0.5 --warmup 0 --repeat 1 --file-size 1M --no-progress",
      " --txbufd ", txbuf::testing::TxbufdPath(), " --export ", export_.path());
  Outcome o = Bench(compare);
  ASSERT_EQ(o.exit_code, 0) << o.out;
  EXPECT_THAT(Entries(export_.path()), ::testing::IsEmpty());
  Outcome kept = Bench(compare + " --keep-files");
  ASSERT_EQ(kept.exit_code, 0) << kept.out;
  EXPECT_THAT(Entries(export_.path()),
              ::testing::ElementsAre("txbuf-bench.dat"));
}

// A read-only export with an existing file: a read workload reads it as it
// is, without writing and without extra flags.
TEST_F(BenchSingleE2eTest, ReadOnlyExportWithAnExistingFile) {
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>((i * 7919) >> 3);
  }
  WriteFile(export_.Join("data.bin"), data);
  StartServer({"--read-only"});
  Outcome o = Bench(
      absl::StrCat(Server(),
                   " --workload read --file data.bin --duration 0.5 --warmup 0"
                   " --no-progress --json ",
                   JsonPath()));
  ASSERT_EQ(o.exit_code, 0) << o.out;
  EXPECT_THAT(o.out, HasSubstr("not verified"));
  Struct root = ParseJson(ReadFileOrDie(JsonPath()));
  const Struct& w = Field(root, "workload").struct_value();
  EXPECT_EQ(Field(w, "file_size").number_value(), 3 << 20);
  EXPECT_FALSE(Field(w, "reads_verified").bool_value());
  const Struct& r = Field(root, "result").struct_value();
  EXPECT_GT(Field(r, "ops").number_value(), 0);
  EXPECT_EQ(Field(r, "errors").number_value(), 0);
  EXPECT_EQ(Field(r, "verify_failures").number_value(), 0);
  EXPECT_EQ(ReadFileOrDie(export_.Join("data.bin")), data);

  // The bench's own file (pattern data, kept from an earlier run) is read
  // and verified at the size it has.
  EXPECT_EQ(server_->Stop().exit_code, 0);
  server_.reset();
  StartServer();
  Outcome kept = Bench(
      absl::StrCat(Server(),
                   " --workload read --keep-files --file-size 2M --duration 0.5"
                   " --warmup 0 --no-progress"));
  ASSERT_EQ(kept.exit_code, 0) << kept.out;
  EXPECT_EQ(server_->Stop().exit_code, 0);
  server_.reset();
  StartServer({"--read-only"});
  Outcome ro = Bench(absl::StrCat(
      Server(),
      " --workload read --duration 0.5 --warmup 0 --no-progress --json ",
      JsonPath()));
  ASSERT_EQ(ro.exit_code, 0) << ro.out;
  EXPECT_THAT(ro.out, Not(HasSubstr("not verified")));
  Struct root2 = ParseJson(ReadFileOrDie(JsonPath()));
  const Struct& w2 = Field(root2, "workload").struct_value();
  EXPECT_EQ(Field(w2, "file_size").number_value(), 2 << 20);
  EXPECT_TRUE(Field(w2, "reads_verified").bool_value());
  const Struct& r2 = Field(root2, "result").struct_value();
  EXPECT_GT(Field(r2, "ops").number_value(), 0);
  EXPECT_EQ(Field(r2, "verify_failures").number_value(), 0);
  EXPECT_THAT(Entries(export_.path()),
              ::testing::UnorderedElementsAre("data.bin", "txbuf-bench.dat"));

  // A write on a read-only export fails, with the server's reason.
  Outcome write = Bench(absl::StrCat(Server(), " --workload write", kShort));
  EXPECT_EQ(write.exit_code, 1) << write.out;
}

// --export-name measures one export of a server with several
// (docs/EXPORTS.md): here the second, the first being read-only.
TEST(BenchExportTest, ExportNameMeasuresThatExport) {
  TempDir first, second, conf;
  WriteFile(conf.Join("txbufd.conf"),
            absl::StrCat("[[export]]\nname = \"ro\"\npath = \"", first.path(),
                         "\"\nread-only = true\n[[export]]\nname = \"rw\"\n",
                         "path = \"", second.path(), "\"\n"));
  absl::StatusOr<std::unique_ptr<ServerProcess>> s =
      ServerProcess::Start({"--config", conf.Join("txbufd.conf")});
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string server = absl::StrCat(" --server ", (*s)->address());
  Outcome o = Bench(absl::StrCat(server, " --workload write --keep-files",
                                 " --export-name rw", kShort));
  ASSERT_EQ(o.exit_code, 0) << o.out;
  EXPECT_FALSE(Entries(second.path()).empty()) << o.out;
  EXPECT_TRUE(Entries(first.path()).empty());
  // Without it, the first export: read-only, so the write setup fails.
  o = Bench(absl::StrCat(server, " --workload write", kShort));
  EXPECT_NE(o.exit_code, 0) << o.out;
  EXPECT_TRUE(Entries(first.path()).empty());
  EXPECT_EQ((*s)->Stop().exit_code, 0);
}

}  // namespace
}  // namespace txbuf::bench
