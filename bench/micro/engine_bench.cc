// Send throughput of every engine over loopback TCP, side by side in one
// run, against plain blocking sendmsg() of the same bytes.
//
// Each message is a 32-byte header + page-cache pages, sent as one txbuf
// with up to 8 txbufs in flight (queued or awaiting notification); a
// receiver thread drains the socket. Google Benchmark runs are named
// BM_Send/<engine>/<message bytes> (and BM_Send_plain_send/<bytes>).
//
// After them comes a paired comparison, the figure to judge `auto` by: one
// long-lived connection per engine and size, and `--paired_rounds` rounds in
// which every engine sends for `--paired_slice_ms`, in a shuffled order. A
// round's engines run within a fraction of a second of each other, so the
// ratio auto / best fixed engine is taken per round (the machine's drift
// cancels) and the median over rounds is reported. `auto` should be within
// 5% of the best fixed engine at every size. `--paired_rounds=0` skips it.
//
//   build-release/bench/micro/engine_bench --benchmark_repetitions=3
//       --benchmark_enable_random_interleaving=true --paired_rounds=40
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/shard.h"
#include "common/socket_util.h"
#include "common/tx_socket.h"
#include "common/txbuf.h"

namespace txbuf {
namespace {

constexpr int kWindow = 8;
constexpr size_t kHeader = 32;
constexpr int64_t kSizes[] = {4096, 65536, 1 << 20};
// The engines a run compares; "plain_send" is the blocking sendmsg()
// baseline.
constexpr absl::string_view kPlainSend = "plain_send";
constexpr EngineKind kFixedEngines[] = {
    EngineKind::kCopy, EngineKind::kMsgZerocopy, EngineKind::kUringZc};

// Drains a socket on its own thread until EOF.
class DrainThread {
 public:
  explicit DrainThread(UniqueFd fd) : fd_(std::move(fd)) {
    thread_ = std::thread([this] {
      std::vector<char> buf(1 << 20);
      while (recv(fd_.get(), buf.data(), buf.size(), 0) > 0) {
      }
    });
  }
  ~DrainThread() { thread_.join(); }

 private:
  UniqueFd fd_;
  std::thread thread_;
};

// Pages standing for cached file data, reused by every message.
std::vector<PageRef> MakePages(PagePool& pool, size_t bytes) {
  std::vector<PageRef> pages;
  for (size_t at = 0; at < bytes; at += kPageSize) {
    PageRef p = pool.Allocate();
    std::memset(p.data(), static_cast<int>(at / kPageSize), kPageSize);
    pages.push_back(std::move(p));
  }
  return pages;
}

// Sends messages of one size over one loopback connection.
class Sender {
 public:
  virtual ~Sender() = default;
  // Sends one message (may wait for room in the window).
  virtual bool SendOne() = 0;
  // Waits until everything sent so far is released.
  virtual void Drain() {}
  virtual const char* error() const { return nullptr; }

  // Sends for `ns` nanoseconds; returns bytes per second.
  double RunFor(int64_t ns, size_t size) {
    int64_t start = MonoNowNs();
    int64_t deadline = start + ns;
    uint64_t n = 0;
    while (MonoNowNs() < deadline) {
      if (!SendOne()) return 0;
      ++n;
    }
    Drain();
    double secs = static_cast<double>(MonoNowNs() - start) / 1e9;
    return static_cast<double>(n * size) / secs;
  }
};

// A TxSocket of one engine on its own shard (event loop, slabs, txbuf
// context; the pool's arena registered for the zero-copy engines).
class EngineSender final : public Sender {
 public:
  EngineSender(EngineKind engine, size_t size)
      : size_(size),
        pool_(8 << 20),
        shard_(
            Shard::Create(pool_, stats_,
                          {.engine = engine,
                           .register_bytes = engine == EngineKind::kUringZc ||
                                                     engine == EngineKind::kAuto
                                                 ? pool_.arena().iov_len
                                                 : 0})
                .value()),
        loop_(&shard_->loop()),
        pages_(MakePages(pool_, size)) {
    auto pair = LoopbackTcpPair().value();
    drain_ = std::make_unique<DrainThread>(std::move(pair.second));
    absl::StatusOr<std::unique_ptr<TxSocket>> sock = TxSocket::Create(
        *loop_, std::move(pair.first), shard_->SocketOptions(), stats_);
    if (sock.ok()) {
      sock_ = std::move(*sock);
    } else {
      error_ = sock.status().ToString();
    }
  }

