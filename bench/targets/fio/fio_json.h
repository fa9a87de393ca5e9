// fio_json.h: reads fio's JSON report (`--output-format=json+`, the JSON
// report plus the completion-latency histogram bins) into bench's one result
// type, so fio's runs sit in compare mode's tables beside every target.
//
// Mapping (one job group: txbuf-bench runs fio with --group_reporting):
//   ops        read.total_ios (or write.) — ops completed after ramp_time
//   bytes      read.io_bytes
//   elapsed_s  read.runtime (ms) / 1000 — the measured interval
//   latency_ns read.clat_ns.bins (json+: {"value_ns": count}); with plain
//              json, the clat percentiles (1..99.99) stand in for the bins
//   client_cpu (usr_cpu + sys_cpu) % of job_runtime (the jobs' summed
//              run time), i.e. fio's own CPU, not the FUSE daemon's
//   errors     1 if the job reports an error (fio stops at the first)
// server_cpu_us stays -1 (unknown).
//
// Thread-safety: a pure function.
#ifndef TXBUF_BENCH_TARGETS_FIO_FIO_JSON_H_
#define TXBUF_BENCH_TARGETS_FIO_FIO_JSON_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"

namespace txbuf::bench {

// Parses fio's JSON output (text before the first '{', such as fio's
// warnings, is skipped). `kind` picks the side: kRead reads "read", kWrite
// "write". InvalidArgument if it is not fio JSON with exactly one job
// (group) or lacks the figures above.
absl::StatusOr<RunResult> ParseFioJson(absl::string_view text,
                                       WorkloadKind kind);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_FIO_FIO_JSON_H_
