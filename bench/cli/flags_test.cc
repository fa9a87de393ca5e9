#include "bench/cli/flags.h"

#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "bench/load/workload.h"
#include "bench/targets/txbufd/server_pid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txbuf::bench {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<Flags> Parse(const std::vector<std::string>& args) {
  return ParseFlags(args);
}

TEST(FlagsTest, SingleRunAsInTheIssue) {
  absl::StatusOr<Flags> f = Parse({"--server",      "10.0.0.2:7000",
                                   "--workload",    "read",
                                   "--size",        "4K",
                                   "--pattern",     "rand",
                                   "--concurrency", "64",
                                   "--connections", "4",
                                   "--duration",    "3",
                                   "--warmup",      "0.5",
                                   "--file-size",   "1G",
                                   "--json",        "out.json"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->compare);
  EXPECT_EQ(f->server_host, "10.0.0.2");
  EXPECT_EQ(f->server_port, 7000);
  const Workload& w = f->workload;
  EXPECT_EQ(w.kind, WorkloadKind::kRead);
  EXPECT_EQ(w.size, 4096u);
  EXPECT_TRUE(w.random);
  EXPECT_EQ(w.concurrency, 64);
  EXPECT_EQ(w.connections, 4);
  EXPECT_DOUBLE_EQ(w.duration_s, 3);
  EXPECT_DOUBLE_EQ(w.warmup_s, 0.5);
  EXPECT_EQ(w.file_size, uint64_t{1} << 30);
  EXPECT_EQ(f->json_path, "out.json");
  EXPECT_EQ(w.Id(), "read-4k-rand-c64");
}

TEST(FlagsTest, EqualsFormDefaultsAndMixed) {
  absl::StatusOr<Flags> f =
      Parse({"--server=127.0.0.1:9", "--workload=mixed", "--read-ratio=0.7",
             "--concurrency=16", "--size=1M", "--pattern=seq"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->workload.connections, 4);  // min(16, 4)
  EXPECT_DOUBLE_EQ(f->workload.read_ratio, 0.7);
  EXPECT_EQ(f->workload.Id(), "mixed70-1m-seq-c16");
  EXPECT_DOUBLE_EQ(f->workload.duration_s, 10);
  f = Parse({"--server", "h:1", "--workload", "meta", "--concurrency", "2"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->workload.connections, 2);
  EXPECT_EQ(f->workload.Id(), "meta-c2");
}

TEST(FlagsTest, AServerWithoutAPortGetsTheDefaultPort) {
  absl::StatusOr<Flags> f =
      Parse({"--server", "files.example", "--workload", "read"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->server_host, "files.example");
  EXPECT_EQ(f->server_port, 7390);
}

TEST(FlagsTest, Errors) {
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{
           {},                                         // neither mode
           {"--workload", "read"},                     // no server
           {"--server", "h:1"},                        // no workload
           {"--server", "h:", "--workload", "read"},   // no port after ':'
           {"--server", "h:1", "--workload", "scan"},  // unknown workload
           {"--server", "h:1", "--workload", "read", "--size", "4X"},
           {"--server", "h:1", "--workload", "read", "--size"},
           {"--server", "h:1", "--workload", "read", "--pattern", "zig"},
           {"--server", "h:1", "--workload", "read", "--concurrency", "0"},
           {"--server", "h:1", "--workload", "read", "--concurrency", "2",
            "--connections", "3"},
           {"--server", "h:1", "--workload", "mixed", "--read-ratio", "1.5"},
           {"--server", "h:1", "--workload", "read", "--file-size", "1K",
            "--size", "4K"},
           {"--server", "h:1", "--workload", "read", "--bogus", "1"},
           {"--server", "h:1", "--workload", "read", "--quick"},
           {"--server", "h:1", "--workload", "read", "--duration", "1",
            "--duration", "2"},
           {"--compare", "--workload", "read"},
           {"--compare", "--engines", "turbo"},
           {"--compare", "--peers", "ftp"},
           {"--compare", "--peers", "nfs", "--peer-set", "raw"},
           {"--compare=maybe"},  // a switch is true or false
           {"--nocompare=true"},
           {"--compare", "--duration", "0"},
           {"--compare", "--duration", "-1"},
           {"--compare", "--repeat", "0"},
           {"stray"},
       }) {
    std::string line;
    for (const std::string& a : bad) line += a + " ";
    EXPECT_FALSE(Parse(bad).ok()) << line;
  }
}

TEST(FlagsTest, UnknownFlagsAreNamedAndTakeNoValue) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--server", "h:1", "--bogus", "--workload", "read"},
           {"--server", "h:1", "--workload", "read", "--bogus"},
           {"--bogus=3", "--server", "h:1", "--workload", "read"},
           {"--compare", "--bogus"},
       }) {
    absl::StatusOr<Flags> f = Parse(args);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().message(), "unknown flag --bogus");
  }
  absl::StatusOr<Flags> f = Parse({"-q", "--compare"});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "unknown flag -q");
}

