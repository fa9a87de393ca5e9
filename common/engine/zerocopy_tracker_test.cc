#include "common/engine/zerocopy_tracker.h"

#include "gtest/gtest.h"

namespace txbuf::internal {
namespace {

class ZerocopyTrackerTest : public ::testing::Test {
 protected:
  // A one-byte txbuf whose destructor bumps destroyed_[i].
  TxBuf Make(int i) {
    TxBufBuilder b(ctx_);
    b.AppendBytes("x", 1);
    return *b.Finish([this, i](const TxBufCompletion& c) {
      ++destroyed_[i];
      copied_[i] = c.copied;
    });
  }
  SlabAllocator slabs_;
  PagePool pages_{1 << 20};
  MemoryStats stats_;
  TxBufContext ctx_{slabs_, pages_, stats_};
  int destroyed_[8] = {};
  bool copied_[8] = {};
};

TEST_F(ZerocopyTrackerTest, RangesReleaseTheirHolds) {
  ZerocopyTracker t;
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(t.Add(Make(i)), static_cast<uint32_t>(i));
  EXPECT_EQ(t.outstanding(), 5u);
  EXPECT_EQ(t.Complete(0, 1, false), 2u);
  EXPECT_EQ(destroyed_[0], 1);
  EXPECT_EQ(destroyed_[1], 1);
  EXPECT_EQ(destroyed_[2], 0);
  // Out of order: 4 before 2..3.
  EXPECT_EQ(t.Complete(4, 4, true), 1u);
  EXPECT_EQ(destroyed_[4], 1);
  EXPECT_TRUE(copied_[4]);
  EXPECT_EQ(t.outstanding(), 2u);
  EXPECT_EQ(t.Complete(2, 3, false), 2u);
  EXPECT_TRUE(t.empty());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(destroyed_[i], 1) << i;
  // A repeated or unknown range changes nothing.
  EXPECT_EQ(t.Complete(0, 4, false), 0u);
}

TEST_F(ZerocopyTrackerTest, IdsWrapAt32Bits) {
  ZerocopyTracker t(UINT32_MAX - 1);
  for (int i = 0; i < 4; ++i) t.Add(Make(i));  // ids 2^32-2, 2^32-1, 0, 1
  EXPECT_EQ(t.next_id(), 2u);
  EXPECT_EQ(t.Complete(UINT32_MAX, 0, false), 2u);  // a range across the wrap
  EXPECT_EQ(destroyed_[0], 0);
  EXPECT_EQ(destroyed_[1], 1);
  EXPECT_EQ(destroyed_[2], 1);
  EXPECT_EQ(t.Complete(UINT32_MAX - 1, 1, false), 2u);
  EXPECT_TRUE(t.empty());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(destroyed_[i], 1) << i;
}

TEST_F(ZerocopyTrackerTest, ReleaseAllDropsEverything) {
  ZerocopyTracker t;
  t.Add(Make(0));
  t.Add(Make(1));
  t.ReleaseAll();
  EXPECT_EQ(destroyed_[0], 1);
  EXPECT_EQ(destroyed_[1], 1);
  EXPECT_TRUE(t.empty());
  // Ids continue after the released ones.
  EXPECT_EQ(t.Add(Make(2)), 2u);
  t.Complete(2, 2, false);
  EXPECT_EQ(destroyed_[2], 1);
}

}  // namespace
}  // namespace txbuf::internal
