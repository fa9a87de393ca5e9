// budget.cc: SessionBudget (budget.h).
#include "server/session/budget.h"

#include <algorithm>
#include <utility>

namespace txbuf::server {

SessionBudget::SessionBudget(const ServerSettings& settings,
                             std::atomic<uint64_t>& holders,
                             HeldBytesFn held_bytes)
    : settings_(settings),
      holders_(holders),
      held_bytes_(std::move(held_bytes)) {}

void SessionBudget::Pin(uint64_t bytes) {
  if (bytes == 0) return;
  if (pinned_ == 0) holders_.fetch_add(1, std::memory_order_relaxed);
  pinned_ += bytes;
}

void SessionBudget::Release(uint64_t bytes) {
  if (bytes == 0) return;
  pinned_ -= bytes;
  if (pinned_ == 0) holders_.fetch_sub(1, std::memory_order_relaxed);
}

bool SessionBudget::OverOwn() const {
  return pinned_ >= settings_.conn_budget();
}

bool SessionBudget::OverFairShare() const {
  if (pinned_ == 0) return false;
  const uint64_t budget = settings_.budget();
  if (held_bytes_() < budget) return false;
  const uint64_t holders = std::max<uint64_t>(1, holders_.load());
  return pinned_ >= budget / holders;
}

}  // namespace txbuf::server
