// progress.h: the live progress line of a single run on a terminal:
// elapsed time, ops/s over the last half second and the p99 latency so far
// (of the measured interval), redrawn in place on standard error.
//
// Thread-safety: the object runs its own thread; construct and destroy it
// on one thread.
//
// Example:
//   LiveCounters live;
//   {
//     ProgressLine line(stderr, live, w.warmup_s);
//     driver.Run(w, pid, &live);
//   }  // the line is cleared
#ifndef TXBUF_BENCH_CLI_PROGRESS_H_
#define TXBUF_BENCH_CLI_PROGRESS_H_

#include <cstdio>
#include <thread>

#include "absl/synchronization/notification.h"
#include "bench/targets/txbufd/txbufd_driver.h"

namespace txbuf::bench {

class ProgressLine {
 public:
  // Does nothing unless `out` is a terminal.
  ProgressLine(FILE* out, const LiveCounters& live, double warmup_s);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

 private:
  void Loop();

  FILE* out_;
  const LiveCounters& live_;
  double warmup_s_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_CLI_PROGRESS_H_
