// session.cc: Session (session.h).
#include "server/session/session.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/socket_util.h"
#include "proto/auth.h"
#include "server/compound/blocking_pool.h"
#include "server/compound/reply_composer.h"
#include "server/logging.h"
#include "server/server.h"
#include "server/stats/op_stats.h"
#include "server/worker.h"

namespace txbuf::server {
namespace {

// The first recv offers this much; each recv that fills what it was offered
// doubles it, up to kMaxRecvChunk. So an idle or trickling peer costs a
// small buffer, and a fast one gets large receives.
constexpr size_t kMinRecvChunk = 16 * 1024;
constexpr size_t kMaxRecvChunk = 256 * 1024;
constexpr size_t kKeepBuffer = 256 * 1024;
// What a peer may send before it has authenticated: an AuthRequest (two
// 32-byte values and framing) fits many times over.
constexpr FrameLimits kAuthFrameLimits = {.max_envelope = 4096,
                                          .max_payload = 0};
constexpr absl::Duration kBudgetRetry = absl::Milliseconds(5);
constexpr char kMalformedEnvelope[] = "request envelope does not parse";

// The access of the peer of `fd` to each export; none at all if the peer
// has no address (reset already).
ClientAccess AccessOfPeer(const Executor& executor, int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ClientAccess(executor.exports().size(), Access::kNone);
  }
  return executor.AccessOf(ss);
}

}  // namespace

struct Session::Job {
  rpc::Request request;
  rpc::Reply reply;
  CompoundOutput out{reply};
  CompoundState state;
  absl::Span<const std::byte> payload;  // in the reader's buffer
};

namespace {

// Whether what is left of `req`, from op `next` (the one that would block),
// only makes written data durable and reads attributes: a COMMIT, then
// COMMITs and GETATTRs. Such a rest may finish after requests that came
// later: they see no difference (the data are the same, durable or not),
// and it reads nothing from the request's payload.
bool OnlyCommitsLeft(const rpc::Request& req, int next) {
  if (next >= req.ops_size() || !req.ops(next).has_commit()) return false;
  for (int i = next; i < req.ops_size(); ++i) {
    const rpc::Op::OpCase c = req.ops(i).op_case();
    if (c != rpc::Op::kCommit && c != rpc::Op::kGetattr) return false;
  }
  return true;
}

}  // namespace

Session::Session(Worker& worker, uint64_t id, std::unique_ptr<TxSocket> tx)
    : w_(worker),
      s_(worker.server()),
      id_(id),
      peer_(PeerAddress(tx->fd())),
      access_(AccessOfPeer(s_.executor(), tx->fd())),
      stream_(std::make_unique<Stream>(
          worker.loop(), std::move(tx),
          StreamOptions{.peer_close_mode = TxSocket::CloseMode::kGraceful,
                        .peer_name = "the client"})),
      reader_(
          {s_.options().limits.max_envelope, s_.options().limits.max_payload},
          &worker.frame_buffers()),
      budget_(s_.settings(), s_.counters().budget_holders,
              [server = &s_] { return server->HeldBytes(); }),
      recv_chunk_(kMinRecvChunk) {
  s_.counters().connections.fetch_add(1);
  s_.counters().connections_total.fetch_add(1);
  TXBUF_LOG(DEBUG) << "connection " << id_ << " from " << peer_ << " opened";
}

Session::~Session() {
  TXBUF_LOG(DEBUG) << "connection " << id_ << " from " << peer_ << " closed";
  // The buffer first: a reader that sees the session gone sees its buffer
  // gone too.
  s_.counters().receive_buffer_bytes.fetch_sub(counted_buffer_);
  s_.counters().connections.fetch_sub(1);
}

void Session::Start() {
  stream_->Start(*this);
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
    // Until it has authenticated, a peer may send an AuthRequest and
    // nothing larger: a stranger cannot make the server hold (or wait for)
    // a big frame.
    reader_.set_limits(kAuthFrameLimits);
    auth_timer_ = w_.loop().RunAfter(o.auth_timeout, [this] {
      auth_timer_ = 0;
      // (A stream that closed itself this turn winds down when its posted
      // OnClosing runs: not an authentication failure.)
      if (state_ == State::kAuth && !closing()) {
        NoteAuthFailure("authentication timed out");
        CloseAfterError(0, rpc::STATUS_AUTH, "authentication timed out");
      }
    });
  }
  last_progress_ns_ = MonoNowNs();
  ArmRecv();
}

