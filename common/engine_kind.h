// engine_kind.h: the names of the send engines.
//
// Thread-safety: constants and pure functions only.
#ifndef TXBUF_COMMON_ENGINE_KIND_H_
#define TXBUF_COMMON_ENGINE_KIND_H_

#include <array>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf {

// How a txbuf reaches the kernel. `kAuto` chooses per connection.
enum class EngineKind {
  kCopy = 0,         // plain sendmsg; kernel copies.
  kMsgZerocopy = 1,  // SO_ZEROCOPY + MSG_ZEROCOPY, completions on errqueue.
  kUringZc = 2,      // io_uring SENDMSG_ZC, completions as notif CQEs.
  kKmod = 3,         // one ioctl on /dev/txbuf (kmod-shim).
  kAuto = 4,         // picks per connection from what notifications report.
};
inline constexpr int kNumEngines = 5;

inline constexpr std::array<absl::string_view, kNumEngines> kEngineNames = {
    "copy", "msg_zerocopy", "uring_zc", "kmod", "auto"};

inline absl::string_view EngineName(EngineKind k) {
  return kEngineNames[static_cast<int>(k)];
}

// Parses "copy", "msg_zerocopy", "uring_zc", "kmod" or "auto".
absl::StatusOr<EngineKind> ParseEngineKind(absl::string_view name);

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_KIND_H_
