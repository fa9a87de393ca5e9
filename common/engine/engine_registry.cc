#include "common/engine/engine_registry.h"

#include <array>

#include "common/engine/auto_engine.h"
#include "common/engine/copy_engine.h"
#include "common/engine/kmod_engine.h"
#include "common/engine/msg_zerocopy_engine.h"
#include "common/engine/uring_zc_engine.h"

namespace txbuf {
namespace {

using Factory =
    absl::StatusOr<std::unique_ptr<SendEngine>> (*)(const SendEngineSetup&);

struct Registration {
  EngineKind kind;
  Factory create;
};

// One row per engine, in EngineKind order.
constexpr std::array<Registration, kNumEngines> kEngines = {{
    {EngineKind::kCopy, &CopyEngine::Create},
    {EngineKind::kMsgZerocopy, &MsgZerocopyEngine::Create},
    {EngineKind::kUringZc, &UringZcEngine::Create},
    {EngineKind::kKmod, &KmodEngine::CreateSendEngine},
    {EngineKind::kAuto, &AutoEngine::Create},
}};

constexpr bool InKindOrder() {
  for (int i = 0; i < kNumEngines; ++i) {
    if (static_cast<int>(kEngines[i].kind) != i) return false;
  }
  return true;
}
static_assert(InKindOrder(), "kEngines: one row per EngineKind, in order");

}  // namespace

absl::StatusOr<std::unique_ptr<SendEngine>> NewSendEngine(
    EngineKind kind, const SendEngineSetup& setup) {
  return kEngines[static_cast<int>(kind)].create(setup);
}

}  // namespace txbuf