void Session::ArmRecv() {
  // Not while the session waits: its job's payload lies in the reader's
  // buffer (a COMMIT aside has none).
  if (stream_->receiving() || closing() || paused_ || yielded_ || Waiting()) {
    return;
  }
  if (reader_.buffered() == 0 && reader_.capacity() > 4 * kKeepBuffer) {
    reader_.Shrink(kKeepBuffer);
    recv_chunk_ = kMinRecvChunk;
  }
  absl::Span<std::byte> buf = reader_.WritableSpan(recv_chunk_);
  AccountBuffer();
  recv_size_ = std::min(buf.size(), kMaxRecvChunk);
  stream_->Receive(buf.first(recv_size_));
}

void Session::AccountBuffer() {
  const size_t now = reader_.capacity();
  if (now > counted_buffer_) {
    s_.counters().receive_buffer_bytes.fetch_add(now - counted_buffer_);
  } else {
    s_.counters().receive_buffer_bytes.fetch_sub(counted_buffer_ - now);
  }
  counted_buffer_ = now;
}

void Session::OnReceived(size_t n) {
  reader_.Commit(n);
  s_.counters().bytes_received.fetch_add(n, std::memory_order_relaxed);
  last_progress_ns_ = MonoNowNs();
  if (n == recv_size_) recv_chunk_ = std::min(2 * recv_chunk_, kMaxRecvChunk);
  Process();
  ArmRecv();
  ArmFrameTimer();
}

void Session::Process() {
  if (in_process_) return;
  in_process_ = true;
  int frames = 0;
  while (!closing() && !Waiting()) {
    if (budget_.Over()) {
      Pause();
      break;
    }
    if (frames == kFramesPerTurn) {
      ContinueLater();
      break;
    }
    std::optional<absl::StatusOr<Frame>> f = reader_.Next();
    if (!f.has_value()) break;
    if (!f->ok()) {
      NoteMalformed(f->status().message());
      rpc::Status st =
          f->status().code() == absl::StatusCode::kResourceExhausted
              ? rpc::STATUS_TOOBIG
              : rpc::STATUS_BADXDR;
      CloseAfterError(0, st, std::string(f->status().message()));
      break;
    }
    ++frames;
    HandleFrame(**f);
  }
  in_process_ = false;
}

void Session::ContinueLater() {
  if (yielded_) return;
  yielded_ = true;
  Worker* w = &w_;
  uint64_t id = id_;
  w_.loop().Post([w, id] {
    Session* s = w->Find(id);
    if (s == nullptr) return;
    s->yielded_ = false;
    if (s->closing()) return;
    s->Process();
    s->ArmRecv();
    s->ArmFrameTimer();
  });
}