TEST(FlagsTest, FioNamesAreAliases) {
  absl::StatusOr<Flags> f =
      Parse({"--server", "h:1", "--workload", "read", "--bs", "64K",
             "--iodepth", "8", "--runtime", "5", "--ramp_time=1", "--filename",
             "x.dat", "--filesize", "2G"});
  ASSERT_TRUE(f.ok()) << f.status();
  const Workload& w = f->workload;
  EXPECT_EQ(w.size, uint64_t{64} << 10);
  EXPECT_EQ(w.concurrency, 8);
  EXPECT_DOUBLE_EQ(w.duration_s, 5);
  EXPECT_DOUBLE_EQ(w.warmup_s, 1);
  EXPECT_EQ(w.file, "x.dat");
  EXPECT_EQ(w.file_size, uint64_t{2} << 30);
  EXPECT_TRUE(f->file_size_given);

  f = Parse(
      {"--server", "h:1", "--workload", "read", "--size", "4K", "--bs", "8K"});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "--size and --bs are the same flag (given twice)");
  f = Parse({"--server", "h:1", "--workload", "read", "--bs", "4X"});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "bad value for --bs: '4X' (digits, then K, M or G)");
  f = Parse({"--compare", "--bs", "4K"});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "--bs is not a --compare option");
}

