#include "client/client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "client/internal/client_impl.h"
#include "client/internal/compound_access.h"
#include "client/internal/paths.h"
#include "client/write_lease.h"
#include "common/socket_util.h"

namespace txbuf::client {

using internal::Connection;
using internal::PendingCall;

namespace {

// Staging pages for request headers and envelopes: reserved, committed as
// used (one page per request txbuf in flight at most).
constexpr size_t kStagingArenaBytes = 256 << 20;

// Reply payload per compound the protocol guarantees (PROTOCOL.md 1, not
// announced in Hello).
constexpr uint64_t kReplyPayloadPerCompound = 64 << 20;

}  // namespace

// --- Impl --------------------------------------------------------------------

Client::Impl::Impl(ClientOptions o)
    : options(std::move(o)),
      peer(absl::StrCat(options.host, ":", options.port)) {}

Client::Impl::~Impl() = default;

std::vector<std::pair<Compound, DoneCallback>> Client::Impl::StopAccepting() {
  absl::MutexLock l(&mu);
  accepting = false;
  return std::exchange(inbox, {});
}

void Client::Impl::Drain() {
  std::vector<std::pair<Compound, DoneCallback>> calls;
  {
    absl::MutexLock l(&mu);
    calls.swap(inbox);
    drain_posted = false;
  }
  for (auto& [c, done] : calls) StartCall(std::move(c), std::move(done));
}

absl::Status Client::Impl::NoConnection() const {
  return absl::UnavailableError(absl::StrCat(
      "no connection to ", peer, " left",
      last_error.ok() ? "" : absl::StrCat(" (", last_error.message(), ")")));
}

void Client::Impl::StartCall(Compound c, DoneCallback done) {
  if (shutting_down) {
    done(absl::CancelledError("the client is being destroyed"));
    return;
  }
  if (!c.status().ok()) {
    done(c.status());
    return;
  }
  if (open_conns.load(std::memory_order_relaxed) == 0) {
    done(NoConnection());
    return;
  }
  uint64_t id = next_id++;
  PendingCall call{id, std::move(c), std::move(done), 0};
  call.timer =
      loop->RunAfter(options.request_timeout, [this, id] { OnTimeout(id); });
  waiting.emplace(id, std::move(call));
  Dispatch();
}

Connection* Client::Impl::Pick() {
  Connection* best = nullptr;
  size_t n = conns.size();
  for (size_t k = 0; k < n; ++k) {
    Connection* c = conns[(rr + k) % n].get();
    if (!c->open() || c->load() >= static_cast<size_t>(
                                       options.max_in_flight_per_connection)) {
      continue;
    }
    if (best == nullptr || c->load() < best->load()) best = c;
  }
  if (best != nullptr) rr = (rr + 1) % n;
  return best;
}

void Client::Impl::Dispatch() {
  while (!waiting.empty()) {
    Connection* c = Pick();
    if (c == nullptr) break;
    auto it = waiting.begin();
    PendingCall call = std::move(it->second);
    waiting.erase(it);
    c->Send(std::move(call));
  }
}

void Client::Impl::FailWaiting(const absl::Status& why) {
  std::map<uint64_t, PendingCall> calls;
  calls.swap(waiting);
  for (auto& [id, call] : calls) internal::FinishCall(*loop, call, why);
}

void Client::Impl::OnTimeout(uint64_t id) {
  absl::Status why = absl::DeadlineExceededError(
      absl::StrCat("no reply from ", peer, " within ",
                   absl::FormatDuration(options.request_timeout)));
  if (auto it = waiting.find(id); it != waiting.end()) {
    PendingCall call = std::move(it->second);
    waiting.erase(it);
    call.timer = 0;
    internal::FinishCall(*loop, call, why);
    return;
  }
  for (auto& c : conns) {
    if (c->TimeOut(id, why)) return;
  }
}

void Client::Impl::OnClosing(Connection*, const absl::Status& why) {
  open_conns.fetch_sub(1, std::memory_order_relaxed);
  if (!absl::IsCancelled(why)) last_error = why;
  if (open_conns.load(std::memory_order_relaxed) == 0) {
    FailWaiting(shutting_down ? why : NoConnection());
  }
}

void Client::Impl::OnClosed(Connection*) { MaybeStop(); }

void Client::Impl::BeginShutdown() {
  shutting_down = true;
  absl::Status why = absl::CancelledError("the client is being destroyed");
  Drain();
  FailWaiting(why);
  for (auto& c : conns) c->Close(why);
  MaybeStop();
}

void Client::Impl::MaybeStop() {
  if (!shutting_down) return;
  for (auto& c : conns) {
    if (!c->closed()) return;
  }
  loop->Stop();
}

// --- Client ------------------------------------------------------------------

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  if (options.port == 0) {
    return absl::InvalidArgumentError("client: no server port given");
  }
  if (options.connections < 1 || options.connections > 1024) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "client: %d connections (want 1 to 1024)", options.connections));
  }
  if (options.request_timeout <= absl::ZeroDuration() ||
      options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("client: timeouts must be positive");
  }
  if (options.max_in_flight_per_connection < 1 || options.transfer_window < 1) {
    return absl::InvalidArgumentError(
        "client: max_in_flight_per_connection and transfer_window must be "
        ">= 1");
  }
  if (options.transfer_chunk < 4096 || options.transfer_chunk > (64u << 20)) {
    return absl::InvalidArgumentError(
        "client: transfer_chunk must be 4 KiB to 64 MiB");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  const ClientOptions& o = impl->options;

  absl::Time deadline = absl::Now() + o.connect_timeout;
  FrameLimits reply_limits{.max_envelope = o.max_reply_envelope,
                           .max_payload = o.max_reply_payload};
  std::vector<internal::Handshake> setups;
  for (int i = 0; i < o.connections; ++i) {
    absl::StatusOr<internal::Handshake> hs = internal::ConnectAndHandshake(
        o.host, o.port, o.token, deadline, reply_limits);
    if (absl::IsDeadlineExceeded(hs.status())) {
      return absl::DeadlineExceededError(absl::StrCat(
          "connecting to ", impl->peer, ": ", hs.status().message(),
          " (connect timeout ", absl::FormatDuration(o.connect_timeout), ")"));
    }
    if (!hs.ok()) return hs.status();
    setups.push_back(std::move(*hs));
  }
  impl->hello = setups.front().hello;

  Impl* p = impl.get();
  p->pages = std::make_unique<PagePool>(kStagingArenaBytes);
  absl::StatusOr<std::unique_ptr<ShardThread>> shard =
      ShardThread::Start(*p->pages, p->stats, {.engine = o.engine});
  if (!shard.ok()) return shard.status();
  p->shard = std::move(*shard);
  p->loop = &p->shard->shard().loop();
  for (int i = 0; i < o.connections; ++i) {
    p->conns.push_back(std::make_unique<Connection>(
        i, p->peer, *p->loop, p->shard->shard().ctx(), std::move(setups[i]),
        Connection::Callbacks{
            .on_progress = [p] { p->Dispatch(); },
            .on_closing =
                [p](Connection* c, const absl::Status& why) {
                  p->OnClosing(c, why);
                },
            .on_closed = [p](Connection* c) { p->OnClosed(c); },
        },
        p->rx));
  }
  std::unique_ptr<Client> client(new Client(std::move(impl)));

  // Start the connections on the loop thread (the ring belongs to it).
  absl::Status started;
  absl::Notification ready;
  p->loop->Post([p, &started, &ready] {
    TxSocketOptions to = p->shard->shard().SocketOptions();
    for (auto& c : p->conns) {
      if (!started.ok()) break;
      absl::Status s = c->Start(to, p->stats);
      if (!s.ok()) {
        started = absl::Status(
            s.code(), absl::StrCat("engine ", EngineName(p->options.engine),
                                   ": ", s.message()));
      } else {
        p->open_conns.fetch_add(1, std::memory_order_relaxed);
      }
    }
    ready.Notify();
  });
  ready.WaitForNotification();
  if (!started.ok()) return started;  // ~Client closes what was started.
  return client;
}

