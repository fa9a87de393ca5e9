#include "common/event_loop.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

TEST(EventLoopTest, ProbeReportsTheKernel) {
  const UringFeatures& f = ProbeUringFeatures();
  // Whatever the kernel has, the probe must be self-consistent.
  if (f.fixed_sendmsg_zc) {
    EXPECT_TRUE(f.sendmsg_zc);
  }
  if (f.report_usage) {
    EXPECT_TRUE(f.send_zc);
  }
  RecordProperty("sendmsg_zc", f.sendmsg_zc);
  RecordProperty("report_usage", f.report_usage);
  RecordProperty("fixed_sendmsg_zc", f.fixed_sendmsg_zc);
  RecordProperty("max_opcode", f.max_opcode);
}

TEST(EventLoopTest, TimersRunInDeadlineOrder) {
  auto loop = EventLoop::Create().value();
  std::vector<int> order;
  // Before the timers are set: their delays count from RunAfter().
  int64_t start = MonoNowNs();
  loop->RunAfter(absl::Milliseconds(30), [&] { order.push_back(3); });
  loop->RunAfter(absl::Milliseconds(10), [&] { order.push_back(1); });
  auto cancelled =
      loop->RunAfter(absl::Milliseconds(15), [&] { order.push_back(99); });
  loop->RunAfter(absl::Milliseconds(20), [&] { order.push_back(2); });
  loop->CancelTimer(cancelled);
  ASSERT_TRUE(
      loop->RunUntil([&] { return order.size() == 3; }, absl::Seconds(5)));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(MonoNowNs() - start, 30'000'000);
}

TEST(EventLoopTest, PostFromOtherThreadsWakesTheLoop) {
  auto loop = EventLoop::Create().value();
  std::atomic<int> ran{0};
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i) loop->Post([&] { ++ran; });
    loop->Post([&] { loop->Stop(); });
  });
  loop->Run();  // returns only because the posted Stop() ran.
  t.join();
  EXPECT_EQ(ran.load(), 1000);
}

TEST(EventLoopTest, PostFromInsideTheLoopRunsWithoutAWakeUp) {
  auto loop = EventLoop::Create().value();
  int ran = 0;
  // From a posted function and from a timer: each posts the next step.
  loop->Post([&] {
    ++ran;
    loop->Post([&] {
      ++ran;
      loop->RunAfter(absl::ZeroDuration(), [&] {
        ++ran;
        loop->Post([&] { ++ran; });
      });
    });
  });
  EXPECT_EQ(loop->wakeups_posted(), 1u);  // the first, from outside a loop
  // An infinite wait would hang if a post from inside were left waiting for
  // a wake-up that never comes.
  while (ran < 4) loop->RunOnce(absl::InfiniteDuration());
  EXPECT_EQ(loop->wakeups_posted(), 1u);

  // Another loop's handler posting here is another thread's post: it wakes.
  auto other = EventLoop::Create().value();
  other->Post([&] { loop->Post([&] { ++ran; }); });
  other->RunOnce(absl::ZeroDuration());
  EXPECT_EQ(loop->wakeups_posted(), 2u);
  loop->RunOnce(absl::InfiniteDuration());
  EXPECT_EQ(ran, 5);
}

TEST(EventLoopTest, StopFromAnotherThread) {
  auto loop = EventLoop::Create().value();
  // Stop() comes once the loop is running (not a guess of how long it takes
  // to get there), and must end Run() wherever the loop is: waiting in the
  // kernel or about to.
  std::atomic<bool> running{false};
  loop->Post([&] {
    running.store(true);
    running.notify_one();
  });
  std::thread t([&] {
    running.wait(false);
    loop->Stop();
  });
  loop->Run();  // returns only because of the other thread's Stop().
  t.join();
  EXPECT_TRUE(running.load());
}

struct NopCompletion : IoCompletion {
  void OnCompletion(const io_uring_cqe& cqe) override {
    ++count;
    res = cqe.res;
  }
  int count = 0;
  int res = 0;
};

TEST(EventLoopTest, DispatchesCompletionsToTheirObject) {
  auto loop = EventLoop::Create().value();
  NopCompletion a, b;
  for (NopCompletion* c : {&a, &b, &a}) {
    io_uring_sqe* sqe = loop->GetSqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, c);
  }
  ASSERT_TRUE(
      loop->RunUntil([&] { return a.count + b.count == 3; }, absl::Seconds(5)));
  EXPECT_EQ(a.count, 2);
  EXPECT_EQ(b.count, 1);
}

TEST(EventLoopTest, ManySqesBeyondTheRingSize) {
  auto loop = EventLoop::Create({.entries = 8}).value();
  NopCompletion a;
  for (int i = 0; i < 100; ++i) {
    io_uring_sqe* sqe = loop->GetSqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, &a);
  }
  ASSERT_TRUE(loop->RunUntil([&] { return a.count == 100; }, absl::Seconds(5)));
}

}  // namespace
}  // namespace txbuf
