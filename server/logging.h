// logging.h: txbufd's log, with levels, on stderr (which journald collects).
//
// Messages go through glog (Debian's libgoogle-glog-dev; Debian 12's Abseil
// has no absl/log), one line each with glog's prefix (severity, time,
// thread, file:line). The level is txbufd's own, changeable at run time
// (SIGHUP with --config reloads it):
//
//   debug    also what normal traffic does: connections opened and closed
//            with the peer's address, budget back-pressure
//   info     what an operator follows (the default): nothing per request
//   warning  what a client did wrong or what was refused: authentication
//            failures, malformed frames (the first per connection),
//            connections closed over their budget or for a stalled frame,
//            settings lowered to fit a limit
//   error    what loses or may lose service: write-back errors
//
// and, at every level, NOTICE: the start-up configuration, what a SIGHUP
// reloaded, and why txbufd stops (written with glog's INFO severity).
//
// Usage:
//   TXBUF_LOG(WARNING) << peer << ": authentication failed: wrong token";
//   TXBUF_LOG(DEBUG) << "connection " << id << " from " << peer;
//
// A message below the level costs one relaxed atomic load; the stream
// operands are not evaluated.
//
// Thread-safety: everything here may be called from any thread.
#ifndef TXBUF_SERVER_LOGGING_H_
#define TXBUF_SERVER_LOGGING_H_

#include <glog/logging.h>

#include <atomic>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf::server {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" or "error" (InvalidArgument otherwise).
//
// Example:
//   absl::StatusOr<LogLevel> l = ParseLogLevel("warning");
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
absl::string_view LogLevelName(LogLevel level);

// Sends glog's output to stderr only (no log files) and sets the level.
// Call once, early in main().
//
// Example:
//   txbuf::server::InitLogging(argv[0], txbuf::server::LogLevel::kInfo);
void InitLogging(const char* argv0, LogLevel level);

// The level in effect, and a new one (from any thread).
LogLevel GetLogLevel();
void SetLogLevel(LogLevel level);

namespace internal {
inline std::atomic<int> log_level{static_cast<int>(LogLevel::kInfo)};
}  // namespace internal

// Whether a message at `level` is written.
inline bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >=
         internal::log_level.load(std::memory_order_relaxed);
}

}  // namespace txbuf::server

// TXBUF_LOG(DEBUG | INFO | NOTICE | WARNING | ERROR) << ...;
#define TXBUF_LOG(level) TXBUF_LOG_##level
#define TXBUF_LOG_NOTICE LOG(INFO)
#define TXBUF_LOG_DEBUG \
  LOG_IF(INFO, ::txbuf::server::LogEnabled(::txbuf::server::LogLevel::kDebug))
#define TXBUF_LOG_INFO \
  LOG_IF(INFO, ::txbuf::server::LogEnabled(::txbuf::server::LogLevel::kInfo))
#define TXBUF_LOG_WARNING \
  LOG_IF(WARNING,         \
         ::txbuf::server::LogEnabled(::txbuf::server::LogLevel::kWarning))
#define TXBUF_LOG_ERROR \
  LOG_IF(ERROR, ::txbuf::server::LogEnabled(::txbuf::server::LogLevel::kError))

#endif  // TXBUF_SERVER_LOGGING_H_
