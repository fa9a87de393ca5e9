#include "server/stats/metrics_exporter.h"

#include <exception>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/socket_util.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"

namespace txbuf::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr double kNsPerSecond = 1e9;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  return MetricFamily{std::move(name), std::move(help), type, {}};
}

ClientMetric Value(MetricType type, double v,
                   std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

// One unlabelled counter or gauge.
MetricFamily One(std::string name, std::string help, MetricType type,
                 double v) {
  MetricFamily f = Family(std::move(name), std::move(help), type);
  f.metric.push_back(Value(type, v));
  return f;
}

// One latency histogram in seconds from STATS buckets (nanoseconds, binned
// finely: every bucket lies inside one power of two). Upper bounds are the
// powers of two from 2^10 ns (about 1 us) to 2^35 ns (about 34 s), then
// +Inf.
ClientMetric LatencyMetric(
    const rpc::LatencySummary& summary,
    const google::protobuf::RepeatedPtrField<rpc::HistogramBucket>& buckets,
    std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  uint64_t total = 0;
  for (const rpc::HistogramBucket& b : buckets) total += b.count();
  m.histogram.sample_count = total;
  m.histogram.sample_sum =
      summary.mean() * static_cast<double>(summary.count()) / kNsPerSecond;
  for (int e = 10; e <= 35; ++e) {
    const uint64_t bound = uint64_t{1} << e;
    uint64_t below = 0;
    for (const rpc::HistogramBucket& b : buckets) {
      if (b.hi() <= bound) below += b.count();
    }
    m.histogram.bucket.push_back(
        {below, static_cast<double>(bound) / kNsPerSecond});
  }
  m.histogram.bucket.push_back(
      {total, std::numeric_limits<double>::infinity()});
  return m;
}

// An unlabelled latency histogram family.
MetricFamily Latency(
    std::string name, std::string help, const rpc::LatencySummary& summary,
    const google::protobuf::RepeatedPtrField<rpc::HistogramBucket>& buckets) {
  MetricFamily f =
      Family(std::move(name), std::move(help), MetricType::Histogram);
  f.metric.push_back(LatencyMetric(summary, buckets));
  return f;
}

// "OK", "NOENT", ...: the status as docs/PROTOCOL.md names it.
std::string StatusName(rpc::Status s) {
  const google::protobuf::EnumValueDescriptor* v =
      rpc::Status_descriptor()->FindValueByNumber(s);
  if (v == nullptr) return absl::StrCat(static_cast<int>(s));
  return std::string(absl::StripPrefix(v->name(), "STATUS_"));
}

}  // namespace

