// raw_io.h: blocking whole-buffer socket I/O for the raw-TCP floor peer.
//
// Thread-safety: plain functions on caller-owned descriptors and memory.
#ifndef TXBUF_BENCH_TARGETS_RAW_RAW_IO_H_
#define TXBUF_BENCH_TARGETS_RAW_RAW_IO_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace txbuf::peers::raw {

// A page-aligned I/O buffer. Alignment matters here: on the AMD EPYC hosts
// the kernel's copies (rep movsb) between user buffers and page-cache or skb
// pages run at about half speed when the two are not equally aligned, and
// malloc'd buffers start 16 bytes into a page.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { Reserve(n); }
  // Grows (contents are not kept) to at least `n` bytes.
  void Reserve(size_t n) {
    if (n <= size_) return;
    void* p = nullptr;
    if (posix_memalign(&p, 4096, n) != 0) std::abort();
    data_.reset(static_cast<uint8_t*>(p));
    size_ = n;
  }
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

// Receives exactly `n` bytes. False on EOF or error (errno set; 0 at EOF).
inline bool RecvAll(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = 0;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Sends every byte of iov[0..iovcnt) (the array is modified). False on error.
inline bool SendAllV(int fd, iovec* iov, int iovcnt) {
  while (iovcnt > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    auto done = static_cast<size_t>(w);
    while (iovcnt > 0 && done >= iov->iov_len) {
      done -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + done;
      iov->iov_len -= done;
    }
  }
  return true;
}

}  // namespace txbuf::peers::raw

#endif  // TXBUF_BENCH_TARGETS_RAW_RAW_IO_H_
