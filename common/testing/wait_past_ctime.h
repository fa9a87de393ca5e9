// wait_past_ctime.h: for tests that change a file behind a cache and expect
// the change to be seen by its timestamps.
//
// Thread-safety: a pure function (reads the clock and the file's stat).
#ifndef TXBUF_COMMON_TESTING_WAIT_PAST_CTIME_H_
#define TXBUF_COMMON_TESTING_WAIT_PAST_CTIME_H_

#include <sys/stat.h>
#include <time.h>

#include <string>
#include <thread>

namespace txbuf::testing {

// Waits until a change to `path` will get a ctime other than its current
// one: the file system's (coarse) clock has passed it. On kernels with
// multigrain timestamps (6.13+) that is already so; on older ones a
// same-size rewrite within one tick is not seen (docs/PAGE_CACHE.md,
// "Granularity"), and the tests check the documented model.
//
// Example:
//   WaitPastCtime(path);
//   RewriteSameSize(path);  // its ctime differs from the cached stamp
inline void WaitPastCtime(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  for (;;) {
    timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec > st.st_ctim.tv_sec ||
        (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec > st.st_ctim.tv_nsec)) {
      return;
    }
    std::this_thread::yield();
  }
}

}  // namespace txbuf::testing

#endif  // TXBUF_COMMON_TESTING_WAIT_PAST_CTIME_H_
