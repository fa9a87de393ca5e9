// common/mutex_mode.cc: see mutex_mode.h.
#include "common/mutex_mode.h"

#include "absl/synchronization/mutex.h"

namespace txbuf {

bool UseProductionMutexMode() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
#else
  return false;
#endif
}

}  // namespace txbuf
