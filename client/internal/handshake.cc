#include "client/internal/handshake.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/status.h"
#include "common/crypto.h"
#include "proto/auth.h"

namespace txbuf::client::internal {
namespace {

// Milliseconds left until `deadline` for poll(), at least 0.
int PollMs(absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60'000));
}

// Waits for `events` on `fd` until `deadline`. DeadlineExceeded-like
// Unavailable on timeout.
absl::Status WaitFd(int fd, short events, absl::Time deadline,
                    absl::string_view what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int ms = PollMs(deadline);
    int r = poll(&p, 1, ms);
    if (r > 0) return absl::OkStatus();
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(errno, "poll");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out waiting for ", what));
    }
  }
}

absl::Status SendAll(int fd, absl::string_view bytes, absl::Time deadline) {
  while (!bytes.empty()) {
    ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (absl::Status s = WaitFd(fd, POLLOUT, deadline, "the socket");
          !s.ok()) {
        return s;
      }
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("sending to the server: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status SendFrame(int fd, FrameType type,
                       const google::protobuf::MessageLite& env,
                       absl::Time deadline) {
  return SendAll(fd, EncodeFrame(type, env), deadline);
}

// The next frame: its type and envelope bytes (payload ignored).
absl::StatusOr<std::pair<FrameType, std::string>> ReadFrame(
    int fd, SlicingFrameReader& reader, absl::Time deadline,
    absl::string_view what) {
  for (;;) {
    if (std::optional<absl::StatusOr<Frame>> f = reader.Next()) {
      if (!f->ok()) {
        return absl::DataLossError(absl::StrCat(
            "malformed frame from the server: ", f->status().message()));
      }
      const Frame& fr = **f;
      return std::make_pair(
          fr.header.type,
          std::string(reinterpret_cast<const char*>(fr.envelope.data()),
                      fr.envelope.size()));
    }
    absl::Span<std::byte> buf = reader.WritableSpan(4096);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      reader.Commit(static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(absl::StrCat(
          "the server closed the connection while we waited for ", what));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (absl::Status s = WaitFd(fd, POLLIN, deadline, what); !s.ok()) {
        return s;
      }
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("reading from the server: ", strerror(errno)));
  }
}

// A Reply frame where a setup frame was expected: the server refused us
// (e.g. Reply{status AUTH}).
absl::Status UnexpectedReply(absl::string_view envelope,
                             absl::string_view expected) {
  rpc::Reply r;
  if (r.ParseFromArray(envelope.data(), static_cast<int>(envelope.size())) &&
      r.status() != rpc::STATUS_OK) {
    return StatusFromRpc(r.status(), r.error(),
                         "server refused the connection");
  }
  return absl::DataLossError(
      absl::StrCat("protocol error: the server sent a reply where ", expected,
                   " was expected"));
}

}  // namespace

absl::StatusOr<UniqueFd> ConnectWithDeadline(const std::string& host,
                                             uint16_t port,
                                             absl::Time deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string service = absl::StrCat(port);
  std::string where = absl::StrCat(host, ":", port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  }
  absl::Status last =
      absl::UnavailableError(absl::StrCat("connect ", where, ": no address"));
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(socket(ai->ai_family,
                       ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
      last = ErrnoStatus(errno, "socket");
      continue;
    }
    int r = connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      absl::Status w =
          WaitFd(fd.get(), POLLOUT, deadline, absl::StrCat("connect ", where));
      if (!w.ok()) {
        last = w;  // DeadlineExceeded: the same for any other address.
        if (absl::IsDeadlineExceeded(w)) break;
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        r = -1;
      } else {
        r = 0;
      }
    }
    if (r != 0) {
      last = absl::UnavailableError(
          absl::StrCat("connect ", where, ": ", strerror(errno)));
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return last;
}

absl::StatusOr<Handshake> ConnectAndHandshake(
    const std::string& host, uint16_t port,
    const std::optional<std::string>& secret, absl::Time deadline,
    const FrameLimits& reply_limits) {
  absl::StatusOr<UniqueFd> fd = ConnectWithDeadline(host, port, deadline);
  if (!fd.ok()) return fd.status();
  Handshake hs{std::move(*fd), SlicingFrameReader(reply_limits), {}};
  int s = hs.fd.get();

  absl::StatusOr<std::pair<FrameType, std::string>> f =
      ReadFrame(s, hs.reader, deadline, "the server's Hello");
  if (!f.ok()) return f.status();
  if (f->first == FrameType::kReply) {
    return UnexpectedReply(f->second, "Hello");
  }
  if (f->first != FrameType::kHello || !hs.hello.ParseFromString(f->second)) {
    return absl::DataLossError(
        absl::StrFormat("protocol error: the server's first frame (type %d) "
                        "is not a valid Hello",
                        static_cast<int>(f->first)));
  }
  if (hs.hello.version() != 1) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the server speaks protocol version %d; this client speaks 1",
        hs.hello.version()));
  }
  if (!hs.hello.auth_required()) return hs;

  if (!secret.has_value() || secret->empty()) {
    return absl::UnauthenticatedError(
        "the server requires authentication and no token was given (use a "
        "token file)");
  }
  if (hs.hello.server_nonce().size() != kAuthNonceSize) {
    return absl::DataLossError(
        absl::StrFormat("protocol error: the server nonce has %d bytes, not %d",
                        hs.hello.server_nonce().size(), kAuthNonceSize));
  }
  std::string client_nonce(kAuthNonceSize, '\0');
  RandomBytes(
      {reinterpret_cast<uint8_t*>(client_nonce.data()), client_nonce.size()});
  Sha256Digest mac =
      ClientAuthMac(*secret, hs.hello.server_nonce(), client_nonce);
  rpc::AuthRequest req;
  req.set_client_nonce(client_nonce);
  req.set_mac(mac.data(), mac.size());
  if (absl::Status st = SendFrame(s, FrameType::kAuthRequest, req, deadline);
      !st.ok()) {
    return st;
  }
  f = ReadFrame(s, hs.reader, deadline, "the server's AuthReply");
  if (!f.ok()) {
    if (absl::IsUnavailable(f.status())) {
      return absl::UnauthenticatedError(
          absl::StrCat("authentication failed: ", f.status().message()));
    }
    return f.status();
  }
  if (f->first == FrameType::kReply) {
    return UnexpectedReply(f->second, "AuthReply");
  }
  rpc::AuthReply rep;
  if (f->first != FrameType::kAuthReply || !rep.ParseFromString(f->second)) {
    return absl::DataLossError(
        "protocol error: the server's answer to AuthRequest is not a valid "
        "AuthReply");
  }
  if (rep.status() != rpc::STATUS_OK) {
    return absl::UnauthenticatedError(
        absl::StrCat("authentication refused by the server: ",
                     rep.error().empty() ? "wrong token" : rep.error(), " [",
                     RpcStatusName(rep.status()), "]"));
  }
  if (!AuthMacEquals(
          ServerAuthMac(*secret, client_nonce, hs.hello.server_nonce()),
          rep.mac())) {
    return absl::UnauthenticatedError(
        "the server failed to prove it knows the token (its AuthReply mac is "
        "wrong): not the server we meant, or a different token");
  }
  return hs;
}

}  // namespace txbuf::client::internal
