// socket_util.h: small TCP socket helpers with absl::Status errors.
//
// File descriptors are owned by `UniqueFd` (closes on destruction).
//
// Thread-safety: thread-safe (no shared state).
//
// Example:
//   absl::StatusOr<txbuf::UniqueFd> lfd = txbuf::ListenTcp("127.0.0.1", 0);
//   uint16_t port = txbuf::LocalPort(lfd->get()).value();
#ifndef TXBUF_COMMON_SOCKET_UTIL_H_
#define TXBUF_COMMON_SOCKET_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// absl::Status for a failed syscall: `what` plus strerror(err), with a code
// close to the errno's meaning (ENOENT: NotFound, ENOSPC: ResourceExhausted,
// EFBIG: OutOfRange, ...) and the errno itself kept as a payload (ErrnoOf),
// so that callers further up can still tell EFBIG from ENOSPC from EIO.
//
// Example:
//   int fd = ::open(path, O_RDONLY | O_CLOEXEC);
//   if (fd < 0) return txbuf::ErrnoStatus(errno, "open");
absl::Status ErrnoStatus(int err, absl::string_view what);

// The errno a status was made from by ErrnoStatus (its payload), or 0 if it
// carries none (e.g. OK, or a status made some other way).
//
// Example:
//   if (txbuf::ErrnoOf(s) == ENOSPC) return rpc::STATUS_NOSPC;
int ErrnoOf(const absl::Status& s);

// txbufd's well-known port: where it listens by default, and where txbuf
// and txbuf-bench connect when a server address names no port. 7390 is
// unassigned in IANA's Service Name and Transport Protocol Port Number
// Registry (TCP and UDP), below Linux's ephemeral range (32768-60999),
// and not 2049 (NFS). docs/OPERATING.md, "The default port".
inline constexpr uint16_t kDefaultPort = 7390;

// Splits "host:port" (IPv6 as "[::1]:port").
absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(
    absl::string_view host_port);

// Splits "host[:port]": "host", "[::1]" (no port) get `default_port`;
// "host:port" and "[::1]:port" as above. A bare IPv6 address must be
// written in brackets.
//
// Example:
//   SplitHostPort("files.example", kDefaultPort)  // {"files.example", 7390}
absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(
    absl::string_view host_port, uint16_t default_port);

// A listening TCP socket on host:port (port 0 picks one). SO_REUSEADDR is
// set; SO_REUSEPORT too when `reuse_port`.
absl::StatusOr<UniqueFd> ListenTcp(const std::string& host, uint16_t port,
                                   bool reuse_port = false, int backlog = 1024);
// A blocking TCP connection to host:port with TCP_NODELAY. A `rcvbuf` above
// 0 sets SO_RCVBUF before connecting (fixing the receive window, as a slow
// or small peer would).
absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint16_t port,
                                    int rcvbuf = 0);
// The local port of a bound socket.
absl::StatusOr<uint16_t> LocalPort(int fd);
// The peer of a connected socket as "HOST:PORT" ("[HOST]:PORT" for IPv6),
// for messages; "?" if it has none (e.g. already reset).
//
// Example:
//   LOG(INFO) << "connection from " << txbuf::PeerAddress(fd);
std::string PeerAddress(int fd);

// A connected pair over loopback TCP: {client, server side}, both blocking,
// TCP_NODELAY.
absl::StatusOr<std::pair<UniqueFd, UniqueFd>> LoopbackTcpPair();

absl::Status SetNonBlocking(int fd, bool on = true);
absl::Status SetIntSockOpt(int fd, int level, int name, int value);

}  // namespace txbuf

#endif  // TXBUF_COMMON_SOCKET_UTIL_H_
