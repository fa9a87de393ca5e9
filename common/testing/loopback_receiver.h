// testing/loopback_receiver.h: the far end of a test connection.
//
// A thread that reads a socket: it can pause (to fill windows and keep
// zero-copy data unacknowledged), resume, record every byte or only a
// checksum, and vanish (close with a reset). For tests only.
//
// Thread-safety: all methods are thread-safe.
//
// Example:
//   auto [client, server] = txbuf::LoopbackTcpPair().value();
//   txbuf::testing::LoopbackReceiver rx(std::move(server), {.record = true});
//   ... send on `client` ...
//   ASSERT_TRUE(rx.WaitForBytes(n, absl::Seconds(10)));
//   EXPECT_EQ(rx.data(), expected);
#ifndef TXBUF_COMMON_TESTING_LOOPBACK_RECEIVER_H_
#define TXBUF_COMMON_TESTING_LOOPBACK_RECEIVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "common/socket_util.h"

namespace txbuf::testing {

struct ReceiverOptions {
  bool record = false;  // keep every byte (else only the checksum).
  bool start_paused = false;
  size_t read_size = 256 * 1024;
};

// FNV-1a 64 over a byte stream, incrementally.
class StreamChecksum {
 public:
  void Update(const void* p, size_t n) {
    auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h_ = (h_ ^ b[i]) * 0x100000001b3ULL;
    bytes_ += n;
  }
  uint64_t value() const { return h_; }
  uint64_t bytes() const { return bytes_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
  uint64_t bytes_ = 0;
};

class LoopbackReceiver {
 public:
  LoopbackReceiver(UniqueFd fd, ReceiverOptions options);
  ~LoopbackReceiver();

  void Pause();
  void Resume();
  // Closes the socket at once with a reset (SO_LINGER 0): the peer vanishes.
  void Vanish();

  uint64_t bytes() const;
  uint64_t checksum() const;
  std::string data() const;
  bool eof() const { return eof_.load(); }
  // Waits until at least `n` bytes arrived.
  bool WaitForBytes(uint64_t n, absl::Duration timeout) const;
  bool WaitForEof(absl::Duration timeout) const;

 private:
  void Run();

  UniqueFd fd_;
  ReceiverOptions options_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool paused_;
  bool stop_ = false;
  bool vanish_ = false;
  StreamChecksum sum_;
  std::string data_;
  std::atomic<bool> eof_{false};
  std::thread thread_;
};

}  // namespace txbuf::testing

#endif  // TXBUF_COMMON_TESTING_LOOPBACK_RECEIVER_H_
