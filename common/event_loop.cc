#include "common/event_loop.h"

#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/base/call_once.h"
#include "common/clock.h"
#include "common/internal/uring_compat.h"
#include "common/socket_util.h"

namespace txbuf {
namespace {

// Waits for the request and notification CQEs of one zero-copy send on a
// probe ring. Returns the request's res, or -ETIME.
int ProbeZcSend(io_uring* ring) {
  int res = -ETIME;
  bool more = false;
  bool got_request = false;
  for (int i = 0; i < 2; ++i) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{1, 0};
    if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) != 0) break;
    if ((cqe->flags & IORING_CQE_F_NOTIF) == 0) {
      res = cqe->res;
      more = (cqe->flags & IORING_CQE_F_MORE) != 0;
      got_request = true;
    }
    io_uring_cqe_seen(ring, cqe);
    if (got_request && !more) break;
  }
  return res;
}

UringFeatures DoProbe() {
  UringFeatures f;
  io_uring ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(8, &ring, &p) == 0) {
    f.defer_taskrun = true;
  } else {
    p = {};
    if (io_uring_queue_init_params(8, &ring, &p) != 0) return f;
  }
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring)) {
    f.max_opcode = probe->last_op;
    f.sendmsg_zc = io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);
    f.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    io_uring_free_probe(probe);
  }
  absl::StatusOr<std::pair<UniqueFd, UniqueFd>> pair = LoopbackTcpPair();
  if (pair.ok() && f.send_zc) {
    static char byte = 'x';
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_send_zc(sqe, pair->first.get(), &byte, 1, MSG_NOSIGNAL,
                          IORING_SEND_ZC_REPORT_USAGE);
    io_uring_submit(&ring);
    f.report_usage = ProbeZcSend(&ring) == 1;
  }
  if (pair.ok() && f.sendmsg_zc) {
    alignas(4096) static char buf[4096];
    iovec reg{buf, sizeof(buf)};
    if (io_uring_register_buffers(&ring, &reg, 1) == 0) {
      iovec iov[2] = {{buf, 3}, {buf + 100, 5}};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = 2;
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_sendmsg_zc(sqe, pair->first.get(), &msg, MSG_NOSIGNAL);
      sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
      sqe->buf_index = 0;
      io_uring_submit(&ring);
      f.fixed_sendmsg_zc = ProbeZcSend(&ring) == 8;
      io_uring_unregister_buffers(&ring);
    }
  }
  io_uring_queue_exit(&ring);
  return f;
}

}  // namespace

const UringFeatures& ProbeUringFeatures() {
  static absl::once_flag once;
  static UringFeatures features;
  absl::call_once(once, [] { features = DoProbe(); });
  return features;
}

// The eventfd read that wakes the loop for Post() and Stop().
class EventLoop::Wakeup final : public IoCompletion {
 public:
  explicit Wakeup(EventLoop* loop) : loop_(loop) {}
  void OnCompletion(const io_uring_cqe&) override {
    armed_ = false;
    loop_->RunPosted();
    if (!loop_->stop_) loop_->ArmWakeup();
  }
  uint64_t value = 0;
  bool armed_ = false;

 private:
  EventLoop* loop_;
};

// One asynchronous cancel; deletes itself when the kernel has answered.
class EventLoop::CancelOp final : public IoCompletion {
 public:
  CancelOp(EventLoop* loop, const IoCompletion* target, int tries)
      : loop_(loop), target_(target), tries_(tries) {}
  void Submit() {
    io_uring_sqe* sqe = loop_->GetSqe();
    io_uring_prep_cancel(sqe, const_cast<IoCompletion*>(target_), 0);
    io_uring_sqe_set_data(sqe, this);
  }
  void OnCompletion(const io_uring_cqe& cqe) override {
    if (cqe.res == -EALREADY && tries_ > 0) {
      // Still running: try again shortly.
      EventLoop* loop = loop_;
      const IoCompletion* target = target_;
      int tries = tries_ - 1;
      loop->RunAfter(absl::Microseconds(200), [loop, target, tries] {
        (new CancelOp(loop, target, tries))->Submit();
      });
    }
    delete this;
  }

 private:
  EventLoop* loop_;
  const IoCompletion* target_;
  int tries_;
};

void EventLoop::Cancel(const IoCompletion* target) {
  // Synchronous cancel waits out a request that is running right now (no
  // -EALREADY race); its CQE then arrives as usual. It sees only submitted
  // requests: submit one prepared this turn first.
  io_uring_submit(&ring_);
  io_uring_sync_cancel_reg reg{};
  reg.addr = reinterpret_cast<__u64>(target);
  reg.timeout.tv_sec = 1;
  reg.timeout.tv_nsec = 0;
  int r = io_uring_register_sync_cancel(&ring_, &reg);
  if (r == 0 || r == -ENOENT) return;
  // Not supported (before 6.0), timed out or busy: cancel asynchronously,
  // retrying while the kernel says -EALREADY.
  (new CancelOp(this, target, 10000))->Submit();
}

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(
    EventLoopOptions options) {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  io_uring_params p{};
  int rc = -EINVAL;
  if (options.defer_taskrun && ProbeUringFeatures().defer_taskrun) {
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    rc = io_uring_queue_init_params(options.entries, &loop->ring_, &p);
    loop->defer_taskrun_ = rc == 0;
  }
  if (rc != 0) {
    p = {};
    rc = io_uring_queue_init_params(options.entries, &loop->ring_, &p);
  }
  if (rc != 0) return ErrnoStatus(-rc, "io_uring_queue_init");
  loop->ring_ok_ = true;
  loop->event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->event_fd_ < 0) return ErrnoStatus(errno, "eventfd");
  loop->wakeup_ = std::make_unique<Wakeup>(loop.get());
  // With SINGLE_ISSUER the kernel binds the ring to this (the creating)
  // thread: create the loop on the thread that will run it.
  return loop;
}

