// engine/engine_registry.h: the send engine of each EngineKind.
//
// Thread-safety: NewSendEngine() is thread-safe; the engine it returns is
// thread-compatible.
#ifndef TXBUF_COMMON_ENGINE_ENGINE_REGISTRY_H_
#define TXBUF_COMMON_ENGINE_ENGINE_REGISTRY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/engine/send_engine.h"
#include "common/engine_kind.h"

namespace txbuf {

// A new engine of `kind` for one socket (`setup.host`), or why this loop or
// socket cannot have one (FailedPrecondition: no SENDMSG_ZC, no
// SO_ZEROCOPY, no /dev/txbuf).
absl::StatusOr<std::unique_ptr<SendEngine>> NewSendEngine(
    EngineKind kind, const SendEngineSetup& setup);

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_ENGINE_REGISTRY_H_
