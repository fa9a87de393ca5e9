// client/mount/inode_table_test.cc: InodeTable's numbering, lookup counts,
// forgetting and change stamps.
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

TEST(InodeTableTest, DirtyMarksAreTakenOnce) {
  InodeTable t("ROOT");
  const uint64_t a = t.Remember("A");
  EXPECT_FALSE(t.TakeDirty(a));
  t.MarkDirty(a);
  t.MarkDirty(a);
  EXPECT_TRUE(t.TakeDirty(a));
  EXPECT_FALSE(t.TakeDirty(a));
  t.MarkDirty(999);  // unknown: ignored
  EXPECT_FALSE(t.TakeDirty(999));
}

}  // namespace
}  // namespace txbuf::client::mount
