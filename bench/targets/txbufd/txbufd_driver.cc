#include "bench/targets/txbufd/txbufd_driver.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/load/harness.h"
#include "bench/targets/txbufd/stats_sampler.h"
#include "client/client.h"
#include "client/compound.h"
#include "common/clock.h"
#include "common/deleter.h"

namespace txbuf::bench {
namespace {

using client::Client;
using client::Compound;
using client::CompoundReply;

// What a connection looked up before the clock started.
struct Handles {
  std::string file_fh;
  std::string dir_fh;
  std::vector<std::string> meta_names;
  std::vector<std::string> meta_fhs;
};

absl::StatusOr<Handles> LookUp(Client& client, const Workload& w) {
  Handles h;
  Compound q;
  if (w.kind == WorkloadKind::kMeta) {
    q.PutRootFh().Lookup(kMetaDir).GetFh().ReadDir(0, 0, true);
    absl::StatusOr<CompoundReply> r = client.Call(std::move(q));
    if (!r.ok()) return r.status();
    if (absl::Status s = r->status(4); !s.ok()) return s;
    h.dir_fh = r->result(2).fh().fh();
    for (const rpc::DirEntry& e : r->result(3).readdir().entries()) {
      if (e.type() != rpc::FILE_TYPE_REGULAR) continue;
      h.meta_names.push_back(absl::StrCat(kMetaDir, "/", e.name()));
      h.meta_fhs.push_back(e.fh());
    }
    if (h.meta_fhs.size() != static_cast<size_t>(kMetaFiles)) {
      return absl::FailedPreconditionError(absl::StrCat(
          kMetaDir, " holds ", h.meta_fhs.size(), " files, not ", kMetaFiles));
    }
    return h;
  }
  q.PutRootFh().Lookup(w.file).GetFh().GetAttr();
  absl::StatusOr<CompoundReply> r = client.Call(std::move(q));
  if (!r.ok()) return r.status();
  if (absl::Status s = r->status(4); !s.ok()) return s;
  h.file_fh = r->result(2).fh().fh();
  if (r->result(3).attr().attr().size() < w.file_size) {
    return absl::FailedPreconditionError(
        absl::StrCat(w.file, " has ", r->result(3).attr().attr().size(),
                     " bytes, fewer than --file-size ", w.file_size));
  }
  return h;
}

enum class OpType { kRead, kWrite, kLookup, kGetAttr, kReadDir };

// One connection's load: keeps ctx.slots() requests outstanding.
class Conn {
 public:
  Conn(const Workload& w, ConnContext& ctx, Client& client, Handles h,
       LiveCounters* live, int64_t measure_ns, int64_t end_ns, uint64_t seed)
      : w_(w),
        ctx_(ctx),
        client_(client),
        h_(std::move(h)),
        live_(live),
        measure_ns_(measure_ns),
        end_ns_(end_ns),
        rng_(seed) {}

  // Issues the first requests and waits until the last one completed.
  void Run() {
    for (int i = 0; i < ctx_.slots(); ++i) {
      Op op;
      Compound c;
      {
        absl::MutexLock l(&mu_);
        if (!ctx_.ShouldIssue(MonoNowNs())) break;
        c = Prepare(op);
      }
      Submit(std::move(c), op);
    }
    absl::MutexLock l(&mu_);
    auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return outstanding_ == 0;
    };
    mu_.Await(absl::Condition(&idle));
  }

  // WRITE buffers released (submit to Deleter) for WRITEs submitted in the
  // measured interval. Complete once the Client is destroyed.
  const LogHistogram& release_latency() const { return release_ns_; }
  // The reads and the writes, counted as ConnContext counts all ops.
  OpCounts reads() {
    absl::MutexLock l(&mu_);
    return reads_;
  }
  OpCounts writes() {
    absl::MutexLock l(&mu_);
    return writes_;
  }

 private:
  struct Op {
    OpType type = OpType::kRead;
    uint64_t offset = 0;
    int64_t start_ns = 0;
    size_t meta_index = 0;
  };

