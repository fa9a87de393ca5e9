#include "common/shard.h"

#include <algorithm>
#include <utility>

namespace txbuf {

Shard::Shard(MemoryStats& stats, ShardOptions options)
    : stats_(stats), options_(options) {}

Shard::~Shard() = default;

absl::StatusOr<std::unique_ptr<Shard>> Shard::Create(PagePool& pages,
                                                     MemoryStats& stats,
                                                     ShardOptions options) {
  std::unique_ptr<Shard> s(new Shard(stats, options));
  // The ring belongs to this thread (IORING_SETUP_SINGLE_ISSUER).
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  if (!loop.ok()) return loop.status();
  s->loop_ = std::move(*loop);
  s->ctx_ = std::make_unique<TxBufContext>(s->slabs_, pages, stats,
                                           s->options_.txbuf);
  if (s->options_.register_bytes > 0) {
    iovec arena = pages.arena();
    arena.iov_len =
        std::min<uint64_t>(arena.iov_len, s->options_.register_bytes);
    s->register_status_ = s->loop_->RegisterArena(arena);
    if (s->register_status_.ok()) s->registered_bytes_ = arena.iov_len;
  }
  if (s->options_.engine == EngineKind::kKmod) {
    absl::StatusOr<std::unique_ptr<KmodEngine>> kmod =
        KmodEngine::Open(*s->loop_, stats);
    if (!kmod.ok()) return kmod.status();
    s->kmod_ = std::move(*kmod);
  }
  return s;
}

TxSocketOptions Shard::SocketOptions() const {
  TxSocketOptions o;
  o.engine = options_.engine;
  o.kmod = kmod_.get();
  return o;
}

absl::StatusOr<std::unique_ptr<ShardThread>> ShardThread::Start(
    PagePool& pages, MemoryStats& stats, ShardOptions options, Hooks hooks) {
  std::unique_ptr<ShardThread> t(new ShardThread());
  absl::Status started;
  absl::Notification ready;
  ShardThread* self = t.get();
  t->thread_ =
      std::thread([self, &pages, &stats, &options, &hooks, &started, &ready] {
        self->Run(pages, stats, options, std::move(hooks), &started, &ready);
      });
  ready.WaitForNotification();
  if (!started.ok()) {
    t->Join();
    return started;
  }
  return t;
}

void ShardThread::Run(PagePool& pages, MemoryStats& stats, ShardOptions options,
                      Hooks hooks, absl::Status* started,
                      absl::Notification* ready) {
  thread_id_ = std::this_thread::get_id();  // read by others after `ready`.
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Create(pages, stats, options);
  if (!shard.ok()) {
    *started = shard.status();
    ready->Notify();
    return;
  }
  shard_ = std::move(*shard);
  shard_ready_.store(true, std::memory_order_release);
  if (hooks.on_start) {
    absl::Status s = hooks.on_start(*shard_);
    if (!s.ok()) {
      *started = std::move(s);
      ready->Notify();
      return;
    }
  }
  absl::AnyInvocable<void(Shard&)> on_exit = std::move(hooks.on_exit);
  ready->Notify();  // `started`, `ready` and `hooks` are gone after this.
  shard_->loop().Run();
  if (on_exit) on_exit(*shard_);
}

ShardThread::~ShardThread() { Join(); }

void ShardThread::Join() {
  if (thread_.joinable()) thread_.join();
}

std::vector<SlabCacheStats> ShardThread::SlabStats() const {
  if (!shard_ready_.load(std::memory_order_acquire)) return {};
  return shard_->SlabStats();
}

}  // namespace txbuf
