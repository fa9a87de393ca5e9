// budget.h: the pinned-byte budget of one txbufd session: what it holds, and
// whether it may read another request.
//
// Each session counts the bytes of its replies whose destructor has not run
// (Pin when a txbuf is handed to the socket, Release from its destructor).
// It is over budget, and reads no more requests until memory comes back
// (back-pressure), while it holds its own budget (`conn_budget`), or while
// the server holds more than its global budget (`budget`) and this session
// holds at least its fair share: the global budget divided by the sessions
// holding any bytes. A session under its fair share is never over budget
// because of what the others hold.
//
// The number of sessions holding any bytes is server-wide
// (ServerCounters::budget_holders); each SessionBudget keeps it up to date as
// its own pinned bytes go from 0 to non-0 and back. What the server holds
// (Server::HeldBytes: a page shared by several replies counted once) is
// asked for only when the fair share matters.
//
// This is the policy only: no socket, no loop, no timers. The session
// (session.h) pauses, retries and closes on what it says.
//
// Thread-safety: a SessionBudget is used on its session's thread only; the
// holder count it shares with the other sessions is atomic, and the settings
// are read as they are in effect at each call (a reload may change them).
//
// Example:
//   std::atomic<uint64_t> holders{0};
//   SessionBudget b(settings, holders, [&] { return server.HeldBytes(); });
//   b.Pin(tx.size());        // holders: 1
//   if (b.Over()) Pause();
//   b.Release(tx.size());    // from the txbuf's destructor; holders: 0
#ifndef TXBUF_SERVER_SESSION_BUDGET_H_
#define TXBUF_SERVER_SESSION_BUDGET_H_

#include <atomic>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "server/settings.h"

namespace txbuf::server {

class SessionBudget {
 public:
  // What the server's replies hold now (Server::HeldBytes).
  using HeldBytesFn = absl::AnyInvocable<uint64_t() const>;

  // `settings` (conn_budget, budget) and `holders` (the server-wide count of
  // sessions holding pinned bytes, which this budget maintains) must
  // outlive it.
  SessionBudget(const ServerSettings& settings, std::atomic<uint64_t>& holders,
                HeldBytesFn held_bytes);
  SessionBudget(const SessionBudget&) = delete;
  SessionBudget& operator=(const SessionBudget&) = delete;

  // A reply of `bytes` handed to the socket; counts this session as a
  // holder if it held nothing.
  void Pin(uint64_t bytes);
  // A reply's destructor gave `bytes` back; no longer a holder once nothing
  // is pinned.
  void Release(uint64_t bytes);

  // Bytes of this session's replies whose destructor has not run.
  uint64_t pinned() const { return pinned_; }

  // Holding at least `conn_budget`.
  bool OverOwn() const;
  // Holding some bytes, at least the fair share of `budget`, while the
  // server holds at least `budget`.
  bool OverFairShare() const;
  // Either: the session should not read requests.
  bool Over() const { return OverOwn() || OverFairShare(); }

 private:
  const ServerSettings& settings_;
  std::atomic<uint64_t>& holders_;
  HeldBytesFn held_bytes_;
  uint64_t pinned_ = 0;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_SESSION_BUDGET_H_