Client::~Client() {
  if (impl_ == nullptr) return;
  if (impl_->shard->OnThread()) {
    std::fprintf(stderr,
                 "txbuf client: a Client was destroyed from its own done "
                 "callback (its loop thread); that cannot work\n");
    std::abort();
  }
  // Calls posted but not yet taken are drained by BeginShutdown; calls that
  // race with this destructor fail here.
  std::vector<std::pair<Compound, DoneCallback>> late;
  {
    absl::MutexLock l(&impl_->mu);
    impl_->accepting = false;
  }
  Impl* p = impl_.get();
  p->loop->Post([p] { p->BeginShutdown(); });
  p->shard->Join();
  late = impl_->StopAccepting();
  for (auto& [c, done] : late) {
    done(absl::CancelledError("the client is being destroyed"));
  }
  impl_.reset();
}

void Client::Submit(Compound compound, DoneCallback done) {
  if (!impl_->options.export_name.empty()) {
    internal::CompoundAccess::SetDefaultExport(compound,
                                               impl_->options.export_name);
  }
  absl::ReleasableMutexLock l(&impl_->mu);
  if (!impl_->accepting) {  // the client is closing.
    l.Release();
    done(absl::CancelledError("the client is being destroyed"));
    return;
  }
  impl_->inbox.emplace_back(std::move(compound), std::move(done));
  bool post = !std::exchange(impl_->drain_posted, true);
  l.Release();
  if (post) {
    Impl* p = impl_.get();
    p->loop->Post([p] { p->Drain(); });
  }
}

