// settings.h: the settings of txbufd that a reload (SIGHUP) changes under
// running connections: the token, the pinned-byte budgets and their
// deadline, and the background write-back's timing.
//
// The Server owns one ServerSettings, fills it from its options at start,
// and Server::Reload stores the fresh values; connections and the write-back
// thread read the value in effect at each use. ReloadableSettings is the
// plain value of them all (what Load() returns and Store() takes).
//
// Thread-safety: thread-safe. Each setting is read and stored on its own: a
// reader may see some of a Store's values and not yet the others.
//
// Example:
//   ServerSettings settings(ReloadableSettings{.conn_budget = 64 << 20});
//   if (pinned >= settings.conn_budget()) Pause();
//   ReloadableSettings next = settings.Load();
//   next.conn_budget = 32 << 20;
//   ReloadableSettings old = settings.Store(next);  // old.conn_budget: 64 MiB
#ifndef TXBUF_SERVER_SETTINGS_H_
#define TXBUF_SERVER_SETTINGS_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace txbuf::server {

struct ReloadableSettings {
  // The shared secret connections authenticate with (nullopt: none).
  std::optional<std::string> token;
  uint64_t conn_budget = 0;  // pinned bytes per connection
  uint64_t budget = 0;       // pinned bytes, whole server
  // How long a connection may stay over its own budget before it is closed.
  absl::Duration budget_deadline = absl::ZeroDuration();
  // Background write-back: files dirty this long are written back ...
  absl::Duration dirty_expire = absl::ZeroDuration();
  // ... every this long.
  absl::Duration writeback_interval = absl::ZeroDuration();
};

class ServerSettings {
 public:
  explicit ServerSettings(const ReloadableSettings& initial = {});
  ServerSettings(const ServerSettings&) = delete;
  ServerSettings& operator=(const ServerSettings&) = delete;

  // The values in effect now.
  std::optional<std::string> token() const ABSL_LOCKS_EXCLUDED(token_mu_);
  uint64_t conn_budget() const { return conn_budget_.load(); }
  uint64_t budget() const { return budget_.load(); }
  absl::Duration budget_deadline() const {
    return absl::Nanoseconds(budget_deadline_ns_.load());
  }
  absl::Duration dirty_expire() const {
    return absl::Nanoseconds(dirty_expire_ns_.load());
  }
  absl::Duration writeback_interval() const {
    return absl::Nanoseconds(writeback_interval_ns_.load());
  }
  ReloadableSettings Load() const ABSL_LOCKS_EXCLUDED(token_mu_);

  // Puts `fresh` in effect; returns the values it replaced.
  ReloadableSettings Store(const ReloadableSettings& fresh)
      ABSL_LOCKS_EXCLUDED(token_mu_);
  // Puts only a new token in effect (a reread token file).
  void set_token(std::optional<std::string> token)
      ABSL_LOCKS_EXCLUDED(token_mu_);

 private:
  mutable absl::Mutex token_mu_;
  std::optional<std::string> token_ ABSL_GUARDED_BY(token_mu_);
  std::atomic<uint64_t> conn_budget_{0};
  std::atomic<uint64_t> budget_{0};
  std::atomic<int64_t> budget_deadline_ns_{0};
  std::atomic<int64_t> dirty_expire_ns_{0};
  std::atomic<int64_t> writeback_interval_ns_{0};
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_SETTINGS_H_
