// settings.cc: ServerSettings (settings.h).
#include "server/settings.h"

#include <utility>

namespace txbuf::server {

ServerSettings::ServerSettings(const ReloadableSettings& initial) {
  Store(initial);
}

std::optional<std::string> ServerSettings::token() const {
  absl::MutexLock l(&token_mu_);
  return token_;
}

ReloadableSettings ServerSettings::Load() const {
  return ReloadableSettings{
      .token = token(),
      .conn_budget = conn_budget(),
      .budget = budget(),
      .budget_deadline = budget_deadline(),
      .dirty_expire = dirty_expire(),
      .writeback_interval = writeback_interval(),
  };
}

ReloadableSettings ServerSettings::Store(const ReloadableSettings& fresh) {
  ReloadableSettings old;
  {
    absl::MutexLock l(&token_mu_);
    old.token = std::exchange(token_, fresh.token);
  }
  old.conn_budget = conn_budget_.exchange(fresh.conn_budget);
  old.budget = budget_.exchange(fresh.budget);
  old.budget_deadline = absl::Nanoseconds(budget_deadline_ns_.exchange(
      absl::ToInt64Nanoseconds(fresh.budget_deadline)));
  old.dirty_expire = absl::Nanoseconds(
      dirty_expire_ns_.exchange(absl::ToInt64Nanoseconds(fresh.dirty_expire)));
  old.writeback_interval = absl::Nanoseconds(writeback_interval_ns_.exchange(
      absl::ToInt64Nanoseconds(fresh.writeback_interval)));
  return old;
}

void ServerSettings::set_token(std::optional<std::string> token) {
  absl::MutexLock l(&token_mu_);
  token_ = std::move(token);
}

}  // namespace txbuf::server