absl::Status Client::CheckBlockingCallAllowed() const {
  if (impl_->shard->OnThread()) {
    return absl::FailedPreconditionError(
        "a blocking client call from a done callback (the client's loop "
        "thread) would deadlock; use Submit()");
  }
  return absl::OkStatus();
}

absl::StatusOr<CompoundReply> Client::Call(Compound compound) {
  if (absl::Status s = CheckBlockingCallAllowed(); !s.ok()) return s;
  absl::Notification n;
  absl::StatusOr<CompoundReply> out;
  Submit(std::move(compound), [&](absl::StatusOr<CompoundReply> r) {
    out = std::move(r);
    n.Notify();
  });
  n.WaitForNotification();
  return out;
}

MemoryStatsSnapshot Client::memory_stats() const {
  return impl_->stats.Snapshot();
}

ReceiveStats Client::receive_stats() const { return impl_->rx.Snapshot(); }

const rpc::Hello& Client::hello() const { return impl_->hello; }

int Client::open_connections() const {
  return impl_->open_conns.load(std::memory_order_relaxed);
}

const ClientOptions& Client::options() const { return impl_->options; }

// --- blocking API ------------------------------------------------------------

namespace {

// PUTROOTFH plus, for a non-root path, LOOKUP.
void AddPath(Compound& c, const std::string& path) {
  c.PutRootFh();
  if (!path.empty()) c.Lookup(path);
}

// The reply if every op succeeded, else the failing op's status.
// `r`, or the error of its first failed op among the first `n`.
absl::StatusOr<CompoundReply> OkThrough(absl::StatusOr<CompoundReply> r,
                                        int n) {
  if (!r.ok()) return r.status();
  if (absl::Status s = r->status(n); !s.ok()) return s;
  return r;
}

absl::StatusOr<CompoundReply> CallOk(Client& client, Compound c) {
  int n = c.size();
  return OkThrough(client.Call(std::move(c)), n);
}

}  // namespace

absl::StatusOr<rpc::Attr> Client::Stat(absl::string_view path) {
  Compound c;
  AddPath(c, internal::NormalizePath(path));
  c.GetAttr();
  int last = c.size() - 1;
  absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
  if (!r.ok()) return r.status();
  return r->result(last).attr().attr();
}

absl::StatusOr<std::vector<rpc::DirEntry>> Client::List(
    absl::string_view path) {
  std::vector<rpc::DirEntry> out;
  Compound c;
  AddPath(c, internal::NormalizePath(path));
  c.GetFh().ReadDir(0, 0, /*with_attrs=*/true);
  int fh_op = c.size() - 2;
  std::string fh;
  for (;;) {
    int last = c.size() - 1;
    absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
    if (!r.ok()) return r.status();
    if (fh.empty()) fh = r->result(fh_op).fh().fh();
    const rpc::ReadDirResult& page = r->result(last).readdir();
    for (const rpc::DirEntry& e : page.entries()) out.push_back(e);
    if (page.eof()) break;
    if (page.entries().empty()) {
      return absl::DataLossError(
          "protocol error: READDIR returned no entries and no eof");
    }
    c = Compound();
    c.PutFh(fh).ReadDir(page.entries().rbegin()->cookie(), 0, true);
  }
  return out;
}

