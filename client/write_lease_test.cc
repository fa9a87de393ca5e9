// write_lease_test.cc: WriteLease joins a WRITE's reply and its buffer's
// release, in either order, exactly once.
#include "client/write_lease.h"

#include <atomic>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace txbuf::client {
namespace {

// A transport error stands for the reply: a CompoundReply is only made by
// the client, and the lease passes either through untouched.
absl::StatusOr<CompoundReply> Reply(absl::string_view tag) {
  return absl::DeadlineExceededError(tag);
}

// Records the runs of a lease's `done`.
struct DoneLog {
  int runs = 0;
  std::optional<absl::Status> status;
  WriteLease::DoneFn Fn() {
    return [this](absl::StatusOr<CompoundReply> r) {
      ++runs;
      status = r.status();
    };
  }
};

TEST(WriteLeaseTest, DoneRunsOnceAfterTheReplyThenTheRelease) {
  DoneLog log;
  WriteLease lease(log.Fn());
  Deleter release = lease.BufferRelease();
  DoneCallback reply = lease.ReplyCallback();
  reply(Reply("first"));
  EXPECT_EQ(log.runs, 0);  // the buffer is still lent
  release.Release();
  EXPECT_EQ(log.runs, 1);
  EXPECT_EQ(log.status->message(), "first");
}

TEST(WriteLeaseTest, DoneRunsOnceAfterTheReleaseThenTheReply) {
  DoneLog log;
  WriteLease lease(log.Fn());
  Deleter release = lease.BufferRelease();
  DoneCallback reply = lease.ReplyCallback();
  release.Release();
  EXPECT_EQ(log.runs, 0);  // no reply yet
  reply(Reply("second"));
  EXPECT_EQ(log.runs, 1);
  EXPECT_EQ(log.status->message(), "second");
  reply = nullptr;  // destroying the called callback finishes nothing more
  EXPECT_EQ(log.runs, 1);
}

TEST(WriteLeaseTest, ALeaseOutlivedByItsEndsStillFinishes) {
  DoneLog log;
  Deleter release;
  DoneCallback reply;
  {
    WriteLease lease(log.Fn());
    release = lease.BufferRelease();
    reply = lease.ReplyCallback();
  }
  reply(Reply("late"));
  release = Deleter();
  EXPECT_EQ(log.runs, 1);
  EXPECT_EQ(log.status->message(), "late");
}

TEST(WriteLeaseTest, EndsNeverHandedOutFinishAsCancelled) {
  DoneLog log;
  { WriteLease lease(log.Fn()); }
  EXPECT_EQ(log.runs, 1);
  EXPECT_EQ(log.status->code(), absl::StatusCode::kCancelled);
}

TEST(WriteLeaseTest, AReplyCallbackDroppedUncalledFinishesAsCancelled) {
  DoneLog log;
  WriteLease lease(log.Fn());
  Deleter release = lease.BufferRelease();
  { DoneCallback dropped = lease.ReplyCallback(); }  // never called
  EXPECT_EQ(log.runs, 0);
  release.Release();
  EXPECT_EQ(log.runs, 1);
  EXPECT_EQ(log.status->code(), absl::StatusCode::kCancelled);
}

TEST(WriteLeaseTest, WaitReturnsTheReplyOnlyAfterTheRelease) {
  WriteLease lease;
  Deleter release = lease.BufferRelease();
  DoneCallback reply = lease.ReplyCallback();
  std::atomic<bool> released{false};
  reply(Reply("waited"));
  std::thread t([&] {
    released = true;
    release.Release();
  });
  absl::StatusOr<CompoundReply> r = lease.Wait();
  EXPECT_TRUE(released.load());
  EXPECT_EQ(r.status().message(), "waited");
  t.join();
}

TEST(WriteLeaseTest, EndsFinishingOnTwoThreadsAtOnceRunDoneOnce) {
  constexpr int kLeases = 500;
  std::atomic<int> done{0};
  std::vector<Deleter> releases;
  std::vector<DoneCallback> replies;
  for (int i = 0; i < kLeases; ++i) {
    WriteLease lease(
        [&done](absl::StatusOr<CompoundReply>) { done.fetch_add(1); });
    releases.push_back(lease.BufferRelease());
    replies.push_back(lease.ReplyCallback());
  }
  std::thread a([&] { releases.clear(); });
  std::thread b([&] {
    for (DoneCallback& r : replies) r(Reply("x"));
  });
  a.join();
  b.join();
  EXPECT_EQ(done.load(), kLeases);
}

}  // namespace
}  // namespace txbuf::client