  ~EngineSender() override {
    if (sock_ != nullptr) {
      Drain();
      bool closed = false;
      sock_->Close(TxSocket::CloseMode::kGraceful, [&] { closed = true; });
      loop_->RunUntil([&] { return closed; }, absl::Seconds(30));
    }
  }

  bool SendOne() override {
    if (sock_ == nullptr) return false;
    TxBufBuilder b(shard_->ctx());
    b.AppendBytes(header_, kHeader);
    size_t left = size_ - kHeader;
    for (size_t i = 0; left > 0; ++i) {
      size_t n = std::min(left, kPageSize);
      b.AppendPage(pages_[i].Share(), 0, n);
      left -= n;
    }
    ++in_flight_;
    sock_->Send(*b.Finish([this](const TxBufCompletion&) { --in_flight_; }));
    while (in_flight_ >= kWindow) loop_->RunOnce(absl::Milliseconds(1));
    return true;
  }

  void Drain() override {
    loop_->RunUntil([&] { return in_flight_ == 0; }, absl::Seconds(30));
  }

  const char* error() const override {
    return error_.empty() ? nullptr : error_.c_str();
  }
  const TxSocket& socket() const { return *sock_; }
  MemoryStatsSnapshot Snapshot() const { return stats_.Snapshot(); }

 private:
  size_t size_;
  PagePool pool_;
  MemoryStats stats_;
  std::unique_ptr<Shard> shard_;
  EventLoop* loop_;  // the shard's
  std::vector<PageRef> pages_;
  std::unique_ptr<DrainThread> drain_;
  std::unique_ptr<TxSocket> sock_;
  std::string error_;
  int in_flight_ = 0;
  char header_[kHeader] = "TXBUF-BENCH";
};

// The baseline: blocking sendmsg() of the same header + pages.
class PlainSender final : public Sender {
 public:
  explicit PlainSender(size_t size) : size_(size), pool_(8 << 20) {
    pages_ = MakePages(pool_, size);
    auto pair = LoopbackTcpPair().value();
    fd_ = std::move(pair.first);
    drain_ = std::make_unique<DrainThread>(std::move(pair.second));
    iov_.push_back({header_, kHeader});
    size_t left = size - kHeader;
    for (size_t i = 0; left > 0; ++i) {
      size_t n = std::min(left, kPageSize);
      iov_.push_back({pages_[i].data(), n});
      left -= n;
    }
  }
  ~PlainSender() override { fd_.reset(); }  // EOF ends the drain thread.

  bool SendOne() override {
    size_t done = 0;
    size_t first = 0;
    std::vector<iovec> v = iov_;
    while (done < size_) {
      msghdr msg{};
      msg.msg_iov = v.data() + first;
      msg.msg_iovlen = v.size() - first;
      ssize_t r = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
      if (r <= 0) return false;
      done += static_cast<size_t>(r);
      while (r > 0) {  // advance past what was sent
        size_t take = std::min(static_cast<size_t>(r), v[first].iov_len);
        v[first].iov_base = static_cast<char*>(v[first].iov_base) + take;
        v[first].iov_len -= take;
        r -= static_cast<ssize_t>(take);
        if (v[first].iov_len == 0) ++first;
      }
    }
    return true;
  }