TEST(FlagsTest, TokenFileAndKeepFiles) {
  absl::StatusOr<Flags> f = Parse({"--server", "h:1", "--workload", "read"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->token_file.empty());
  EXPECT_FALSE(f->keep_files);
  EXPECT_FALSE(f->file_size_given);
  f = Parse({"--server", "h:1", "--workload", "read", "--token-file",
             "/etc/txbuf/token", "--keep-files"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->token_file, "/etc/txbuf/token");
  EXPECT_TRUE(f->keep_files);
  f = Parse({"--compare", "--keep-files", "--export", "/srv/x"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->keep_files);
  EXPECT_FALSE(Parse({"--compare", "--token-file", "t"}).ok());
  // Switches as Abseil writes them (before, --keep-files took no value).
  f = Parse({"--server", "h:1", "--workload", "read", "--keep-files=false"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->keep_files);
  f = Parse({"--server", "h:1", "--workload", "read", "--keep-files=true"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->keep_files);
  EXPECT_FALSE(
      Parse({"--server", "h:1", "--workload", "read", "--keep-files=maybe"})
          .ok());
}

TEST(FlagsTest, CompareDefaults) {
  absl::StatusOr<Flags> f = Parse({"--compare"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->compare);
  EXPECT_EQ(f->repeat, 3);
  EXPECT_DOUBLE_EQ(f->workload.duration_s, 3);
  EXPECT_EQ(f->workload.file_size, uint64_t{256} << 20);
  ASSERT_EQ(f->peers.size(), 2u);
  EXPECT_EQ(f->peers[0], peers::PeerKind::kRaw);
  EXPECT_EQ(f->peers[1], peers::PeerKind::kGrpc);
  EXPECT_TRUE(f->engines.empty());  // every available engine

  f = Parse({"--compare", "--quick", "--peers", "nfs", "--json", "-",
             "--duration", "2"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->repeat, 1);
  EXPECT_DOUBLE_EQ(f->workload.duration_s, 2);  // explicit beats --quick
  EXPECT_DOUBLE_EQ(f->workload.warmup_s, 0.3);
  EXPECT_EQ(f->workload.file_size, uint64_t{128} << 20);
  ASSERT_EQ(f->peers.size(), 3u);
  EXPECT_EQ(f->peers[2], peers::PeerKind::kNfs);
  EXPECT_FALSE(f->progress);  // JSON on stdout: nothing else there

  f = Parse({"--compare", "--peer-set", "raw", "--engines", "copy,auto,copy",
             "--repeat", "5", "--workloads", "read-4k-rand-c1"});
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->peers.size(), 1u);
  ASSERT_EQ(f->engines.size(), 2u);
  EXPECT_EQ(f->engines[1], EngineKind::kAuto);
  EXPECT_EQ(f->repeat, 5);
  EXPECT_EQ(f->workloads, std::vector<std::string>{"read-4k-rand-c1"});
}

TEST(FlagsTest, Help) {
  absl::StatusOr<Flags> f = Parse({"--help"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->help);
  f = Parse({"--server", "h:1", "-h"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->help);
  f = Parse({"--version"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->version);
  EXPECT_NE(std::string(kUsage).find("--compare"), std::string::npos);
}

// --help is generated from the flags' definitions: every flag defined in
// flags.cc is in it, written with dashes, with its help text.
TEST(FlagsTest, HelpListsEveryDefinedFlag) {
  const std::string help = BenchHelp();
  int defined = 0;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::EndsWith(flag->Filename(), "bench/cli/flags.cc")) {
      continue;
    }
    ++defined;
    const std::string dashed = absl::StrReplaceAll(name, {{"_", "-"}});
    EXPECT_THAT(help, HasSubstr("  --" + dashed)) << name;
    EXPECT_THAT(help, HasSubstr(flag->Help().substr(0, 20))) << name;
  }
  EXPECT_GE(defined, 30);
  EXPECT_THAT(help, HasSubstr("--size=BYTES, --bs=BYTES  (default 4K)"));
  EXPECT_THAT(help, HasSubstr("--ramp_time=SECS"));
  EXPECT_THAT(help, HasSubstr("not fio's --size"));
}

// Abseil's flag syntax and the value types: durations with units, the
// "--noflag" form, 0 connections as "not given"; and ParseFlags starts
// from the defaults each time (no value leaks from one call to the next).
TEST(FlagsTest, AbslSyntaxAndNoLeaksBetweenCalls) {
  absl::StatusOr<Flags> f =
      Parse({"--server=h:1", "--workload=write", "--duration=1500ms",
             "--warmup", "0", "--connections", "0", "--concurrency", "8",
             "--stats-interval=2s", "--noshared-client", "--no-progress"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_DOUBLE_EQ(f->workload.duration_s, 1.5);
  EXPECT_DOUBLE_EQ(f->workload.warmup_s, 0);
  EXPECT_EQ(f->workload.connections, 4);
  EXPECT_DOUBLE_EQ(f->stats_interval_s, 2);
  EXPECT_FALSE(f->shared_client);
  EXPECT_FALSE(f->progress);
  f = Parse({"--server", "h:1", "--workload", "read"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->workload.kind, WorkloadKind::kRead);
  EXPECT_DOUBLE_EQ(f->workload.duration_s, 10);
  EXPECT_EQ(f->workload.concurrency, 1);
  EXPECT_DOUBLE_EQ(f->stats_interval_s, 0.1);
  EXPECT_TRUE(f->progress);
  EXPECT_FALSE(
      Parse({"--server", "h:1", "--workload", "read", "--duration", "soon"})
          .ok());
}

TEST(FlagsTest, DefaultEngines) {
  EXPECT_EQ(DefaultEngines(false).size(), 4u);
  std::vector<EngineKind> k = DefaultEngines(true);
  ASSERT_EQ(k.size(), 5u);
  EXPECT_EQ(k.back(), EngineKind::kAuto);
}

TEST(WorkloadTest, BytesAndIds) {
  // Byte counts: ParseByteSize (common/command_line_test.cc).
  EXPECT_EQ(FormatBytes(4096), "4 KiB");
  EXPECT_EQ(FormatBytes(1 << 20), "1 MiB");
  EXPECT_EQ(FormatBytes(1000), "1000 B");
  std::vector<std::string> ids;
  for (const Workload& w : CompareWorkloads()) ids.push_back(w.Id());
  EXPECT_EQ(ids,
            (std::vector<std::string>{"read-4k-rand-c1", "read-4k-rand-c64",
                                      "read-1m-seq-c1", "read-1m-seq-c8",
                                      "write-4k-rand-c16", "write-1m-seq-c4"}));
  EXPECT_EQ(CompareWorkloads()[1].connections, 4);
  EXPECT_EQ(CompareWorkloads()[2].connections, 1);
}

// The peers run the one Workload type as it is (read and write only); meta
// validates without a request size.
TEST(WorkloadTest, PeerWorkload) {
  Workload w;
  w.kind = WorkloadKind::kWrite;
  w.size = 1 << 20;
  w.random = false;
  w.concurrency = 4;
  w.connections = 2;
  EXPECT_TRUE(ValidateWorkload(w).ok());
  EXPECT_TRUE(w.PeersCanRun());
  w.kind = WorkloadKind::kMixed;
  EXPECT_FALSE(w.PeersCanRun());
  w.kind = WorkloadKind::kMeta;
  w.size = 0;
  EXPECT_TRUE(ValidateWorkload(w).ok());
  EXPECT_FALSE(w.PeersCanRun());
}

TEST(ServerPidTest, ListeningInodes) {
  const char kTcp[] =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
      "retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:1B58 00000000:0000 0A 00000000:00000000 00:00000000 "
      "00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n"
      "   1: 0100007F:1B58 0100007F:D431 01 00000000:00000000 00:00000000 "
      "00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n"
      "   2: 0100007F:1B59 00000000:0000 0A 00000000:00000000 00:00000000 "
      "00000000     0        0 4444 1 0000000000000000 100 0 0 10 0\n";
  EXPECT_EQ(ListeningInodes(kTcp, 7000), std::vector<uint64_t>{4242});
  EXPECT_EQ(ListeningInodes(kTcp, 7001), std::vector<uint64_t>{4444});
  EXPECT_TRUE(ListeningInodes(kTcp, 7002).empty());
  EXPECT_TRUE(ListeningInodes("", 7000).empty());
}

}  // namespace
}  // namespace txbuf::bench
