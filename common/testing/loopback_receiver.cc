#include "common/testing/loopback_receiver.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <vector>

namespace txbuf::testing {

LoopbackReceiver::LoopbackReceiver(UniqueFd fd, ReceiverOptions options)
    : fd_(std::move(fd)), options_(options), paused_(options.start_paused) {
  thread_ = std::thread([this] { Run(); });
}

LoopbackReceiver::~LoopbackReceiver() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LoopbackReceiver::Pause() {
  std::lock_guard<std::mutex> l(mu_);
  paused_ = true;
}

void LoopbackReceiver::Resume() {
  {
    std::lock_guard<std::mutex> l(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void LoopbackReceiver::Vanish() {
  std::unique_lock<std::mutex> l(mu_);
  vanish_ = true;
  paused_ = false;
  cv_.notify_all();
  cv_.wait(l, [&] { return !fd_; });
}

uint64_t LoopbackReceiver::bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return sum_.bytes();
}

uint64_t LoopbackReceiver::checksum() const {
  std::lock_guard<std::mutex> l(mu_);
  return sum_.value();
}

std::string LoopbackReceiver::data() const {
  std::lock_guard<std::mutex> l(mu_);
  return data_;
}

bool LoopbackReceiver::WaitForBytes(uint64_t n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, absl::ToChronoNanoseconds(timeout),
                      [&] { return sum_.bytes() >= n; });
}

bool LoopbackReceiver::WaitForEof(absl::Duration timeout) const {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, absl::ToChronoNanoseconds(timeout),
                      [&] { return eof_.load(); });
}

void LoopbackReceiver::Run() {
  std::vector<char> buf(options_.read_size);
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || !paused_ || vanish_; });
      if (vanish_) {
        // A reset, not a FIN: the peer is gone with data unread.
        linger lg{1, 0};
        setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        fd_.reset();
        eof_ = true;
        cv_.notify_all();
        break;
      }
      if (stop_) break;
    }
    pollfd pfd{fd_.get(), POLLIN, 0};
    int pr = poll(&pfd, 1, 20);
    if (pr <= 0) continue;
    ssize_t r = recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    std::lock_guard<std::mutex> l(mu_);
    if (r <= 0) {
      eof_ = true;
      cv_.notify_all();
      break;
    }
    sum_.Update(buf.data(), static_cast<size_t>(r));
    if (options_.record) data_.append(buf.data(), static_cast<size_t>(r));
    cv_.notify_all();
  }
  // Keep the socket open until destruction so the sender sees a live peer
  // (unless Vanish() shut it down).
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || (vanish_ && fd_); });
    if (vanish_ && fd_) {
      linger lg{1, 0};
      setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      fd_.reset();
      cv_.notify_all();
      continue;
    }
    break;
  }
}

}  // namespace txbuf::testing