std::vector<MetricFamily> MetricsExporter::Families(const rpc::StatsResult& r) {
  constexpr MetricType kCounter = MetricType::Counter;
  constexpr MetricType kGauge = MetricType::Gauge;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  std::vector<MetricFamily> out;

  // Requests and ops.
  MetricFamily ops =
      Family("txbuf_ops_total", "Ops run, by op and by the status it ended in",
             kCounter);
  for (const rpc::OpCount& c : r.ops()) {
    ops.metric.push_back(
        Value(kCounter, d(c.count()),
              {{"op", c.op()}, {"status", StatusName(c.status())}}));
  }
  out.push_back(std::move(ops));
  out.push_back(One("txbuf_requests_total", "Requests (compounds) received",
                    kCounter, d(r.requests())));
  out.push_back(Latency("txbuf_request_duration_seconds",
                        "From a request's frame arriving to its reply handed "
                        "to the socket",
                        r.request_latency(), r.request_latency_buckets()));
  MetricFamily op_latency =
      Family("txbuf_op_latency_seconds",
             "The request latency (as txbuf_request_duration_seconds) by op "
             "kind: each op a request ran records it once",
             MetricType::Histogram);
  for (const rpc::OpLatency& l : r.op_latency()) {
    op_latency.metric.push_back(
        LatencyMetric(l.latency(), l.buckets(), {{"op", l.op()}}));
  }
  out.push_back(std::move(op_latency));
  out.push_back(One("txbuf_read_bytes_total", "Bytes READ returned", kCounter,
                    d(r.read_bytes())));
  out.push_back(One("txbuf_write_bytes_total", "Bytes WRITE took", kCounter,
                    d(r.write_bytes())));
  out.push_back(One("txbuf_received_bytes_total",
                    "Bytes received on every connection", kCounter,
                    d(r.bytes_received())));

  // Connections and what clients did wrong.
  out.push_back(
      One("txbuf_connections", "Connections open", kGauge, d(r.connections())));
  out.push_back(One("txbuf_connections_total", "Connections accepted", kCounter,
                    d(r.connections_total())));
  out.push_back(One("txbuf_connections_refused_total",
                    "Connections refused over --max-connections", kCounter,
                    d(r.connections_refused())));
  out.push_back(One("txbuf_connections_moved_total",
                    "Connections handed by the event loop that accepted them "
                    "to one serving fewer",
                    kCounter, d(r.connections_moved())));
  out.push_back(One("txbuf_auth_failures_total",
                    "Authentication failures (wrong token, malformed, timed "
                    "out, a request first)",
                    kCounter, d(r.auth_failures())));
  out.push_back(One("txbuf_malformed_total",
                    "Frames and envelopes that did not parse", kCounter,
                    d(r.malformed())));
  out.push_back(One("txbuf_frame_timeouts_total",
                    "Connections closed for a frame that stopped arriving",
                    kCounter, d(r.frame_timeouts())));
  out.push_back(One("txbuf_budget_waits_total",
                    "Times a connection paused over a pinned-byte budget",
                    kCounter, d(r.budget_waits())));
  out.push_back(One("txbuf_budget_closes_total",
                    "Connections closed over a pinned-byte budget", kCounter,
                    d(r.budget_closes())));

  // Memory recovery.
  out.push_back(One("txbuf_pinned_bytes",
                    "Bytes held by replies the kernel has not released", kGauge,
                    d(r.pinned_bytes())));
  out.push_back(One("txbuf_pinned_bytes_max", "Most pinned bytes at once",
                    kGauge, d(r.pinned_bytes_max())));
  out.push_back(One("txbuf_held_bytes",
                    "Pinned bytes with each cache page counted once (what "
                    "--budget limits)",
                    kGauge, d(r.held_bytes())));
  out.push_back(
      One("txbuf_budget_bytes", "--budget in effect", kGauge, d(r.budget())));
  out.push_back(One("txbuf_conn_budget_bytes", "--conn-budget in effect",
                    kGauge, d(r.conn_budget())));
  out.push_back(One("txbuf_txbufs_in_flight",
                    "Txbufs whose destructor has not run", kGauge,
                    d(r.txbufs_in_flight())));
  out.push_back(One("txbuf_txbufs_created_total", "Txbufs created", kCounter,
                    d(r.txbufs_created())));
  out.push_back(One("txbuf_txbufs_destroyed_total",
                    "Txbufs whose destructor ran", kCounter,
                    d(r.txbufs_destroyed())));
  out.push_back(Latency("txbuf_destructor_latency_seconds",
                        "From a txbuf's send to its destructor",
                        r.destructor_latency(),
                        r.destructor_latency_buckets()));
  MetricFamily completions = Family(
      "txbuf_completions_total",
      "Send completions, by whether the kernel copied the data", kCounter);
  completions.metric.push_back(
      Value(kCounter, d(r.zerocopy_completions()), {{"kind", "zerocopy"}}));
  completions.metric.push_back(
      Value(kCounter, d(r.copied_completions()), {{"kind", "copied"}}));
  out.push_back(std::move(completions));
  struct EngineField {
    const char* name;
    const char* help;
    uint64_t (rpc::EngineStats::*get)() const;
  };
  for (const EngineField& ef : std::initializer_list<EngineField>{
           {"txbuf_engine_txbufs_total", "Txbufs sent, by engine",
            &rpc::EngineStats::txbufs},
           {"txbuf_engine_bytes_total", "Bytes sent, by engine",
            &rpc::EngineStats::bytes},
           {"txbuf_engine_zerocopy_notifications_total",
            "Zero-copy notifications, by engine",
            &rpc::EngineStats::zc_notifications},
           {"txbuf_engine_zerocopy_copied_total",
            "Zero-copy notifications that said the kernel copied, by engine",
            &rpc::EngineStats::zc_copied},
           {"txbuf_engine_errors_total", "Send errors, by engine",
            &rpc::EngineStats::errors}}) {
    // The "auto" row counts again what the engine auto chose sent (under
    // that engine's name): summing the family must not count it twice, so
    // it is a family of its own, txbuf_engine_auto_..._total.
    MetricFamily f = Family(ef.name, ef.help, kCounter);
    for (const rpc::EngineStats& e : r.engines()) {
      if (e.name() == "auto") {
        const std::string name = absl::StrCat(
            "txbuf_engine_auto_", absl::StripPrefix(ef.name, "txbuf_engine_"));
        out.push_back(
            One(name,
                absl::StrCat(ef.help,
                             ": those of --engine auto (also counted under the "
                             "engine it chose)"),
                kCounter, d((e.*ef.get)())));
        continue;
      }
      f.metric.push_back(
          Value(kCounter, d((e.*ef.get)()), {{"engine", e.name()}}));
    }
    out.push_back(std::move(f));
  }

  // The page cache.
  const rpc::PageCacheStats& pc = r.page_cache();
  out.push_back(One("txbuf_page_cache_pages", "Pages in the cache", kGauge,
                    d(pc.pages())));
  out.push_back(One("txbuf_page_cache_pinned_pages",
                    "Cache pages held by replies in flight", kGauge,
                    d(pc.pinned_pages())));
  out.push_back(One("txbuf_page_cache_dirty_pages",
                    "Cache pages not yet written back", kGauge,
                    d(pc.dirty_pages())));
  out.push_back(One("txbuf_page_cache_cow_copies_total",
                    "Pinned pages copied before a change", kCounter,
                    d(pc.cow_copies())));
  out.push_back(One("txbuf_page_cache_hits_total", "READ pages found cached",
                    kCounter, d(pc.hits())));
  out.push_back(One("txbuf_page_cache_misses_total",
                    "READ pages filled from the file", kCounter,
                    d(pc.misses())));
  out.push_back(One("txbuf_page_cache_evictions_total", "Pages evicted",
                    kCounter, d(pc.evictions())));
  out.push_back(One("txbuf_page_cache_writeback_bytes_total",
                    "Bytes written back to files", kCounter,
                    d(pc.writeback_bytes())));
  out.push_back(One("txbuf_page_cache_invalidations_total",
                    "Files found changed on disk by another process", kCounter,
                    d(pc.invalidations())));
  out.push_back(One("txbuf_page_cache_background_writebacks_total",
                    "Files written back without COMMIT (age or pressure)",
                    kCounter, d(pc.background_writebacks())));
  out.push_back(One("txbuf_page_cache_write_behind_pages_total",
                    "Pages written back soon after a sequential or large "
                    "write (write-behind)",
                    kCounter, d(pc.write_behind_pages())));
  out.push_back(One("txbuf_page_cache_write_around_pages_total",
                    "Pages written straight to the file by large unstable "
                    "writes (write-around)",
                    kCounter, d(pc.write_around_pages())));
  out.push_back(One("txbuf_page_cache_writeback_failed_pages_total",
                    "Dirty pages lost to write-back errors", kCounter,
                    d(pc.writeback_failed_pages())));
  out.push_back(One("txbuf_open_descriptors",
                    "File descriptors the export holds", kGauge,
                    d(r.open_descriptors())));
  return out;
}

