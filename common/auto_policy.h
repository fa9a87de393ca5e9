// auto_policy.h: how the `auto` engine picks copy or zero-copy per txbuf.
//
// Small txbufs are always copied (zero-copy costs more than it saves below
// `zerocopy_threshold`, as in folly's AsyncSocket). For large ones the policy
// starts by sending with zero-copy and reads what the kernel reports: when
// most notifications say "copied" (always on loopback and veth, where the
// kernel copies at delivery and zero-copy only adds cost), it switches to
// copy, and re-probes with one zero-copy send every `reprobe_interval` large
// sends in case the path changed. When notifications say "zero-copy", it
// keeps zero-copy.
//
// Thread-safety: thread-compatible (one per socket).
//
// Example:
//   txbuf::AutoPolicy policy({});
//   bool zc = policy.UseZerocopy(tx.size());
//   // ... later, for each notification of a zero-copy send:
//   policy.OnNotification(/*copied=*/true);
#ifndef TXBUF_COMMON_AUTO_POLICY_H_
#define TXBUF_COMMON_AUTO_POLICY_H_

#include <cstddef>
#include <cstdint>

namespace txbuf {

struct AutoPolicyOptions {
  size_t zerocopy_threshold = 64 * 1024;  // smaller txbufs are copied.
  uint32_t probe_sends = 4;               // zero-copy sends per probe.
  uint32_t reprobe_interval = 512;        // large sends between probes.
};

class AutoPolicy {
 public:
  enum class Mode { kProbing, kCopy, kZerocopy };

  explicit AutoPolicy(AutoPolicyOptions o) : o_(o) {}

  // Whether to send a txbuf of `size` bytes with zero-copy.
  bool UseZerocopy(size_t size) {
    if (size < o_.zerocopy_threshold) return false;
    switch (mode_) {
      case Mode::kZerocopy:
        return true;
      case Mode::kProbing:
        if (probes_sent_ < o_.probe_sends) {
          ++probes_sent_;
          return true;
        }
        return false;  // waiting for the probes' notifications.
      case Mode::kCopy:
        if (++since_probe_ >= o_.reprobe_interval) {
          since_probe_ = 0;
          StartProbe();
          ++probes_sent_;
          return true;
        }
        return false;
    }
    return false;
  }

  // One notification of a zero-copy send arrived.
  void OnNotification(bool copied) {
    (copied ? copied_ : zerocopy_)++;
    if (mode_ == Mode::kProbing) {
      if (copied_ + zerocopy_ >= o_.probe_sends) {
        mode_ =
            copied_ * 2 >= copied_ + zerocopy_ ? Mode::kCopy : Mode::kZerocopy;
        copied_ = zerocopy_ = 0;
      }
    } else if (mode_ == Mode::kZerocopy && copied_ >= 2 * o_.probe_sends &&
               copied_ > zerocopy_) {
      mode_ = Mode::kCopy;  // the path started copying.
      copied_ = zerocopy_ = 0;
    }
  }

  Mode mode() const { return mode_; }

 private:
  void StartProbe() {
    mode_ = Mode::kProbing;
    probes_sent_ = 0;
    copied_ = zerocopy_ = 0;
  }

  AutoPolicyOptions o_;
  Mode mode_ = Mode::kProbing;
  uint32_t probes_sent_ = 0;
  uint32_t since_probe_ = 0;
  uint64_t copied_ = 0;
  uint64_t zerocopy_ = 0;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_AUTO_POLICY_H_
