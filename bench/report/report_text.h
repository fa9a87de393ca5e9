// report_text.h: the human-readable reports — the compare tables (plain
// text for the terminal, or Markdown for BENCHMARKS.md) with the target
// checks, and the summary of a single run.
//
// Compare table, one per workload, one row per target (engines first, then
// peers): ops/s, MiB/s, client p50/p99 latency, server and client CPU per
// op, server destructor p99 and pinned-bytes max (txbufd), WRITE-buffer
// release p99 on the client (txbufd writes), the ratio of ops/s to the best
// peer and to the raw floor, errors (+ verify failures). Then the checks of
// that workload; a summary of every check follows, and the Markdown
// report ends with kMemoryRecoveryNote.
//
// Thread-safety: pure functions.
//
// Example:
//   std::fputs(CompareText(report, EvaluateTargets(report),
//                          TextStyle::kPlain).c_str(), stdout);
#ifndef TXBUF_BENCH_REPORT_REPORT_TEXT_H_
#define TXBUF_BENCH_REPORT_REPORT_TEXT_H_

#include <string>
#include <vector>

#include "bench/load/compare.h"
#include "bench/load/workload.h"
#include "bench/report/checks.h"
#include "bench/report/figures.h"

namespace txbuf::bench {

enum class TextStyle { kPlain, kMarkdown };

std::string CompareText(const CompareReport& r,
                        const std::vector<TargetCheck>& checks,
                        TextStyle style);

// The paragraph on what the memory-recovery figures mean (closes the
// Markdown and HTML reports).
extern const char kMemoryRecoveryNote[];

// The summary of one run of `w` against `target` (a server address).
std::string SingleRunText(const Workload& w, const std::string& target,
                          const Figures& f);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_REPORT_TEXT_H_