 private:
  size_t size_;
  PagePool pool_;
  std::vector<PageRef> pages_;
  UniqueFd fd_;
  std::unique_ptr<DrainThread> drain_;
  std::vector<iovec> iov_;
  char header_[kHeader] = "TXBUF-BENCH";
};

void BM_Send(benchmark::State& state, EngineKind engine) {
  const size_t size = static_cast<size_t>(state.range(0));
  EngineSender sender(engine, size);
  if (sender.error() != nullptr) {
    state.SkipWithError(sender.error());
    return;
  }
  for (auto _ : state) sender.SendOne();
  sender.Drain();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  MemoryStatsSnapshot s = sender.Snapshot();
  // Every run reports the same counters (the CSV reporter needs that).
  state.counters["copied_pct"] =
      100.0 * static_cast<double>(s.copied_completions) /
      std::max<double>(1, static_cast<double>(s.copied_completions +
                                              s.zerocopy_completions));
  state.counters["p99_destructor_us"] = s.destructor_latency.p99 / 1000.0;
  // What auto measured and chose (its last probe's medians); 0 otherwise.
  const AutoPolicy& p = sender.socket().auto_policy();
  bool is_auto = engine == EngineKind::kAuto;
  state.counters["auto_probes"] = is_auto ? p.probes() : 0;
  state.counters["auto_zc_choices"] = is_auto ? p.zerocopy_choices() : 0;
  state.counters["copy_ns_per_KiB"] = is_auto ? p.copy_ns_per_kib() : 0;
  state.counters["zc_ns_per_KiB"] = is_auto ? p.zerocopy_ns_per_kib() : 0;
}

void BM_Send_plain_send(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  PlainSender sender(size);
  for (auto _ : state) {
    if (!sender.SendOne()) {
      state.SkipWithError("sendmsg failed");
      return;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  for (const char* c :
       {"copied_pct", "p99_destructor_us", "auto_probes", "auto_zc_choices",
        "copy_ns_per_KiB", "zc_ns_per_KiB"}) {
    state.counters[c] = 0;
  }
}

// Collects median throughput per benchmark for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      bool median =
          r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      bool single = r.run_type == Run::RT_Iteration && r.repetitions <= 1;
      if (!median && !single) continue;
      auto it = r.counters.find("bytes_per_second");
      if (it == r.counters.end()) continue;
      // "BM_Send/<engine>/<size>" or "BM_Send_plain_send/<size>"
      std::string name = r.run_name.function_name;
      std::string engine = name == "BM_Send_plain_send"
                               ? std::string(kPlainSend)
                               : name.substr(name.find('/') + 1);
      results_[r.run_name.args][engine] = it->second.value;
    }
  }

  void PrintSummary() const {
    if (results_.empty()) return;
    std::printf(
        "\nGoogle Benchmark runs: median MiB/s; ratios to plain send() and to "
        "the best fixed engine (copy, msg_zerocopy, uring_zc)\n");
    std::printf("%-10s %-13s %10s %10s %10s\n", "size", "engine", "MiB/s",
                "vs send()", "vs best");
    for (const auto& [args, by_engine] : results_) {
      double plain = by_engine.count(std::string(kPlainSend))
                         ? by_engine.at(std::string(kPlainSend))
                         : 0;
      double best = 0;
      for (EngineKind e : kFixedEngines) {
        std::string n(EngineName(e));
        if (by_engine.count(n)) best = std::max(best, by_engine.at(n));
      }
      for (const auto& [engine, bps] : by_engine) {
        std::printf("%-10s %-13s %10.1f %10.2f %10.2f\n", args.c_str(),
                    engine.c_str(), bps / (1 << 20), plain ? bps / plain : 0,
                    best ? bps / best : 0);
      }
    }
  }

