#include "common/shard.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

TEST(ShardTest, CreatedOnTheCallingThreadWhichRunsItsLoop) {
  PagePool pool(1 << 20);
  MemoryStats stats;
  absl::StatusOr<std::unique_ptr<Shard>> s =
      Shard::Create(pool, stats, {.engine = EngineKind::kCopy});
  ASSERT_TRUE(s.ok()) << s.status();
  Shard& shard = **s;
  EXPECT_TRUE(shard.loop().InLoopThread());
  EXPECT_EQ(&shard.ctx().slabs(), &shard.slabs());
  EXPECT_EQ(&shard.ctx().pages(), &pool);
  EXPECT_EQ(shard.kmod(), nullptr);
  EXPECT_EQ(shard.registered_bytes(), 0u);
  EXPECT_EQ(shard.SocketOptions().engine, EngineKind::kCopy);
  bool ran = false;
  shard.loop().Post([&] {
    ran = true;
    shard.loop().Stop();
  });
  shard.loop().Run();
  EXPECT_TRUE(ran);
}

TEST(ShardTest, RegistersAtMostTheArena) {
  PagePool pool(1 << 20);
  MemoryStats stats;
  absl::StatusOr<std::unique_ptr<Shard>> s = Shard::Create(
      pool, stats, {.engine = EngineKind::kUringZc, .register_bytes = 1 << 30});
  ASSERT_TRUE(s.ok()) << s.status();
  if (!(*s)->register_status().ok()) {
    // A refusal (RLIMIT_MEMLOCK, an old kernel) is reported, not fatal.
    EXPECT_EQ((*s)->registered_bytes(), 0u);
    GTEST_SKIP() << "no fixed buffer here: " << (*s)->register_status();
  }
  EXPECT_EQ((*s)->registered_bytes(), pool.arena().iov_len);
  EXPECT_EQ((*s)->loop().registered_arena().iov_len, pool.arena().iov_len);
}

TEST(ShardTest, AThreadRunsItsHooksOnItsOwnThread) {
  PagePool pool(1 << 20);
  MemoryStats stats;
  std::thread::id started_on;
  std::thread::id exited_on;
  absl::Notification exited;
  absl::StatusOr<std::unique_ptr<ShardThread>> t =
      ShardThread::Start(pool, stats, {.engine = EngineKind::kCopy},
                         {.on_start =
                              [&](Shard& s) {
                                started_on = std::this_thread::get_id();
                                EXPECT_TRUE(s.loop().InLoopThread());
                                return absl::OkStatus();
                              },
                          .on_exit =
                              [&](Shard&) {
                                exited_on = std::this_thread::get_id();
                                exited.Notify();
                              }});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(started_on, (*t)->thread_id());
  EXPECT_NE(started_on, std::this_thread::get_id());
  EXPECT_FALSE((*t)->OnThread());
  // The slab counters are readable from here while the thread runs.
  EXPECT_FALSE((*t)->SlabStats().empty());
  Shard& shard = (*t)->shard();
  shard.loop().Post([&] { shard.loop().Stop(); });
  (*t)->Join();
  EXPECT_TRUE(exited.HasBeenNotified());
  EXPECT_EQ(exited_on, started_on);
}

TEST(ShardTest, AFailedStartHookIsReturnedAndTheThreadEnds) {
  PagePool pool(1 << 20);
  MemoryStats stats;
  std::atomic<bool> exit_ran{false};
  absl::StatusOr<std::unique_ptr<ShardThread>> t = ShardThread::Start(
      pool, stats, {.engine = EngineKind::kCopy},
      {.on_start =
           [](Shard&) { return absl::InternalError("listen socket gone"); },
       .on_exit = [&](Shard&) { exit_ran = true; }});
  EXPECT_EQ(t.status(), absl::InternalError("listen socket gone"));
  EXPECT_FALSE(exit_ran);  // the loop never ran.
}

TEST(ShardTest, TheKmodEngineIsOpenedOrTheShardFails) {
  PagePool pool(1 << 20);
  MemoryStats stats;
  absl::StatusOr<std::unique_ptr<Shard>> s =
      Shard::Create(pool, stats, {.engine = EngineKind::kKmod});
  if (s.ok()) {
    EXPECT_NE((*s)->kmod(), nullptr);
    EXPECT_EQ((*s)->SocketOptions().kmod, (*s)->kmod());
  } else {
    // No /dev/txbuf on this host (it is tested in the qemu guest): the
    // error says so rather than a shard without its engine.
    EXPECT_NE(s.status().message().find("txbuf"), absl::string_view::npos)
        << s.status();
  }
}

}  // namespace
}  // namespace txbuf
