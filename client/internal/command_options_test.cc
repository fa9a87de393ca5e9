#include "client/internal/command_options.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txbuf::client::internal {
namespace {

using ::testing::ElementsAre;

const CommandSyntax kLs = {"lah", {{"all", 'a'}, {"human-readable", 'h'}}};

TEST(CommandOptionsTest, BundledLettersLongNamesAndOperandsInAnyOrder) {
  absl::StatusOr<CommandArgs> a =
      ParseCommandArgs("ls", kLs, {"-la", "/dir", "--human-readable", "x"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->Has('l'));
  EXPECT_TRUE(a->Has('a'));
  EXPECT_TRUE(a->Has('h'));
  EXPECT_THAT(a->operands, ElementsAre("/dir", "x"));
}

TEST(CommandOptionsTest, DashDashEndsOptionsAndDashIsAnOperand) {
  absl::StatusOr<CommandArgs> a =
      ParseCommandArgs("ls", kLs, {"-", "--", "-l", "--all"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->options, "");
  EXPECT_THAT(a->operands, ElementsAre("-", "-l", "--all"));
}

TEST(CommandOptionsTest, UnknownOptionsAreNamed) {
  absl::StatusOr<CommandArgs> a = ParseCommandArgs("ls", kLs, {"-lx"});
  EXPECT_EQ(a.status().message(), "unknown option '-x' for ls");
  a = ParseCommandArgs("ls", kLs, {"--long"});
  EXPECT_EQ(a.status().message(), "unknown option '--long' for ls");
  a = ParseCommandArgs("cat", {}, {"-h"});
  EXPECT_EQ(a.status().message(), "unknown option '-h' for cat");
}

TEST(CommandOptionsTest, RepeatedLettersCountOnce) {
  absl::StatusOr<CommandArgs> a = ParseCommandArgs("ls", kLs, {"-ll", "-l"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->options, "l");
  EXPECT_TRUE(a->operands.empty());
}

}  // namespace
}  // namespace txbuf::client::internal
