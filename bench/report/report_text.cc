#include "bench/report/report_text.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/report/format.h"

namespace txbuf::bench {

const char kMemoryRecoveryNote[] =
    "Memory recovery is how fast and how completely the memory behind a "
    "reply comes back to txbufd: the destructor latency runs from handing "
    "a txbuf to the kernel to its destructor (every byte released), and "
    "pinned bytes are the bytes of txbufs whose destructor has not run. "
    "With copy the kernel copies the reply into its socket buffers inside "
    "sendmsg, so the destructor follows at once (microseconds) and nothing "
    "stays pinned between requests. With msg_zerocopy and uring_zc the "
    "kernel references the pages instead and reports completion only when "
    "it frees the last packet that points at them; on loopback (and veth) "
    "it copies them at delivery to the receiving socket anyway (every "
    "completion counts as copied), and the sender's packets are freed once "
    "the peer has ACKed them, which in turn waits for the peer to read and "
    "open its receive window. So zero-copy recovery follows the client's "
    "ACKs and reads: destructor latency in milliseconds and pinned bytes "
    "that grow with concurrency and request size, while the bytes have "
    "already been copied. auto prefers copy when completions say copied and "
    "leaves it only for zero-copy measured faster on a backlogged "
    "connection, so on these request/response workloads it behaves like "
    "copy. Write workloads show the same effect on the "
    "client side (wbuf rel: submit to the release of a WRITE buffer). "
    "Pinned bytes must return to zero when the load stops.";

namespace {

// Columns aligned (plain) or a Markdown table.
class Table {
 public:
  explicit Table(std::vector<std::string> header, size_t left_columns = 1)
      : header_(std::move(header)), left_(left_columns) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  std::string Render(TextStyle style) const {
    std::string out;
    if (style == TextStyle::kMarkdown) {
      absl::StrAppend(&out, "| ", absl::StrJoin(header_, " | "), " |\n|");
      for (size_t i = 0; i < header_.size(); ++i) {
        absl::StrAppend(&out, i < left_ ? "---|" : "---:|");
      }
      absl::StrAppend(&out, "\n");
      for (const auto& r : rows_) {
        absl::StrAppend(&out, "| ", absl::StrJoin(r, " | "), " |\n");
      }
      return out;
    }
    std::vector<size_t> width(header_.size());
    for (size_t i = 0; i < header_.size(); ++i) width[i] = header_[i].size();
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
        width[i] = std::max(width[i], r[i].size());
      }
    }
    auto line = [&](const std::vector<std::string>& cells) {
      std::string l;
      for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
        const std::string pad(width[i] - cells[i].size(), ' ');
        absl::StrAppend(&l, "  ", i < left_ ? cells[i] + pad : pad + cells[i]);
      }
      while (!l.empty() && l.back() == ' ') l.pop_back();
      return l + "\n";
    };
    absl::StrAppend(&out, line(header_));
    for (const auto& r : rows_) absl::StrAppend(&out, line(r));
    return out;
  }

 private:
  std::vector<std::string> header_;
  size_t left_;
  std::vector<std::vector<std::string>> rows_;
};

std::string Heading(TextStyle style, int level, const std::string& text) {
  if (style == TextStyle::kMarkdown) {
    return absl::StrCat(std::string(static_cast<size_t>(level), '#'), " ", text,
                        "\n\n");
  }
  return level <= 2 ? absl::StrCat("== ", text, "\n")
                    : absl::StrCat(text, "\n");
}

std::string CheckLine(TextStyle style, const TargetCheck& c) {
  std::string s = absl::StrCat(CheckOutcomeName(c.outcome), "  ", c.workload,
                               ": ", c.goal, " (", c.detail, ")");
  return style == TextStyle::kMarkdown
             ? absl::StrCat("- **", CheckOutcomeName(c.outcome), "** ",
                            c.workload, ": ", c.goal, " (", c.detail, ")\n")
             : absl::StrCat("  ", s, "\n");
}

}  // namespace

