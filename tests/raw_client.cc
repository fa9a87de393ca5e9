#include "tests/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "proto/auth.h"

namespace txbuf::testing {

absl::StatusOr<RawClient> RawClient::ConnectOnly(const std::string& host,
                                                 uint16_t port) {
  absl::StatusOr<UniqueFd> fd = ConnectTcp(host, port);
  if (!fd.ok()) return fd.status();
  RawClient c;
  c.fd_ = std::move(*fd);
  return c;
}

absl::StatusOr<RawClient> RawClient::Connect(const std::string& host,
                                             uint16_t port, int rcvbuf) {
  absl::StatusOr<UniqueFd> fd = ConnectTcp(host, port, rcvbuf);
  if (!fd.ok()) return fd.status();
  return WithHello(std::move(*fd));
}

absl::StatusOr<RawClient> RawClient::ConnectFrom(const std::string& source,
                                                 const std::string& host,
                                                 uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
      inet_pton(AF_INET, host.c_str(), &to.sin_addr) != 1) {
    return absl::InvalidArgumentError("ConnectFrom takes IPv4 addresses");
  }
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", source));
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("connect ", host, ":", port));
  }
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return WithHello(std::move(fd));
}

absl::StatusOr<RawClient> RawClient::WithHello(UniqueFd fd) {
  RawClient c;
  c.fd_ = std::move(fd);
  absl::StatusOr<std::pair<FrameHeader, std::string>> f = c.ReadFrame();
  if (!f.ok()) return f.status();
  if (f->first.type != FrameType::kHello ||
      !c.hello_.ParseFromString(f->second)) {
    return absl::InternalError("first frame is not a Hello");
  }
  return c;
}

absl::Status RawClient::SendBytes(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t r =
        send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "send");
    }
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

absl::Status RawClient::SendFrame(FrameType type, const std::string& envelope,
                                  const std::string& payload) {
  return SendBytes(EncodeFrame(type, envelope, payload));
}

absl::Status RawClient::SendRequest(const rpc::Request& req,
                                    const std::string& payload) {
  return SendFrame(FrameType::kRequest, req.SerializeAsString(), payload);
}

absl::Status RawClient::ReadExact(char* p, size_t n, int timeout_ms) {
  size_t done = 0;
  while (done < n) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr == 0) return absl::DeadlineExceededError("read timed out");
    if (pr < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    ssize_t r = recv(fd_.get(), p + done, n - done, 0);
    if (r == 0) return absl::UnavailableError("connection closed");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus(errno, "recv");
    }
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<FrameHeader, std::string>> RawClient::ReadFrame(
    int timeout_ms) {
  std::byte hdr[kFrameHeaderSize];
  if (absl::Status s =
          ReadExact(reinterpret_cast<char*>(hdr), sizeof(hdr), timeout_ms);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<FrameHeader> h = DecodeFrameHeader(
      hdr, {.max_envelope = 1 << 30, .max_payload = 1u << 31});
  if (!h.ok()) return h.status();
  std::string body(h->envelope_len + size_t{h->payload_len}, '\0');
  if (absl::Status s = ReadExact(body.data(), body.size(), timeout_ms);
      !s.ok()) {
    return s;
  }
  return std::make_pair(*h, std::move(body));
}

absl::StatusOr<RawReply> RawClient::ReadReply(int timeout_ms) {
  absl::StatusOr<std::pair<FrameHeader, std::string>> f = ReadFrame(timeout_ms);
  if (!f.ok()) return f.status();
  if (f->first.type != FrameType::kReply) {
    return absl::InternalError(absl::StrCat("expected a Reply frame, got type ",
                                            static_cast<int>(f->first.type)));
  }
  RawReply r;
  const std::string& body = f->second;
  if (!r.reply.ParseFromArray(body.data(),
                              static_cast<int>(f->first.envelope_len))) {
    return absl::InternalError("reply envelope does not parse");
  }
  r.payload = body.substr(f->first.envelope_len);
  return r;
}

absl::StatusOr<RawReply> RawClient::Call(const rpc::Request& req,
                                         const std::string& payload) {
  if (absl::Status s = SendRequest(req, payload); !s.ok()) return s;
  return ReadReply();
}

absl::StatusOr<rpc::AuthReply> RawClient::Authenticate(
    const std::string& secret, bool check_server_mac) {
  uint8_t nonce[32];
  RandomBytes(nonce);
  std::string cn(reinterpret_cast<char*>(nonce), sizeof(nonce));
  Sha256Digest mac = ClientAuthMac(secret, hello_.server_nonce(), cn);
  rpc::AuthRequest req;
  req.set_client_nonce(cn);
  req.set_mac(mac.data(), mac.size());
  if (absl::Status s =
          SendFrame(FrameType::kAuthRequest, req.SerializeAsString());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::pair<FrameHeader, std::string>> f = ReadFrame();
  if (!f.ok()) return f.status();
  rpc::AuthReply r;
  if (f->first.type != FrameType::kAuthReply || !r.ParseFromString(f->second)) {
    return absl::InternalError("expected an AuthReply");
  }
  if (check_server_mac && r.status() == rpc::STATUS_OK) {
    if (!AuthMacEquals(ServerAuthMac(secret, cn, hello_.server_nonce()),
                       r.mac())) {
      return absl::UnauthenticatedError("server proof does not match");
    }
  }
  return r;
}

bool RawClient::WaitClosed(int timeout_ms) {
  char buf[65536];
  for (;;) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr <= 0) return false;
    ssize_t r = recv(fd_.get(), buf, sizeof(buf), 0);
    if (r == 0) return true;
    if (r < 0) return errno != EAGAIN && errno != EINTR;
  }
}

rpc::Request MakeRequest(uint64_t id) {
  rpc::Request r;
  r.set_id(id);
  return r;
}

rpc::Op* AddPutRoot(rpc::Request& r, const std::string& export_name) {
  rpc::Op* op = r.add_ops();
  op->mutable_putrootfh()->set_export_name(export_name);
  return op;
}

rpc::Op* AddLookup(rpc::Request& r, const std::string& path) {
  rpc::Op* op = r.add_ops();
  op->mutable_lookup()->set_path(path);
  return op;
}

}  // namespace txbuf::testing
