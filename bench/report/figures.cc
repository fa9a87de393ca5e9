#include "bench/report/figures.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace txbuf::bench {

LatencyFigures LatencyOf(const LogHistogram& h_ns) {
  LatencyFigures f;
  HistogramSummary s = h_ns.Summary();
  f.count = s.count;
  if (s.count == 0) return f;
  f.p50_us = static_cast<double>(s.p50) / 1e3;
  f.p90_us = static_cast<double>(s.p90) / 1e3;
  f.p99_us = static_cast<double>(s.p99) / 1e3;
  f.p999_us = static_cast<double>(s.p999) / 1e3;
  f.max_us = static_cast<double>(s.max) / 1e3;
  f.mean_us = s.mean / 1e3;
  return f;
}

namespace {

OpFigures OpFiguresOf(const OpCounts& c, double secs) {
  OpFigures f;
  f.ops = c.ops;
  f.ops_s = static_cast<double>(c.ops) / secs;
  f.mib_s = static_cast<double>(c.bytes) / secs / (1 << 20);
  f.latency = LatencyOf(c.latency_ns);
  f.errors = c.errors;
  f.verify_failures = c.verify_failures;
  return f;
}

}  // namespace

Figures ComputeFigures(const RunResult& r) {
  Figures f;
  const RunResult& l = r;
  f.ops = l.ops;
  f.elapsed_s = l.elapsed_s;
  const double secs = l.elapsed_s > 0 ? l.elapsed_s : 1;
  f.ops_s = static_cast<double>(l.ops) / secs;
  f.mib_s = static_cast<double>(l.bytes) / secs / (1 << 20);
  f.latency = LatencyOf(l.latency_ns);
  if (l.ops > 0) {
    const auto ops = static_cast<double>(l.ops);
    f.client_cpu_us_op = l.client_cpu_us / ops;
    if (l.server_cpu_us >= 0) f.server_cpu_us_op = l.server_cpu_us / ops;
  }
  f.errors = l.errors;
  f.verify_failures = l.verify_failures;
  if (r.server.has_value()) {
    const ServerMemory& s = *r.server;
    f.has_server_memory = true;
    f.destructor = LatencyOf(s.destructor_latency_ns);
    f.pinned_max_bytes = static_cast<double>(s.pinned_max);
    f.zerocopy_completions = static_cast<double>(s.zerocopy_completions);
    f.copied_completions = static_cast<double>(s.copied_completions);
    f.cow_copies = static_cast<double>(s.cow_copies);
  }
  if (r.client.has_value()) {
    const ClientMemory& c = *r.client;
    f.has_client_memory = true;
    f.client_release = LatencyOf(c.release_latency_ns);
    f.client_pinned_max_bytes = static_cast<double>(c.pinned_max);
    f.client_zerocopy_completions = static_cast<double>(c.zerocopy_completions);
    f.client_copied_completions = static_cast<double>(c.copied_completions);
  }
  if (r.reads.has_value() && r.writes.has_value()) {
    f.has_split = true;
    f.reads = OpFiguresOf(*r.reads, secs);
    f.writes = OpFiguresOf(*r.writes, secs);
  }
  return f;
}

double Median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(),
                         [](double x) { return std::isnan(x); }),
          v.end());
  if (v.empty()) return kNa;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int MedianRunIndex(const std::vector<Figures>& runs) {
  if (runs.empty()) return -1;
  std::vector<int> idx(runs.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) {
    return runs[static_cast<size_t>(a)].ops_s <
           runs[static_cast<size_t>(b)].ops_s;
  });
  return idx[(idx.size() - 1) / 2];
}

