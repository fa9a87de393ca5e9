#include "common/engine/auto_policy.h"

#include <algorithm>

namespace txbuf {
namespace {

// "Copied" notifications that, outnumbering "zero-copy" ones, make a
// zero-copy choice made for a zero-copy path probe again.
constexpr uint64_t kPathChangeCopies = 16;
// At most this many slow windows in a row before an early probe.
constexpr uint32_t kMaxSlowWindows = 64;

}  // namespace

double AutoPolicy::Samples::NsPerKib() const {
  if (n == 0 || bytes == 0) return 0;
  // Without the most expensive sample, if there are others.
  uint64_t t = ns, b = bytes;
  if (n > 1 && b > worst_bytes) {
    t -= worst_ns;
    b -= worst_bytes;
  }
  return static_cast<double>(t) * 1024.0 / static_cast<double>(b);
}

void AutoPolicy::Samples::Add(uint64_t sample_ns, uint64_t sample_bytes,
                              bool backlog) {
  ++n;
  if (backlog) ++backlogged;
  ns += sample_ns;
  bytes += sample_bytes;
  // sample_ns / sample_bytes > worst_ns / worst_bytes, without dividing.
  if (worst_bytes == 0 ||
      static_cast<double>(sample_ns) * static_cast<double>(worst_bytes) >
          static_cast<double>(worst_ns) * static_cast<double>(sample_bytes)) {
    worst_ns = sample_ns;
    worst_bytes = sample_bytes;
  }
}

AutoPolicy::AutoPolicy(AutoPolicyOptions o)
    : o_(o), interval_(std::max<uint64_t>(1, o.reprobe_bytes)) {
  o_.probe_block_bytes = std::max<uint64_t>(2, o_.probe_block_bytes);
  o_.min_samples = std::max<uint32_t>(1, o_.min_samples);
  o_.max_reprobe_bytes = std::max(o_.max_reprobe_bytes, interval_);
}

AutoPolicy::Choice AutoPolicy::Choose(size_t size) {
  if (size < o_.zerocopy_threshold) return {};
  if (mode_ != Mode::kProbing) {
    since_probe_ += size;
    if (since_probe_ < interval_) {
      return {.zerocopy = mode_ == Mode::kZerocopy,
              .measured = true,
              .timed = true};
    }
    StartProbe();
  }
  // A block ends once it has handed out its bytes and its timed half gave
  // enough samples, or at four times its bytes whatever the samples.
  for (;;) {
    const bool zc = BlockIsZerocopy();
    const Samples& s = zc ? zerocopy_samples_ : copy_samples_;
    const bool full =
        block_bytes_ >= o_.probe_block_bytes && s.n >= o_.min_samples;
    if (!full && block_bytes_ < 4 * o_.probe_block_bytes) {
      const bool timed = block_bytes_ >= o_.probe_block_bytes / 2;
      block_bytes_ += size;
      return {.zerocopy = zc, .measured = true, .timed = timed};
    }
    if (block_ == 0) {
      block_ = 1;
      block_bytes_ = 0;
      continue;
    }
    Decide();
    return {.zerocopy = mode_ == Mode::kZerocopy,
            .measured = true,
            .timed = false};  // the first after a switch is not its pace.
  }
}

void AutoPolicy::OnSendCost(bool zerocopy, uint64_t ns, uint64_t bytes,
                            bool backlogged) {
  if (bytes == 0) return;
  if (mode_ == Mode::kProbing) {
    (zerocopy ? zerocopy_samples_ : copy_samples_).Add(ns, bytes, backlogged);
    return;
  }
  if (zerocopy != (mode_ == Mode::kZerocopy)) return;
  window_.Add(ns, bytes, backlogged);
  if (window_.bytes < o_.probe_block_bytes / 2 || window_.n < o_.min_samples) {
    return;
  }
  // A full window of the chosen kind. Enough in a row costing more than
  // the other kind's last figure (by the margin) start a probe now: two,
  // doubling each time such a probe keeps the choice (a false alarm).
  last_window_ = window_;
  window_ = {};
  const double now = last_window_.NsPerKib();
  const double other = zerocopy ? copy_ns_per_kib_ : zerocopy_ns_per_kib_;
  // A probe can switch to the other kind only if it is the preferred one or
  // was measured backlogged.
  const bool other_preferred = preferred_zerocopy_ != zerocopy;
  const bool other_can_win =
      other_preferred || (zerocopy ? copy_backlogged_ : zerocopy_backlogged_);
  if (other_can_win && other > 0 && now > other * (1.0 + o_.switch_margin)) {
    if (++slow_windows_ >= slow_windows_needed_) {
      ++early_probes_;
      early_ = true;
      StartProbe();
    }
  } else {
    slow_windows_ = 0;
  }
}

void AutoPolicy::OnNotification(bool copied) {
  (copied ? copied_ : zerocopy_)++;
  // Zero-copy was chosen because the kernel sent without copying; if it now
  // copies (a route or device change), measure again instead of waiting.
  if (mode_ == Mode::kZerocopy && preferred_zerocopy_ &&
      copied_ >= kPathChangeCopies && copied_ > zerocopy_) {
    StartProbe();
  }
}

void AutoPolicy::StartProbe() {
  const bool chosen_zerocopy = mode_ == Mode::kZerocopy;
  const bool have_window = mode_ != Mode::kProbing && last_window_.n > 0;
  mode_ = Mode::kProbing;
  since_probe_ = 0;
  slow_windows_ = 0;
  copy_samples_ = {};
  zerocopy_samples_ = {};
  block_bytes_ = 0;
  if (have_window) {
    // The chosen kind was measured by its last window, just now: only the
    // other kind needs a block.
    zerocopy_first_ = chosen_zerocopy;
    (chosen_zerocopy ? zerocopy_samples_ : copy_samples_) = last_window_;
    block_ = 1;
  } else {
    zerocopy_first_ = false;
    block_ = 0;
  }
  last_window_ = {};
  window_ = {};
}

void AutoPolicy::Decide() {
  preferred_zerocopy_ = zerocopy_ > copied_;
  copy_ns_per_kib_ = copy_samples_.NsPerKib();
  zerocopy_ns_per_kib_ = zerocopy_samples_.NsPerKib();
  copy_backlogged_ = copy_samples_.MostlyBacklogged();
  zerocopy_backlogged_ = zerocopy_samples_.MostlyBacklogged();
  bool zc = preferred_zerocopy_;
  if (copy_ns_per_kib_ > 0 && zerocopy_ns_per_kib_ > 0) {
    const double keep = 1.0 - o_.switch_margin;
    if (preferred_zerocopy_) {
      zc =
          !(copy_backlogged_ && copy_ns_per_kib_ < zerocopy_ns_per_kib_ * keep);
    } else {
      zc = zerocopy_backlogged_ &&
           zerocopy_ns_per_kib_ < copy_ns_per_kib_ * keep;
    }
  }
  if (decided_ && zc == last_zerocopy_) {
    interval_ = std::min(o_.max_reprobe_bytes, interval_ * 2);
    if (early_) {
      slow_windows_needed_ =
          std::min(kMaxSlowWindows, slow_windows_needed_ * 2);
    }
  } else {
    interval_ = std::max<uint64_t>(1, o_.reprobe_bytes);
    slow_windows_needed_ = 2;
  }
  early_ = false;
  decided_ = true;
  ++probes_;
  if (zc) ++zerocopy_choices_;
  mode_ = zc ? Mode::kZerocopy : Mode::kCopy;
  last_zerocopy_ = zc;
  since_probe_ = 0;
  window_ = {};
  copied_ = zerocopy_ = 0;
}

}  // namespace txbuf
