#include "server/logging.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace txbuf::server {

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                     LogLevel::kError}) {
    if (name == LogLevelName(l)) return l;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "bad log level '", name, "' (debug, info, warning or error)"));
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

void InitLogging(const char* argv0, LogLevel level) {
  // glog's own threshold stays at INFO: txbufd's level decides.
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = google::GLOG_INFO;
  google::InitGoogleLogging(argv0);
  SetLogLevel(level);
}

LogLevel GetLogLevel() {
  return static_cast<LogLevel>(
      internal::log_level.load(std::memory_order_relaxed));
}

void SetLogLevel(LogLevel level) {
  internal::log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

}  // namespace txbuf::server