class MetricsExporter::Collector : public prometheus::Collectable {
 public:
  explicit Collector(StatsSource stats) : stats_(std::move(stats)) {}
  std::vector<MetricFamily> Collect() const override {
    rpc::StatsResult r;
    stats_(&r);
    return Families(r);
  }

 private:
  StatsSource stats_;
};

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& host_port, StatsSource stats) {
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(host_port);
  if (!hp.ok()) return hp.status();
  std::unique_ptr<MetricsExporter> m(new MetricsExporter());
  m->collector_ = std::make_shared<Collector>(std::move(stats));
  const bool v6 = hp->first.find(':') != std::string::npos;
  const std::string host = v6 ? absl::StrCat("[", hp->first, "]") : hp->first;
  // prometheus-cpp (civetweb) reports a failure to bind by throwing: it
  // stays here.
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(
        absl::StrCat(host, ":", hp->second), 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("--metrics-listen ", host_port,
                                               ": cannot listen: ", e.what()));
  }
  m->exposer_->RegisterCollectable(m->collector_);
  const std::vector<int> ports = m->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen ", host_port, ": no port bound"));
  }
  m->address_ = absl::StrCat(host, ":", ports.front());
  return m;
}

MetricsExporter::~MetricsExporter() = default;

}  // namespace txbuf::server
