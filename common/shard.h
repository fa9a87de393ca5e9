// shard.h: one event-loop thread and what only that thread may touch.
//
// A `Shard` is built in one place for txbufd's workers, the client library
// and the engine benchmark: its io_uring event loop, its slab caches, its
// txbuf context (which recycles staging pages from a shared `PagePool`), the
// part of the page arena its ring registers as a fixed buffer, and, for the
// kmod engine, its /dev/txbuf handle. The pool and the `MemoryStats` are
// shared with other shards and outlive them.
//
// The single-issuer rule lives here: a ring created with
// IORING_SETUP_SINGLE_ISSUER belongs to the thread that created it, so a
// shard is created on the thread that runs it, either the caller's
// (`Shard::Create`) or a thread of its own (`ShardThread`).
//
// Thread-safety: everything but `SlabStats()` (any thread, once created)
// runs on the shard's thread; destroy it after that thread stopped using it.
//
// Example:
//   absl::StatusOr<std::unique_ptr<ShardThread>> t = ShardThread::Start(
//       pool, stats, {.engine = EngineKind::kAuto},
//       [](Shard& s) { /* arm the first receives */ return absl::OkStatus();
//       });
//   (*t)->shard().loop().Post([] { /* runs on the shard's thread */ });
//   ...  // something on the loop calls loop().Stop().
//   (*t)->Join();
#ifndef TXBUF_COMMON_SHARD_H_
#define TXBUF_COMMON_SHARD_H_

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/engine/kmod_engine.h"
#include "common/engine_kind.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "common/tx_socket.h"
#include "common/txbuf.h"

namespace txbuf {

struct ShardOptions {
  // kKmod opens /dev/txbuf for this shard (and fails if it cannot).
  EngineKind engine = EngineKind::kAuto;
  TxBufOptions txbuf;
  // Bytes at the start of the pool's arena to register with the ring as
  // fixed buffer 0 (0: none). A failed registration is not an error: the
  // shard works without, and says why in register_status().
  uint64_t register_bytes = 0;
};

class Shard {
 public:
  // Builds a shard on the calling thread, which alone may run its loop.
  //
  // Example:
  //   std::unique_ptr<Shard> s = Shard::Create(pool, stats, {}).value();
  //   s->loop().Run();
  static absl::StatusOr<std::unique_ptr<Shard>> Create(PagePool& pages,
                                                       MemoryStats& stats,
                                                       ShardOptions options);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  EventLoop& loop() { return *loop_; }
  SlabAllocator& slabs() { return slabs_; }
  TxBufContext& ctx() { return *ctx_; }
  MemoryStats& stats() { return stats_; }
  // The /dev/txbuf engine (engine kKmod only), else null.
  KmodEngine* kmod() { return kmod_.get(); }
  EngineKind engine() const { return options_.engine; }

  // TxSocket options for this shard's engine (with its kmod engine).
  TxSocketOptions SocketOptions() const;

  // Bytes of the arena registered as a fixed buffer (0: none), and why a
  // registration failed.
  uint64_t registered_bytes() const { return registered_bytes_; }
  const absl::Status& register_status() const { return register_status_; }

  // The slab caches' counters. Any thread.
  std::vector<SlabCacheStats> SlabStats() const { return slabs_.Stats(); }

 private:
  Shard(MemoryStats& stats, ShardOptions options);

  MemoryStats& stats_;
  const ShardOptions options_;
  // Declaration order is construction order: the loop first, the txbuf
  // context (which returns pages to the pool when destroyed) after the slabs.
  std::unique_ptr<EventLoop> loop_;
  SlabAllocator slabs_;
  std::unique_ptr<TxBufContext> ctx_;
  std::unique_ptr<KmodEngine> kmod_;
  uint64_t registered_bytes_ = 0;
  absl::Status register_status_;
};

// A shard on a thread of its own, running its loop until the loop stops.
class ShardThread {
 public:
  // What runs on the thread: `on_start` once the shard exists, before
  // Start() returns (an error from it stops the thread and is returned);
  // `on_exit` after the loop stopped, still on the thread.
  struct Hooks {
    absl::AnyInvocable<absl::Status(Shard&)> on_start;
    absl::AnyInvocable<void(Shard&)> on_exit;
  };

  // Starts the thread, builds the shard on it and runs `hooks.on_start`;
  // returns once that is done, with the error if either failed (the thread
  // has then ended).
  static absl::StatusOr<std::unique_ptr<ShardThread>> Start(
      PagePool& pages, MemoryStats& stats, ShardOptions options,
      Hooks hooks = {});
  // Joins the thread (stop the loop first).
  ~ShardThread();
  ShardThread(const ShardThread&) = delete;
  ShardThread& operator=(const ShardThread&) = delete;

  Shard& shard() { return *shard_; }
  // The shard's counters, also before Start() returned. Any thread.
  std::vector<SlabCacheStats> SlabStats() const;
  bool OnThread() const { return std::this_thread::get_id() == thread_id_; }
  std::thread::id thread_id() const { return thread_id_; }
  // Waits for the thread to end (its loop stopped). Idempotent.
  void Join();

 private:
  ShardThread() = default;
  void Run(PagePool& pages, MemoryStats& stats, ShardOptions options,
           Hooks hooks, absl::Status* started, absl::Notification* ready);

  std::unique_ptr<Shard> shard_;
  std::atomic<bool> shard_ready_{false};
  std::thread thread_;
  std::thread::id thread_id_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_SHARD_H_
