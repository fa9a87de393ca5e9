#include "server/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "proto/frame.h"
#include "server/logging.h"
#include "server/server.h"
#include "server/session/session.h"

namespace txbuf::server {

// The multishot accept on one listening socket.
class Worker::AcceptOp final : public IoCompletion {
 public:
  AcceptOp(Worker* w, size_t index) : w_(w), index_(index) {}
  void OnCompletion(const io_uring_cqe& cqe) override {
    bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
    if (!more) armed = false;
    w_->OnAccept(index_, cqe.res, more);
  }
  bool armed = false;

 private:
  Worker* w_;
  size_t index_;  // in listen_fds_
};

Worker::Worker(Server& server, std::vector<UniqueFd> listen_fds)
    : server_(server), listen_fds_(std::move(listen_fds)) {}

Worker::~Worker() { Join(); }

absl::Status Worker::Start() {
  const ServerOptions& o = server_.options();
  absl::StatusOr<std::unique_ptr<ShardThread>> t = ShardThread::Start(
      server_.page_pool(), server_.memory_stats(),
      ShardOptions{
          .engine = o.engine,
          .txbuf = TxBufOptions{.stage_threshold = o.stage_threshold},
          // The part of the page arena the server chose to register (what
          // the locked-memory limit allows; Server::Start says how much).
          .register_bytes = server_.fixed_buffer_bytes(),
      },
      ShardThread::Hooks{
          .on_start =
              [this](Shard& shard) {
                shard_.store(&shard, std::memory_order_release);
                for (size_t i = 0; i < listen_fds_.size(); ++i) {
                  accepts_.push_back(std::make_unique<AcceptOp>(this, i));
                  ArmAccept(i);
                }
                return absl::OkStatus();
              },
          // Every connection is gone: their txbufs' destructors have run.
          .on_exit = [this](Shard&) { conns_.clear(); },
      });
  if (!t.ok()) return t.status();
  thread_ = std::move(*t);
  return absl::OkStatus();
}

void Worker::Join() {
  if (thread_ != nullptr) thread_->Join();
}

void Worker::RequestShutdown() {
  if (thread_ == nullptr) return;
  loop().Post([this] { BeginShutdown(); });
}

Session* Worker::Find(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void Worker::Remove(uint64_t id) {
  auto it = conns_.find(id);
  if (it != conns_.end()) {
    // Uncounted before the session goes (and with it the server's count
    // of connections), so that no one sees it gone there but here.
    assigned_.fetch_sub(1, std::memory_order_relaxed);
    conns_.erase(it);
  }
  MaybeStop();
}

void Worker::Adopt(UniqueFd fd) {
  loop().Post([this, fd = std::move(fd)]() mutable { Serve(std::move(fd)); });
}

std::vector<SlabCacheStats> Worker::SlabStats() const {
  Shard* s = shard_.load(std::memory_order_acquire);
  if (s == nullptr) return {};
  return s->SlabStats();
}

void Worker::ArmAccept(size_t i) {
  AcceptOp& a = *accepts_[i];
  if (shutting_down_ || a.armed) return;
  io_uring_sqe* sqe = loop().GetSqe();
  io_uring_prep_multishot_accept(sqe, listen_fds_[i].get(), nullptr, nullptr,
                                 SOCK_CLOEXEC);
  io_uring_sqe_set_data(sqe, &a);
  a.armed = true;
}

void Worker::Refuse(UniqueFd fd) {
  server_.counters().connections_refused.fetch_add(1,
                                                   std::memory_order_relaxed);
  rpc::Reply r;
  r.set_status(rpc::STATUS_DELAY);
  r.set_error(absl::StrCat("server at its connection limit (",
                           server_.options().max_connections,
                           " connections); try again later"));
  const std::string frame = EncodeFrame(FrameType::kReply, r);
  // A fresh socket's buffer takes these few bytes at once; if not, the
  // peer just sees the close.
  [[maybe_unused]] ssize_t n =
      send(fd.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Worker::OnAccept(size_t i, int res, bool more) {
  if (res >= 0) {
    UniqueFd fd(res);
    if (shutting_down_) return;
    // The worker serving the fewest connections takes it (this one on a
    // tie): counted there at once, so that accepts racing on other loops
    // see it.
    Worker* to = this;
    for (const std::unique_ptr<Worker>& w : server_.workers()) {
      if (w->started() && w->assigned() < to->assigned()) to = w.get();
    }
    to->NoteAssigned();
    if (to == this) {
      Serve(std::move(fd));
    } else {
      server_.counters().connections_moved.fetch_add(1,
                                                     std::memory_order_relaxed);
      to->Adopt(std::move(fd));
    }
  } else if (res != -ECANCELED && !shutting_down_) {
    // EMFILE and friends: keep serving the others, try again shortly.
    if (!more) {
      loop().RunAfter(absl::Milliseconds(50), [this, i] { ArmAccept(i); });
      return;
    }
  }
  if (!more && !shutting_down_) ArmAccept(i);
  MaybeStop();
}

void Worker::Serve(UniqueFd fd) {
  // Not served (refused, failed, shutting down): no longer assigned here.
  // (Counted until Remove(id) otherwise.)
  if (!StartSession(std::move(fd))) {
    assigned_.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool Worker::StartSession(UniqueFd fd) {
  if (shutting_down_) return false;
  const ServerOptions& o = server_.options();
  if (server_.counters().connections.load() >= o.max_connections) {
    Refuse(std::move(fd));
    return false;
  }
  // Room for one more connection still establishing: past the cap, the
  // oldest such one goes (so idle connections cannot lock others out).
  const size_t cap = std::max<size_t>(
      1, o.max_pending_connections / static_cast<size_t>(o.threads));
  while (pending_.size() >= cap) {
    Session* oldest = Find(*pending_.begin());
    pending_.erase(pending_.begin());
    // One whose stream is already closing is on its way out (its posted
    // OnClosing has not run yet): not counted, and not aborted over a
    // graceful close.
    if (oldest != nullptr && !oldest->closing()) {
      server_.counters().pending_closes.fetch_add(1, std::memory_order_relaxed);
      oldest->Close(TxSocket::CloseMode::kAbort);
    }
  }
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  TxSocketOptions to = shard().SocketOptions();
  to.graceful_close_timeout = o.shutdown_grace;
  to.kmod_inline_below = o.stage_threshold;
  absl::StatusOr<std::unique_ptr<TxSocket>> tx =
      TxSocket::Create(loop(), std::move(fd), to, server_.memory_stats());
  if (!tx.ok()) {
    TXBUF_LOG(WARNING) << "connection refused: " << tx.status().message();
    return false;
  }
  uint64_t id = next_conn_id_++;
  auto conn = std::make_unique<Session>(*this, id, std::move(*tx));
  Session* c = conn.get();
  conns_[id] = std::move(conn);
  pending_.insert(id);
  c->Start();
  return true;
}

void Worker::BeginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  for (auto& a : accepts_) {
    if (a->armed) loop().Cancel(a.get());
  }
  std::vector<Session*> all;
  for (auto& [id, c] : conns_) all.push_back(c.get());
  for (Session* c : all) c->Close(TxSocket::CloseMode::kGraceful);
  MaybeStop();
}

void Worker::MaybeStop() {
  if (shutting_down_ && conns_.empty() &&
      std::none_of(accepts_.begin(), accepts_.end(),
                   [](const auto& a) { return a->armed; })) {
    listen_fds_.clear();
    loop().Stop();
  }
}

}  // namespace txbuf::server
