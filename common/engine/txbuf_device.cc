// Copyright the txbuf authors.
// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note

#include "common/engine/txbuf_device.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace txbuf {
namespace {

constexpr char kErrnoPayloadUrl[] = "type.txbuf/kmod-shim.errno";

// "ENOBUFS", or the number when libc does not know the name.
std::string ErrnoName(int errno_value) {
  const char* name = strerrorname_np(errno_value);
  return name != nullptr ? std::string(name) : absl::StrCat(errno_value);
}

// The statistics, size-prefixed (struct txbuf_stats in the UAPI header):
// this build's struct, fields the module does not have read 0.  A module
// from before TXBUF_IOC_STATS_LEN answers ENOTTY: then the 256-byte
// TXBUF_IOC_STATS_VER0.  0 or an errno value.
int QueryStats(int fd, txbuf_stats* st) {
  *st = txbuf_stats{};
  if (::ioctl(fd, TXBUF_IOC_STATS_LEN(sizeof(txbuf_stats)), st) >= 0) return 0;
  if (errno != ENOTTY) return errno;
  std::array<std::byte, 256> ver0{};
  if (::ioctl(fd, TXBUF_IOC_STATS_VER0, ver0.data()) != 0) return errno;
  std::memcpy(st, ver0.data(),
              std::min<size_t>(sizeof(txbuf_stats), TXBUF_STATS_SIZE_VER0));
  return 0;
}

}  // namespace

absl::Status DeviceErrnoStatus(int errno_value, absl::string_view context) {
  if (errno_value == 0) return absl::OkStatus();
  // Abseil maps EMSGSIZE to kUnknown; here it means "larger than the cap".
  absl::StatusCode code = errno_value == EMSGSIZE
                              ? absl::StatusCode::kOutOfRange
                              : absl::ErrnoToStatusCode(errno_value);
  absl::Status status(
      code, absl::StrCat(context, ": ", std::strerror(errno_value), " (",
                         ErrnoName(errno_value), ")"));
  status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::StrCat(errno_value)));
  return status;
}

int TxbufErrno(const absl::Status& status) {
  auto payload = status.GetPayload(kErrnoPayloadUrl);  // absl::optional<Cord>
  int value = 0;
  if (!payload.has_value() ||
      !absl::SimpleAtoi(static_cast<std::string>(*payload), &value)) {
    return 0;
  }
  return value;
}

absl::StatusOr<TxbufDevice> TxbufDevice::Open(const char* path) {
  int fd = ::open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return DeviceErrnoStatus(
          err, absl::StrCat("open ", path,
                            " (is the txbuf module loaded? see docs/KMOD.md)"));
    }
    return DeviceErrnoStatus(err, absl::StrCat("open ", path));
  }
  TxbufDevice dev(fd);
  // A txbuf device answers the statistics ioctl; anything else does not.
  txbuf_stats st{};
  if (int err = QueryStats(fd, &st); err != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is not a txbuf device: TXBUF_IOC_STATS_LEN failed: ",
        std::strerror(err), " (", ErrnoName(err), ")"));
  }
  return dev;
}

TxbufDevice::TxbufDevice(TxbufDevice&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

TxbufDevice& TxbufDevice::operator=(TxbufDevice&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

TxbufDevice::~TxbufDevice() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status TxbufDevice::Send(int sock_fd, uint64_t cookie, uint32_t flags,
                               absl::Span<const txbuf_seg> segs) {
  if (fd_ < 0) return absl::FailedPreconditionError("txbuf device is closed");
  return DeviceErrnoStatus(SendErrno(sock_fd, cookie, flags, segs),
                           "TXBUF_IOC_SEND");
}

int TxbufDevice::SendErrno(int sock_fd, uint64_t cookie, uint32_t flags,
                           absl::Span<const txbuf_seg> segs) {
  if (fd_ < 0) return EBADF;
  if (segs.size() > std::numeric_limits<uint32_t>::max()) return E2BIG;
  txbuf_send req{};
  req.sock_fd = sock_fd;
  req.flags = flags;
  req.cookie = cookie;
  req.segs = reinterpret_cast<uintptr_t>(segs.data());
  req.nr_segs = static_cast<uint32_t>(segs.size());
  while (::ioctl(fd_, TXBUF_IOC_SEND, &req) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

absl::StatusOr<size_t> TxbufDevice::ReadCompletions(
    absl::Span<txbuf_completion> out) {
  if (fd_ < 0) return absl::FailedPreconditionError("txbuf device is closed");
  if (out.empty()) return size_t{0};
  for (;;) {
    ssize_t n = ::read(fd_, out.data(), out.size() * sizeof(txbuf_completion));
    if (n >= 0) return static_cast<size_t>(n) / sizeof(txbuf_completion);
    if (errno == EAGAIN) return size_t{0};
    if (errno != EINTR)
      return DeviceErrnoStatus(errno, "read txbuf completions");
  }
}

absl::StatusOr<txbuf_stats> TxbufDevice::Stats() {
  if (fd_ < 0) return absl::FailedPreconditionError("txbuf device is closed");
  txbuf_stats st{};
  if (int err = QueryStats(fd_, &st); err != 0) {
    return DeviceErrnoStatus(err, "TXBUF_IOC_STATS_LEN");
  }
  return st;
}

absl::Status TxbufDevice::SetPinnedCap(uint64_t bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError("txbuf device is closed");
  if (::ioctl(fd_, TXBUF_IOC_SET_PINNED_CAP, &bytes) != 0) {
    return DeviceErrnoStatus(errno, "TXBUF_IOC_SET_PINNED_CAP");
  }
  return absl::OkStatus();
}

txbuf_seg TxbufDevice::Inline(const void* data, size_t len) {
  txbuf_seg s{};
  s.type = TXBUF_SEG_INLINE;
  s.addr = reinterpret_cast<uintptr_t>(data);
  s.len = len;
  return s;
}

txbuf_seg TxbufDevice::File(int fd, uint64_t offset, size_t len) {
  txbuf_seg s{};
  s.type = TXBUF_SEG_FILE;
  s.fd = fd;
  s.offset = offset;
  s.len = len;
  return s;
}

txbuf_seg TxbufDevice::User(const void* data, size_t len) {
  txbuf_seg s{};
  s.type = TXBUF_SEG_USER;
  s.addr = reinterpret_cast<uintptr_t>(data);
  s.len = len;
  return s;
}

}  // namespace txbuf
