// metrics_exporter.h: txbufd's Prometheus endpoint (--metrics-listen), over
// prometheus-cpp (Debian's prometheus-cpp-dev).
//
// It keeps no counters of its own: at each scrape of /metrics it asks the
// server for a STATS result (the figures the STATS op and `txbuf stats`
// show) and turns it into metric families, so the two never disagree. The
// names, types and labels are listed in docs/OPERATING.md ("Metrics").
//
// Thread-safety: the exporter's HTTP threads call the stats source
// concurrently with the server; the source must be thread-safe
// (Server::FillStats is). Start and the destructor: one thread.
#ifndef TXBUF_SERVER_STATS_METRICS_EXPORTER_H_
#define TXBUF_SERVER_STATS_METRICS_EXPORTER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/metric_family.h"
#include "proto/txbuf.pb.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace txbuf::server {

class MetricsExporter {
 public:
  using StatsSource = std::function<void(rpc::StatsResult*)>;

  // Serves GET /metrics on `host_port` ("HOST:PORT"; port 0 picks one)
  // from `stats`. Unavailable when the address cannot be bound.
  //
  // Example:
  //   absl::StatusOr<std::unique_ptr<MetricsExporter>> m =
  //       MetricsExporter::Start("127.0.0.1:9464",
  //                              [&](rpc::StatsResult* r) { s.Fill(r); });
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const std::string& host_port, StatsSource stats);
  ~MetricsExporter();

  // "HOST:PORT" actually bound.
  const std::string& address() const { return address_; }

  // The metric families of one STATS result.
  static std::vector<prometheus::MetricFamily> Families(
      const rpc::StatsResult& r);

 private:
  class Collector;
  MetricsExporter() = default;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_STATS_METRICS_EXPORTER_H_
