#include "common/command_line.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "common/flag_types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(txbuf::ByteSize, test_size, txbuf::ByteSize{4096},
          "bytes per request");
ABSL_FLAG(txbuf::Seconds, test_wait, txbuf::Seconds{absl::Seconds(10)},
          "how long to wait");
ABSL_FLAG(txbuf::HostPort, test_listen, txbuf::HostPort{}, "where");
ABSL_FLAG(txbuf::EngineKind, test_engine, txbuf::EngineKind::kAuto,
          "the engine");
ABSL_FLAG(bool, test_quiet, false, "say nothing");
ABSL_FLAG(int, test_count, 1, "how many");
ABSL_FLAG(std::string, test_dir, "", "a directory");

namespace txbuf {
namespace {

using ::testing::HasSubstr;

TEST(FlagTypesTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("4k"), 4096u);
  EXPECT_EQ(*ParseByteSize("64M"), uint64_t{64} << 20);
  EXPECT_EQ(*ParseByteSize("2G"), uint64_t{2} << 30);
  for (const char* bad : {"", "M", "-1", "+4", "4X", "1.5M", " 4", "4 K",
                          "99999999999999999999", "17179869184G"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatByteSize(uint64_t{64} << 20), "64M");
  EXPECT_EQ(FormatByteSize(1 << 30), "1G");
  EXPECT_EQ(FormatByteSize(1000), "1000");
  EXPECT_EQ(FormatByteSize(0), "0");
}

TEST(FlagTypesTest, SecondsHostPortAndEngine) {
  absl::FlagSaver restore;
  ASSERT_TRUE(SetFlagFromText("test-wait", "0.5").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_wait).value, absl::Milliseconds(500));
  ASSERT_TRUE(SetFlagFromText("test-wait", "2m").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_wait).value, absl::Minutes(2));
  EXPECT_FALSE(SetFlagFromText("test-wait", "-1").ok());
  EXPECT_FALSE(SetFlagFromText("test-wait", "soon").ok());
  EXPECT_EQ(FindFlag("test-wait")->DefaultValue(), "10");

  ASSERT_TRUE(SetFlagFromText("test_listen", "[::1]:7420").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen).host, "::1");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen).port, 7420);
  EXPECT_EQ(FindFlag("test-listen")->CurrentValue(), "[::1]:7420");
  EXPECT_FALSE(SetFlagFromText("test-listen", "nowhere").ok());

  ASSERT_TRUE(SetFlagFromText("test-engine", "uring_zc").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_engine), EngineKind::kUringZc);
  absl::Status s = SetFlagFromText("test-engine", "turbo");
  EXPECT_THAT(s.message(), HasSubstr("bad value for --test-engine: 'turbo'"));
}

TEST(CommandLineTest, BothFormsBooleansAndDashes) {
  absl::StatusOr<CommandLine> c = SplitCommandLine(
      {"--test-size", "64K", "--test_count=3", "--test-quiet", "-test-dir",
       "/srv", "stray", "--notest-quiet", "--no-test-quiet",
       "--test-quiet=false", "--", "--test-count"});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->flags.size(), 7u);
  EXPECT_EQ(c->flags[0].spelled, "--test-size");
  EXPECT_EQ(c->flags[0].name, "test_size");
  EXPECT_EQ(c->flags[0].value, "64K");
  EXPECT_EQ(c->flags[1].value, "3");
  EXPECT_EQ(c->flags[2].value, "true");
  EXPECT_EQ(c->flags[3].spelled, "-test-dir");
  EXPECT_EQ(c->flags[4].value, "false");
  EXPECT_EQ(c->flags[5].value, "false");
  EXPECT_EQ(c->flags[6].value, "false");
  EXPECT_EQ(c->positional, (std::vector<std::string>{"stray", "--test-count"}));
  EXPECT_FALSE(c->help);

  absl::FlagSaver restore;
  ASSERT_TRUE(ApplyCommandLine(*c).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_size).bytes, uint64_t{64} << 10);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_count), 3);
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_quiet));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_dir), "/srv");
  ResetFlagsToDefaults("common/command_line_test.cc");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_size).bytes, 4096u);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_dir), "");
}

TEST(CommandLineTest, UnknownFlagsAndMissingValues) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--bogus", "--test-count", "1"},
                                             {"--test-count", "1", "--bogus"},
                                             {"--bogus=1"}}) {
    absl::StatusOr<CommandLine> c = SplitCommandLine(args);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().message(), "unknown flag --bogus");
  }
  EXPECT_EQ(SplitCommandLine({"-x"}).status().message(), "unknown flag -x");
  EXPECT_EQ(SplitCommandLine({"--nobogus"}).status().message(),
            "unknown flag --nobogus");
  // --no only negates a boolean.
  EXPECT_EQ(SplitCommandLine({"--notest-count"}).status().message(),
            "unknown flag --notest-count");
  EXPECT_EQ(SplitCommandLine({"--test-count"}).status().message(),
            "--test-count needs a value");
  EXPECT_FALSE(SplitCommandLine({"--notest-quiet=true"}).ok());
  EXPECT_FALSE(SplitCommandLine({"--test-quiet="}).ok());

  absl::FlagSaver restore;
  absl::StatusOr<CommandLine> c = SplitCommandLine({"--test-count", "many"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(ApplyCommandLine(*c).message(),
            "bad value for --test-count: 'many'");
  c = SplitCommandLine({"--test-quiet=maybe"});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(ApplyCommandLine(*c).ok());
}

TEST(CommandLineTest, AliasesHelpAndVersion) {
  const FlagAliases aliases = {{"bs", "test-size"}, {"ramp_time", "test-wait"}};
  absl::StatusOr<CommandLine> c = SplitCommandLine(
      {"--bs", "8K", "--ramp_time=1", "-h", "--version"}, aliases);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->flags.size(), 2u);
  EXPECT_EQ(c->flags[0].spelled, "--bs");
  EXPECT_EQ(c->flags[0].name, "test_size");
  EXPECT_EQ(c->flags[1].name, "test_wait");
  EXPECT_TRUE(c->help);
  EXPECT_TRUE(c->version);

  absl::FlagSaver restore;
  c = SplitCommandLine({"--bs", "4X"}, aliases);
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(ApplyCommandLine(*c).message(),
              HasSubstr("bad value for --bs: '4X'"));

  const std::string help =
      FlagsHelp("common/command_line_test.cc", aliases, {{"test-dir", "DIR"}});
  EXPECT_THAT(help, HasSubstr("  --test-size=BYTES, --bs=BYTES  (default 4K)\n"
                              "      bytes per request\n"));
  EXPECT_THAT(help, HasSubstr("--ramp_time=SECS"));
  EXPECT_THAT(help, HasSubstr("  --test-quiet\n      say nothing\n"));
  EXPECT_THAT(help, HasSubstr("--test-dir=DIR\n"));
  EXPECT_THAT(help, HasSubstr("--test-engine=ENGINE  (default auto)"));
  EXPECT_THAT(help, HasSubstr("-h, --help"));
  EXPECT_THAT(help, HasSubstr("--version"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("test_size")));
}

}  // namespace
}  // namespace txbuf