EventLoop::~EventLoop() {
  if (ring_ok_) io_uring_queue_exit(&ring_);
  if (event_fd_ >= 0) close(event_fd_);
}

bool EventLoop::InLoopThread() const {
  return thread_ == std::thread::id() || thread_ == std::this_thread::get_id();
}

void EventLoop::ArmWakeup() {
  if (wakeup_->armed_) return;
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_read(sqe, event_fd_, &wakeup_->value, sizeof(wakeup_->value),
                     0);
  io_uring_sqe_set_data(sqe, wakeup_.get());
  wakeup_->armed_ = true;
}

io_uring_sqe* EventLoop::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void EventLoop::Submit() { io_uring_submit(&ring_); }

void EventLoop::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = write(event_fd_, &one, sizeof(one));
}

bool EventLoop::stopped() const {
  return stop_requested_.load(std::memory_order_acquire);
}

namespace {
// The loop whose RunOnce() this thread is in (nullptr outside one).
thread_local const EventLoop* running_loop = nullptr;
}  // namespace

void EventLoop::Post(absl::AnyInvocable<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  // From inside this loop's RunOnce (a completion handler, a timer, a posted
  // function): no wake-up needed, RunOnce looks at posted_ before it waits.
  // This skips a write(2) and an eventfd completion per post, e.g. a
  // client's Submit from a reply callback.
  if (running_loop == this) return;
  wakeups_posted_.fetch_add(1, std::memory_order_relaxed);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = write(event_fd_, &one, sizeof(one));
}

void EventLoop::RunPosted() {
  std::vector<absl::AnyInvocable<void()>> fns;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    fns.swap(posted_);
  }
  for (auto& fn : fns) fn();
}

EventLoop::TimerId EventLoop::RunAfter(absl::Duration delay,
                                       absl::AnyInvocable<void()> fn) {
  TimerId id = next_timer_++;
  timers_.push({MonoNowNs() + absl::ToInt64Nanoseconds(delay), id});
  timer_fns_.emplace(id, std::move(fn));
  return id;
}

void EventLoop::CancelTimer(TimerId id) { timer_fns_.erase(id); }

int64_t EventLoop::NextTimerDelayNs() const {
  if (timers_.empty()) return -1;
  int64_t d = timers_.top().deadline_ns - MonoNowNs();
  return d < 0 ? 0 : d;
}

void EventLoop::RunTimers() {
  int64_t now = MonoNowNs();
  while (!timers_.empty() && timers_.top().deadline_ns <= now) {
    TimerId id = timers_.top().id;
    timers_.pop();
    auto it = timer_fns_.find(id);
    if (it == timer_fns_.end()) continue;  // cancelled
    absl::AnyInvocable<void()> fn = std::move(it->second);
    timer_fns_.erase(it);
    fn();
  }
}

int EventLoop::RunOnce(absl::Duration timeout) {
  if (thread_ == std::thread::id()) thread_ = std::this_thread::get_id();
  const EventLoop* const outer = std::exchange(running_loop, this);
  if (stop_requested_.load(std::memory_order_acquire)) stop_ = true;
  ArmWakeup();
  int64_t wait_ns = absl::ToInt64Nanoseconds(timeout);
  int64_t timer_ns = NextTimerDelayNs();
  if (timer_ns >= 0 && (wait_ns < 0 || timer_ns < wait_ns)) wait_ns = timer_ns;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    if (!posted_.empty()) wait_ns = 0;
  }
  io_uring_cqe* cqe = nullptr;
  if (wait_ns == 0) {
    io_uring_submit_and_get_events(&ring_);
  } else {
    __kernel_timespec ts{};
    __kernel_timespec* tsp = nullptr;
    if (wait_ns > 0) {
      ts.tv_sec = wait_ns / 1000000000;
      ts.tv_nsec = wait_ns % 1000000000;
      tsp = &ts;
    }
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
  }
  int handled = 0;
  io_uring_cqe* batch[64];
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, batch, 64);
    if (n == 0) break;
    // Copy first: handlers may submit, and the CQ slots must be released.
    io_uring_cqe copy[64];
    for (unsigned i = 0; i < n; ++i) copy[i] = *batch[i];
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) {
      if (copy[i].user_data != 0) {
        reinterpret_cast<IoCompletion*>(copy[i].user_data)
            ->OnCompletion(copy[i]);
      }
    }
    handled += static_cast<int>(n);
  }
  RunTimers();
  RunPosted();
  io_uring_submit(&ring_);
  running_loop = outer;
  return handled;
}

void EventLoop::Run() {
  stop_ = false;
  while (!stop_ && !stop_requested_.load(std::memory_order_acquire)) {
    RunOnce(absl::InfiniteDuration());
  }
  stop_requested_.store(false);
}

bool EventLoop::RunUntil(const std::function<bool()>& done,
                         absl::Duration timeout) {
  int64_t deadline = MonoNowNs() + absl::ToInt64Nanoseconds(timeout);
  while (!done()) {
    int64_t left = deadline - MonoNowNs();
    if (left <= 0) return done();
    RunOnce(absl::Nanoseconds(std::min<int64_t>(left, 10'000'000)));
  }
  return true;
}

absl::Status EventLoop::RegisterArena(iovec arena) {
  int rc = io_uring_register_buffers(&ring_, &arena, 1);
  if (rc != 0) return ErrnoStatus(-rc, "io_uring_register_buffers(arena)");
  arena_ = arena;
  return absl::OkStatus();
}

}  // namespace txbuf
