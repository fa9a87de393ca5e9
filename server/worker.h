// worker.h: one event-loop thread of txbufd.
//
// A worker owns a shard (common/shard.h: its thread, io_uring event loop,
// slab caches and txbuf context), a listening socket (SO_REUSEPORT across
// workers), and the sessions of its connections (session/session.h).
// SO_REUSEPORT spreads connections over the workers by a hash of their
// addresses, which left 12 of 17 connections on one of two loops in a
// test: a worker that accepts a connection while another worker
// serves fewer hands it to that one (Adopt), so that the loops serve
// equal numbers. Everything here runs on the worker's thread, except
// Start/RequestShutdown/Join/Adopt and the statistics readers.
//
// Thread-safety: see above.
#ifndef TXBUF_SERVER_WORKER_H_
#define TXBUF_SERVER_WORKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/event_loop.h"
#include "common/shard.h"
#include "common/slab.h"
#include "common/socket_util.h"
#include "common/txbuf.h"
#include "proto/frame.h"
#include "proto/txbuf.pb.h"

namespace txbuf::server {

class Server;
class Session;
class Executor;

class Worker {
 public:
  // Accepts on every socket of `listen_fds` (one per address).
  Worker(Server& server, std::vector<UniqueFd> listen_fds);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread; returns once its loop accepts (or failed to start).
  absl::Status Start();
  // Serves the accepted connection `fd` on this worker's loop (posted to
  // it). The caller has counted it (NoteAssigned) already. Thread-safe.
  void Adopt(UniqueFd fd);
  // Connections this worker serves or has been handed and not served yet.
  // Thread-safe.
  int assigned() const { return assigned_.load(std::memory_order_relaxed); }
  void NoteAssigned() { assigned_.fetch_add(1, std::memory_order_relaxed); }
  // Whether its loop runs (Adopt may be called). Thread-safe.
  bool started() const {
    return shard_.load(std::memory_order_acquire) != nullptr;
  }
  // Stops accepting and closes every connection gracefully; the thread ends
  // when all are gone. Thread-safe.
  void RequestShutdown();
  void Join();

  // Worker-thread API.
  EventLoop& loop() { return shard().loop(); }
  TxBufContext& ctx() { return shard().ctx(); }
  // Messages reused by every request of this worker (one at a time).
  rpc::Request& scratch_request() { return scratch_request_; }
  rpc::Reply& scratch_reply() { return scratch_reply_; }
  // Receive buffers kept between frames for this worker's sessions.
  FrameBufferPool& frame_buffers() { return frame_buffers_; }
  Server& server() { return server_; }
  Session* Find(uint64_t id);
  // Destroys a closed session, now: called from its stream's OnClosed
  // (posted, so no frame of the session's is below it but that one).
  void Remove(uint64_t id);
  // Session `id` authenticated (or sent its first request), or closed.
  void LeftPending(uint64_t id) { pending_.erase(id); }

  // Readable from any thread.
  std::vector<SlabCacheStats> SlabStats() const;

  // Bytes of the page arena this loop registered with io_uring as a fixed
  // buffer (0: none), and why a registration failed. Read after Start().
  uint64_t registered_bytes() const { return shard().registered_bytes(); }
  const absl::Status& register_status() const {
    return shard().register_status();
  }

 private:
  class AcceptOp;
  Shard& shard() const { return *shard_.load(std::memory_order_relaxed); }
  // Arms the multishot accept on listen_fds_[i].
  void ArmAccept(size_t i);
  void OnAccept(size_t i, int res, bool more);
  // Sets up the session of accepted connection `fd` (counted in
  // assigned_; uncounted if it is refused or dropped).
  void Serve(UniqueFd fd);
  // Serve's work: false if no session was made (refused, shutting down,
  // the socket failed).
  bool StartSession(UniqueFd fd);
  // Answers a connection over --max-connections and closes it.
  void Refuse(UniqueFd fd);
  void BeginShutdown();
  void MaybeStop();

  Server& server_;
  std::vector<UniqueFd> listen_fds_;
  // Declared first of what the thread uses: destroyed last, after the
  // connections (whose txbufs come from its context).
  std::unique_ptr<ShardThread> thread_;
  // The thread's shard, set on that thread before anything uses it; read by
  // SlabStats() from other threads.
  std::atomic<Shard*> shard_{nullptr};
  rpc::Request scratch_request_;
  rpc::Reply scratch_reply_;
  std::vector<std::unique_ptr<AcceptOp>> accepts_;  // one per listen_fds_
  // Before conns_: a session's reader gives its buffer back when destroyed.
  // 16 MiB: a few large frames' worth per worker.
  FrameBufferPool frame_buffers_{16 << 20};
  absl::flat_hash_map<uint64_t, std::unique_ptr<Session>> conns_;
  // Sessions not yet established, oldest (lowest id) first.
  absl::btree_set<uint64_t> pending_;
  uint64_t next_conn_id_ = 1;
  // See assigned(): conns_ plus connections handed over and not served yet.
  std::atomic<int> assigned_{0};
  bool shutting_down_ = false;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_WORKER_H_
