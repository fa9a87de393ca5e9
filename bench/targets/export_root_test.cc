// export_root_test.cc: the peer servers' export root: plain relative paths
// open read-write, anything else is refused, and a symlink anywhere in the
// path cannot lead out of the root (common/open_beneath.h), with or without
// openat2.

#include "bench/targets/export_root.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace txbuf::peers::internal {
namespace {

class ExportRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/export_root_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    std::filesystem::create_directories(base_ + "/root/a");
    std::filesystem::create_directories(base_ + "/outside");
    std::ofstream(base_ + "/root/a/file") << "inside";
    std::ofstream(base_ + "/outside/secret") << "secret";
    ASSERT_EQ(
        symlink((base_ + "/outside").c_str(), (base_ + "/root/out").c_str()),
        0);
    ASSERT_EQ(symlink("../outside", (base_ + "/root/up").c_str()), 0);
    ASSERT_EQ(symlink((base_ + "/outside/secret").c_str(),
                      (base_ + "/root/abs").c_str()),
              0);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  std::string base_;
};

TEST_F(ExportRootTest, PlainRelativePathsOpen) {
  absl::StatusOr<ExportRoot> root = ExportRoot::Open(base_ + "/root");
  ASSERT_TRUE(root.ok()) << root.status();
  absl::StatusOr<UniqueFd> fd = root->OpenFile("a/file");
  ASSERT_TRUE(fd.ok()) << fd.status();
  char buf[16];
  EXPECT_EQ(pread(fd->get(), buf, sizeof(buf), 0), 6);
  FileTable table(*root);
  absl::StatusOr<int> a = table.Get("a/file"), b = table.Get("a/file");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, *b);  // opened once
}

TEST_F(ExportRootTest, PathsThatAreNotPlainAreRefused) {
  for (const char* p : {"", "/etc/passwd", "../outside/secret", "a/../a/file",
                        "./a/file", "a//file", "a/file/"}) {
    EXPECT_FALSE(CheckRelativePath(p).ok()) << p;
  }
  EXPECT_TRUE(CheckRelativePath("a/file").ok());
}

TEST_F(ExportRootTest, SymlinksDoNotLeadOut) {
  absl::StatusOr<ExportRoot> root = ExportRoot::Open(base_ + "/root");
  ASSERT_TRUE(root.ok()) << root.status();
  for (const char* p : {"out/secret", "up/secret", "abs"}) {
    EXPECT_FALSE(root->OpenFile(p).ok()) << p;
  }
}

}  // namespace
}  // namespace txbuf::peers::internal
