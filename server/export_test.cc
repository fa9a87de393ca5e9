// export_test.cc: the exported tree's names, handles and confinement, on the
// Export alone (no sockets, no event loop). The end-to-end view of the same
// is in tests/server_confinement_test.cc and tests/server_ops_test.cc.

#include "server/export.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

namespace fs = std::filesystem;

// A fresh directory holding `export/` (what is served) and `outside/`.
class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "export_test.XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    parent_ = tmpl;
    root_ = parent_ / "export";
    fs::create_directories(root_ / "dir" / "sub");
    fs::create_directories(parent_ / "outside");
    Write(root_ / "dir" / "a.txt", "alpha");
    Write(parent_ / "outside" / "secret", "secret");
  }
  void TearDown() override { fs::remove_all(parent_); }

  static void Write(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
  }

  std::unique_ptr<Export> Open(ExportOptions o = {}) {
    absl::StatusOr<std::unique_ptr<Export>> ex = Export::Open(root_, o);
    EXPECT_TRUE(ex.ok()) << ex.status();
    return ex.ok() ? std::move(*ex) : nullptr;
  }

  fs::path parent_;
  fs::path root_;
};

TEST_F(ExportTest, LookupAndHandlesRoundTrip) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  OpResultOr<NodeRef> a = ex->Lookup(*ex->Root(), "dir/a.txt");
  ASSERT_TRUE(a.ok()) << a.error.message;
  EXPECT_TRUE(a.value->is_regular);
  std::string fh = ex->HandleOf(*a.value);
  OpResultOr<NodeRef> back = ex->FromHandle(fh);
  ASSERT_TRUE(back.ok()) << back.error.message;
  EXPECT_EQ(back.value.get(), a.value.get());
  uint64_t id = 0;
  ASSERT_TRUE(Export::ExportIdOfHandle(fh, &id));
  EXPECT_EQ(id, ex->export_id());
}

TEST_F(ExportTest, NamesThatLeaveTheDirectoryAreRefused) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  OpResultOr<NodeRef> dir = ex->Lookup(*ex->Root(), "dir");
  ASSERT_TRUE(dir.ok());
  for (const char* path : {"..", "../outside/secret", "/etc/passwd",
                           "sub/../../..", "dir/../../outside"}) {
    OpResultOr<NodeRef> r = ex->Lookup(*dir.value, path);
    EXPECT_FALSE(r.ok()) << path;
    EXPECT_FALSE(r.error.message.empty()) << path;
  }
  // From the root too, where `..` would reach the parent.
  EXPECT_FALSE(ex->Lookup(*ex->Root(), "..").ok());
}

TEST_F(ExportTest, SymlinksOutOfTheExportAreNotFollowed) {
  fs::create_symlink(parent_ / "outside" / "secret", root_ / "abs_out");
  fs::create_symlink("../outside/secret", root_ / "rel_out");
  fs::create_symlink("../outside", root_ / "dir_out");
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  for (const char* path : {"abs_out", "rel_out", "dir_out/secret"}) {
    OpResultOr<NodeRef> r = ex->Lookup(*ex->Root(), path);
    if (r.ok()) {
      // A LOOKUP of the link itself names the link, never its target.
      EXPECT_FALSE(r.value->is_regular) << path;
      EXPECT_FALSE(r.value->is_dir) << path;
    }
  }
  EXPECT_FALSE(ex->Lookup(*ex->Root(), "dir_out/secret").ok());
}

TEST_F(ExportTest, GarbageHandlesAreBadAndRemovedFilesStale) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  for (const std::string& junk :
       {std::string(), std::string("x"), std::string(64, '\xff')}) {
    OpResultOr<NodeRef> r = ex->FromHandle(junk);
    EXPECT_EQ(r.error.status, rpc::STATUS_BADHANDLE) << r.error.message;
  }
  OpResultOr<NodeRef> dir = ex->Lookup(*ex->Root(), "dir");
  ASSERT_TRUE(dir.ok());
  OpResultOr<NodeRef> a = ex->Lookup(*dir.value, "a.txt");
  ASSERT_TRUE(a.ok());
  std::string fh = ex->HandleOf(*a.value);
  a.value.reset();
  ASSERT_TRUE(ex->Remove(*dir.value, "a.txt").ok());
  EXPECT_EQ(ex->FromHandle(fh).error.status, rpc::STATUS_STALE);
  EXPECT_EQ(ex->Lookup(*dir.value, "a.txt").error.status, rpc::STATUS_NOENT);
}