void Session::HandleFrame(const Frame& f) {
  switch (f.header.type) {
    case FrameType::kRequest:
      if (state_ == State::kAuth) {
        NoteAuthFailure("a request before authenticating");
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
      if (state_ != State::kAuth && !s_.settings().token().has_value()) {
        // A server without authentication accepts a client that always
        // authenticates: OK, with no mac (it knows no secret), and nothing
        // changes. Hello said auth_required false.
        rpc::AuthReply r;
        r.set_status(rpc::STATUS_OK);
        SendFrame(FrameType::kAuthReply, r);
        return;
      }
      if (state_ != State::kAuth) {
        NoteMalformed("unexpected AuthRequest");
        CloseAfterError(0, rpc::STATUS_BADXDR, "unexpected AuthRequest");
        return;
      }
      HandleAuth(f);
      return;
    default: {
      const std::string what =
          absl::StrCat("unexpected frame type ",
                       static_cast<int>(f.header.type), " from a client");
      NoteMalformed(what);
      CloseAfterError(0, rpc::STATUS_BADXDR, what);
    }
  }
}

void Session::HandleAuth(const Frame& f) {
  rpc::AuthRequest req;
  const std::optional<std::string> token = s_.settings().token();
  const std::string& secret = *token;
  if (!req.ParseFromArray(f.envelope.data(),
                          static_cast<int>(f.envelope.size())) ||
      req.client_nonce().size() != 32 || req.mac().size() != 32) {
    NoteAuthFailure("malformed AuthRequest");
    rpc::AuthReply r;
    r.set_status(rpc::STATUS_AUTH);
    r.set_error("malformed AuthRequest");
    SendFrame(FrameType::kAuthReply, r);
    Close(TxSocket::CloseMode::kGraceful);
    return;
  }
  absl::string_view server_nonce(reinterpret_cast<const char*>(nonce_.data()),
                                 nonce_.size());
  Sha256Digest want = ClientAuthMac(secret, server_nonce, req.client_nonce());
  rpc::AuthReply r;
  if (!AuthMacEquals(want, req.mac())) {
    NoteAuthFailure("wrong token");
    r.set_status(rpc::STATUS_AUTH);
    r.set_error("authentication failed: wrong token");
    SendFrame(FrameType::kAuthReply, r);
    Close(TxSocket::CloseMode::kGraceful);
    return;
  }
  Sha256Digest proof = ServerAuthMac(secret, req.client_nonce(), server_nonce);
  r.set_status(rpc::STATUS_OK);
  r.set_mac(proof.data(), proof.size());
  SendFrame(FrameType::kAuthReply, r);
  state_ = State::kReady;
  reader_.set_limits(
      {s_.options().limits.max_envelope, s_.options().limits.max_payload});
  if (auth_timer_ != 0) {
    w_.loop().CancelTimer(auth_timer_);
    auth_timer_ = 0;
  }
  Established();
}

void Session::NoteAuthFailure(absl::string_view why) {
  s_.counters().auth_failures.fetch_add(1);
  TXBUF_LOG(WARNING) << "connection " << id_ << " from " << peer_
                     << ": authentication failed: " << why;
}

void Session::NoteMalformed(absl::string_view what) {
  s_.counters().malformed.fetch_add(1);
  // The first one per session is a warning; a client that goes on
  // (a malformed request does not close) does not flood the log.
  if (!warned_malformed_) {
    warned_malformed_ = true;
    TXBUF_LOG(WARNING) << "connection " << id_ << " from " << peer_
                       << ": malformed: " << what;
  } else {
    TXBUF_LOG(DEBUG) << "connection " << id_ << " from " << peer_
                     << ": malformed: " << what;
  }
}

void Session::Established() {
  if (!pending_) return;
  pending_ = false;
  w_.LeftPending(id_);
}

void Session::HandleRequest(const Frame& f) {
  s_.counters().requests.fetch_add(1, std::memory_order_relaxed);
  // The worker's scratch messages: parsing into a cleared message reuses
  // its repeated fields, so a steady stream of requests allocates little.
  rpc::Request& req = w_.scratch_request();
  if (!req.ParseFromArray(f.envelope.data(),
                          static_cast<int>(f.envelope.size()))) {
    NoteMalformed("request envelope does not parse");
    if (commit_aside_ != nullptr) {
      // Its reply (id 0) answers the oldest request still waiting: it
      // waits for the COMMIT aside, and nothing is read meanwhile.
      malformed_after_commit_ = true;
      return;
    }
    ReplyError(0, rpc::STATUS_BADXDR, kMalformedEnvelope);
    return;
  }
  Established();
  CompoundOutput out(w_.scratch_reply());
  CompoundState state;
  state.access = &access_;
  state.received_ns = last_progress_ns_;  // when its last bytes arrived
  if (s_.executor().Run(req, f.payload, &out, &handles_, &state,
                        ExecMode::kEventLoop)) {
    SendReply(out, req, state.received_ns);
    return;
  }
  StartJob(req, out, std::move(state), f.payload);
}

void Session::StartJob(rpc::Request& req, CompoundOutput& out,
                       CompoundState state,
                       absl::Span<const std::byte> payload) {
  // The rest of the compound may block: it finishes on a pool thread. The
  // job takes the worker's scratch messages (they get the job's empty ones).
  auto job = std::make_unique<Job>();
  job->request.Swap(&req);
  job->reply.Swap(&out.reply);
  job->out.payload = std::move(out.payload);
  job->out.payload_bytes = out.payload_bytes;
  job->state = std::move(state);
  s_.counters().blocking_jobs.fetch_add(1, std::memory_order_relaxed);
  stream_->Hold();  // a close waits for the job (graceful: for its reply)
  if (commit_aside_ == nullptr &&
      OnlyCommitsLeft(job->request, job->state.next_op)) {
    // A COMMIT waiting for the disk (seconds, on a slow one) does not hold
    // up the requests after it: they are read and answered meanwhile. It
    // needs no payload, and takes no entry of the connection's handle
    // cache, which the loop goes on using.
    job->state.cached = nullptr;
    commit_aside_ = std::move(job);
    s_.counters().commits_aside.fetch_add(1, std::memory_order_relaxed);
    RunOnPool(s_, commit_aside_.get(), /*handles=*/nullptr, &w_, id_);
    return;
  }
  // The session waits for this one: its payload stays in the reader's
  // buffer, which nothing touches until the job is back (no recv, no
  // Next()).
  job->payload = payload;
  job_ = std::move(job);
  RunOnPool(s_, job_.get(), &handles_, &w_, id_);
}

void Session::RunOnPool(Server& s, Job* job, HandleCache* handles, Worker* w,
                        uint64_t id) {
  Server* server = &s;
  s.blocking_pool().Submit([server, job, handles, w, id] {
    if (!server->executor().Run(job->request, job->payload, &job->out, handles,
                                &job->state, ExecMode::kMayBlock)) {
      // A long compound: the rest after what the others queued meanwhile.
      RunOnPool(*server, job, handles, w, id);
      return;
    }
    w->loop().Post([w, id, job] {
      if (Session* session = w->Find(id)) session->OnJobDone(job);
    });
  });
}

void Session::OnJobDone(Job* done) {
  const bool held = done == job_.get();
  std::unique_ptr<Job> job = std::move(held ? job_ : commit_aside_);
  if (!stream_->can_send()) {  // aborted meanwhile: the reply is dropped
    job.reset();
    stream_->Release();
    return;
  }
  SendReply(job->out, job->request, job->state.received_ns);
  job.reset();
  // Whether this reply is one the session stopped reading for.
  bool resume = held;
  if (!held && malformed_after_commit_) {
    malformed_after_commit_ = false;
    ReplyError(0, rpc::STATUS_BADXDR, kMalformedEnvelope);
    resume = true;
  }
  stream_->Release();  // a graceful close waiting for the reply goes on
  if (!resume || closing() || Waiting()) return;
  last_progress_ns_ = MonoNowNs();  // we were not reading meanwhile
  Process();
  ArmRecv();
  ArmFrameTimer();
}

void Session::SendReply(CompoundOutput& out, const rpc::Request& req,
                        int64_t received_ns) {
  absl::StatusOr<TxBuf> tx = ComposeReply(
      w_.ctx(), out, [this](const TxBufCompletion& c) { OnReleased(c.bytes); });
  if (tx.ok()) {
    // The ops the request ran: one result each (the failing one included).
    const int ran = std::min(out.reply.results_size(), req.ops_size());
    SendTxbuf(std::move(tx));
    // One clock read for the request and every op it ran.
    const auto ns =
        static_cast<uint64_t>(std::max<int64_t>(0, MonoNowNs() - received_ns));
    s_.counters().request_latency.Record(ns);
    OpStats& ops = s_.executor().op_stats();
    for (int i = 0; i < ran; ++i) ops.RecordLatency(req.ops(i).op_case(), ns);
  } else {
    out.payload.clear();
    ReplyError(
        req.id(), rpc::STATUS_DELAY,
        absl::StrCat("cannot compose the reply: ", tx.status().message()));
  }
}

bool Session::SendTxbuf(absl::StatusOr<TxBuf> tx) {
  if (!tx.ok()) {
    Close(TxSocket::CloseMode::kAbort);
    return false;
  }
  budget_.Pin(tx->size());
  stream_->Send(*std::move(tx));
  return true;
}

void Session::SendFrame(FrameType type,
                        const google::protobuf::MessageLite& msg) {
  SendTxbuf(ComposeFrame(w_.ctx(), type, msg, [this](const TxBufCompletion& c) {
    OnReleased(c.bytes);
  }));
}

void Session::ReplyError(uint64_t id, rpc::Status status,
                         const std::string& msg) {
  rpc::Reply r;
  r.set_id(id);
  r.set_status(status);
  r.set_error(msg.substr(0, s_.options().limits.max_error_bytes));
  SendFrame(FrameType::kReply, r);
}

void Session::CloseAfterError(uint64_t id, rpc::Status status,
                              const std::string& msg) {
  ReplyError(id, status, msg);
  Close(TxSocket::CloseMode::kGraceful);
}

void Session::OnReleased(uint64_t bytes) {
  budget_.Release(bytes);
  if (paused_ && !closing() && !budget_.Over()) {
    // Inside the engine's callback: resume from the loop.
    Worker* w = &w_;
    uint64_t id = id_;
    w_.loop().Post([w, id] {
      if (Session* session = w->Find(id)) session->Resume();
    });
  }
}

void Session::Pause() {
  if (!paused_) {
    paused_ = true;
    s_.counters().budget_waits.fetch_add(1, std::memory_order_relaxed);
    TXBUF_LOG(DEBUG) << "connection " << id_ << " from " << peer_
                     << ": paused with " << budget_.pinned()
                     << " bytes pinned (over its budget or its share)";
  }
  if (deadline_timer_ == 0) {
    // Holding its own budget, or its share of an exceeded global one, for
    // longer than the deadline: close it.
    deadline_timer_ =
        w_.loop().RunAfter(s_.settings().budget_deadline(), [this] {
          deadline_timer_ = 0;
          if (paused_ && !closing() && budget_.Over()) {
            s_.counters().budget_closes.fetch_add(1);
            TXBUF_LOG(WARNING)
                << "connection " << id_ << " from " << peer_
                << ": closed: over its budget for "
                << absl::FormatDuration(s_.settings().budget_deadline())
                << " with " << budget_.pinned() << " bytes pinned";
            Close(TxSocket::CloseMode::kAbort);
          }
        });
  }
  if (retry_timer_ == 0) {
    // The global budget is freed by other sessions: look again soon.
    retry_timer_ = w_.loop().RunAfter(kBudgetRetry, [this] {
      retry_timer_ = 0;
      Resume();
    });
  }
}

void Session::Resume() {
  if (!paused_ || closing()) return;
  if (budget_.Over()) {
    Pause();
    return;
  }
  paused_ = false;
  CancelTimers();
  last_progress_ns_ = MonoNowNs();  // we were not reading meanwhile
  Process();
  ArmRecv();
  ArmFrameTimer();
}

void Session::ArmFrameTimer() {
  if (frame_timer_ != 0 || closing() || !reader_.partial()) {
    return;
  }
  frame_timer_ = w_.loop().RunAfter(s_.options().frame_timeout,
                                    [this] { OnFrameTimer(); });
}

void Session::OnFrameTimer() {
  frame_timer_ = 0;
  if (closing() || !reader_.partial()) return;
  const int64_t timeout = absl::ToInt64Nanoseconds(s_.options().frame_timeout);
  const int64_t idle = MonoNowNs() - last_progress_ns_;
  // Only time the peer: not while this side is not reading.
  if (!stream_->receiving() || idle < timeout) {
    frame_timer_ = w_.loop().RunAfter(
        absl::Nanoseconds(stream_->receiving() ? timeout - idle : timeout),
        [this] { OnFrameTimer(); });
    return;
  }
  s_.counters().frame_timeouts.fetch_add(1, std::memory_order_relaxed);
  TXBUF_LOG(WARNING) << "connection " << id_ << " from " << peer_
                     << ": closed: a frame stopped arriving for "
                     << absl::FormatDuration(s_.options().frame_timeout);
  CloseAfterError(0, rpc::STATUS_BADXDR,
                  absl::StrCat("incomplete frame: no byte for ",
                               absl::FormatDuration(s_.options().frame_timeout),
                               "; closing"));
}

void Session::CancelTimers() {
  for (EventLoop::TimerId* t : {&deadline_timer_, &retry_timer_}) {
    if (*t != 0) {
      w_.loop().CancelTimer(*t);
      *t = 0;
    }
  }
}

void Session::Close(TxSocket::CloseMode mode) {
  WindDown();
  // The stream stops receiving; a graceful close waits for the job on the
  // pool (its Hold) and sends its reply first; an abort drops it.
  stream_->Close(mode);
}

void Session::OnClosing(const absl::Status&) { WindDown(); }

void Session::WindDown() {
  if (wound_down_) return;
  wound_down_ = true;
  Established();  // no longer pending
  CancelTimers();
  for (EventLoop::TimerId* t : {&auth_timer_, &frame_timer_}) {
    if (*t != 0) {
      w_.loop().CancelTimer(*t);
      *t = 0;
    }
  }
}

void Session::OnClosed() {
  // Destroys this session (and its stream): nothing after this.
  w_.Remove(id_);
}

}  // namespace txbuf::server