 private:
  std::map<std::string, std::map<std::string, double>> results_;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The paired comparison (see the file comment). Returns false if auto
// missed 0.95 of the best fixed engine at some size.
bool RunPaired(int rounds, int slice_ms) {
  std::printf(
      "\nPaired comparison: one connection per engine and size, %d rounds of "
      "%d ms per engine in shuffled order.\nMedian MiB/s over rounds; "
      "'vs best' is the median over rounds of this engine / the best fixed "
      "engine in the same round.\n",
      rounds, slice_ms);
  std::printf("%-10s %-13s %10s %10s %10s  %s\n", "size", "engine", "MiB/s",
              "vs send()", "vs best", "auto's choice");
  std::mt19937 rng(12345);
  bool all_met = true;
  for (int64_t size : kSizes) {
    std::vector<std::string> names;
    std::vector<std::unique_ptr<Sender>> senders;
    for (EngineKind e : {EngineKind::kCopy, EngineKind::kMsgZerocopy,
                         EngineKind::kUringZc, EngineKind::kAuto}) {
      auto s = std::make_unique<EngineSender>(e, size);
      if (s->error() != nullptr) {
        std::printf("%-10lld %-13s skipped: %s\n", static_cast<long long>(size),
                    std::string(EngineName(e)).c_str(), s->error());
        continue;
      }
      names.emplace_back(EngineName(e));
      senders.push_back(std::move(s));
    }
    names.emplace_back(kPlainSend);
    senders.push_back(std::make_unique<PlainSender>(size));
    const size_t n = senders.size();
    std::vector<std::vector<double>> bps(n);  // [engine][round]
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    for (size_t i = 0; i < n; ++i) senders[i]->RunFor(20'000'000, size);
    for (int r = 0; r < rounds; ++r) {
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t i : order) {
        bps[i].push_back(senders[i]->RunFor(int64_t{slice_ms} * 1'000'000,
                                            static_cast<size_t>(size)));
      }
    }
    // The best fixed engine is the one with the highest median; ratios are
    // per round against it.
    size_t best = n, plain = n - 1, autoi = n;
    for (size_t i = 0; i < n; ++i) {
      if (names[i] == EngineName(EngineKind::kAuto)) autoi = i;
      bool fixed =
          names[i] != EngineName(EngineKind::kAuto) && names[i] != kPlainSend;
      if (fixed && (best == n || Median(bps[i]) > Median(bps[best]))) {
        best = i;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      std::vector<double> vs_best, vs_plain;
      for (int r = 0; r < rounds; ++r) {
        if (best < n && bps[best][r] > 0) {
          vs_best.push_back(bps[i][r] / bps[best][r]);
        }
        if (bps[plain][r] > 0) vs_plain.push_back(bps[i][r] / bps[plain][r]);
      }
      std::string choice;
      if (i == autoi) {
        const AutoPolicy& p =
            static_cast<EngineSender&>(*senders[i]).socket().auto_policy();
        choice = absl::StrFormat(
            "%s (%llu probes, %llu chose zero-copy; last: copy %.0f, "
            "zero-copy %.0f ns/KiB)",
            p.mode() == AutoPolicy::Mode::kZerocopy ? "zero-copy" : "copy",
            static_cast<unsigned long long>(p.probes()),
            static_cast<unsigned long long>(p.zerocopy_choices()),
            p.copy_ns_per_kib(), p.zerocopy_ns_per_kib());
      }
      std::printf("%-10lld %-13s %10.1f %10.2f %10.2f  %s\n",
                  static_cast<long long>(size), names[i].c_str(),
                  Median(bps[i]) / (1 << 20), Median(vs_plain), Median(vs_best),
                  choice.c_str());
    }
    if (autoi < n && best < n) {
      std::vector<double> ratio;
      for (int r = 0; r < rounds; ++r) {
        if (bps[best][r] > 0) ratio.push_back(bps[autoi][r] / bps[best][r]);
      }
      double m = Median(ratio);
      all_met = all_met && m >= 0.95;
      std::printf("%-10lld auto/best (%s) = %.3f (%s the 0.95 target)\n",
                  static_cast<long long>(size), names[best].c_str(), m,
                  m >= 0.95 ? "meets" : "MISSES");
    }
  }
  return all_met;
}

// Removes --paired_rounds=N / --paired_slice_ms=N from argv.
bool TakeIntFlag(int& argc, char** argv, absl::string_view name, int* out) {
  std::string prefix = absl::StrFormat("--%s=", name);
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a.substr(0, prefix.size()) != prefix) continue;
    if (!absl::SimpleAtoi(a.substr(prefix.size()), out) || *out < 0) {
      std::fprintf(stderr, "engine_bench: bad %s\n", argv[i]);
      std::exit(2);
    }
    for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
    --argc;
    return true;
  }
  return false;
}

}  // namespace
}  // namespace txbuf

int main(int argc, char** argv) {
  using txbuf::EngineKind;
  int rounds = 40, slice_ms = 40;
  txbuf::TakeIntFlag(argc, argv, "paired_rounds", &rounds);
  txbuf::TakeIntFlag(argc, argv, "paired_slice_ms", &slice_ms);
  if (slice_ms == 0) slice_ms = 1;
  for (EngineKind e : {EngineKind::kCopy, EngineKind::kMsgZerocopy,
                       EngineKind::kUringZc, EngineKind::kAuto}) {
    std::string name = absl::StrFormat("BM_Send/%s", txbuf::EngineName(e));
    auto* b = benchmark::RegisterBenchmark(name.c_str(), txbuf::BM_Send, e);
    for (int64_t size : txbuf::kSizes) b->Arg(size);
    b->UseRealTime();
  }
  auto* b = benchmark::RegisterBenchmark("BM_Send_plain_send",
                                         txbuf::BM_Send_plain_send);
  for (int64_t size : txbuf::kSizes) b->Arg(size);
  b->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  txbuf::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  if (rounds > 0) txbuf::RunPaired(rounds, slice_ms);
  return 0;
}
