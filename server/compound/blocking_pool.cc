#include "server/compound/blocking_pool.h"

#include <algorithm>
#include <utility>

namespace txbuf::server {

BlockingPool::BlockingPool(int threads) {
  threads = std::max(threads, 1);
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

BlockingPool::~BlockingPool() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void BlockingPool::Submit(absl::AnyInvocable<void() &&> job) {
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(job));
}

size_t BlockingPool::pending() const {
  absl::MutexLock l(&mu_);
  return queue_.size() + running_;
}

void BlockingPool::Run() {
  for (;;) {
    absl::AnyInvocable<void() &&> job;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stop_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    std::move(job)();
    absl::MutexLock l(&mu_);
    --running_;
  }
}

}  // namespace txbuf::server