  uint64_t Bytes(const Op& op) const {
    return op.type == OpType::kRead || op.type == OpType::kWrite ? w_.size : 0;
  }

  // Chooses the next request and builds it; counts it outstanding.
  Compound Prepare(Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (w_.kind) {
      case WorkloadKind::kRead:
        op.type = OpType::kRead;
        break;
      case WorkloadKind::kWrite:
        op.type = OpType::kWrite;
        break;
      case WorkloadKind::kMixed:
        op.type = std::bernoulli_distribution(w_.read_ratio)(rng_)
                      ? OpType::kRead
                      : OpType::kWrite;
        break;
      case WorkloadKind::kMeta: {
        static constexpr OpType kTurns[] = {OpType::kLookup, OpType::kGetAttr,
                                            OpType::kReadDir};
        op.type = kTurns[meta_turn_++ % 3];
        op.meta_index = std::uniform_int_distribution<size_t>(
            0, h_.meta_fhs.size() - 1)(rng_);
        break;
      }
    }
    Compound c;
    if (op.type == OpType::kRead || op.type == OpType::kWrite) {
      op.offset = ctx_.NextOffset();
    }
    op.start_ns = MonoNowNs();
    switch (op.type) {
      case OpType::kRead:
        c.PutFh(h_.file_fh).Read(op.offset, static_cast<uint32_t>(w_.size));
        break;
      case OpType::kWrite:
        AddWrite(c, op);
        break;
      case OpType::kLookup:
        c.PutRootFh().Lookup(h_.meta_names[op.meta_index]).GetAttr();
        break;
      case OpType::kGetAttr:
        c.PutFh(h_.meta_fhs[op.meta_index]).GetAttr();
        break;
      case OpType::kReadDir:
        c.PutFh(h_.dir_fh).ReadDir(0, 0, true);
        break;
    }
    ++outstanding_;
    return c;
  }

  void AddWrite(Compound& c, const Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t n = static_cast<size_t>(w_.size);
    std::vector<uint8_t> scratch;
    const uint8_t* data = ctx_.pattern().Data(op.offset, n, scratch);
    Deleter release;
    if (scratch.empty()) {
      // Points into the shared pattern image, which outlives the client.
      release = Deleter::FromCallable(
          [this, start = op.start_ns] { Released(start); });
    } else {
      // Computed for this WRITE: the buffer lives until its release.
      auto buf = std::make_shared<std::vector<uint8_t>>(std::move(scratch));
      data = buf->data();
      release = Deleter::FromCallable(
          [this, buf, start = op.start_ns] { Released(start); });
    }
    c.PutFh(h_.file_fh)
        .Write(op.offset, {reinterpret_cast<const std::byte*>(data), n},
               std::move(release), rpc::STABILITY_UNSTABLE);
  }

  // A WRITE buffer's Deleter: the client's txbuf destructor ran.
  void Released(int64_t start_ns) {
    if (start_ns >= measure_ns_ && start_ns < end_ns_) {
      release_ns_.Record(
          static_cast<uint64_t>(std::max<int64_t>(0, MonoNowNs() - start_ns)));
    }
  }

  void Submit(Compound c, Op op) {
    client_.Submit(std::move(c), [this, op](absl::StatusOr<CompoundReply> r) {
      OnDone(op, std::move(r));
    });
  }

