#include "common/kmod_engine.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace txbuf {

// Placeholder until the kmod-shim UAPI lands: the device cannot be opened,
// so no socket ever reaches Submit().
class KmodEngine::Impl {};

absl::StatusOr<std::unique_ptr<KmodEngine>> KmodEngine::Open(EventLoop&,
                                                             MemoryStats&,
                                                             const char* path) {
  return absl::UnimplementedError(
      absl::StrCat("engine kmod: not available in this build (", path, ")"));
}

KmodEngine::~KmodEngine() = default;

void KmodEngine::Submit(TxSocket*, TxBuf) { std::abort(); }
void KmodEngine::Forget(TxSocket*) {}

}  // namespace txbuf
