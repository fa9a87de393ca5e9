#include "bench/txbuf-bench/report_json.h"

namespace txbuf::bench {
namespace {

void WriteLatency(JsonWriter& j, const LatencyFigures& l) {
  j.BeginObject();
  j.Key("count").Uint(l.count);
  j.Key("p50").Number(l.p50_us);
  j.Key("p90").Number(l.p90_us);
  j.Key("p99").Number(l.p99_us);
  j.Key("p999").Number(l.p999_us);
  j.Key("max").Number(l.max_us);
  j.Key("mean").Number(l.mean_us);
  j.EndObject();
}

void WriteOpFigures(JsonWriter& j, const OpFigures& o) {
  j.BeginObject();
  j.Key("ops").Uint(o.ops);
  j.Key("ops_s").Number(o.ops_s);
  j.Key("mib_s").Number(o.mib_s);
  j.Key("latency_us");
  WriteLatency(j, o.latency);
  j.Key("errors").Uint(o.errors);
  j.Key("verify_failures").Uint(o.verify_failures);
  j.EndObject();
}

void WriteSamples(JsonWriter& j, const std::vector<PinnedSample>& s) {
  j.BeginArray();
  for (const PinnedSample& p : s) {
    j.BeginArray().Number(p.t_s).Uint(p.pinned_bytes).EndArray();
  }
  j.EndArray();
}

}  // namespace

void WriteWorkloadJson(JsonWriter& j, const BenchWorkload& w) {
  j.BeginObject();
  j.Key("id").String(w.Id());
  j.Key("kind").String(WorkloadKindName(w.kind));
  j.Key("size").Uint(w.size);
  j.Key("pattern").String(w.random ? "rand" : "seq");
  j.Key("concurrency").Int(w.concurrency);
  j.Key("connections").Int(w.connections);
  j.Key("duration_s").Number(w.duration_s);
  j.Key("warmup_s").Number(w.warmup_s);
  if (w.kind == WorkloadKind::kMixed) j.Key("read_ratio").Number(w.read_ratio);
  j.Key("file").String(w.file);
  j.Key("file_size").Uint(w.file_size);
  if (w.kind == WorkloadKind::kRead || w.kind == WorkloadKind::kMixed) {
    j.Key("reads_verified").Bool(w.verify_reads);
  }
  j.EndObject();
}

void WriteFiguresJson(JsonWriter& j, const Figures& f) {
  j.BeginObject();
  j.Key("ops").Uint(f.ops);
  j.Key("elapsed_s").Number(f.elapsed_s);
  j.Key("ops_s").Number(f.ops_s);
  j.Key("mib_s").Number(f.mib_s);
  j.Key("latency_us");
  WriteLatency(j, f.latency);
  j.Key("server_cpu_us_per_op").Number(f.server_cpu_us_op);
  j.Key("client_cpu_us_per_op").Number(f.client_cpu_us_op);
  j.Key("errors").Uint(f.errors);
  j.Key("verify_failures").Uint(f.verify_failures);
  j.Key("server_memory");
  if (f.has_server_memory) {
    j.BeginObject();
    j.Key("destructor_latency_us");
    WriteLatency(j, f.destructor);
    j.Key("pinned_max_bytes").Number(f.pinned_max_bytes);
    j.Key("zerocopy_completions").Number(f.zerocopy_completions);
    j.Key("copied_completions").Number(f.copied_completions);
    j.Key("cow_copies").Number(f.cow_copies);
    j.EndObject();
  } else {
    j.Null();
  }
  j.Key("client_memory");
  if (f.has_client_memory) {
    j.BeginObject();
    j.Key("write_release_latency_us");
    WriteLatency(j, f.client_release);
    j.Key("pinned_max_bytes").Number(f.client_pinned_max_bytes);
    j.Key("zerocopy_completions").Number(f.client_zerocopy_completions);
    j.Key("copied_completions").Number(f.client_copied_completions);
    j.EndObject();
  } else {
    j.Null();
  }
  // Mixed workloads: the reads and the writes separately; null otherwise.
  for (const auto& [key, part] :
       {std::pair{"reads", &f.reads}, std::pair{"writes", &f.writes}}) {
    j.Key(key);
    if (f.has_split) {
      WriteOpFigures(j, *part);
    } else {
      j.Null();
    }
  }
  j.EndObject();
}

void WriteHistogramJson(JsonWriter& j, const LogHistogram& h) {
  j.BeginArray();
  for (const LogHistogram::Bucket& b : h.Buckets()) {
    j.BeginArray().Uint(b.lo).Uint(b.hi).Uint(b.count).EndArray();
  }
  j.EndArray();
}

std::string CompareJson(const CompareReport& r,
                        const std::vector<TargetCheck>& checks) {
  JsonWriter j;
  j.BeginObject();
  j.Key("tool").String("txbuf-bench");
  j.Key("mode").String("compare");
  j.Key("environment").BeginObject();
  j.Key("host").String(r.host);
  j.Key("kernel").String(r.kernel);
  j.Key("cpus").Int(r.cpus);
  j.Key("date").String(r.date);
  j.Key("loadavg").String(r.loadavg);
  j.EndObject();
  j.Key("config").BeginObject();
  j.Key("quick").Bool(r.quick);
  j.Key("repeat").Int(r.repeat);
  j.Key("server_threads").Int(r.server_threads);
  j.Key("elapsed_s").Number(r.elapsed_s);
  j.EndObject();
  j.Key("notes").BeginArray();
  for (const std::string& n : r.notes) j.String(n);
  j.EndArray();
  j.Key("targets").BeginArray();
  for (const TargetInfo& t : r.targets) {
    j.BeginObject();
    j.Key("name").String(t.name);
    j.Key("kind").String(t.is_engine ? "engine" : "peer");
    j.EndObject();
  }
  j.EndArray();
  const int raw = RawIndex(r);
  j.Key("workloads").BeginArray();
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    const int best = BestPeerByOps(r, static_cast<int>(w));
    j.BeginObject();
    j.Key("workload");
    WriteWorkloadJson(j, r.workloads[w]);
    j.Key("best_peer");
    if (best >= 0) {
      j.String(r.targets[static_cast<size_t>(best)].name);
    } else {
      j.Null();
    }
    j.Key("results").BeginObject();
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const Cell& c = r.cells[w][t];
      if (c.skipped) continue;
      j.Key(r.targets[t].name).BeginObject();
      j.Key("error");
      if (c.error.empty()) {
        j.Null();
      } else {
        j.String(c.error);
      }
      if (c.ok()) {
        j.Key("median");
        WriteFiguresJson(j, c.median);
        j.Key("ratio_to_best_peer")
            .Number(best >= 0 ? OpsRatio(r, static_cast<int>(w),
                                         static_cast<int>(t), best)
                              : kNa);
        j.Key("ratio_to_raw")
            .Number(raw >= 0 ? OpsRatio(r, static_cast<int>(w),
                                        static_cast<int>(t), raw)
                             : kNa);
        j.Key("runs").BeginArray();
        for (const Figures& f : c.figures) WriteFiguresJson(j, f);
        j.EndArray();
        const RunResult& m = c.runs[static_cast<size_t>(c.median_run)];
        j.Key("median_run").Int(c.median_run);
        j.Key("latency_buckets_ns");
        WriteHistogramJson(j, m.load.latency_ns);
        j.Key("pinned_samples");
        if (m.server.has_value()) {
          WriteSamples(j, m.server->pinned);
        } else {
          j.Null();
        }
      }
      j.EndObject();
    }
    j.EndObject();
    j.EndObject();
  }
  j.EndArray();
  j.Key("checks").BeginArray();
  for (const TargetCheck& c : checks) {
    j.BeginObject();
    j.Key("workload").String(c.workload);
    j.Key("goal").String(c.goal);
    j.Key("outcome").String(CheckOutcomeName(c.outcome));
    j.Key("detail").String(c.detail);
    j.EndObject();
  }
  j.EndArray();
  j.EndObject();
  return j.str() + "\n";
}

std::string SingleRunJson(const BenchWorkload& w, const std::string& server,
                          const Figures& f, const RunResult& run) {
  JsonWriter j;
  j.BeginObject();
  j.Key("tool").String("txbuf-bench");
  j.Key("mode").String("single");
  j.Key("server").String(server);
  j.Key("workload");
  WriteWorkloadJson(j, w);
  j.Key("result");
  WriteFiguresJson(j, f);
  j.Key("latency_buckets_ns");
  WriteHistogramJson(j, run.load.latency_ns);
  j.Key("pinned_samples");
  if (run.server.has_value()) {
    WriteSamples(j, run.server->pinned);
  } else {
    j.Null();
  }
  j.EndObject();
  return j.str() + "\n";
}

}  // namespace txbuf::bench
