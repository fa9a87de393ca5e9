#include "common/auto_policy.h"

#include "gtest/gtest.h"

namespace txbuf {
namespace {

AutoPolicyOptions Opts() {
  AutoPolicyOptions o;
  o.zerocopy_threshold = 64 * 1024;
  o.probe_sends = 4;
  o.reprobe_interval = 100;
  return o;
}

TEST(AutoPolicyTest, SmallSendsAreAlwaysCopied) {
  AutoPolicy p(Opts());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(p.UseZerocopy(4096));
  EXPECT_EQ(p.mode(), AutoPolicy::Mode::kProbing);
}

TEST(AutoPolicyTest, SwitchesToCopyWhenTheKernelCopies) {
  AutoPolicy p(Opts());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(p.UseZerocopy(1 << 20));
  // Waiting for the probes' notifications: copy meanwhile.
  EXPECT_FALSE(p.UseZerocopy(1 << 20));
  for (int i = 0; i < 4; ++i) p.OnNotification(/*copied=*/true);
  EXPECT_EQ(p.mode(), AutoPolicy::Mode::kCopy);
  int zc = 0;
  for (int i = 0; i < 1000; ++i) zc += p.UseZerocopy(1 << 20);
  // One probe of 4 sends per 100 large sends at most.
  EXPECT_GT(zc, 0);
  EXPECT_LE(zc, 4 * 10 + 4);
}

TEST(AutoPolicyTest, StaysZerocopyWhenTheKernelDoesNotCopy) {
  AutoPolicy p(Opts());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(p.UseZerocopy(1 << 20));
  for (int i = 0; i < 4; ++i) p.OnNotification(/*copied=*/false);
  EXPECT_EQ(p.mode(), AutoPolicy::Mode::kZerocopy);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(p.UseZerocopy(1 << 20));
  // The path starts copying: the policy follows.
  for (int i = 0; i < 9; ++i) p.OnNotification(/*copied=*/true);
  EXPECT_EQ(p.mode(), AutoPolicy::Mode::kCopy);
}

TEST(AutoPolicyTest, ReprobeCanFindZerocopyAgain) {
  AutoPolicy p(Opts());
  for (int i = 0; i < 4; ++i) p.UseZerocopy(1 << 20);
  for (int i = 0; i < 4; ++i) p.OnNotification(true);
  ASSERT_EQ(p.mode(), AutoPolicy::Mode::kCopy);
  int sent_zc = 0;
  for (int i = 0; i < 100 && sent_zc == 0; ++i)
    sent_zc += p.UseZerocopy(1 << 20);
  ASSERT_EQ(sent_zc, 1);
  EXPECT_EQ(p.mode(), AutoPolicy::Mode::kProbing);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(p.UseZerocopy(1 << 20));
  for (int i = 0; i < 4; ++i) p.OnNotification(false);
  EXPECT_EQ(p.mode(), AutoPolicy::Mode::kZerocopy);
}

}  // namespace
}  // namespace txbuf
