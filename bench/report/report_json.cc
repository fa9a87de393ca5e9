#include "bench/report/report_json.h"

#include <cmath>
#include <utility>

#include "common/json_text.h"

namespace txbuf::bench {
namespace {

// A figure: null when it does not apply (NaN) or is not finite.
Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json LatencyJson(const LatencyFigures& l) {
  return {{"count", l.count},          {"p50", Number(l.p50_us)},
          {"p90", Number(l.p90_us)},   {"p99", Number(l.p99_us)},
          {"p999", Number(l.p999_us)}, {"max", Number(l.max_us)},
          {"mean", Number(l.mean_us)}};
}

Json OpFiguresJson(const OpFigures& o) {
  return {{"ops", o.ops},
          {"ops_s", Number(o.ops_s)},
          {"mib_s", Number(o.mib_s)},
          {"latency_us", LatencyJson(o.latency)},
          {"errors", o.errors},
          {"verify_failures", o.verify_failures}};
}

// [[seconds, bytes], ...]
Json SamplesJson(const std::vector<PinnedSample>& s) {
  Json a = Json::array();
  for (const PinnedSample& p : s) {
    a.push_back(Json::array({Number(p.t_s), p.pinned_bytes}));
  }
  return a;
}

}  // namespace

Json WorkloadJson(const Workload& w) {
  Json j = {{"id", w.Id()},
            {"kind", WorkloadKindName(w.kind)},
            {"size", w.size},
            {"pattern", w.random ? "rand" : "seq"},
            {"concurrency", w.concurrency},
            {"connections", w.connections},
            {"duration_s", Number(w.duration_s)},
            {"warmup_s", Number(w.warmup_s)}};
  if (w.kind == WorkloadKind::kMixed) j["read_ratio"] = Number(w.read_ratio);
  j["file"] = w.file;
  j["file_size"] = w.file_size;
  if (w.kind == WorkloadKind::kRead || w.kind == WorkloadKind::kMixed) {
    j["reads_verified"] = w.verify_reads;
  }
  return j;
}

Json FiguresJson(const Figures& f) {
  Json j = {{"ops", f.ops},
            {"elapsed_s", Number(f.elapsed_s)},
            {"ops_s", Number(f.ops_s)},
            {"mib_s", Number(f.mib_s)},
            {"latency_us", LatencyJson(f.latency)},
            {"server_cpu_us_per_op", Number(f.server_cpu_us_op)},
            {"client_cpu_us_per_op", Number(f.client_cpu_us_op)},
            {"errors", f.errors},
            {"verify_failures", f.verify_failures}};
  j["server_memory"] = nullptr;
  if (f.has_server_memory) {
    j["server_memory"] = {
        {"destructor_latency_us", LatencyJson(f.destructor)},
        {"pinned_max_bytes", Number(f.pinned_max_bytes)},
        {"zerocopy_completions", Number(f.zerocopy_completions)},
        {"copied_completions", Number(f.copied_completions)},
        {"cow_copies", Number(f.cow_copies)}};
  }
  j["client_memory"] = nullptr;
  if (f.has_client_memory) {
    j["client_memory"] = {
        {"write_release_latency_us", LatencyJson(f.client_release)},
        {"pinned_max_bytes", Number(f.client_pinned_max_bytes)},
        {"zerocopy_completions", Number(f.client_zerocopy_completions)},
        {"copied_completions", Number(f.client_copied_completions)}};
  }
  // Mixed workloads: the reads and the writes separately; null otherwise.
  j["reads"] = f.has_split ? OpFiguresJson(f.reads) : Json(nullptr);
  j["writes"] = f.has_split ? OpFiguresJson(f.writes) : Json(nullptr);
  return j;
}

Json HistogramJson(const LogHistogram& h) {
  Json a = Json::array();
  for (const LogHistogram::Bucket& b : h.Buckets()) {
    a.push_back(Json::array({b.lo, b.hi, b.count}));
  }
  return a;
}

std::string CompareJson(const CompareReport& r,
                        const std::vector<TargetCheck>& checks) {
  Json root = {{"tool", "txbuf-bench"}, {"mode", "compare"}};
  root["environment"] = {{"host", r.host},
                         {"kernel", r.kernel},
                         {"cpus", r.cpus},
                         {"date", r.date},
                         {"loadavg", r.loadavg}};
  root["config"] = {{"quick", r.quick},
                    {"repeat", r.repeat},
                    {"server_threads", r.server_threads},
                    {"elapsed_s", Number(r.elapsed_s)}};
  root["notes"] = r.notes;
  Json targets = Json::array();
  for (const TargetInfo& t : r.targets) {
    targets.push_back(
        {{"name", t.name}, {"kind", t.is_engine ? "engine" : "peer"}});
  }
  root["targets"] = std::move(targets);
  const int raw = RawIndex(r);
  Json workloads = Json::array();
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    const int best = BestPeerByOps(r, static_cast<int>(w));
    Json results = Json::object();
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const Cell& c = r.cells[w][t];
      if (c.skipped) continue;
      Json res = {{"error", c.error.empty() ? Json(nullptr) : Json(c.error)}};
      if (c.ok()) {
        res["median"] = FiguresJson(c.median);
        res["ratio_to_best_peer"] =
            Number(best >= 0 ? OpsRatio(r, static_cast<int>(w),
                                        static_cast<int>(t), best)
                             : kNa);
        res["ratio_to_raw"] =
            Number(raw >= 0 ? OpsRatio(r, static_cast<int>(w),
                                       static_cast<int>(t), raw)
                            : kNa);
        Json runs = Json::array();
        for (const Figures& f : c.figures) runs.push_back(FiguresJson(f));
        res["runs"] = std::move(runs);
        const RunResult& m = c.runs[static_cast<size_t>(c.median_run)];
        res["median_run"] = c.median_run;
        res["latency_buckets_ns"] = HistogramJson(m.latency_ns);
        res["pinned_samples"] = m.server.has_value()
                                    ? SamplesJson(m.server->pinned)
                                    : Json(nullptr);
      }
      results[r.targets[t].name] = std::move(res);
    }
    workloads.push_back(
        {{"workload", WorkloadJson(r.workloads[w])},
         {"best_peer", best >= 0
                           ? Json(r.targets[static_cast<size_t>(best)].name)
                           : Json(nullptr)},
         {"results", std::move(results)}});
  }
  root["workloads"] = std::move(workloads);
  Json checks_json = Json::array();
  for (const TargetCheck& c : checks) {
    checks_json.push_back({{"workload", c.workload},
                           {"goal", c.goal},
                           {"outcome", CheckOutcomeName(c.outcome)},
                           {"detail", c.detail}});
  }
  root["checks"] = std::move(checks_json);
  return JsonText(root) + "\n";
}

std::string SingleRunJson(const Workload& w, const std::string& server,
                          const Figures& f, const RunResult& run) {
  Json root = {{"tool", "txbuf-bench"},
               {"mode", "single"},
               {"server", server},
               {"workload", WorkloadJson(w)},
               {"result", FiguresJson(f)},
               {"latency_buckets_ns", HistogramJson(run.latency_ns)}};
  root["pinned_samples"] =
      run.server.has_value() ? SamplesJson(run.server->pinned) : Json(nullptr);
  return JsonText(root) + "\n";
}

}  // namespace txbuf::bench
