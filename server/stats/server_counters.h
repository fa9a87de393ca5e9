// server_counters.h: txbufd's own counters (connections, requests, budget
// waits, malformed frames, ...) and its request latency, for STATS and the
// metrics endpoint.
//
// The Server owns one ServerCounters and hands it by reference to its workers
// and connections, which update it; Server::FillStats copies a snapshot into
// the STATS result by name. The counters are a counter set
// (common/counter_set.h): each is listed once in ForEach, under the name of
// its uint64 field in rpc::StatsResult, so adding one is a field, a line of
// ForEach and a field of the same name in proto/txbuf.proto.
//
// Thread-safety: every event-loop thread of the server updates the same
// counters (relaxed atomic adds, so std::atomic rather than RelaxedCounter,
// which allows one writer); any thread may read them. A snapshot is a plain
// value and not one instant's: the counters go on moving while it is taken.
#ifndef TXBUF_SERVER_STATS_SERVER_COUNTERS_H_
#define TXBUF_SERVER_STATS_SERVER_COUNTERS_H_

#include <atomic>
#include <cstdint>

#include "common/counter_set.h"
#include "common/histogram.h"

namespace txbuf::server {

template <typename C>
struct ServerCountersOf {
  C connections{};           // open now
  C connections_total{};     // accepted since start
  C requests{};              // request frames handled
  C budget_waits{};          // connections paused by a budget
  C budget_closes{};         // connections closed over budget
  C malformed{};             // frames and envelopes that did not parse
  C auth_failures{};         // wrong token, malformed, timed out
  C connections_refused{};   // over --max-connections
  C pending_closes{};        // oldest not-yet-established, to make room
  C frame_timeouts{};        // frames that stopped arriving
  C blocking_jobs{};         // compounds finished on the blocking pool
  C bytes_received{};        // request bytes read from sockets
  C receive_buffer_bytes{};  // frame readers' buffers, all connections
  C connections_moved{};     // accepted by one event loop, served by another
  C commits_aside{};         // COMMITs not holding up their connection

  template <typename F, typename... Sets>
  static void ForEach(F&& f, Sets&... sets) {
    f("connections", sets.connections...);
    f("connections_total", sets.connections_total...);
    f("requests", sets.requests...);
    f("budget_waits", sets.budget_waits...);
    f("budget_closes", sets.budget_closes...);
    f("malformed", sets.malformed...);
    f("auth_failures", sets.auth_failures...);
    f("connections_refused", sets.connections_refused...);
    f("pending_closes", sets.pending_closes...);
    f("frame_timeouts", sets.frame_timeouts...);
    f("blocking_jobs", sets.blocking_jobs...);
    f("bytes_received", sets.bytes_received...);
    f("receive_buffer_bytes", sets.receive_buffer_bytes...);
    f("connections_moved", sets.connections_moved...);
    f("commits_aside", sets.commits_aside...);
  }
};

// A snapshot of the counters (for the STATS result).
using ServerCounterSnapshot = ServerCountersOf<uint64_t>;

// The live counters.
//
// Example:
//   counters.requests.fetch_add(1, std::memory_order_relaxed);
//   ServerCounterSnapshot now = counters.Load();
struct ServerCounters : ServerCountersOf<std::atomic<uint64_t>> {
  // Requests, from their frame's arrival to their reply handed to the
  // socket (nanoseconds).
  LogHistogram request_latency;
  // Sessions pinning any bytes now: the budget's fair share divides the
  // global budget by it (server/session/budget.h, which maintains it). Not
  // reported.
  std::atomic<uint64_t> budget_holders{0};

  ServerCounterSnapshot Load() const {
    return LoadCounters<ServerCounterSnapshot>(
        static_cast<const ServerCountersOf<std::atomic<uint64_t>>&>(*this));
  }
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_STATS_SERVER_COUNTERS_H_
