#include "bench/report/report_html.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/report/charts.h"
#include "bench/report/format.h"
#include "bench/report/report_text.h"
#include "bench/report/svg.h"

namespace txbuf::bench {

namespace {

std::string Td(const std::string& s, bool num = true) {
  return absl::StrCat(num ? "<td class=n>" : "<td>", EscapeXml(s), "</td>");
}

}  // namespace

std::string CompareHtml(const CompareReport& r,
                        const std::vector<TargetCheck>& checks) {
  std::string h =
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
      "<title>txbuf-bench compare</title><style>"
      "body{font-family:sans-serif;margin:2em;max-width:1000px}"
      "table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}"
      "td,th{border:1px solid #ccc;padding:2px 6px}td.n{text-align:right}"
      "th{background:#f4f4f4}.PASS{color:#080}.MISS{color:#c00}"
      ".na{color:#888}svg{max-width:100%;height:auto}"
      "</style></head><body><h1>txbuf-bench compare</h1>";
  const Workload& w0 = r.workloads.front();
  absl::StrAppendFormat(
      &h,
      "<p>%s on %s, %d CPUs, load average %s at the start, %s. Each run "
      "%.1f s measured after %.1f s "
      "warmup; median of %d run(s) per cell with targets in alternating "
      "order; %s test file; txbufd --threads %d; %.0f s in all.%s</p>",
      EscapeXml(r.kernel), EscapeXml(r.host), r.cpus, EscapeXml(r.loadavg),
      EscapeXml(r.date), w0.duration_s, w0.warmup_s, r.repeat,
      EscapeXml(FormatBytes(w0.file_size)), r.server_threads, r.elapsed_s,
      r.quick ? " <b>--quick</b>: single short runs, noisy." : "");
  if (!r.notes.empty()) {
    h += "<ul>";
    for (const std::string& n : r.notes) {
      absl::StrAppend(&h, "<li>", EscapeXml(n), "</li>");
    }
    h += "</ul>";
  }
  int pass = 0;
  int miss = 0;
  for (const TargetCheck& c : checks) {
    pass += c.outcome == CheckOutcome::kPass;
    miss += c.outcome == CheckOutcome::kMiss;
  }
  absl::StrAppendFormat(&h, "<h2>Targets: %d PASS, %d MISS</h2><ul>", pass,
                        miss);
  for (const TargetCheck& c : checks) {
    const char* cls = c.outcome == CheckOutcome::kPass   ? "PASS"
                      : c.outcome == CheckOutcome::kMiss ? "MISS"
                                                         : "na";
    absl::StrAppendFormat(&h, "<li><b class=%s>%s</b> %s: %s (%s)</li>", cls,
                          CheckOutcomeName(c.outcome), EscapeXml(c.workload),
                          EscapeXml(c.goal), EscapeXml(c.detail));
  }
  h += "</ul><h2>Results</h2>";
  const int raw = RawIndex(r);
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    const Workload& wl = r.workloads[w];
    const int best = BestPeerByOps(r, static_cast<int>(w));
    absl::StrAppendFormat(&h, "<h3>%s: %s</h3><table><tr>", EscapeXml(wl.Id()),
                          EscapeXml(wl.Describe()));
    for (const char* col :
         {"target", "ops/s", "MiB/s", "p50 us", "p99 us", "p999 us",
          "srv us/op", "cli us/op", "dtor p50 us", "dtor p99 us", "dtor max us",
          "pinned max", "copied / zc compl.", "CoW copies", "wbuf rel p99 us",
          "x best peer", "x raw", "errors"}) {
      absl::StrAppend(&h, "<th>", col, "</th>");
    }
    h += "</tr>";
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const Cell& c = r.cells[w][t];
      if (c.skipped) continue;
      absl::StrAppend(&h, "<tr>", Td(r.targets[t].name, false));
      if (!c.ok()) {
        absl::StrAppend(&h, "<td colspan=17>failed: ", EscapeXml(c.error),
                        "</td></tr>");
        continue;
      }
      const Figures& m = c.median;
      std::string completions = "-";
      if (m.has_server_memory) {
        completions = absl::StrCat(FormatNumber(m.copied_completions), " / ",
                                   FormatNumber(m.zerocopy_completions));
      }
      absl::StrAppend(
          &h, Td(FormatNumber(std::round(m.ops_s))), Td(FormatNumber(m.mib_s)),
          Td(FormatNumber(m.latency.p50_us)),
          Td(FormatNumber(m.latency.p99_us)),
          Td(FormatNumber(m.latency.p999_us)),
          Td(FormatNumber(m.server_cpu_us_op)),
          Td(FormatNumber(m.client_cpu_us_op)),
          Td(FormatNumber(m.destructor.p50_us)),
          Td(FormatNumber(m.destructor.p99_us)),
          Td(FormatNumber(m.destructor.max_us)),
          Td(FormatByteCount(m.pinned_max_bytes)), Td(completions),
          Td(FormatNumber(m.cow_copies)),
          Td(FormatNumber(m.client_release.p99_us)),
          Td(FormatRatio(best >= 0 ? OpsRatio(r, static_cast<int>(w),
                                              static_cast<int>(t), best)
                                   : kNa)),
          Td(FormatRatio(raw >= 0 ? OpsRatio(r, static_cast<int>(w),
                                             static_cast<int>(t), raw)
                                  : kNa)),
          Td(absl::StrCat(m.total_errors())), "</tr>");
    }
    h += "</table>";
  }
  absl::StrAppend(&h, "<h2>Charts</h2>", ThroughputSvg(r), LatencyCdfSvg(r),
                  PinnedBytesSvg(r),
                  "<h2>Reading the memory-recovery figures</h2><p>",
                  EscapeXml(kMemoryRecoveryNote), "</p></body></html>\n");
  return h;
}

}  // namespace txbuf::bench
