#include "client/testing/fake_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "proto/auth.h"

namespace txbuf::client::testing {

// --- Conn
// ---------------------------------------------------------------------

absl::Status FakeServer::Conn::SendRaw(absl::string_view bytes) {
  absl::MutexLock l(&mu_);
  if (!fd_ || shut_) return absl::UnavailableError("connection closed");
  while (!bytes.empty()) {
    ssize_t n = send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "fake server send");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FakeServer::Conn::SendFrame(FrameType type,
                                         absl::string_view envelope,
                                         absl::string_view payload) {
  return SendRaw(EncodeFrame(type, envelope, payload));
}

absl::Status FakeServer::Conn::SendReply(const rpc::Reply& reply,
                                         absl::string_view payload) {
  return SendFrame(FrameType::kReply, reply.SerializeAsString(), payload);
}

void FakeServer::Conn::Close() {
  absl::MutexLock l(&mu_);
  if (fd_ && !shut_) shutdown(fd_.get(), SHUT_RDWR);
  shut_ = true;
}

void FakeServer::Conn::Reset() {
  absl::MutexLock l(&mu_);
  if (fd_ && !shut_) {
    linger lg{1, 0};
    setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    shutdown(fd_.get(), SHUT_RDWR);
  }
  shut_ = true;
}

bool FakeServer::Conn::closed() const {
  absl::MutexLock l(&mu_);
  return shut_ || !fd_;
}

// --- FakeServer
// ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<FakeServer>> FakeServer::Start(
    FakeServerOptions options, Handler handler) {
  std::unique_ptr<FakeServer> s(
      new FakeServer(std::move(options), std::move(handler)));
  absl::StatusOr<UniqueFd> l = ListenTcp("127.0.0.1", 0);
  if (!l.ok()) return l.status();
  s->listen_ = std::move(*l);
  absl::StatusOr<uint16_t> port = LocalPort(s->listen_.get());
  if (!port.ok()) return port.status();
  s->port_ = *port;
  s->accept_thread_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

FakeServer::~FakeServer() {
  stopping_ = true;
  shutdown(listen_.get(), SHUT_RDWR);  // wakes accept()
  if (accept_thread_.joinable()) accept_thread_.join();
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    for (const ConnPtr& c : conns_) c->Close();
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void FakeServer::AcceptLoop() {
  for (;;) {
    int fd = accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;  // shut down
    }
    if (stopping_) {
      close(fd);
      return;
    }
    absl::MutexLock l(&mu_);
    auto conn =
        ConnPtr(new Conn(static_cast<int>(conns_.size()), UniqueFd(fd)));
    conns_.push_back(conn);
    threads_.emplace_back([this, conn, fd] { Serve(conn, fd); });
  }
}

void FakeServer::Serve(ConnPtr conn, int fd) {
  auto finish = [&conn] {
    absl::MutexLock l(&conn->mu_);
    conn->shut_ = true;
    conn->fd_.reset();
  };
  std::string server_nonce(32, '\0');
  RandomBytes({reinterpret_cast<uint8_t*>(server_nonce.data()), 32});
  bool authed = !options_.token.has_value();
  if (!options_.silent) {
    rpc::Hello hello;
    hello.set_version(options_.version);
    hello.set_auth_required(options_.token.has_value());
    hello.set_server_nonce(server_nonce);
    hello.set_max_envelope(options_.max_envelope);
    hello.set_max_payload(options_.max_payload);
    hello.set_max_ops(options_.max_ops);
    hello.set_max_read(options_.max_read);
    conn->SendFrame(FrameType::kHello, hello.SerializeAsString()).IgnoreError();
  }
  FrameReader reader({.max_envelope = options_.max_envelope,
                      .max_payload = options_.max_payload});
  for (;;) {
    absl::Span<std::byte> buf = reader.WritableSpan(64 * 1024);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reader.Commit(static_cast<size_t>(n));
    bool stop = false;
    while (!stop) {
      std::optional<absl::StatusOr<Frame>> f = reader.Next();
      if (!f.has_value()) break;
      if (!f->ok()) {
        rpc::Reply r;
        r.set_status(absl::IsResourceExhausted(f->status())
                         ? rpc::STATUS_TOOBIG
                         : rpc::STATUS_BADXDR);
        r.set_error(f->status().message().data(), f->status().message().size());
        conn->SendReply(r).IgnoreError();
        stop = true;
        break;
      }
      const Frame& fr = **f;
      absl::string_view env(reinterpret_cast<const char*>(fr.envelope.data()),
                            fr.envelope.size());
      absl::string_view payload(
          reinterpret_cast<const char*>(fr.payload.data()), fr.payload.size());
      if (fr.header.type == FrameType::kAuthRequest && !authed &&
          options_.token.has_value()) {
        rpc::AuthRequest req;
        rpc::AuthReply rep;
        bool ok = req.ParseFromArray(env.data(), static_cast<int>(env.size()));
        Sha256Digest want{};
        if (ok) {
          want =
              ClientAuthMac(*options_.token, server_nonce, req.client_nonce());
          ok = AuthMacEquals(want, req.mac());
        }
        if (!ok) {
          ++auth_failed_;
          rep.set_status(rpc::STATUS_AUTH);
          rep.set_error("wrong token");
          conn->SendFrame(FrameType::kAuthReply, rep.SerializeAsString())
              .IgnoreError();
          stop = true;
          break;
        }
        ++auth_ok_;
        authed = true;
        std::string secret = options_.bad_server_mac
                                 ? std::string("not the secret")
                                 : *options_.token;
        Sha256Digest mac =
            ServerAuthMac(secret, req.client_nonce(), server_nonce);
        rep.set_status(rpc::STATUS_OK);
        rep.set_mac(mac.data(), mac.size());
        conn->SendFrame(FrameType::kAuthReply, rep.SerializeAsString())
            .IgnoreError();
        continue;
      }
      if (fr.header.type != FrameType::kRequest) {
        rpc::Reply r;
        r.set_status(rpc::STATUS_BADXDR);
        r.set_error("unexpected frame type");
        conn->SendReply(r).IgnoreError();
        stop = true;
        break;
      }
      rpc::Request req;
      if (!req.ParseFromArray(env.data(), static_cast<int>(env.size()))) {
        rpc::Reply r;
        r.set_status(rpc::STATUS_BADXDR);
        r.set_error("request envelope does not parse");
        conn->SendReply(r).IgnoreError();
        continue;
      }
      if (!authed) {
        rpc::Reply r;
        r.set_id(req.id());
        r.set_status(rpc::STATUS_AUTH);
        r.set_error("not authenticated");
        conn->SendReply(r).IgnoreError();
        stop = true;
        break;
      }
      {
        absl::MutexLock l(&mu_);
        received_.push_back(
            {conn->index(), req, {payload.data(), payload.size()}});
      }
      handler_(conn, req, payload);
      if (conn->closed()) {  // the handler dropped the connection.
        stop = true;
        break;
      }
    }
    if (stop) break;
  }
  finish();
}

std::vector<FakeServer::Received> FakeServer::received() const {
  absl::MutexLock l(&mu_);
  return received_;
}

bool FakeServer::WaitForRequests(size_t n, absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  struct Args {
    const FakeServer* s;
    size_t n;
  } args{this, n};
  return mu_.AwaitWithTimeout(absl::Condition(
                                  +[](Args* a) {
                                    a->s->mu_.AssertHeld();
                                    return a->s->received_.size() >= a->n;
                                  },
                                  &args),
                              timeout);
}

int FakeServer::connections() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(conns_.size());
}

std::vector<FakeServer::ConnPtr> FakeServer::conns() const {
  absl::MutexLock l(&mu_);
  return conns_;
}

}  // namespace txbuf::client::testing
