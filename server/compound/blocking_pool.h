// server/compound/blocking_pool.h: the threads that run txbufd's file work that
// may block.
//
// An event loop must never wait for the disk: fsync, a page-cache miss's
// pread, write-back, opens and directory walks run here instead, and the
// loop hears back through EventLoop::Post. Jobs run in the order they were
// submitted (FIFO), so connections that each have one job in flight take
// turns.
//
// Thread-safety: thread-safe. The destructor waits for the queued jobs.
//
// Example:
//   txbuf::server::BlockingPool pool(4);
//   pool.Submit([&loop, job] {
//     job->Run();                              // may block
//     loop.Post([job] { job->Finish(); });     // back on the loop
//   });
#ifndef TXBUF_SERVER_COMPOUND_BLOCKING_POOL_H_
#define TXBUF_SERVER_COMPOUND_BLOCKING_POOL_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace txbuf::server {

class BlockingPool {
 public:
  // Starts `threads` threads (at least 1).
  explicit BlockingPool(int threads);
  // Runs what is queued, then joins the threads.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues `job` to run on one of the threads.
  //
  // Example:
  //   pool.Submit([] { fsync(fd); });
  void Submit(absl::AnyInvocable<void() &&> job) ABSL_LOCKS_EXCLUDED(mu_);

  // Jobs queued or running (for statistics).
  size_t pending() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_COMPOUND_BLOCKING_POOL_H_
