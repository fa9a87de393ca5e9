// tsan_absl_sync_test.cc: what common/testing/tsan_absl_sync.cc tells
// ThreadSanitizer, checked where TSan would see a race without it. In other
// builds these are plain behaviour tests; under TSan (-DTXBUF_TSAN=ON, label
// "threads") a missing happens-before edge fails them with a TSan report.

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace {

// Spins on a relaxed load: an order TSan does not count as synchronization,
// so only the edges under test can order the two threads' accesses.
void WaitRelaxed(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_relaxed)) std::this_thread::yield();
}

// The client library's timeout path: the event loop makes one error, hands a
// copy to the caller's thread, which reads the message and lets go of its
// copy first; the loop's copy goes last and frees the shared text. Debian's
// Abseil counts the references with atomics TSan cannot see, so without
// tsan_absl_sync's Status::UnrefNonInlined the free races with the read.
TEST(TsanAbslSyncTest, AStatusSharedAcrossThreadsIsFreedAfterEveryReader) {
  std::atomic<bool> reader_done{false};
  absl::Status loops = absl::DeadlineExceededError(
      "no reply from 127.0.0.1:7390 within 1s, long enough not to be inline");
  absl::StatusOr<int> handed = loops;  // copied before the thread starts.
  std::string read;
  std::thread caller([&] {
    absl::StatusOr<int> mine = std::move(handed);
    read = std::string(mine.status().message());
    mine = 0;  // lets go of the shared error.
    reader_done.store(true, std::memory_order_relaxed);
  });
  WaitRelaxed(reader_done);
  loops = absl::OkStatus();  // the last reference: frees the text.
  caller.join();
  EXPECT_EQ(read,
            "no reply from 127.0.0.1:7390 within 1s, long enough not to be "
            "inline");
}

}  // namespace
