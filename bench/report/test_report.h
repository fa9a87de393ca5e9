// test_report.h: synthetic compare reports for the unit tests (no servers
// run): the compare workloads, chosen targets, and per cell one run whose
// figures the test sets.
//
// Thread-safety: test helpers; not thread-safe.
//
// Example:
//   CompareReport r = MakeTestReport({"copy", "auto", "raw", "grpc"});
//   SetOps(r, "read-4k-rand-c64", "auto", 50000);
#ifndef TXBUF_BENCH_REPORT_TEST_REPORT_H_
#define TXBUF_BENCH_REPORT_TEST_REPORT_H_

#include <string>
#include <vector>

#include "bench/load/compare.h"
#include "bench/report/figures.h"

namespace txbuf::bench::testing {

inline bool IsEngineName(const std::string& n) {
  return n == "copy" || n == "msg_zerocopy" || n == "uring_zc" || n == "kmod" ||
         n == "auto";
}

// Every cell gets one run: `ops_s` ops/s of the workload's size, latency
// 100..1000 us, CPU 10 us/op, engines with server memory recovery (and
// client memory recovery for writes).
inline CompareReport MakeTestReport(const std::vector<std::string>& targets,
                                    double ops_s = 1000) {
  CompareReport r;
  r.host = "testhost";
  r.kernel = "Linux test";
  r.cpus = 2;
  r.date = "2025-01-01T00:00:00Z";
  r.repeat = 1;
  r.server_threads = 2;
  r.workloads = CompareWorkloads();
  for (Workload& w : r.workloads) {
    w.duration_s = 1;
    w.warmup_s = 0.5;
    w.file_size = 64 << 20;
  }
  for (const std::string& t : targets)
    r.targets.push_back({t, IsEngineName(t)});
  r.cells.assign(r.workloads.size(), std::vector<Cell>(targets.size()));
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    for (size_t t = 0; t < targets.size(); ++t) {
      RunResult run;
      run.elapsed_s = 1;
      run.ops = static_cast<uint64_t>(ops_s);
      run.bytes = run.ops * r.workloads[w].size;
      for (uint64_t v = 100; v <= 1000; v += 100) {
        run.latency_ns.Record(v * 1000, run.ops / 10);
      }
      run.client_cpu_us = 10 * ops_s;
      run.server_cpu_us = 10 * ops_s;
      if (r.targets[t].is_engine) {
        ServerMemory m;
        m.destructor_latency_ns.Record(50000, 100);
        m.pinned_max = 4096;
        m.copied_completions = 100;
        m.pinned = {{0, 0}, {0.5, 4096}, {1, 0}};
        run.server = m;
        if (r.workloads[w].kind == WorkloadKind::kWrite) {
          ClientMemory c;
          c.release_latency_ns.Record(20000, 100);
          run.client = c;
        }
      }
      Cell& cell = r.cells[w][t];
      cell.figures.push_back(ComputeFigures(run));
      cell.runs.push_back(std::move(run));
      cell.median = cell.figures.front();
      cell.median_run = 0;
    }
  }
  return r;
}

inline Cell& CellOf(CompareReport& r, const std::string& workload,
                    const std::string& target) {
  return r.cells[static_cast<size_t>(r.WorkloadIndex(workload))]
                [static_cast<size_t>(r.TargetIndex(target))];
}

// Sets the median figures of one cell.
inline void SetOps(CompareReport& r, const std::string& workload,
                   const std::string& target, double ops_s) {
  Cell& c = CellOf(r, workload, target);
  c.median.ops_s = ops_s;
  c.median.mib_s =
      ops_s *
      static_cast<double>(
          r.workloads[static_cast<size_t>(r.WorkloadIndex(workload))].size) /
      (1 << 20);
}

}  // namespace txbuf::bench::testing

#endif  // TXBUF_BENCH_REPORT_TEST_REPORT_H_