std::string CompareText(const CompareReport& r,
                        const std::vector<TargetCheck>& checks,
                        TextStyle style) {
  std::string out;
  const Workload& w0 = r.workloads.front();
  std::string setup = absl::StrFormat(
      "%s, %d CPUs, load average %s at the start, %s. Each run: %.1f s "
      "measured after %.1f s warmup; median of %d run%s per cell, targets in "
      "alternating order; %s test file; txbufd --threads %d.",
      r.kernel, r.cpus, r.loadavg.empty() ? "?" : r.loadavg, r.date,
      w0.duration_s, w0.warmup_s, r.repeat, r.repeat == 1 ? "" : "s",
      FormatBytes(w0.file_size), r.server_threads);
  if (r.quick) absl::StrAppend(&setup, " --quick: single short runs, noisy.");
  absl::StrAppend(&out, Heading(style, 2, "txbuf-bench compare"), setup, "\n");
  for (const std::string& n : r.notes) {
    absl::StrAppend(&out, style == TextStyle::kMarkdown ? "- " : "  note: ", n,
                    "\n");
  }
  absl::StrAppend(&out, "\n");
  const int raw = RawIndex(r);
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    const Workload& wl = r.workloads[w];
    const int best = BestPeerByOps(r, static_cast<int>(w));
    absl::StrAppend(
        &out, Heading(style, 3, absl::StrCat(wl.Id(), ": ", wl.Describe())));
    Table t({"target", "ops/s", "MiB/s", "p50 us", "p99 us", "srv us/op",
             "cli us/op", "dtor p99 us", "pinned max", "wbuf rel p99 us",
             best >= 0
                 ? absl::StrCat("x ", r.targets[static_cast<size_t>(best)].name)
                 : "x best peer",
             "x raw", "errors"});
    for (size_t ti = 0; ti < r.targets.size(); ++ti) {
      const Cell& c = r.cells[w][ti];
      const std::string& name = r.targets[ti].name;
      if (c.skipped) continue;
      if (!c.ok()) {
        t.Add({name, "failed: " + c.error.substr(0, 60), "", "", "", "", "", "",
               "", "", "", "", ""});
        continue;
      }
      const Figures& m = c.median;
      t.Add({name, FormatNumber(std::round(m.ops_s)), FormatNumber(m.mib_s),
             FormatNumber(m.latency.p50_us), FormatNumber(m.latency.p99_us),
             FormatNumber(m.server_cpu_us_op), FormatNumber(m.client_cpu_us_op),
             FormatNumber(m.destructor.p99_us),
             FormatByteCount(m.pinned_max_bytes),
             FormatNumber(m.client_release.p99_us),
             FormatRatio(best >= 0 ? OpsRatio(r, static_cast<int>(w),
                                              static_cast<int>(ti), best)
                                   : kNa),
             FormatRatio(raw >= 0 ? OpsRatio(r, static_cast<int>(w),
                                             static_cast<int>(ti), raw)
                                  : kNa),
             absl::StrCat(m.total_errors(),
                          c.error.empty() ? "" : " (+failed runs)")});
    }
    absl::StrAppend(&out, t.Render(style));
    if (style == TextStyle::kMarkdown) absl::StrAppend(&out, "\n");
    for (const TargetCheck& c : checks) {
      if (c.workload == wl.Id()) absl::StrAppend(&out, CheckLine(style, c));
    }
    absl::StrAppend(&out, "\n");
  }
  int pass = 0;
  int miss = 0;
  for (const TargetCheck& c : checks) {
    pass += c.outcome == CheckOutcome::kPass;
    miss += c.outcome == CheckOutcome::kMiss;
  }
  absl::StrAppend(
      &out,
      Heading(style, 3,
              absl::StrCat("Targets: ", pass, " PASS, ", miss, " MISS, ",
                           checks.size() - static_cast<size_t>(pass + miss),
                           " n/a")));
  for (const TargetCheck& c : checks)
    absl::StrAppend(&out, CheckLine(style, c));
  if (style == TextStyle::kMarkdown) {
    absl::StrAppend(&out, "\n",
                    Heading(style, 3, "Reading the memory-recovery figures"),
                    kMemoryRecoveryNote, "\n");
  }
  return out;
}