absl::StatusOr<std::string> Client::Read(absl::string_view path,
                                         uint64_t offset, uint64_t length) {
  std::string out;
  std::string fh;
  uint32_t max_read = hello().max_read() != 0 ? hello().max_read() : 16 << 20;
  bool first = true;
  while (length > 0) {
    Compound c;
    if (first) {
      AddPath(c, internal::NormalizePath(path));
      c.GetFh();
    } else {
      c.PutFh(fh);
    }
    int first_read = c.size();
    uint64_t in_compound = 0;
    std::vector<uint64_t> c_lengths;
    while (length > in_compound && in_compound < kReplyPayloadPerCompound) {
      uint64_t n = std::min<uint64_t>({length - in_compound, max_read,
                                       kReplyPayloadPerCompound - in_compound});
      c.Read(offset + in_compound, static_cast<uint32_t>(n));
      c_lengths.push_back(n);
      in_compound += n;
    }
    int ops = c.size();
    absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
    if (!r.ok()) return r.status();
    if (first) fh = r->result(first_read - 1).fh().fh();
    first = false;
    for (int i = first_read; i < ops; ++i) {
      absl::string_view data = r->ReadString(i);
      out.append(data.data(), data.size());
      offset += data.size();
      length -= data.size();
      const rpc::ReadResult& rr = r->result(i).read();
      if (rr.eof()) return out;
      if (data.empty()) {
        return absl::DataLossError(
            "protocol error: READ returned no data and no eof");
      }
      if (data.size() < c_lengths[i - first_read]) {
        break;  // short without eof: ask again from where it stopped.
      }
    }
  }
  return out;
}

absl::StatusOr<uint64_t> Client::Write(absl::string_view path, uint64_t offset,
                                       absl::string_view data,
                                       rpc::Stability stable) {
  return Write(
      path, offset,
      absl::Span<const std::byte>(
          reinterpret_cast<const std::byte*>(data.data()), data.size()),
      stable);
}

absl::StatusOr<uint64_t> Client::Write(absl::string_view path, uint64_t offset,
                                       absl::Span<const std::byte> data,
                                       rpc::Stability stable) {
  // The data goes out by reference: each piece waits for its reply and for
  // the release of its bytes (a WriteLease).
  if (absl::Status s = CheckBlockingCallAllowed(); !s.ok()) return s;
  uint64_t max_payload = internal::LimitsOf(hello()).max_payload;
  uint64_t piece = std::min<uint64_t>(max_payload, 16 << 20);
  std::string fh;
  std::string norm = internal::NormalizePath(path);
  uint64_t written = 0;
  size_t done = 0;
  do {
    Compound c;
    if (fh.empty()) {
      AddPath(c, norm);
      c.GetFh();
    } else {
      c.PutFh(fh);
    }
    int fh_op = c.size() - 1;
    size_t n =
        static_cast<size_t>(std::min<uint64_t>(data.size() - done, piece));
    WriteLease lease;
    c.Write(offset + done, data.subspan(done, n), lease.BufferRelease(),
            stable);
    int w = c.size() - 1;
    Submit(std::move(c), lease.ReplyCallback());
    absl::StatusOr<CompoundReply> r = OkThrough(lease.Wait(), w + 1);
    if (!r.ok()) return r.status();
    if (fh.empty()) fh = r->result(fh_op).fh().fh();
    written += r->result(w).write().count();
    if (r->result(w).write().count() != n) {
      return absl::DataLossError(absl::StrFormat(
          "short write: the server wrote %d of %d bytes at offset %d",
          r->result(w).write().count(), n, offset + done));
    }
    done += n;
  } while (done < data.size());
  return written;
}

