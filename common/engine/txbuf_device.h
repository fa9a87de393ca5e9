// Copyright the txbuf authors.
// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note
//
// -----------------------------------------------------------------------------
// File: common/engine/txbuf_device.h
// -----------------------------------------------------------------------------
//
// The user-space side of the txbuf kernel module's device protocol: a small
// C++ handle on /dev/txbuf.  The module sends a whole compound message (a
// list of segments: bytes it copies, page-cache ranges of a file, pinned user
// memory) on a connected TCP socket with one kernel sendmsg() and one
// destructor, and queues one completion record per accepted message, which
// this class reads.  See docs/KMOD.md for the protocol, the errno table and
// the limits, and kmod-shim/include/uapi/linux/txbuf.h for the structures.
//
// This header depends only on libc, the UAPI header (kmod-shim/include/)
// and Abseil. The `kmod` engine (kmod_engine.h) is its user.
//
// Thread-safety: thread-compatible object over a thread-safe device.  Send(),
// ReadCompletions(), Stats() and SetPinnedCap() may be called concurrently on
// one TxbufDevice (the kernel serializes them; concurrent readers each get
// distinct records).  Moving, move-assigning or destroying the object must
// not race with any call on it.
//
// Example (an engine on an event loop):
//
//   absl::StatusOr<txbuf::TxbufDevice> dev = txbuf::TxbufDevice::Open();
//   if (!dev.ok()) return dev.status();  // NotFound: module not loaded
//   loop.WatchReadable(dev->fd(), ...);  // EPOLLIN when records are ready
//
//   const txbuf_seg segs[] = {
//       txbuf::TxbufDevice::Inline(header, header_len),    // copied now
//       txbuf::TxbufDevice::File(file_fd, offset, length), // page cache
//       txbuf::TxbufDevice::User(payload, payload_len),    // pinned
//   };
//   absl::Status s = dev->Send(sock_fd, /*cookie=*/id, /*flags=*/0, segs);
//   if (txbuf::TxbufErrno(s) == ENOBUFS) { /* over the pinned cap: wait */ }
//
//   // Later, when the fd is readable:
//   txbuf_completion recs[64];
//   absl::StatusOr<size_t> n = dev->ReadCompletions(absl::MakeSpan(recs));
//   for (size_t i = 0; n.ok() && i < *n; ++i) {
//     // recs[i].cookie == id: the kernel let go of every byte of that
//     // message; status 0 or -errno, bytes, latency_ns, flags.
//   }

#ifndef TXBUF_COMMON_ENGINE_TXBUF_DEVICE_H_
#define TXBUF_COMMON_ENGINE_TXBUF_DEVICE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "kmod-shim/include/uapi/linux/txbuf.h"

namespace txbuf {

// The default device path.
inline constexpr char kTxbufDevicePath[] = "/dev/txbuf";

// DeviceErrnoStatus()
//
// Maps an errno value to an absl::Status the way every function of this file
// does: the code from absl::ErrnoToStatusCode() (ENOENT -> NotFound, EBADF ->
// FailedPrecondition, EINVAL -> InvalidArgument, ENOBUFS -> ResourceExhausted,
// EAGAIN -> Unavailable, ...; EMSGSIZE -> OutOfRange), the message "<context>:
// <strerror> (<ENAME>)", and the errno itself as a payload that TxbufErrno()
// returns.  0 gives OK.
absl::Status DeviceErrnoStatus(int errno_value, absl::string_view context);

// TxbufErrno()
//
// The errno behind a status returned by this file (for example ENOBUFS: the
// file descriptor's pinned-bytes cap is reached, retry after completions;
// EMSGSIZE: the message alone is larger than the cap), or 0 for OK and for
// statuses that carry no errno.
int TxbufErrno(const absl::Status& status);

// TxbufDevice
//
// An open /dev/txbuf.  Move-only; the destructor closes the file descriptor.
// Closing with messages in flight is safe: the module finishes a message that
// is partly on the wire, cancels those that have not started, and drops
// their completion records.
class TxbufDevice {
 public:
  // Open()
  //
  // Opens the device (O_RDWR | O_NONBLOCK | O_CLOEXEC) and checks that it is
  // a txbuf device.  NotFound when `path` does not exist (the module is not
  // loaded); FailedPrecondition when it is not a txbuf device; other errno
  // statuses as DeviceErrnoStatus().
  static absl::StatusOr<TxbufDevice> Open(const char* path = kTxbufDevicePath);

  TxbufDevice(TxbufDevice&& other) noexcept;
  TxbufDevice& operator=(TxbufDevice&& other) noexcept;
  TxbufDevice(const TxbufDevice&) = delete;
  TxbufDevice& operator=(const TxbufDevice&) = delete;
  ~TxbufDevice();

  // Send()
  //
  // One TXBUF_IOC_SEND: sends `segs`, in order, as one message on the
  // connected TCP socket `sock_fd`.  `cookie` comes back in the completion;
  // `flags` is 0 or one of TXBUF_SEND_STAGE_SMALL / TXBUF_SEND_REF_SMALL.
  //
  // OK means accepted: exactly one completion with `cookie` will be read
  // from this device later (its status says whether the send succeeded).
  // INLINE bytes have been copied when Send() returns; FILE ranges and USER
  // memory must stay unchanged until the completion.  Messages on one socket
  // go out in the order of their Send() calls, whichever device fd sent them.
  //
  // An error means nothing was sent and no completion will come; the errno
  // (TxbufErrno()) is one of docs/KMOD.md's table, e.g. EBADF, ENOTSOCK,
  // EPROTONOSUPPORT, ENOTCONN, EINVAL, EFAULT, E2BIG, EOVERFLOW, EMSGSIZE,
  // ENOBUFS, ENOMEM.
  absl::Status Send(int sock_fd, uint64_t cookie, uint32_t flags,
                    absl::Span<const txbuf_seg> segs);

  // SendErrno()
  //
  // Send(), with the errno itself as the result (0: accepted), for the
  // engine that must tell ENOBUFS (wait for completions) from the rest
  // without a status in between.
  int SendErrno(int sock_fd, uint64_t cookie, uint32_t flags,
                absl::Span<const txbuf_seg> segs);

  // ReadCompletions()
  //
  // Non-blocking: fills `out` with as many ready completion records as fit
  // and returns how many (0 when none is ready or `out` is empty).  Wait for
  // EPOLLIN on fd() to know when records are ready.
  absl::StatusOr<size_t> ReadCompletions(absl::Span<txbuf_completion> out);

  // Stats()
  //
  // TXBUF_IOC_STATS_LEN(sizeof(txbuf_stats)): the module's global counters
  // and this fd's.  Size-prefixed: fields this build knows and the module
  // does not (an older module) read 0; a module from before the
  // size-prefixed ABI is asked with TXBUF_IOC_STATS_VER0.
  absl::StatusOr<txbuf_stats> Stats();

  // SetPinnedCap()
  //
  // TXBUF_IOC_SET_PINNED_CAP: this fd's pinned-bytes cap (> 0, at most the
  // module's max_pinned_per_fd).  InvalidArgument (EINVAL) otherwise.
  absl::Status SetPinnedCap(uint64_t bytes);

  // The device file descriptor (for epoll), or -1 after a move.
  int fd() const { return fd_; }

  // Segment builders.
  static txbuf_seg Inline(const void* data, size_t len);
  static txbuf_seg File(int fd, uint64_t offset, size_t len);
  static txbuf_seg User(const void* data, size_t len);

 private:
  explicit TxbufDevice(int fd) : fd_(fd) {}

  int fd_ = -1;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_TXBUF_DEVICE_H_
