#include "common/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace txbuf {

namespace {

// The payload of ErrnoStatus: the errno in decimal.
constexpr absl::string_view kErrnoPayload = "txbuf/errno";

absl::Status ErrnoStatusCode(int err, const std::string& msg) {
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case EINVAL:
    case EBADF:
    case ENOTSOCK:
      return absl::InvalidArgumentError(msg);
    case ENOMEM:
    case ENOBUFS:
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EFBIG:
      return absl::OutOfRangeError(msg);
    case EAGAIN:
    case ETIMEDOUT:
      return absl::DeadlineExceededError(msg);
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
    case ECONNABORTED:
      return absl::UnavailableError(msg);
    case ECANCELED:
      return absl::CancelledError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

absl::Status ErrnoStatus(int err, absl::string_view what) {
  absl::Status s =
      ErrnoStatusCode(err, absl::StrCat(what, ": ", std::strerror(err)));
  if (!s.ok()) s.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(err)));
  return s;
}

int ErrnoOf(const absl::Status& s) {
  const auto p = s.GetPayload(kErrnoPayload);
  int err = 0;
  if (!p.has_value() || !absl::SimpleAtoi(std::string(*p), &err)) return 0;
  return err;
}

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(
    absl::string_view hp) {
  size_t colon = hp.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected HOST:PORT, got '", hp, "'"));
  }
  absl::string_view host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(hp.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", hp, "'"));
  }
  std::string host_str(host);
  return std::make_pair(std::move(host_str), static_cast<uint16_t>(port));
}

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(
    absl::string_view hp, uint16_t default_port) {
  const bool bracketed = !hp.empty() && hp.front() == '[' && hp.back() == ']';
  if (bracketed || (!hp.empty() && hp.find(':') == absl::string_view::npos)) {
    absl::string_view host = bracketed ? hp.substr(1, hp.size() - 2) : hp;
    if (host.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected HOST[:PORT], got '", hp, "'"));
    }
    return std::make_pair(std::string(host), default_port);
  }
  return SplitHostPort(hp);
}

namespace {

absl::StatusOr<addrinfo*> Resolve(const std::string& host, uint16_t port,
                                  bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                       &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve '", host, "': ", gai_strerror(rc)));
  }
  return res;
}

}  // namespace

absl::StatusOr<UniqueFd> ListenTcp(const std::string& host, uint16_t port,
                                   bool reuse_port, int backlog) {
  absl::StatusOr<addrinfo*> res = Resolve(host, port, true);
  if (!res.ok()) return res.status();
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* ai = *res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0));
    if (!fd) {
      last = ErrnoStatus(errno, "socket");
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port) {
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoStatus(errno, absl::StrCat("bind ", host, ":", port));
      continue;
    }
    if (listen(fd.get(), backlog) != 0) {
      last = ErrnoStatus(errno, "listen");
      continue;
    }
    freeaddrinfo(*res);
    return fd;
  }
  freeaddrinfo(*res);
  return last;
}

absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint16_t port,
                                    int rcvbuf) {
  absl::StatusOr<addrinfo*> res = Resolve(host, port, false);
  if (!res.ok()) return res.status();
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* ai = *res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0));
    if (!fd) {
      last = ErrnoStatus(errno, "socket");
      continue;
    }
    if (rcvbuf > 0) {
      setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoStatus(errno, absl::StrCat("connect ", host, ":", port));
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(*res);
    return fd;
  }
  freeaddrinfo(*res);
  return last;
}

absl::StatusOr<uint16_t> LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  if (ss.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return "?";
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(in6->sin6_port));
  }
  return "?";
}

absl::StatusOr<std::pair<UniqueFd, UniqueFd>> LoopbackTcpPair() {
  absl::StatusOr<UniqueFd> lfd = ListenTcp("127.0.0.1", 0, false, 4);
  if (!lfd.ok()) return lfd.status();
  absl::StatusOr<uint16_t> port = LocalPort(lfd->get());
  if (!port.ok()) return port.status();
  absl::StatusOr<UniqueFd> c = ConnectTcp("127.0.0.1", *port);
  if (!c.ok()) return c.status();
  UniqueFd s(accept4(lfd->get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!s) return ErrnoStatus(errno, "accept");
  int one = 1;
  setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return std::make_pair(std::move(*c), std::move(s));
}

absl::Status SetNonBlocking(int fd, bool on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return ErrnoStatus(errno, "fcntl(F_GETFL)");
  fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, fl) != 0) return ErrnoStatus(errno, "fcntl(F_SETFL)");
  return absl::OkStatus();
}

absl::Status SetIntSockOpt(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return ErrnoStatus(errno, "setsockopt");
  }
  return absl::OkStatus();
}

}  // namespace txbuf