absl::StatusOr<rpc::FhResult> Client::Create(absl::string_view path,
                                             uint32_t mode, bool exclusive) {
  absl::StatusOr<std::pair<std::string, std::string>> pn =
      internal::SplitParent(path);
  if (!pn.ok()) return pn.status();
  Compound c;
  AddPath(c, pn->first);
  c.Create(pn->second, mode, exclusive);
  int last = c.size() - 1;
  absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
  if (!r.ok()) return r.status();
  return r->result(last).fh();
}

absl::StatusOr<rpc::FhResult> Client::Mkdir(absl::string_view path,
                                            uint32_t mode) {
  absl::StatusOr<std::pair<std::string, std::string>> pn =
      internal::SplitParent(path);
  if (!pn.ok()) return pn.status();
  Compound c;
  AddPath(c, pn->first);
  c.Mkdir(pn->second, mode);
  int last = c.size() - 1;
  absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
  if (!r.ok()) return r.status();
  return r->result(last).fh();
}

absl::Status Client::Remove(absl::string_view path) {
  absl::StatusOr<std::pair<std::string, std::string>> pn =
      internal::SplitParent(path);
  if (!pn.ok()) return pn.status();
  Compound c;
  AddPath(c, pn->first);
  c.Remove(pn->second);
  return CallOk(*this, std::move(c)).status();
}

absl::Status Client::Rmdir(absl::string_view path) {
  absl::StatusOr<std::pair<std::string, std::string>> pn =
      internal::SplitParent(path);
  if (!pn.ok()) return pn.status();
  Compound c;
  AddPath(c, pn->first);
  c.Rmdir(pn->second);
  return CallOk(*this, std::move(c)).status();
}

absl::Status Client::Rename(absl::string_view from, absl::string_view to) {
  absl::StatusOr<std::pair<std::string, std::string>> f =
      internal::SplitParent(from);
  if (!f.ok()) return f.status();
  absl::StatusOr<std::pair<std::string, std::string>> t =
      internal::SplitParent(to);
  if (!t.ok()) return t.status();
  std::string to_dir;
  if (f->first != t->first) {
    // No SAVEFH in the protocol: get the target directory's handle first.
    Compound d;
    AddPath(d, t->first);
    d.GetFh();
    int last = d.size() - 1;
    absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(d));
    if (!r.ok()) return r.status();
    to_dir = r->result(last).fh().fh();
  }
  Compound c;
  AddPath(c, f->first);
  c.Rename(f->second, t->second, to_dir);
  return CallOk(*this, std::move(c)).status();
}

absl::StatusOr<rpc::CommitResult> Client::Commit(absl::string_view path) {
  Compound c;
  AddPath(c, internal::NormalizePath(path));
  c.Commit();
  int last = c.size() - 1;
  absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
  if (!r.ok()) return r.status();
  return r->result(last).commit();
}

absl::StatusOr<rpc::Attr> Client::Truncate(absl::string_view path,
                                           uint64_t size) {
  Compound c;
  AddPath(c, internal::NormalizePath(path));
  c.SetAttr({.size = size});
  int last = c.size() - 1;
  absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
  if (!r.ok()) return r.status();
  return r->result(last).attr().attr();
}

absl::StatusOr<rpc::StatFsResult> Client::StatFs() {
  Compound c;
  c.StatFs();
  absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
  if (!r.ok()) return r.status();
  return r->result(0).statfs();
}

absl::StatusOr<rpc::StatsResult> Client::Stats() {
  Compound c;
  c.Stats();
  absl::StatusOr<CompoundReply> r = CallOk(*this, std::move(c));
  if (!r.ok()) return r.status();
  return r->result(0).stats();
}

// --- token -------------------------------------------------------------------

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return absl::Status(
        errno == ENOENT ? absl::StatusCode::kNotFound
                        : absl::StatusCode::kPermissionDenied,
        absl::StrCat("token file ", path, ": ", strerror(errno)));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file ", path, ": ", strerror(errno)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file ", path, ": over 1 MiB"));
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\t' ||
                          out.back() == '\r' || out.back() == '\n')) {
    out.pop_back();
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, " is empty"));
  }
  return out;
}

}  // namespace txbuf::client
