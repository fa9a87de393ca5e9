// engine/auto_policy.h: how the `auto` engine picks copy or zero-copy per
// txbuf.
//
// Small txbufs are always copied (zero-copy costs more than it saves below
// `zerocopy_threshold`, as in folly's AsyncSocket). For large ones the policy
// measures both kinds on the connection itself and keeps the cheaper.
//
// What is measured. The auto engine (auto_engine.h) clocks the moment each
// large txbuf is fully handed to the kernel and reports (OnSendCost) the
// wall time since the previous large one and the bytes handed over in
// between. While the connection is backlogged that is what a byte costs the
// sender (on loopback, delivery included); when it is not, both kinds
// measure the application's pace and tie. A cost is total time over total
// bytes, without the most expensive sample (a preemption). The engine also
// says whether a txbuf was queued behind the one handed over (backlogged).
//
// Probes. A probe is two blocks of consecutive large sends, one per kind, of
// `probe_block_bytes` each; the first half of a block is not timed (socket
// buffers absorb several MiB, so a kind's pace shows only once they are
// full). The first probe starts at once, copy block first (a short
// connection mostly copies); later probes alternate the order. The
// notifications of the zero-copy sends decide which kind a tie goes to:
//
//   * they say "copied" (loopback, veth: the kernel copies at delivery, so
//     zero-copy saves no copy): copy is preferred, because a copied txbuf's
//     memory comes back at once; zero-copy is chosen only when it measured
//     at least `switch_margin` cheaper per byte with the connection mostly
//     backlogged. (A request/response connection is not: its pace is the
//     peer's, its samples are round trips, and a faster engine would not
//     make it faster.)
//   * they say "zero-copy" (a NIC that sends from the pages): zero-copy is
//     preferred, and copy is chosen only when it measured at least
//     `switch_margin` cheaper, likewise backlogged.
//
// Between probes. The chosen kind keeps being measured, in windows of half
// a block. Two windows in a row that cost more than the other kind's last
// probe figure by `switch_margin` (a figure that could win: backlogged, or
// of the preferred kind) start a probe at once, which then runs
// only the other kind's block (on loopback the cost of copy can double or
// halve with where the scheduler puts sender and receiver). Each such probe
// that keeps the choice doubles the windows needed next time (up to 64).
// Otherwise the next probe comes after `reprobe_bytes` of large sends, an
// interval that doubles (up to `max_reprobe_bytes`) while probes confirm
// the choice and resets when one changes it. Scheduled probes, too, reuse
// the chosen kind's last window. With zero-copy chosen because
// the kernel did not copy, a run of "copied" notifications (the path
// changed) also starts a probe.
//
// The policy holds no clock and does no I/O.
//
// Thread-safety: thread-compatible (one per socket).
//
// Example:
//   txbuf::AutoPolicy policy({});
//   txbuf::AutoPolicy::Choice c = policy.Choose(tx.size());
//   // ... send with zero-copy if c.zerocopy. Once a `measured` txbuf is
//   // handed over, and if it is `timed`, report the time and the bytes
//   // since the previous measured one:
//   policy.OnSendCost(c.zerocopy, elapsed_ns, bytes_sent);
//   // ... and for each notification of a zero-copy send:
//   policy.OnNotification(/*copied=*/true);
#ifndef TXBUF_COMMON_ENGINE_AUTO_POLICY_H_
#define TXBUF_COMMON_ENGINE_AUTO_POLICY_H_

#include <cstddef>
#include <cstdint>

