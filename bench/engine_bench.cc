// Send throughput of every engine over loopback TCP, side by side in one
// run, against plain blocking sendmsg() of the same bytes.
//
// Each iteration sends one message (a 32-byte header + page-cache pages) as
// a txbuf with up to 8 txbufs in flight (queued or awaiting notification);
// a receiver thread drains the socket. Benchmarks are named
// BM_Send/<engine>/<message bytes>. After the run, a summary prints each
// engine's median throughput as a ratio to plain send() and to the best fixed
// engine; `auto` should be within 5% of the best fixed engine at every size.
//
//   build/bench/engine_bench --benchmark_repetitions=3
//       --benchmark_enable_random_interleaving=true
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "common/socket_util.h"
#include "common/tx_socket.h"
#include "common/txbuf.h"

namespace txbuf {
namespace {

constexpr int kWindow = 8;
constexpr size_t kHeader = 32;

// Drains a socket on its own thread until EOF.
class Drain {
 public:
  explicit Drain(UniqueFd fd) : fd_(std::move(fd)) {
    thread_ = std::thread([this] {
      std::vector<char> buf(1 << 20);
      while (recv(fd_.get(), buf.data(), buf.size(), 0) > 0) {
      }
    });
  }
  ~Drain() { thread_.join(); }

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

void BM_Send(benchmark::State& state, EngineKind engine) {
  const size_t size = static_cast<size_t>(state.range(0));
  auto loop = EventLoop::Create().value();
  SlabAllocator slabs;
  PagePool pool(64 << 20);
  MemoryStats stats;
  TxBufContext ctx(slabs, pool, stats);
  if (engine == EngineKind::kUringZc) {
    loop->RegisterArena(pool.arena())
        .IgnoreError();  // fixed buffers if allowed
  }
  std::vector<PageRef> pages = MakePages(pool, size);
  auto pair = LoopbackTcpPair().value();
  Drain drain(std::move(pair.second));
  absl::StatusOr<std::unique_ptr<TxSocket>> sock =
      TxSocket::Create(*loop, std::move(pair.first), {.engine = engine}, stats);
  if (!sock.ok()) {
    state.SkipWithError(sock.status().ToString().c_str());
    return;
  }
  int in_flight = 0;
  char header[kHeader] = "TXBUF-BENCH";
  for (auto _ : state) {
    TxBufBuilder b(ctx);
    b.AppendBytes(header, kHeader);
    size_t left = size - kHeader;
    for (size_t i = 0; left > 0; ++i) {
      size_t n = std::min(left, kPageSize);
      b.AppendPage(pages[i], 0, n);
      left -= n;
    }
    ++in_flight;
    (*sock)->Send(*b.Finish([&](const TxBufCompletion&) { --in_flight; }));
    while (in_flight >= kWindow) loop->RunOnce(absl::Milliseconds(1));
  }
  loop->RunUntil([&] { return in_flight == 0; }, absl::Seconds(30));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  bool closed = false;
  (*sock)->Close(TxSocket::CloseMode::kGraceful, [&] { closed = true; });
  loop->RunUntil([&] { return closed; }, absl::Seconds(30));
  MemoryStatsSnapshot s = stats.Snapshot();
  state.counters["copied_pct"] =
      100.0 * static_cast<double>(s.copied_completions) /
      std::max<double>(1, static_cast<double>(s.copied_completions +
                                              s.zerocopy_completions));
  state.counters["p99_destructor_us"] = s.destructor_latency.p99 / 1000.0;
}

// The baseline: blocking sendmsg() of the same header + pages.
void BM_Send_plain_send(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  PagePool pool(64 << 20);
  std::vector<PageRef> pages = MakePages(pool, size);
  auto pair = LoopbackTcpPair().value();
  Drain drain(std::move(pair.second));
  char header[kHeader] = "TXBUF-BENCH";
  std::vector<iovec> iov;
  iov.push_back({header, kHeader});
  size_t left = size - kHeader;
  for (size_t i = 0; left > 0; ++i) {
    size_t n = std::min(left, kPageSize);
    iov.push_back({pages[i].data(), n});
    left -= n;
  }
  for (auto _ : state) {
    size_t done = 0;
    size_t first = 0;
    std::vector<iovec> v = iov;
    while (done < size) {
      msghdr msg{};
      msg.msg_iov = v.data() + first;
      msg.msg_iovlen = v.size() - first;
      ssize_t r = sendmsg(pair.first.get(), &msg, MSG_NOSIGNAL);
      if (r <= 0) {
        state.SkipWithError("sendmsg failed");
        return;
      }
      done += static_cast<size_t>(r);
      while (r > 0) {  // advance past what was sent
        size_t take = std::min(static_cast<size_t>(r), v[first].iov_len);
        v[first].iov_base = static_cast<char*>(v[first].iov_base) + take;
        v[first].iov_len -= take;
        r -= static_cast<ssize_t>(take);
        if (v[first].iov_len == 0) ++first;
      }
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  pair.first.reset();
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
                               ? "plain_send"
                               : name.substr(name.find('/') + 1);
      results_[r.run_name.args][engine] = it->second.value;
    }
  }

  void PrintSummary() const {
    std::printf(
        "\nSummary: median MiB/s; ratios to plain send() and to the "
        "best fixed engine (copy, msg_zerocopy, uring_zc)\n");
    std::printf("%-10s %-13s %10s %10s %10s\n", "size", "engine", "MiB/s",
                "vs send()", "vs best");
    for (const auto& [args, by_engine] : results_) {
      double plain =
          by_engine.count("plain_send") ? by_engine.at("plain_send") : 0;
      double best = 0;
      for (const char* e : {"copy", "msg_zerocopy", "uring_zc"}) {
        if (by_engine.count(e)) best = std::max(best, by_engine.at(e));
      }
      for (const auto& [engine, bps] : by_engine) {
        std::printf("%-10s %-13s %10.1f %10.2f %10.2f\n", args.c_str(),
                    engine.c_str(), bps / (1 << 20), plain ? bps / plain : 0,
                    best ? bps / best : 0);
      }
      if (by_engine.count("auto") && best > 0) {
        double r = by_engine.at("auto") / best;
        std::printf("%-10s auto/best = %.3f (%s the 0.95 target)\n",
                    args.c_str(), r, r >= 0.95 ? "meets" : "MISSES");
      }
    }
  }

 private:
  std::map<std::string, std::map<std::string, double>> results_;
};

}  // namespace
}  // namespace txbuf

int main(int argc, char** argv) {
  using txbuf::EngineKind;
  for (EngineKind e : {EngineKind::kCopy, EngineKind::kMsgZerocopy,
                       EngineKind::kUringZc, EngineKind::kAuto}) {
    std::string name = absl::StrFormat("BM_Send/%s", txbuf::EngineName(e));
    benchmark::RegisterBenchmark(name.c_str(), txbuf::BM_Send, e)
        ->Arg(4096)
        ->Arg(65536)
        ->Arg(1 << 20)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("BM_Send_plain_send", txbuf::BM_Send_plain_send)
      ->Arg(4096)
      ->Arg(65536)
      ->Arg(1 << 20)
      ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  txbuf::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
