#include "bench/targets/fio/fio_json.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace txbuf::bench {
namespace {

using nlohmann::json;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("fio JSON: ", what));
}

// A number member of `o` (fio writes counts as integers and rates as
// doubles); NaN-free.
bool Number(const json& o, const char* key, double* out) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number()) return false;
  *out = it->get<double>();
  return true;
}

}  // namespace

absl::StatusOr<RunResult> ParseFioJson(absl::string_view text,
                                       WorkloadKind kind) {
  if (kind != WorkloadKind::kRead && kind != WorkloadKind::kWrite) {
    return Bad("only read and write workloads map to fio");
  }
  size_t start = text.find('{');
  if (start == absl::string_view::npos) return Bad("no JSON object");
  json doc =
      json::parse(text.substr(start), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Bad("does not parse");
  auto jobs = doc.find("jobs");
  if (jobs == doc.end() || !jobs->is_array() || jobs->size() != 1) {
    return Bad("want exactly one job (run fio with --group_reporting)");
  }
  const json& job = (*jobs)[0];
  const char* side_name = kind == WorkloadKind::kRead ? "read" : "write";
  auto side_it = job.find(side_name);
  if (side_it == job.end() || !side_it->is_object()) {
    return Bad(absl::StrCat("no '", side_name, "' figures"));
  }
  const json& side = *side_it;

  RunResult r;
  double ios = 0, bytes = 0, runtime_ms = 0;
  if (!Number(side, "total_ios", &ios) || !Number(side, "io_bytes", &bytes) ||
      !Number(side, "runtime", &runtime_ms)) {
    return Bad(absl::StrCat(side_name, ": total_ios/io_bytes/runtime missing"));
  }
  r.ops = static_cast<uint64_t>(ios);
  r.bytes = static_cast<uint64_t>(bytes);
  r.elapsed_s = runtime_ms / 1000.0;

  auto clat = side.find("clat_ns");
  if (clat != side.end() && clat->is_object()) {
    auto bins = clat->find("bins");
    auto pct = clat->find("percentile");
    if (bins != clat->end() && bins->is_object()) {
      for (const auto& [value, count] : bins->items()) {
        uint64_t v = 0;
        if (!absl::SimpleAtoi(value, &v) || !count.is_number_unsigned()) {
          return Bad(absl::StrCat("clat_ns.bins: bad entry '", value, "'"));
        }
        r.latency_ns.Record(v, count.get<uint64_t>());
      }
    } else if (pct != clat->end() && pct->is_object() && r.ops > 0) {
      // Percentile p stands for the ops between the previous one and p.
      // (The keys, "1.000000" ... "99.990000", sort as text, not numbers.)
      std::vector<std::pair<double, uint64_t>> points;
      for (const auto& [p_text, value] : pct->items()) {
        double p = 0;
        if (!absl::SimpleAtod(p_text, &p) || !value.is_number()) continue;
        points.emplace_back(p, value.get<uint64_t>());
      }
      std::sort(points.begin(), points.end());
      uint64_t placed = 0;
      for (const auto& [p, value] : points) {
        auto upto = static_cast<uint64_t>(static_cast<double>(r.ops) * p / 100);
        if (upto > placed) {
          r.latency_ns.Record(value, upto - placed);
          placed = upto;
        }
      }
    }
  }

  double usr = 0, sys = 0, job_runtime_ms = 0;
  if (Number(job, "usr_cpu", &usr) && Number(job, "sys_cpu", &sys) &&
      Number(job, "job_runtime", &job_runtime_ms)) {
    r.client_cpu_us = (usr + sys) / 100.0 * job_runtime_ms * 1000.0;
  }
  double error = 0;
  if (Number(job, "error", &error) && error != 0) r.errors = 1;
  return r;
}

}  // namespace txbuf::bench