  // Whether the reply is a success with the expected results; `verified`
  // false if READ data differ from the pattern.
  bool Check(const Op& op, const absl::StatusOr<CompoundReply>& r,
             bool& verified) {
    verified = true;
    if (!r.ok() || !r->ok()) return false;
    switch (op.type) {
      case OpType::kRead: {
        if (r->size() != 2) return false;
        absl::Span<const std::byte> data = r->ReadData(1);
        if (data.size() != w_.size) return false;
        verified =
            !w_.verify_reads ||
            ctx_.pattern().Check(
                op.offset,
                {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
        return true;
      }
      case OpType::kWrite:
        return r->size() == 2 && r->result(1).write().count() == w_.size;
      case OpType::kLookup:
        return r->size() == 3 &&
               r->result(2).attr().attr().size() == kMetaFileSize;
      case OpType::kGetAttr:
        return r->size() == 2 &&
               r->result(1).attr().attr().size() == kMetaFileSize;
      case OpType::kReadDir:
        return r->size() == 2 &&
               r->result(1).readdir().entries_size() >= kMetaFiles;
    }
    return false;
  }

  void OnDone(const Op& op, absl::StatusOr<CompoundReply> r) {
    const int64_t now = MonoNowNs();
    bool verified = true;
    const bool ok = Check(op, r, verified);
    if (live_ != nullptr && ok && now >= measure_ns_ && now < end_ns_) {
      live_->ops.fetch_add(1, std::memory_order_relaxed);
      live_->latency_ns.Record(static_cast<uint64_t>(now - op.start_ns));
    }
    Op next;
    Compound c;
    bool issue = false;
    {
      absl::MutexLock l(&mu_);
      ctx_.Complete(op.start_ns, now, Bytes(op), ok, verified);
      if (op.type == OpType::kRead || op.type == OpType::kWrite) {
        OpCounts& k = op.type == OpType::kRead ? reads_ : writes_;
        if (!ok) {
          ++k.errors;
        } else {
          if (!verified) ++k.verify_failures;
          if (ctx_.Counts(now)) {
            ++k.ops;
            k.bytes += Bytes(op);
            k.latency_ns.Record(
                static_cast<uint64_t>(std::max<int64_t>(0, now - op.start_ns)));
          }
        }
      }
      --outstanding_;
      if (ctx_.ShouldIssue(now)) {
        c = Prepare(next);
        issue = true;
      }
    }
    if (issue) Submit(std::move(c), next);
  }

  const Workload& w_;
  ConnContext& ctx_;
  Client& client_;
  const Handles h_;
  LiveCounters* const live_;
  const int64_t measure_ns_;
  const int64_t end_ns_;
  LogHistogram release_ns_;
  absl::Mutex mu_;
  OpCounts reads_ ABSL_GUARDED_BY(mu_);
  OpCounts writes_ ABSL_GUARDED_BY(mu_);
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t meta_turn_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

// A connection's client-side memory recovery.
struct ClientSide {
  LogHistogram release_ns;
  uint64_t pinned_max = 0;
  uint64_t zerocopy = 0;
  uint64_t copied = 0;
};

}  // namespace

absl::StatusOr<RunResult> TxbufdDriver::Run(const Workload& w, pid_t server_pid,
                                            LiveCounters* live) {
  if (absl::Status s = ValidateWorkload(w); !s.ok()) return s;
  std::unique_ptr<StatsSampler> sampler;
  if (options_.server_stats) {
    absl::StatusOr<std::unique_ptr<StatsSampler>> s = StatsSampler::Connect(
        host_, port_, options_.stats_period, options_.token);
    if (!s.ok()) {
      return absl::Status(s.status().code(),
                          absl::StrCat("STATS connection to ", host_, ":",
                                       port_, ": ", s.status().message()));
    }
    sampler = *std::move(s);
  }
  const std::string host = host_;
  const uint16_t port = port_;
  const EngineKind client_engine = options_.client_engine;
  auto client_options = [&](int connections, int in_flight) {
    client::ClientOptions o;
    o.host = host;
    o.port = port;
    o.token = options_.token;
    o.export_name = options_.export_name;
    o.connections = connections;
    o.engine = client_engine;
    o.request_timeout = absl::Nanoseconds(kOpTimeoutNs);
    o.max_in_flight_per_connection = std::max(256, in_flight);
    return o;
  };
  // Declared before the clients: a WRITE buffer's release may call into its
  // Conn until the client that sent it is destroyed.
  std::vector<std::unique_ptr<Conn>> conns(static_cast<size_t>(w.connections));
  std::vector<ClientSide> sides(static_cast<size_t>(w.connections));
  std::unique_ptr<Client> shared;
  MemoryStatsSnapshot shared_m0;
  if (options_.shared_client) {
    absl::StatusOr<std::unique_ptr<Client>> c =
        Client::Connect(client_options(w.connections, w.concurrency));
    if (!c.ok()) return c.status();
    shared = *std::move(c);
    shared_m0 = shared->memory_stats();
  }
  std::once_flag begun;
  const auto seed_base = static_cast<uint64_t>(MonoNowNs());

  absl::StatusOr<RunResult> load =
      RunHarness(w, server_pid, [&](int index, ConnContext& ctx) {
        std::unique_ptr<Client> own;
        Client* client = shared.get();
        absl::Status setup;
        if (client == nullptr) {
          absl::StatusOr<std::unique_ptr<Client>> c =
              Client::Connect(client_options(1, ctx.slots()));
          if (c.ok()) {
            own = *std::move(c);
            client = own.get();
          } else {
            setup = c.status();
          }
        }
        absl::StatusOr<Handles> handles = client != nullptr
                                              ? LookUp(*client, w)
                                              : absl::StatusOr<Handles>(setup);
        MemoryStatsSnapshot m0;
        if (own != nullptr) m0 = own->memory_stats();
        if (!ctx.Start(handles.status())) return;
        // The harness started its clock just before releasing us.
        const int64_t measure_ns =
            MonoNowNs() + static_cast<int64_t>(w.warmup_s * 1e9);
        const int64_t end_ns =
            measure_ns + static_cast<int64_t>(w.duration_s * 1e9);
        std::call_once(begun, [&] {
          if (sampler != nullptr) sampler->Begin(measure_ns, end_ns);
        });
        if (ctx.slots() == 0) return;
        std::unique_ptr<Conn>& conn = conns[static_cast<size_t>(index)];
        conn = std::make_unique<Conn>(
            w, ctx, *client, *std::move(handles), live, measure_ns, end_ns,
            seed_base + static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ULL);
        conn->Run();
        if (own == nullptr) return;
        MemoryStatsSnapshot m1 = own->memory_stats();
        // Waits until every request txbuf's destructor (and so every WRITE
        // buffer's release) has run.
        own.reset();
        ClientSide& side = sides[static_cast<size_t>(index)];
        side.pinned_max = m1.pinned_bytes_max;
        side.zerocopy = m1.zerocopy_completions - m0.zerocopy_completions;
        side.copied = m1.copied_completions - m0.copied_completions;
      });
  if (shared != nullptr) {
    MemoryStatsSnapshot m1 = shared->memory_stats();
    shared.reset();  // every release has run
    sides.front().pinned_max = m1.pinned_bytes_max;
    sides.front().zerocopy =
        m1.zerocopy_completions - shared_m0.zerocopy_completions;
    sides.front().copied = m1.copied_completions - shared_m0.copied_completions;
  }
  OpCounts reads, writes;
  for (size_t i = 0; i < conns.size(); ++i) {
    if (conns[i] == nullptr) continue;
    sides[i].release_ns.Merge(conns[i]->release_latency());
    for (auto [from, to] : {std::pair{conns[i]->reads(), &reads},
                            std::pair{conns[i]->writes(), &writes}}) {
      to->ops += from.ops;
      to->bytes += from.bytes;
      to->errors += from.errors;
      to->verify_failures += from.verify_failures;
      to->latency_ns.Merge(from.latency_ns);
    }
  }
  if (!load.ok()) return load.status();

  RunResult out = *std::move(load);
  if (w.kind == WorkloadKind::kMixed) {
    out.reads = std::move(reads);
    out.writes = std::move(writes);
  }
  if (sampler != nullptr) {
    absl::StatusOr<ServerMemory> m = sampler->Finish();
    if (!m.ok()) {
      return absl::Status(
          m.status().code(),
          absl::StrCat("STATS during the run: ", m.status().message()));
    }
    out.server = *std::move(m);
  }
  if (w.kind == WorkloadKind::kWrite || w.kind == WorkloadKind::kMixed) {
    ClientMemory c;
    for (const ClientSide& s : sides) {
      c.release_latency_ns.Merge(s.release_ns);
      c.pinned_max += s.pinned_max;
      c.zerocopy_completions += s.zerocopy;
      c.copied_completions += s.copied;
    }
    out.client = std::move(c);
  }
  return out;
}

}  // namespace txbuf::bench
