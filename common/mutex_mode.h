// common/mutex_mode.h: how a txbuf program sets up absl::Mutex at start-up.
//
// Debian's libabsl is built without NDEBUG, so Abseil's lock-order
// (deadlock) detector runs in every program linked against it: each
// Mutex::Lock looks the mutex up in a global graph (GraphCycles::GetId)
// and adds an edge per lock held. That costs about 300 instructions of a
// cached 4 KiB READ's 4,850 in txbufd's read path (6%,
// bench/micro/callgrind-op-cost.sh) and buys a production server nothing but
// an abort. Release builds (NDEBUG, as
// scripts/build.sh release and the packages are built) turn it off at
// start-up; test and sanitizer builds keep it, so that a lock-order
// inversion in a test aborts there.
//
// A library does not call this: it changes process-wide state, which is the
// program's to choose. txbufd, txbuf and txbuf-bench call it first thing in
// main().
//
// Thread-safety: call before starting threads.
#ifndef TXBUF_COMMON_MUTEX_MODE_H_
#define TXBUF_COMMON_MUTEX_MODE_H_

namespace txbuf {

// In a build with NDEBUG, turns off Abseil's mutex deadlock detection
// (absl::SetMutexDeadlockDetectionMode(kIgnore)); otherwise does nothing.
// Returns whether it turned it off.
//
// Example:
//   int main(int argc, char** argv) {
//     txbuf::UseProductionMutexMode();
//     ...
//   }
bool UseProductionMutexMode();

}  // namespace txbuf

#endif  // TXBUF_COMMON_MUTEX_MODE_H_