std::string SingleRunText(const Workload& w, const std::string& target,
                          const Figures& f) {
  std::string out =
      absl::StrFormat("txbuf-bench %s: %s, %.1f s (+%.1f s warmup)", target,
                      w.Describe(), f.elapsed_s, w.warmup_s);
  if (w.kind == WorkloadKind::kMeta) {
    absl::StrAppend(&out, ", directory ", kMetaDir, "\n");
  } else {
    absl::StrAppendFormat(&out, ", file %s (%s)%s\n", w.file,
                          FormatBytes(w.file_size),
                          w.verify_reads ? ""
                                         : ", reads not verified (the file "
                                           "does not hold the bench's "
                                           "pattern)");
  }
  absl::StrAppendFormat(&out, "  ops/s %s   MiB/s %s   ops %d\n",
                        FormatNumber(std::round(f.ops_s)),
                        FormatNumber(f.mib_s), f.ops);
  absl::StrAppendFormat(
      &out, "  latency us: p50 %s  p90 %s  p99 %s  p999 %s  max %s\n",
      FormatNumber(f.latency.p50_us), FormatNumber(f.latency.p90_us),
      FormatNumber(f.latency.p99_us), FormatNumber(f.latency.p999_us),
      FormatNumber(f.latency.max_us));
  if (f.has_split) {
    for (const auto& [name, o] :
         {std::pair{"reads", &f.reads}, std::pair{"writes", &f.writes}}) {
      absl::StrAppendFormat(
          &out,
          "  %s: ops/s %s   MiB/s %s   ops %d   latency us: p50 %s  p99 %s  "
          "max %s   errors %d\n",
          name, FormatNumber(std::round(o->ops_s)), FormatNumber(o->mib_s),
          o->ops, FormatNumber(o->latency.p50_us),
          FormatNumber(o->latency.p99_us), FormatNumber(o->latency.max_us),
          o->errors);
    }
  }
  absl::StrAppendFormat(&out, "  CPU us/op: server %s  client %s\n",
                        FormatNumber(f.server_cpu_us_op),
                        FormatNumber(f.client_cpu_us_op));
  if (f.has_server_memory) {
    absl::StrAppendFormat(
        &out,
        "  server memory recovery: destructor us p50 %s  p99 %s  p999 %s  "
        "max %s (%d txbufs); pinned max %s; completions zero-copy %s, "
        "copied %s; copy-on-write copies %s\n",
        FormatNumber(f.destructor.p50_us), FormatNumber(f.destructor.p99_us),
        FormatNumber(f.destructor.p999_us), FormatNumber(f.destructor.max_us),
        f.destructor.count, FormatByteCount(f.pinned_max_bytes),
        FormatNumber(f.zerocopy_completions),
        FormatNumber(f.copied_completions), FormatNumber(f.cow_copies));
  }
  if (f.has_client_memory) {
    absl::StrAppendFormat(
        &out,
        "  client memory recovery (WRITE buffers): release us p50 %s  p99 %s  "
        "p999 %s  max %s (%d); pinned max %s; completions zero-copy %s, "
        "copied %s\n",
        FormatNumber(f.client_release.p50_us),
        FormatNumber(f.client_release.p99_us),
        FormatNumber(f.client_release.p999_us),
        FormatNumber(f.client_release.max_us), f.client_release.count,
        FormatByteCount(f.client_pinned_max_bytes),
        FormatNumber(f.client_zerocopy_completions),
        FormatNumber(f.client_copied_completions));
  }
  absl::StrAppendFormat(&out, "  errors %d  verify_failures %d\n", f.errors,
                        f.verify_failures);
  return out;
}

}  // namespace txbuf::bench