namespace txbuf {

struct AutoPolicyOptions {
  size_t zerocopy_threshold = 64 * 1024;  // smaller txbufs are copied.
  uint64_t probe_block_bytes = 16 << 20;  // per kind and probe.
  uint32_t min_samples = 8;  // timed sends per block or window, at least.
  uint64_t reprobe_bytes = 256 << 20;       // large sends between probes...
  uint64_t max_reprobe_bytes = 4ull << 30;  // ... doubling up to this.
  // How much cheaper per byte the kind the notifications do not favour must
  // measure before it is chosen; and how much worse than the other kind's
  // last figure a window of the chosen kind must be to start a probe.
  double switch_margin = 0.10;
};

class AutoPolicy {
 public:
  enum class Mode { kProbing, kCopy, kZerocopy };
  struct Choice {
    bool zerocopy = false;
    bool measured = false;  // large: the engine clocks its hand-over...
    bool timed = false;     // ... and reports it (not a probe warm-up).
  };

  explicit AutoPolicy(AutoPolicyOptions o);

  // How to send a txbuf of `size` bytes.
  Choice Choose(size_t size);

  // A timed txbuf was handed over `ns` nanoseconds after the previous
  // measured one, with `bytes` bytes handed over in between (itself
  // included); `backlogged`: another txbuf was already queued behind it.
  // Samples with no bytes are ignored.
  void OnSendCost(bool zerocopy, uint64_t ns, uint64_t bytes, bool backlogged);

  // One notification of a zero-copy send arrived.
  void OnNotification(bool copied);

  Mode mode() const { return mode_; }
  // Probes finished so far, how many chose zero-copy, and how many were
  // started early because the chosen kind got slower.
  uint64_t probes() const { return probes_; }
  uint64_t zerocopy_choices() const { return zerocopy_choices_; }
  uint64_t early_probes() const { return early_probes_; }
  // The cost each kind measured in the last probe, in nanoseconds per KiB
  // (0 if that kind had no sample).
  double copy_ns_per_kib() const { return copy_ns_per_kib_; }
  double zerocopy_ns_per_kib() const { return zerocopy_ns_per_kib_; }
  // Bytes of large sends from a decision to the next scheduled probe.
  uint64_t reprobe_bytes() const { return interval_; }

 private:
  // Timed sends of one kind.
  struct Samples {
    uint32_t n = 0;
    uint32_t backlogged = 0;  // samples with a txbuf queued behind.
    uint64_t ns = 0, bytes = 0;
    uint64_t worst_ns = 0, worst_bytes = 0;  // the highest ns per byte.
    void Add(uint64_t sample_ns, uint64_t sample_bytes, bool backlog);
    bool MostlyBacklogged() const { return 2 * backlogged > n; }
    double NsPerKib() const;  // 0 without samples.
  };

  void StartProbe();
  void Decide();
  bool BlockIsZerocopy() const { return (block_ == 0) == zerocopy_first_; }

  AutoPolicyOptions o_;
  Mode mode_ = Mode::kProbing;
  uint32_t block_ = 0;        // 0 or 1: which block of the probe runs.
  uint64_t block_bytes_ = 0;  // bytes handed out in that block.
  bool zerocopy_first_ = false;
  Samples copy_samples_;
  Samples zerocopy_samples_;
  Samples window_;             // the chosen kind, between probes...
  Samples last_window_;        // ... and its last full window.
  uint32_t slow_windows_ = 0;  // full windows in a row over the other kind
  uint32_t slow_windows_needed_ = 2;  // ... that start an early probe.
  bool early_ = false;                // the running probe is an early one.
  uint64_t since_probe_ = 0;  // bytes of large sends since the decision.
  uint64_t interval_;
  bool decided_ = false;
  bool last_zerocopy_ = false;       // what the last probe chose.
  bool preferred_zerocopy_ = false;  // the notifications favoured it.
  uint64_t copied_ = 0;              // notifications since the last decision...
  uint64_t zerocopy_ = 0;            // ... by what they said.
  uint64_t probes_ = 0;
  uint64_t zerocopy_choices_ = 0;
  uint64_t early_probes_ = 0;
  double copy_ns_per_kib_ = 0;
  double zerocopy_ns_per_kib_ = 0;
  bool copy_backlogged_ = false;      // the last probe's blocks were mostly
  bool zerocopy_backlogged_ = false;  // backlogged.
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_ENGINE_AUTO_POLICY_H_
