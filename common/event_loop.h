// event_loop.h: one io_uring event loop per thread.
//
// Every asynchronous operation is an `IoCompletion` whose address is the
// SQE's user_data; the loop calls `OnCompletion` for each CQE (a zero-copy
// send gets two: the request and, later, the notification). user_data 0 is
// ignored. Timers are kept in user space and bound the wait. `Post()` runs a
// function on the loop thread from any thread.
//
// Thread-safety: the loop, its ring and everything it drives belong to the
// thread that created it, which must also call Run()/RunOnce() (the ring is
// SINGLE_ISSUER: submitting from another thread fails with -EEXIST). Only
// Post() and Stop() may be called from other threads.
//
// Example:
//   auto loop = txbuf::EventLoop::Create().value();
//   loop->RunAfter(absl::Milliseconds(10), [&] { loop->Stop(); });
//   loop->Run();
#ifndef TXBUF_COMMON_EVENT_LOOP_H_
#define TXBUF_COMMON_EVENT_LOOP_H_

#include <liburing.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace txbuf {

// What the running kernel's io_uring supports, probed once per process.
struct UringFeatures {
  bool sendmsg_zc = false;        // IORING_OP_SENDMSG_ZC
  bool send_zc = false;           // IORING_OP_SEND_ZC
  bool report_usage = false;      // IORING_SEND_ZC_REPORT_USAGE accepted
  bool fixed_sendmsg_zc = false;  // SENDMSG_ZC with registered buffers
  bool defer_taskrun = false;     // IORING_SETUP_DEFER_TASKRUN
  int max_opcode = 0;             // highest opcode the kernel knows
};

// Probes the kernel (once; later calls return the cached result).
const UringFeatures& ProbeUringFeatures();

class IoCompletion {
 public:
  virtual void OnCompletion(const io_uring_cqe& cqe) = 0;

 protected:
  ~IoCompletion() = default;
};

struct EventLoopOptions {
  unsigned entries = 512;
  // IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN when the kernel has them.
  bool defer_taskrun = true;
};

class EventLoop {
 public:
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(
      EventLoopOptions options = {});
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // An SQE to fill; submits queued SQEs first if the ring is full.
  io_uring_sqe* GetSqe();
  // Submits queued SQEs without waiting.
  void Submit();

  // Runs until Stop().
  void Run();
  // Waits up to `timeout` for work, then runs completions, due timers and
  // posted functions. Returns the number of CQEs handled.
  int RunOnce(absl::Duration timeout);
  // Runs until `done()` is true or `timeout` passes; returns done().
  bool RunUntil(const std::function<bool()>& done, absl::Duration timeout);

  // Thread-safe.
  void Stop();
  bool stopped() const;
  // Runs `fn` on the loop thread soon. Thread-safe. From another thread it
  // wakes the loop (an eventfd write); from inside this loop's RunOnce (a
  // completion handler, timer or posted function) it does not need to: fn
  // runs before the loop next waits.
  void Post(absl::AnyInvocable<void()> fn);
  // How many Post()s had to wake the loop (eventfd writes). Thread-safe.
  uint64_t wakeups_posted() const {
    return wakeups_posted_.load(std::memory_order_relaxed);
  }

  using TimerId = uint64_t;
  // Runs `fn` once after `delay`, on the loop thread.
  TimerId RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn);
  // Cancels a timer that has not run; no effect otherwise.
  void CancelTimer(TimerId id);

  // Cancels the operation(s) whose user_data is `target`, retrying while the
  // kernel answers -EALREADY (the request was running and re-armed itself,
  // e.g. a recv woken by POLLERR). The target's own CQE reports the end.
  //
  // Example:
  //   loop->Cancel(&recv_op);  // recv_op.OnCompletion gets -ECANCELED (or
  //   data)
  void Cancel(const IoCompletion* target);

  // Registers `arena` as fixed buffer 0, for zero-copy sends from it.
  absl::Status RegisterArena(iovec arena);
  // The registered arena (iov_len 0 if none).
  const iovec& registered_arena() const { return arena_; }

  io_uring* ring() { return &ring_; }
  const UringFeatures& features() const { return ProbeUringFeatures(); }
  bool defer_taskrun() const { return defer_taskrun_; }
  bool InLoopThread() const;

 private:
  EventLoop() = default;
  void RunTimers();
  void RunPosted();
  void ArmWakeup();
  int64_t NextTimerDelayNs() const;

  class Wakeup;
  class CancelOp;
  io_uring ring_{};
  bool ring_ok_ = false;
  bool defer_taskrun_ = false;
  int event_fd_ = -1;
  std::unique_ptr<Wakeup> wakeup_;
  bool stop_ = false;
  std::atomic<bool> stop_requested_{false};
  std::thread::id thread_;
  iovec arena_{nullptr, 0};

  std::atomic<uint64_t> wakeups_posted_{0};
  std::mutex posted_mu_;
  std::vector<absl::AnyInvocable<void()>> posted_;

  struct Timer {
    int64_t deadline_ns;
    TimerId id;
    bool operator>(const Timer& o) const {
      return deadline_ns != o.deadline_ns ? deadline_ns > o.deadline_ns
                                          : id > o.id;
    }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  absl::flat_hash_map<TimerId, absl::AnyInvocable<void()>> timer_fns_;
  TimerId next_timer_ = 1;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_EVENT_LOOP_H_
