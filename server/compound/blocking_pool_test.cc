// blocking_pool_test.cc: FIFO order, every job run, and the destructor
// running what is queued.

#include "server/compound/blocking_pool.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

TEST(BlockingPoolTest, OneThreadRunsJobsInSubmissionOrder) {
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification gate;
  {
    BlockingPool pool(1);
    // Holds the only thread until every job is queued.
    pool.Submit([&] { gate.WaitForNotification(); });
    for (int i = 0; i < 100; ++i) {
      pool.Submit([&, i] {
        absl::MutexLock l(&mu);
        order.push_back(i);
      });
    }
    EXPECT_GE(pool.pending(), 100u);
    gate.Notify();
  }  // the destructor runs what is queued.
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(BlockingPoolTest, ManyThreadsRunEveryJobOnce) {
  std::atomic<int> runs{0};
  {
    BlockingPool pool(4);
    for (int i = 0; i < 1000; ++i) pool.Submit([&] { runs.fetch_add(1); });
  }
  EXPECT_EQ(runs.load(), 1000);
}

TEST(BlockingPoolTest, ABlockedJobDoesNotStopTheOthers) {
  absl::Notification release, other_ran;
  BlockingPool pool(2);
  pool.Submit([&] { release.WaitForNotification(); });
  pool.Submit([&] { other_ran.Notify(); });
  other_ran.WaitForNotification();  // would hang if one job held the pool.
  EXPECT_TRUE(other_ran.HasBeenNotified());
  release.Notify();
}

}  // namespace
}  // namespace txbuf::server
