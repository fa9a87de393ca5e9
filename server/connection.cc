#include "server/connection.h"

#include <sys/socket.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "server/reply_composer.h"
#include "server/server.h"
#include "server/worker.h"

namespace txbuf::server {
namespace {

constexpr size_t kRecvChunk = 256 * 1024;
constexpr size_t kKeepBuffer = 256 * 1024;
constexpr absl::Duration kBudgetRetry = absl::Milliseconds(5);

absl::Span<const uint8_t> U8(absl::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// HMAC-SHA256(secret, label || a || b), as docs/PROTOCOL.md section 2.
Sha256Digest AuthMac(const std::string& secret, absl::string_view label,
                     absl::string_view a, absl::string_view b) {
  std::string msg = absl::StrCat(label, a, b);
  return HmacSha256(U8(secret), U8(msg));
}

}  // namespace

Connection::Connection(Worker& worker, uint64_t id,
                       std::unique_ptr<TxSocket> tx)
    : w_(worker),
      s_(worker.server()),
      id_(id),
      tx_(std::move(tx)),
      fd_(tx_->fd()),
      reader_(
          {s_.options().limits.max_envelope, s_.options().limits.max_payload}) {
  s_.connections.fetch_add(1);
  s_.connections_total.fetch_add(1);
}

Connection::~Connection() { s_.connections.fetch_sub(1); }

void Connection::Start() {
  tx_->set_error_callback(
      [this](const absl::Status&) { Close(TxSocket::CloseMode::kAbort); });
  RandomBytes(absl::MakeSpan(nonce_));
  const ServerOptions& o = s_.options();
  rpc::Hello hello;
  hello.set_version(1);
  hello.set_auth_required(o.token.has_value());
  hello.set_server_nonce(nonce_.data(), nonce_.size());
  hello.set_max_envelope(o.limits.max_envelope);
  hello.set_max_payload(o.limits.max_payload);
  hello.set_max_ops(o.limits.max_ops);
  hello.set_max_read(o.limits.max_read);
  hello.set_max_reply_payload(
      static_cast<uint32_t>(o.limits.max_reply_payload));
  SendFrame(FrameType::kHello, hello);
  if (o.token.has_value()) {
    state_ = State::kAuth;
    auth_timer_ = w_.loop().RunAfter(o.auth_timeout, [this] {
      auth_timer_ = 0;
      if (state_ == State::kAuth) {
        s_.auth_failures.fetch_add(1);
        CloseAfterError(0, rpc::STATUS_AUTH, "authentication timed out");
      }
    });
  }
  ArmRecv();
}

void Connection::ArmRecv() {
  if (recv_armed_ || state_ == State::kClosing || paused_) return;
  absl::Span<std::byte> buf = reader_.WritableSpan(kRecvChunk);
  io_uring_sqe* sqe = w_.loop().GetSqe();
  io_uring_prep_recv(sqe, fd_, buf.data(), buf.size(), 0);
  io_uring_sqe_set_data(sqe, this);
  recv_armed_ = true;
}

void Connection::OnCompletion(const io_uring_cqe& cqe) {
  recv_armed_ = false;
  if (state_ == State::kClosing) {
    MaybeDestroy();
    return;
  }
  if (cqe.res == 0) {  // the client closed its side; finish what is queued
    Close(TxSocket::CloseMode::kGraceful);
    return;
  }
  if (cqe.res < 0) {
    if (cqe.res == -EINTR || cqe.res == -EAGAIN) {
      ArmRecv();
      return;
    }
    Close(TxSocket::CloseMode::kAbort);
    return;
  }
  reader_.Commit(static_cast<size_t>(cqe.res));
  Process();
  if (reader_.buffered() == 0 && reader_.capacity() > 4 * kKeepBuffer) {
    reader_.Shrink(kKeepBuffer);
  }
  ArmRecv();
}

bool Connection::OverOwnBudget() const {
  return pinned_ >= s_.options().conn_budget;
}

bool Connection::OverBudget() const {
  return OverOwnBudget() ||
         s_.memory_stats().pinned_bytes() >= s_.options().budget;
}

void Connection::Process() {
  if (in_process_) return;
  in_process_ = true;
  while (state_ != State::kClosing) {
    if (OverBudget()) {
      Pause();
      break;
    }
    std::optional<absl::StatusOr<Frame>> f = reader_.Next();
    if (!f.has_value()) break;
    if (!f->ok()) {
      s_.malformed.fetch_add(1);
      rpc::Status st =
          f->status().code() == absl::StatusCode::kResourceExhausted
              ? rpc::STATUS_TOOBIG
              : rpc::STATUS_BADXDR;
      CloseAfterError(0, st, std::string(f->status().message()));
      break;
    }
    HandleFrame(**f);
  }
  in_process_ = false;
}

void Connection::HandleFrame(const Frame& f) {
  switch (f.header.type) {
    case FrameType::kRequest:
      if (state_ == State::kAuth) {
        s_.auth_failures.fetch_add(1);
        rpc::Request req;
        uint64_t id = req.ParseFromArray(f.envelope.data(),
                                         static_cast<int>(f.envelope.size()))
                          ? req.id()
                          : 0;
        CloseAfterError(id, rpc::STATUS_AUTH,
                        "authentication required before requests");
        return;
      }
      HandleRequest(f);
      return;
    case FrameType::kAuthRequest:
      if (state_ != State::kAuth) {
        s_.malformed.fetch_add(1);
        CloseAfterError(0, rpc::STATUS_BADXDR, "unexpected AuthRequest");
        return;
      }
      HandleAuth(f);
      return;
    default:
      s_.malformed.fetch_add(1);
      CloseAfterError(
          0, rpc::STATUS_BADXDR,
          absl::StrCat("unexpected frame type ",
                       static_cast<int>(f.header.type), " from a client"));
  }
}

void Connection::HandleAuth(const Frame& f) {
  rpc::AuthRequest req;
  const std::string& secret = *s_.options().token;
  if (!req.ParseFromArray(f.envelope.data(),
                          static_cast<int>(f.envelope.size())) ||
      req.client_nonce().size() != 32 || req.mac().size() != 32) {
    s_.auth_failures.fetch_add(1);
    rpc::AuthReply r;
    r.set_status(rpc::STATUS_AUTH);
    r.set_error("malformed AuthRequest");
    SendFrame(FrameType::kAuthReply, r);
    Close(TxSocket::CloseMode::kGraceful);
    return;
  }
  absl::string_view server_nonce(reinterpret_cast<const char*>(nonce_.data()),
                                 nonce_.size());
  Sha256Digest want =
      AuthMac(secret, "txbuf-auth-v1 client", server_nonce, req.client_nonce());
  rpc::AuthReply r;
  if (!ConstantTimeEqual(want, U8(req.mac()))) {
    s_.auth_failures.fetch_add(1);
    r.set_status(rpc::STATUS_AUTH);
    r.set_error("authentication failed: wrong token");
    SendFrame(FrameType::kAuthReply, r);
    Close(TxSocket::CloseMode::kGraceful);
    return;
  }
  Sha256Digest proof =
      AuthMac(secret, "txbuf-auth-v1 server", req.client_nonce(), server_nonce);
  r.set_status(rpc::STATUS_OK);
  r.set_mac(proof.data(), proof.size());
  SendFrame(FrameType::kAuthReply, r);
  state_ = State::kReady;
  if (auth_timer_ != 0) {
    w_.loop().CancelTimer(auth_timer_);
    auth_timer_ = 0;
  }
}

void Connection::HandleRequest(const Frame& f) {
  s_.requests.fetch_add(1, std::memory_order_relaxed);
  // The worker's scratch messages: parsing into a cleared message reuses
  // its repeated fields, so a steady stream of requests allocates little.
  rpc::Request& req = w_.scratch_request();
  if (!req.ParseFromArray(f.envelope.data(),
                          static_cast<int>(f.envelope.size()))) {
    s_.malformed.fetch_add(1);
    ReplyError(0, rpc::STATUS_BADXDR, "request envelope does not parse");
    return;
  }
  CompoundOutput out(w_.scratch_reply());
  s_.executor_->Execute(req, f.payload, &out, &handles_);
  absl::StatusOr<TxBuf> tx = ComposeReply(
      w_.ctx(), out, [this](const TxBufCompletion& c) { OnReleased(c.bytes); });
  if (tx.ok()) {
    SendTxbuf(std::move(tx));
  } else {
    ReplyError(
        req.id(), rpc::STATUS_DELAY,
        absl::StrCat("cannot compose the reply: ", tx.status().message()));
  }
}

bool Connection::SendTxbuf(absl::StatusOr<TxBuf> tx) {
  if (!tx.ok()) {
    Close(TxSocket::CloseMode::kAbort);
    return false;
  }
  pinned_ += tx->size();
  tx_->Send(*std::move(tx));
  return true;
}

void Connection::SendFrame(FrameType type,
                           const google::protobuf::MessageLite& msg) {
  SendTxbuf(ComposeFrame(w_.ctx(), type, msg, [this](const TxBufCompletion& c) {
    OnReleased(c.bytes);
  }));
}

void Connection::ReplyError(uint64_t id, rpc::Status status,
                            const std::string& msg) {
  rpc::Reply r;
  r.set_id(id);
  r.set_status(status);
  r.set_error(msg.substr(0, s_.options().limits.max_error_bytes));
  SendFrame(FrameType::kReply, r);
}

void Connection::CloseAfterError(uint64_t id, rpc::Status status,
                                 const std::string& msg) {
  ReplyError(id, status, msg);
  Close(TxSocket::CloseMode::kGraceful);
}

void Connection::OnReleased(uint64_t bytes) {
  pinned_ -= bytes;
  if (paused_ && state_ != State::kClosing && !OverBudget()) {
    // Inside the engine's callback: resume from the loop.
    Worker* w = &w_;
    uint64_t id = id_;
    w_.loop().Post([w, id] {
      if (Connection* c = w->Find(id)) c->Resume();
    });
  }
}

void Connection::Pause() {
  if (!paused_) {
    paused_ = true;
    s_.budget_waits.fetch_add(1, std::memory_order_relaxed);
  }
  if (OverOwnBudget() && deadline_timer_ == 0) {
    deadline_timer_ = w_.loop().RunAfter(s_.options().budget_deadline, [this] {
      deadline_timer_ = 0;
      if (paused_ && OverOwnBudget()) {
        s_.budget_closes.fetch_add(1);
        Close(TxSocket::CloseMode::kAbort);
      }
    });
  }
  if (retry_timer_ == 0) {
    // The global budget is freed by other connections: look again soon.
    retry_timer_ = w_.loop().RunAfter(kBudgetRetry, [this] {
      retry_timer_ = 0;
      Resume();
    });
  }
}

void Connection::Resume() {
  if (!paused_ || state_ == State::kClosing) return;
  if (OverBudget()) {
    Pause();
    return;
  }
  paused_ = false;
  CancelTimers();
  Process();
  ArmRecv();
}

void Connection::CancelTimers() {
  for (EventLoop::TimerId* t : {&deadline_timer_, &retry_timer_}) {
    if (*t != 0) {
      w_.loop().CancelTimer(*t);
      *t = 0;
    }
  }
}

void Connection::Close(TxSocket::CloseMode mode) {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  CancelTimers();
  if (auth_timer_ != 0) {
    w_.loop().CancelTimer(auth_timer_);
    auth_timer_ = 0;
  }
  if (recv_armed_) {
    // No more requests: a pending recv completes with 0 at once. The
    // cancel covers a recv that has not reached the socket yet.
    shutdown(fd_, SHUT_RD);
    w_.loop().Cancel(this);
  }
  tx_->Close(mode, [this] {
    tx_closed_ = true;
    MaybeDestroy();
  });
}

void Connection::MaybeDestroy() {
  if (state_ != State::kClosing || recv_armed_ || !tx_closed_ ||
      destroy_posted_) {
    return;
  }
  destroy_posted_ = true;
  w_.Remove(id_);
}

}  // namespace txbuf::server