namespace {

double MedianOf(const std::vector<Figures>& runs,
                const std::function<double(const Figures&)>& get) {
  std::vector<double> v;
  v.reserve(runs.size());
  for (const Figures& f : runs) v.push_back(get(f));
  return Median(std::move(v));
}

LatencyFigures MedianLatency(
    const std::vector<Figures>& runs,
    const std::function<const LatencyFigures&(const Figures&)>& get) {
  LatencyFigures m;
  m.p50_us = MedianOf(runs, [&](const Figures& f) { return get(f).p50_us; });
  m.p90_us = MedianOf(runs, [&](const Figures& f) { return get(f).p90_us; });
  m.p99_us = MedianOf(runs, [&](const Figures& f) { return get(f).p99_us; });
  m.p999_us = MedianOf(runs, [&](const Figures& f) { return get(f).p999_us; });
  m.max_us = MedianOf(runs, [&](const Figures& f) { return get(f).max_us; });
  m.mean_us = MedianOf(runs, [&](const Figures& f) { return get(f).mean_us; });
  double count = MedianOf(runs, [&](const Figures& f) {
    return static_cast<double>(get(f).count);
  });
  m.count = std::isnan(count) ? 0 : static_cast<uint64_t>(std::llround(count));
  return m;
}

}  // namespace

Figures MedianFigures(const std::vector<Figures>& runs) {
  Figures m;
  if (runs.empty()) return m;
  double ops = MedianOf(
      runs, [](const Figures& f) { return static_cast<double>(f.ops); });
  m.ops = static_cast<uint64_t>(std::llround(ops));
  m.elapsed_s = MedianOf(runs, [](const Figures& f) { return f.elapsed_s; });
  m.ops_s = MedianOf(runs, [](const Figures& f) { return f.ops_s; });
  m.mib_s = MedianOf(runs, [](const Figures& f) { return f.mib_s; });
  m.latency = MedianLatency(
      runs,
      [](const Figures& f) -> const LatencyFigures& { return f.latency; });
  m.server_cpu_us_op =
      MedianOf(runs, [](const Figures& f) { return f.server_cpu_us_op; });
  m.client_cpu_us_op =
      MedianOf(runs, [](const Figures& f) { return f.client_cpu_us_op; });
  for (const Figures& f : runs) {
    m.errors += f.errors;
    m.verify_failures += f.verify_failures;
    m.has_server_memory = m.has_server_memory || f.has_server_memory;
    m.has_client_memory = m.has_client_memory || f.has_client_memory;
  }
  m.destructor = MedianLatency(
      runs, [](const Figures& f) -> const auto& { return f.destructor; });
  m.pinned_max_bytes =
      MedianOf(runs, [](const Figures& f) { return f.pinned_max_bytes; });
  m.zerocopy_completions =
      MedianOf(runs, [](const Figures& f) { return f.zerocopy_completions; });
  m.copied_completions =
      MedianOf(runs, [](const Figures& f) { return f.copied_completions; });
  m.cow_copies = MedianOf(runs, [](const Figures& f) { return f.cow_copies; });
  m.client_release = MedianLatency(
      runs, [](const Figures& f) -> const auto& { return f.client_release; });
  m.client_pinned_max_bytes = MedianOf(
      runs, [](const Figures& f) { return f.client_pinned_max_bytes; });
  m.client_zerocopy_completions = MedianOf(
      runs, [](const Figures& f) { return f.client_zerocopy_completions; });
  m.client_copied_completions = MedianOf(
      runs, [](const Figures& f) { return f.client_copied_completions; });
  for (OpFigures Figures::*part : {&Figures::reads, &Figures::writes}) {
    OpFigures& o = m.*part;
    const double ops = MedianOf(runs, [part](const Figures& f) {
      return f.has_split ? static_cast<double>((f.*part).ops) : kNa;
    });
    o.ops = std::isnan(ops) ? 0 : static_cast<uint64_t>(std::llround(ops));
    o.ops_s = MedianOf(runs, [part](const Figures& f) {
      return f.has_split ? (f.*part).ops_s : kNa;
    });
    o.mib_s = MedianOf(runs, [part](const Figures& f) {
      return f.has_split ? (f.*part).mib_s : kNa;
    });
    o.latency =
        MedianLatency(runs, [part](const Figures& f) -> const LatencyFigures& {
          return (f.*part).latency;
        });
    for (const Figures& f : runs) {
      m.has_split = m.has_split || f.has_split;
      o.errors += (f.*part).errors;
      o.verify_failures += (f.*part).verify_failures;
    }
  }
  return m;
}

}  // namespace txbuf::bench
