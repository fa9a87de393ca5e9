// client/mount/write_log_test.cc: WriteLog keeps unconfirmed writes until a
// COMMIT with their verifier, and hands them back in order otherwise.
#include "client/mount/write_log.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace txbuf::client::mount {
namespace {

WriteBytes Bytes(const std::string& s) { return WriteBytes::CopyOf(s); }

TEST(WriteLogTest, AMatchingCommitDropsWhatItCovered) {
  WriteLog log;
  EXPECT_FALSE(log.Has(1));
  EXPECT_EQ(log.LastSeq(1), 0u);
  EXPECT_EQ(log.Add(1, 0, Bytes("abc"), 7), 3u);
  EXPECT_EQ(log.Add(2, 0, Bytes("xy"), 7), 5u);
  const uint64_t upto = log.LastSeq(1);
  // Written after the COMMIT was sent: not covered by it.
  log.Add(1, 3, Bytes("defg"), 7);
  EXPECT_TRUE(log.Confirm(1, upto, 7).empty());
  EXPECT_TRUE(log.Has(1));
  EXPECT_EQ(log.bytes(), 6u);
  EXPECT_TRUE(log.Confirm(1, log.LastSeq(1), 7).empty());
  EXPECT_FALSE(log.Has(1));
  EXPECT_TRUE(log.Has(2));
  EXPECT_EQ(log.bytes(), 2u);
  EXPECT_TRUE(log.Confirm(99, 5, 7).empty());  // nothing held: durable
}

TEST(WriteLogTest, AChangedVerifierHandsAllCoveredWritesBackInOrder) {
  WriteLog log;
  log.Add(1, 0, Bytes("aaaa"), 7);
  log.Add(1, 2, Bytes("bb"), 8);  // the server restarted in between
  const uint64_t upto = log.LastSeq(1);
  log.Add(1, 9, Bytes("later"), 8);
  std::vector<WriteLog::Write> again = log.Confirm(1, upto, 8);
  ASSERT_EQ(again.size(), 2u);  // both: the order must be kept
  EXPECT_EQ(again[0].offset, 0u);
  EXPECT_EQ(again[0].data.view, "aaaa");
  EXPECT_EQ(again[1].offset, 2u);
  EXPECT_LT(again[0].seq, again[1].seq);
  EXPECT_EQ(log.bytes(), 11u);  // kept until confirmed
  for (const WriteLog::Write& w : again) log.Resent(1, w.seq, 8);
  EXPECT_TRUE(log.Confirm(1, upto, 8).empty());
  EXPECT_EQ(log.bytes(), 5u);
  // Another restart while resending: handed back again.
  log.Resent(1, log.LastSeq(1), 9);
  EXPECT_EQ(log.Confirm(1, log.LastSeq(1), 10).size(), 1u);
  log.Drop(1);
  EXPECT_FALSE(log.Has(1));
  EXPECT_EQ(log.bytes(), 0u);
}

}  // namespace
}  // namespace txbuf::client::mount
