#include "bench/cli/progress.h"

#include <unistd.h>

#include "absl/time/time.h"
#include "common/clock.h"

namespace txbuf::bench {

ProgressLine::ProgressLine(FILE* out, const LiveCounters& live, double warmup_s)
    : out_(out), live_(live), warmup_s_(warmup_s) {
  if (out_ != nullptr && isatty(fileno(out_)) != 0) {
    thread_ = std::thread([this] { Loop(); });
  }
}

ProgressLine::~ProgressLine() {
  stop_.Notify();
  if (thread_.joinable()) {
    thread_.join();
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
}

void ProgressLine::Loop() {
  const int64_t t0 = MonoNowNs();
  int64_t last_ns = t0;
  uint64_t last_ops = 0;
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(500))) {
    const int64_t now = MonoNowNs();
    const uint64_t ops = live_.ops.load(std::memory_order_relaxed);
    const double dt = static_cast<double>(now - last_ns) / 1e9;
    const double elapsed = static_cast<double>(now - t0) / 1e9;
    if (ops == 0 && elapsed < warmup_s_ + 0.5) {
      std::fprintf(out_, "\r\033[K  %5.1f s  warming up", elapsed);
    } else {
      std::fprintf(
          out_, "\r\033[K  %5.1f s  %9.0f ops/s  p99 %.1f us so far", elapsed,
          dt > 0 ? static_cast<double>(ops - last_ops) / dt : 0,
          static_cast<double>(live_.latency_ns.Percentile(0.99)) / 1e3);
    }
    std::fflush(out_);
    last_ns = now;
    last_ops = ops;
  }
}

}  // namespace txbuf::bench
