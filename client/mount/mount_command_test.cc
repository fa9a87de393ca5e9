// client/mount/mount_command_test.cc: `txbuf mount`'s command line.
#include "client/mount/mount_command.h"

#include "gtest/gtest.h"

namespace txbuf::client::mount {
namespace {

TEST(MountArgsTest, OperandsOptionsAndDefaults) {
  absl::StatusOr<MountArgs> a = ParseMountArgs(
      {"srv:7000", "/mnt/x", "--read-only", "-f", "--token-file", "/t",
       "--export=scratch", "--attr-timeout", "0.5", "--entry-timeout=0",
       "--timeout", "7.5", "--max-uncommitted=64", "--read-split", "128",
       "--async-read-max", "16", "--writeback-cache", "--serial-direct-writes"},
      {.token_file = "/global"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->server, "srv:7000");
  EXPECT_EQ(a->mountpoint, "/mnt/x");
  EXPECT_TRUE(a->read_only);
  EXPECT_TRUE(a->foreground);
  EXPECT_EQ(a->token_file, "/t");
  EXPECT_EQ(a->export_name, "scratch");
  EXPECT_EQ(a->attr_timeout, 0.5);
  EXPECT_EQ(a->entry_timeout, 0.0);
  EXPECT_EQ(a->timeout, 7.5);
  EXPECT_EQ(a->max_uncommitted_mib, 64u);
  EXPECT_EQ(a->read_split_kib, 128u);
  EXPECT_EQ(a->async_read_max_kib, 16u);
  EXPECT_TRUE(a->writeback_cache);
  EXPECT_TRUE(a->serial_direct_writes);

  absl::StatusOr<MountArgs> d =
      ParseMountArgs({"-f", "srv", "dir"}, {.token_file = "/global"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->token_file, "/global");  // the global flag's value
  EXPECT_FALSE(d->read_only);
  EXPECT_EQ(d->attr_timeout, 1.0);
  EXPECT_EQ(d->entry_timeout, 1.0);
  EXPECT_EQ(d->timeout, 0.0);  // the global --timeout's
  EXPECT_EQ(d->max_uncommitted_mib, 256u);
  EXPECT_EQ(d->read_split_kib, 256u);
  EXPECT_EQ(d->async_read_max_kib, 128u);
  EXPECT_FALSE(d->writeback_cache);
  EXPECT_FALSE(d->serial_direct_writes);
  absl::StatusOr<MountArgs> whole =
      ParseMountArgs({"srv", "dir", "--read-split=0"}, {});
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->read_split_kib, 0u);  // READs sent whole
  absl::StatusOr<MountArgs> waiting =
      ParseMountArgs({"srv", "dir", "--async-read-max=0"}, {});
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(waiting->async_read_max_kib, 0u);  // every READ waits
}

TEST(MountArgsTest, Refusals) {
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{
           {},
           {"srv"},
           {"srv", "dir", "extra"},
           {"srv", "dir", "--bogus"},
           {"srv", "dir", "-x"},
           {"srv", "dir", "--attr-timeout"},
           {"srv", "dir", "--attr-timeout", "-1"},
           {"srv", "dir", "--entry-timeout=soon"},
           {"srv", "dir", "--timeout", "0"},
           {"srv", "dir", "--timeout=-3"},
           {"srv", "dir", "--max-uncommitted", "0"},
           {"srv", "dir", "--max-uncommitted=lots"},
           {"srv", "dir", "--read-split", "2"},
           {"srv", "dir", "--read-split=-1"},
           {"srv", "dir", "--async-read-max"},
           {"srv", "dir", "--async-read-max=-4"},
           {"srv", "dir", "--async-read-max", "small"},
           {"srv", "dir", "--writeback-cache=1"},
           {"srv", "dir", "--serial-direct-writes=0"},
           {"srv:notaport", "dir"},
       }) {
    EXPECT_FALSE(ParseMountArgs(bad, {}).ok()) << testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace txbuf::client::mount
