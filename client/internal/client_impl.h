// client/internal/client_impl.h: the state behind a Client.
//
// The loop thread owns everything that touches the ring, the slab caches and
// the connections. Other threads reach it only through the inbox (Submit)
// and EventLoop::Post.
//
// Not for callers: the client library only.
//
// Thread-safety: `Enqueue` and the atomics are thread-safe; the rest runs on
// the loop thread (or after it was joined).
#ifndef TXBUF_CLIENT_INTERNAL_CLIENT_IMPL_H_
#define TXBUF_CLIENT_INTERNAL_CLIENT_IMPL_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"
#include "client/internal/connection.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/shard.h"

namespace txbuf::client {

class Client::Impl {
 public:
  explicit Impl(ClientOptions o);
  ~Impl();

  // Any thread: stops accepting calls; returns those not yet taken by the
  // loop.
  std::vector<std::pair<Compound, DoneCallback>> StopAccepting();

  // Loop thread.
  void Drain();
  void StartCall(Compound c, DoneCallback done);
  void Dispatch();
  internal::Connection* Pick();
  void OnTimeout(uint64_t id);
  void OnClosing(internal::Connection* c, const absl::Status& why);
  void OnClosed(internal::Connection* c);
  void FailWaiting(const absl::Status& why);
  void BeginShutdown();
  void MaybeStop();
  absl::Status NoConnection() const;

  const ClientOptions options;
  const std::string peer;
  // Declaration order is destruction order in reverse: connections (and
  // their TxSockets) go first, then the shard, the pool last.
  MemoryStats stats;
  std::unique_ptr<PagePool> pages;
  // The loop thread with its ring, slab caches and txbuf context.
  std::unique_ptr<ShardThread> shard;
  EventLoop* loop = nullptr;  // the shard's
  std::vector<std::unique_ptr<internal::Connection>> conns;
  internal::ReceiveCounters rx;
  rpc::Hello hello;
  std::atomic<int> open_conns{0};

  absl::Mutex mu;
  std::vector<std::pair<Compound, DoneCallback>> inbox ABSL_GUARDED_BY(mu);
  bool accepting ABSL_GUARDED_BY(mu) = true;
  bool drain_posted ABSL_GUARDED_BY(mu) = false;

  // Loop thread only.
  std::map<uint64_t, internal::PendingCall> waiting;  // by id: FIFO.
  uint64_t next_id = 1;
  size_t rr = 0;
  bool shutting_down = false;
  absl::Status last_error;
};

}  // namespace txbuf::client

#endif  // TXBUF_CLIENT_INTERNAL_CLIENT_IMPL_H_
