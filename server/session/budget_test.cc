// budget_test.cc: a session's pinned-byte budget alone (no server, no
// sockets): its own budget, its fair share of the global one among several
// holders, the server-wide holder count following each session's pinned
// bytes between 0 and non-0, and a session under its fair share never over
// budget because of what the others hold. The end-to-end view is in
// tests/server_limits_test.cc (SlowReadersTest) and
// tests/server_robustness_test.cc.
#include "server/session/budget.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "server/settings.h"

namespace txbuf::server {
namespace {

class SessionBudgetTest : public ::testing::Test {
 protected:
  // conn_budget 100 bytes, budget 1000 bytes.
  SessionBudgetTest()
      : settings_(ReloadableSettings{.conn_budget = 100, .budget = 1000}) {}

  // A budget sharing this test's settings, holder count and held bytes.
  std::unique_ptr<SessionBudget> NewBudget() {
    return std::make_unique<SessionBudget>(settings_, holders_, [this] {
      ++held_asked_;
      return held_;
    });
  }

  void SetBudgets(uint64_t conn_budget, uint64_t budget) {
    ReloadableSettings s = settings_.Load();
    s.conn_budget = conn_budget;
    s.budget = budget;
    settings_.Store(s);
  }

  ServerSettings settings_;
  std::atomic<uint64_t> holders_{0};
  uint64_t held_ = 0;  // what "the server" holds
  int held_asked_ = 0;
};

TEST_F(SessionBudgetTest, OverItsOwnBudgetFromConnBudgetOn) {
  SetBudgets(/*conn_budget=*/100, /*budget=*/1 << 30);
  auto b = NewBudget();
  EXPECT_FALSE(b->Over());
  b->Pin(99);
  EXPECT_FALSE(b->OverOwn());
  EXPECT_FALSE(b->Over());
  b->Pin(1);
  EXPECT_EQ(b->pinned(), 100u);
  EXPECT_TRUE(b->OverOwn());
  EXPECT_TRUE(b->Over());
  b->Release(1);
  EXPECT_FALSE(b->Over());
}

TEST_F(SessionBudgetTest, ReadsTheBudgetsInEffectAtEachCall) {
  auto b = NewBudget();
  b->Pin(60);
  EXPECT_FALSE(b->OverOwn());
  SetBudgets(/*conn_budget=*/50, /*budget=*/1000);  // a reload
  EXPECT_TRUE(b->OverOwn());
  held_ = 1000;
  EXPECT_FALSE(b->OverFairShare());  // alone: its share is all of 1000
  SetBudgets(/*conn_budget=*/1000, /*budget=*/50);
  EXPECT_TRUE(b->OverFairShare());
}

TEST_F(SessionBudgetTest, HolderCountFollowsPinnedBetweenZeroAndNonZero) {
  auto a = NewBudget();
  auto b = NewBudget();
  EXPECT_EQ(holders_.load(), 0u);
  a->Pin(10);
  EXPECT_EQ(holders_.load(), 1u);
  a->Pin(10);  // already a holder
  EXPECT_EQ(holders_.load(), 1u);
  b->Pin(5);
  EXPECT_EQ(holders_.load(), 2u);
  a->Release(15);  // still 5 pinned
  EXPECT_EQ(a->pinned(), 5u);
  EXPECT_EQ(holders_.load(), 2u);
  a->Release(5);
  EXPECT_EQ(a->pinned(), 0u);
  EXPECT_EQ(holders_.load(), 1u);
  b->Release(5);
  EXPECT_EQ(holders_.load(), 0u);
  // And again: a session may hold and give back many times.
  b->Pin(1);
  EXPECT_EQ(holders_.load(), 1u);
  b->Release(1);
  EXPECT_EQ(holders_.load(), 0u);
}

TEST_F(SessionBudgetTest, EmptyTxbufsDoNotMakeAHolder) {
  auto a = NewBudget();
  a->Pin(0);
  EXPECT_EQ(holders_.load(), 0u);
  a->Release(0);
  EXPECT_EQ(holders_.load(), 0u);
  a->Pin(7);
  a->Release(0);
  EXPECT_EQ(holders_.load(), 1u);
  a->Release(7);
  EXPECT_EQ(holders_.load(), 0u);
}

TEST_F(SessionBudgetTest, FairShareDividesTheGlobalBudgetByTheHolders) {
  SetBudgets(/*conn_budget=*/1 << 30, /*budget=*/1000);
  // Four holders: a share is 250 bytes.
  std::vector<std::unique_ptr<SessionBudget>> s;
  for (uint64_t pinned : {300, 250, 249, 1}) {
    s.push_back(NewBudget());
    s.back()->Pin(pinned);
  }
  ASSERT_EQ(holders_.load(), 4u);
  // The server within its budget: nobody is over a share.
  held_ = 999;
  for (const auto& b : s) EXPECT_FALSE(b->Over());
  // Over it: those holding at least their share are.
  held_ = 1000;
  EXPECT_TRUE(s[0]->OverFairShare());
  EXPECT_TRUE(s[1]->OverFairShare());
  EXPECT_FALSE(s[2]->OverFairShare());
  EXPECT_FALSE(s[3]->OverFairShare());
  // One holder leaves: the share grows to 333 bytes.
  s[3]->Release(1);
  ASSERT_EQ(holders_.load(), 3u);
  EXPECT_FALSE(s[0]->OverFairShare());
  EXPECT_FALSE(s[1]->OverFairShare());
}

TEST_F(SessionBudgetTest, UnderItsFairShareNeverOverBecauseOfOthers) {
  SetBudgets(/*conn_budget=*/100, /*budget=*/1000);
  auto small = NewBudget();
  small->Pin(10);
  std::vector<std::unique_ptr<SessionBudget>> hogs;
  // However many others hold however much (each over its own budget, the
  // server far over the global one), a share stays >= 1000 / 50 = 20 bytes.
  held_ = 1 << 20;
  for (int i = 0; i < 49; ++i) {
    hogs.push_back(NewBudget());
    hogs.back()->Pin(1 << 10);
    EXPECT_TRUE(hogs.back()->Over());
    EXPECT_FALSE(small->Over()) << "with " << holders_.load() << " holders";
  }
}

TEST_F(SessionBudgetTest, HoldingNothingIsNeverOverAShare) {
  auto idle = NewBudget();
  auto hog = NewBudget();
  hog->Pin(5000);
  held_ = 1 << 20;
  EXPECT_FALSE(idle->OverFairShare());
  EXPECT_FALSE(idle->Over());
  // Without asking what the server holds.
  const int asked = held_asked_;
  idle->OverFairShare();
  EXPECT_EQ(held_asked_, asked);
}

}  // namespace
}  // namespace txbuf::server
