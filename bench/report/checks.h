// checks.h: the comparisons compare mode reports — each target's ratio to
// the best peer and to the raw floor — and the targets, checked
// (PASS/MISS with the numbers).
//
// Definitions (docs/BENCH.md):
//   * the raw floor is the `raw` peer; the best peer is the best of the
//     other peers (gRPC, NFS) for the figure in question: highest ops/s,
//     lowest p99, lowest server CPU per op;
//   * the subject of a target check is txbufd's default engine, `auto`
//     (if it was not run: the best engine of that workload, named);
//   * the "best fixed engine" is the best of copy, msg_zerocopy, uring_zc
//     and kmod by ops/s.
// A check whose figures are missing (peer not run, workload filtered out,
// failed runs) is "n/a" with the reason, never PASS.
//
// Thread-safety: pure functions.
//
// Example:
//   for (const TargetCheck& c : EvaluateTargets(report)) ...
#ifndef TXBUF_BENCH_REPORT_CHECKS_H_
#define TXBUF_BENCH_REPORT_CHECKS_H_

#include <string>
#include <vector>

#include "bench/load/compare.h"

namespace txbuf::bench {

// The target of workload `w` with the highest median ops/s among peers
// other than raw (-1 if none ran).
int BestPeerByOps(const CompareReport& r, int w);
// Likewise with the lowest median p99 latency / server CPU per op.
int BestPeerByP99(const CompareReport& r, int w);
int BestPeerByServerCpu(const CompareReport& r, int w);
// The raw peer's index, or -1.
int RawIndex(const CompareReport& r);
// ops/s of target `t` over ops/s of target `ref` for workload `w` (NaN if
// either is missing).
double OpsRatio(const CompareReport& r, int w, int t, int ref);

enum class CheckOutcome { kPass, kMiss, kNotApplicable };
const char* CheckOutcomeName(CheckOutcome o);  // "PASS", "MISS", "n/a"

struct TargetCheck {
  std::string workload;  // workload id
  std::string goal;      // e.g. "ops/s >= 2x best peer"
  CheckOutcome outcome = CheckOutcome::kNotApplicable;
  std::string detail;  // the numbers, or why n/a
};

std::vector<TargetCheck> EvaluateTargets(const CompareReport& r);

// What --check rejects in one run's figures of `w` (empty: fine): no ops,
// errors or verify failures, a missing latency or CPU figure, and for
// txbufd (`engine`) missing server memory recovery (and client memory
// recovery when `w` writes). `server_cpu` false: the target has no server
// process whose CPU is measured (fio's family), so none is expected.
std::vector<std::string> FigureProblems(const Workload& w, bool engine,
                                        const Figures& f,
                                        bool server_cpu = true);

// FigureProblems of every run of every cell, and failed runs, prefixed
// with "workload target: ".
std::vector<std::string> ReportProblems(const CompareReport& r);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_CHECKS_H_
