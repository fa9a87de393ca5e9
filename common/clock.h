// clock.h: the monotonic clock used for latencies.
//
// Thread-safety: thread-safe.
#ifndef TXBUF_COMMON_CLOCK_H_
#define TXBUF_COMMON_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace txbuf {

// Nanoseconds of CLOCK_MONOTONIC (never 0 on a running system).
inline int64_t MonoNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace txbuf

#endif  // TXBUF_COMMON_CLOCK_H_
