// clock.h: the monotonic clock used for latencies, and the real-time one
// of file times.
//
// Thread-safety: thread-safe.
#ifndef TXBUF_COMMON_CLOCK_H_
#define TXBUF_COMMON_CLOCK_H_

#include <time.h>

#include <cerrno>
#include <cstdint>

namespace txbuf {

// Nanoseconds of CLOCK_MONOTONIC (never 0 on a running system).
inline int64_t MonoNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Nanoseconds of CLOCK_MONOTONIC_COARSE: cheaper (no hardware clock read),
// a few milliseconds coarse. For "at most every N ms" checks.
inline int64_t MonoCoarseNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Nanoseconds of CLOCK_REALTIME since the epoch: the clock of file times.
inline int64_t RealNowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Sleeps until MonoNowNs() >= deadline_ns (signals do not cut it short).
inline void SleepUntilMonoNs(int64_t deadline_ns) {
  timespec ts{};
  ts.tv_sec = deadline_ns / 1000000000;
  ts.tv_nsec = deadline_ns % 1000000000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) ==
         EINTR) {
  }
}

}  // namespace txbuf

#endif  // TXBUF_COMMON_CLOCK_H_
