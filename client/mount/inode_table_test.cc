// client/mount/inode_table_test.cc: InodeTable's numbering, lookup counts,
// forgetting, change stamps, and paths and epochs (server restarts).
#include "client/mount/inode_table.h"

#include "gtest/gtest.h"

namespace txbuf::client::mount {
namespace {

TEST(InodeTableTest, OneInodePerHandleCountedAndForgotten) {
  InodeTable t("ROOT");
  EXPECT_EQ(t.Remember("ROOT"), InodeTable::kRootIno);
  const uint64_t a = t.Remember("A");
  EXPECT_NE(a, InodeTable::kRootIno);
  EXPECT_EQ(t.Remember("A"), a);  // count 2
  const uint64_t b = t.Remember("B");
  EXPECT_NE(b, a);
  EXPECT_EQ(t.Handle(a), "A");
  EXPECT_EQ(t.size(), 3u);
  t.Forget(a, 1);
  EXPECT_EQ(t.Handle(a), "A");
  t.Forget(a, 1);
  EXPECT_EQ(t.Handle(a), std::nullopt);
  EXPECT_EQ(t.size(), 2u);
  // A handle seen again after it was forgotten gets a new number.
  EXPECT_NE(t.Remember("A"), a);
  // The root is never forgotten.
  t.Forget(InodeTable::kRootIno, 100);
  EXPECT_EQ(t.Handle(InodeTable::kRootIno), "ROOT");
  t.Forget(12345, 1);  // unknown: ignored
}

TEST(InodeTableTest, StampsTellChangedFiles) {
  InodeTable t("ROOT");
  const uint64_t a = t.Remember("A");
  EXPECT_FALSE(t.UpdateStamp(a, {.size = 1, .mtime_ns = 2, .ctime_ns = 3}));
  EXPECT_FALSE(t.UpdateStamp(a, {.size = 1, .mtime_ns = 2, .ctime_ns = 3}));
  EXPECT_TRUE(t.UpdateStamp(a, {.size = 5, .mtime_ns = 2, .ctime_ns = 3}));
  EXPECT_FALSE(t.UpdateStamp(a, {.size = 5, .mtime_ns = 2, .ctime_ns = 3}));
  EXPECT_TRUE(t.UpdateStamp(999, {}));  // unknown inode: assume changed
}

TEST(InodeTableTest, PathsFollowLookupsRenamesAndRemovals) {
  InodeTable t("ROOT");
  EXPECT_EQ(t.Path(InodeTable::kRootIno), "");
  const uint64_t d = t.Remember("D", InodeTable::kRootIno, "dir", 10);
  const uint64_t f = t.Remember("F", d, "a.txt", 11);
  const uint64_t g = t.Remember("G", d, "b.txt", 12);
  EXPECT_EQ(t.Path(d), "dir");
  EXPECT_EQ(t.Path(f), "dir/a.txt");
  // Renamed over an existing name: that one loses its path.
  t.Rename(d, "a.txt", InodeTable::kRootIno, "moved.txt");
  EXPECT_EQ(t.Path(f), "moved.txt");
  t.Rename(InodeTable::kRootIno, "moved.txt", d, "b.txt");
  EXPECT_EQ(t.Path(f), "dir/b.txt");
  EXPECT_EQ(t.Path(g), std::nullopt);
  // Removed: no path.
  t.Unname(d, "b.txt");
  EXPECT_EQ(t.Path(f), std::nullopt);
  // Found again by another name: that one.
  t.Remember("F", d, "c.txt");
  EXPECT_EQ(t.Path(f), "dir/c.txt");
  // A directory whose name is unknown makes its children pathless too.
  const uint64_t orphan = t.Remember("O");
  const uint64_t child = t.Remember("C", orphan, "x");
  EXPECT_EQ(t.Path(child), std::nullopt);
  EXPECT_EQ(t.Path(999), std::nullopt);
  // Forgetting frees the name for another file.
  t.Forget(g, 1);
  const uint64_t h = t.Remember("H", d, "b.txt");
  EXPECT_EQ(t.Path(h), "dir/b.txt");
}

TEST(InodeTableTest, ANewEpochMakesHandlesStaleUntilRebound) {
  InodeTable t("ROOT");
  const uint64_t d = t.Remember("D", InodeTable::kRootIno, "dir", 10);
  const uint64_t f = t.Remember("F", d, "a.txt", 11);
  ASSERT_TRUE(t.Bind(f).has_value());
  EXPECT_TRUE(t.Bind(f)->current);
  EXPECT_EQ(t.Bind(f)->fileid, 11u);
  const uint64_t e = t.NewEpoch("ROOT2");
  EXPECT_EQ(t.epoch(), e);
  EXPECT_EQ(t.Handle(InodeTable::kRootIno), "ROOT2");
  EXPECT_TRUE(t.Bind(InodeTable::kRootIno)->current);
  EXPECT_FALSE(t.Bind(d)->current);
  EXPECT_FALSE(t.Bind(f)->current);
  // Paths survive the epoch change.
  EXPECT_EQ(t.Path(f), "dir/a.txt");
  t.Rebind(f, "F2");
  EXPECT_TRUE(t.Bind(f)->current);
  EXPECT_EQ(t.Handle(f), "F2");
  // The new handle names the same inode; the old one no longer does.
  EXPECT_EQ(t.Remember("F2"), f);
  EXPECT_NE(t.Remember("F"), f);
  EXPECT_EQ(t.Remember("ROOT2"), InodeTable::kRootIno);
}

}  // namespace
}  // namespace txbuf::client::mount
