// counter_set.h: one list of a set's counters, for live atomics and their
// snapshots alike.
//
// A counter set is a struct template `XOf<C>` whose counters are all `C`:
// `XOf<std::atomic<uint64_t>>` is updated live, `XOf<uint64_t>` is a snapshot
// of it. The template lists its counters once, in a static
// `ForEach(f, sets...)` that calls `f(name, set.counter...)` for each counter
// (`name` is the counter's field name in the STATS reply). LoadCounters()
// takes a snapshot through that list, and the server copies a snapshot into
// its reply through it (server.cc), so adding a counter is one field and one
// line of ForEach.
//
// Thread-safety: LoadCounters() reads atomics (relaxed) and may run on any
// thread; a snapshot is a plain value.
//
// Example:
//   template <typename C>
//   struct HitCountersOf {
//     C hits{};
//     C misses{};
//     template <typename F, typename... Sets>
//     static void ForEach(F&& f, Sets&... sets) {
//       f("hits", sets.hits...);
//       f("misses", sets.misses...);
//     }
//   };
//   HitCountersOf<std::atomic<uint64_t>> live;
//   HitCountersOf<uint64_t> now =
//   txbuf::LoadCounters<HitCountersOf<uint64_t>>(live);
#ifndef TXBUF_COMMON_COUNTER_SET_H_
#define TXBUF_COMMON_COUNTER_SET_H_

#include <atomic>
#include <cstdint>
#include <string_view>

namespace txbuf {

// A snapshot (`Snapshot`, a counter set of uint64_t) of every counter of
// `live` (the same set of std::atomic<uint64_t>), each loaded relaxed.
template <typename Snapshot, typename Live>
Snapshot LoadCounters(const Live& live) {
  Snapshot s;
  Snapshot::ForEach(
      [](std::string_view, uint64_t& out, const std::atomic<uint64_t>& in) {
        out = in.load(std::memory_order_relaxed);
      },
      s, live);
  return s;
}

}  // namespace txbuf

#endif  // TXBUF_COMMON_COUNTER_SET_H_
