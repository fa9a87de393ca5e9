#include "client/internal/glob.h"

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txbuf::client::internal {
namespace {

using ::testing::ElementsAre;

// A lister over a fixed tree: directory -> names (a name ending in '/' is a
// directory).
class FakeTree {
 public:
  explicit FakeTree(std::map<std::string, std::vector<std::string>> dirs)
      : dirs_(std::move(dirs)) {}
  DirLister Lister() {
    return [this](const std::string& dir)
               -> absl::StatusOr<std::vector<rpc::DirEntry>> {
      ++calls;
      auto it = dirs_.find(dir);
      if (it == dirs_.end()) {
        return absl::FailedPreconditionError("not a directory [NOTDIR]");
      }
      std::vector<rpc::DirEntry> out;
      for (const std::string& n : it->second) out.emplace_back().set_name(n);
      return out;
    };
  }
  int calls = 0;

 private:
  std::map<std::string, std::vector<std::string>> dirs_;
};

FakeTree Tree() {
  return FakeTree({{"", {"docs", "logs", ".git", "a.txt"}},
                   {"docs", {"b.txt", "c.md", ".hidden.txt", "[x]"}},
                   {"logs", {"app1.log", "app2.log", "db.log"}},
                   {".git", {"HEAD"}}});
}

TEST(GlobTest, APathWithoutPatternIsItselfWithoutListing) {
  FakeTree t = Tree();
  EXPECT_THAT(*ExpandGlob("/docs//missing", t.Lister()),
              ElementsAre("docs/missing"));
  EXPECT_EQ(t.calls, 0);
  EXPECT_THAT(*ExpandGlob("back\\slash", t.Lister()),
              ElementsAre("back\\slash"));  // not a pattern: as it is
  EXPECT_FALSE(HasGlob("a\\b"));
  EXPECT_TRUE(HasGlob("a/b[0-9]"));
}

TEST(GlobTest, StarQuestionAndBracketsPerComponentSorted) {
  FakeTree t = Tree();
  EXPECT_THAT(*ExpandGlob("logs/app?.log", t.Lister()),
              ElementsAre("logs/app1.log", "logs/app2.log"));
  EXPECT_THAT(*ExpandGlob("*/*.txt", t.Lister()),
              ElementsAre("docs/b.txt"));  // a.txt is a file: skipped
  EXPECT_THAT(*ExpandGlob("logs/[ad]*", t.Lister()),
              ElementsAre("logs/app1.log", "logs/app2.log", "logs/db.log"));
  EXPECT_THAT(*ExpandGlob("*", t.Lister()),
              ElementsAre("a.txt", "docs", "logs"));  // no dot files
  EXPECT_THAT(*ExpandGlob(".*", t.Lister()), ElementsAre(".git"));
  EXPECT_THAT(*ExpandGlob("docs/\\[x]", t.Lister()), ElementsAre("docs/[x]"));
  EXPECT_THAT(*ExpandGlob("d*/\\[*", t.Lister()), ElementsAre("docs/[x]"));
}

TEST(GlobTest, NoMatchIsNotFound) {
  FakeTree t = Tree();
  absl::StatusOr<std::vector<std::string>> r =
      ExpandGlob("logs/*.txt", t.Lister());
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), "no match for 'logs/*.txt'");
}

TEST(GlobTest, ListerErrorsOtherThanNotADirectoryArePassedOn) {
  DirLister failing =
      [](const std::string&) -> absl::StatusOr<std::vector<rpc::DirEntry>> {
    return absl::UnavailableError("connection lost");
  };
  EXPECT_TRUE(absl::IsUnavailable(ExpandGlob("*", failing).status()));
}

}  // namespace
}  // namespace txbuf::client::internal