TEST_F(ExportTest, ADirectoryMovedOutOfTheExportIsStale) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  OpResultOr<NodeRef> sub = ex->Lookup(*ex->Root(), "dir/sub");
  ASSERT_TRUE(sub.ok());
  std::string fh = ex->HandleOf(*sub.value);
  // On the server host, behind txbufd's back.
  fs::rename(root_ / "dir" / "sub", parent_ / "outside" / "sub");
  OpResultOr<NodeRef> r = ex->FromHandle(fh);
  if (r.ok()) {
    // The handle may still resolve to the node; using it as a directory
    // must not reach outside.
    EXPECT_FALSE(ex->Lookup(*r.value, "x").ok());
    EXPECT_EQ(ex->Stat(*r.value).error.status, rpc::STATUS_STALE);
  } else {
    EXPECT_EQ(r.error.status, rpc::STATUS_STALE);
  }
}

TEST_F(ExportTest, AReadOnlyExportRefusesEveryChange) {
  std::unique_ptr<Export> ex = Open({.read_only = true});
  ASSERT_NE(ex, nullptr);
  Node& root = *ex->Root();
  EXPECT_EQ(ex->Create(root, "new", 0644, true).error.status, rpc::STATUS_ROFS);
  EXPECT_EQ(ex->Mkdir(root, "newdir", 0755).error.status, rpc::STATUS_ROFS);
  EXPECT_EQ(ex->Symlink(root, "l", "dir").error.status, rpc::STATUS_ROFS);
  OpResultOr<NodeRef> dir = ex->Lookup(root, "dir");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(ex->Remove(*dir.value, "a.txt").status, rpc::STATUS_ROFS);
  EXPECT_EQ(ex->Rmdir(*dir.value, "sub").status, rpc::STATUS_ROFS);
  EXPECT_EQ(ex->Rename(*dir.value, "a.txt", root, "b.txt").status,
            rpc::STATUS_ROFS);
  EXPECT_TRUE(fs::exists(root_ / "dir" / "a.txt"));
  EXPECT_FALSE(fs::exists(root_ / "new"));
}

TEST_F(ExportTest, CreateExclusiveTwiceIsExist) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  Node& root = *ex->Root();
  ASSERT_TRUE(ex->Create(root, "f", 0644, true).ok());
  EXPECT_EQ(ex->Create(root, "f", 0644, true).error.status, rpc::STATUS_EXIST);
  EXPECT_TRUE(ex->Create(root, "f", 0644, false).ok());  // unchecked
  for (const char* bad : {"", ".", "..", "a/b"}) {
    EXPECT_FALSE(ex->Create(root, bad, 0644, true).ok()) << bad;
  }
}

TEST_F(ExportTest, ReadDirPagesThroughEveryEntryOnce) {
  for (int i = 0; i < 25; ++i) {
    Write(root_ / "dir" / "sub" / ("f" + std::to_string(i)), "x");
  }
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  OpResultOr<NodeRef> sub = ex->Lookup(*ex->Root(), "dir/sub");
  ASSERT_TRUE(sub.ok());
  std::set<std::string> seen;
  uint64_t cookie = 0;
  for (int pages = 0; pages < 100; ++pages) {
    OpResultOr<Export::DirPage> page =
        ex->ReadDir(*sub.value, cookie, 4, false, 1 << 20);
    ASSERT_TRUE(page.ok()) << page.error.message;
    EXPECT_LE(page.value.entries.size(), 4u);
    for (const rpc::DirEntry& e : page.value.entries) {
      EXPECT_TRUE(seen.insert(e.name()).second) << "twice: " << e.name();
      cookie = e.cookie();
    }
    if (page.value.eof) break;
  }
  seen.erase(".");
  seen.erase("..");
  EXPECT_EQ(seen.size(), 25u);
}

}  // namespace
}  // namespace txbuf::server
