#include "client/write_lease.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace txbuf::client {

namespace internal {

struct WriteLeaseState {
  absl::Mutex mu;
  int pending ABSL_GUARDED_BY(mu) = 2;  // the reply and the release
  std::optional<absl::StatusOr<CompoundReply>> reply ABSL_GUARDED_BY(mu);
  WriteLease::DoneFn done ABSL_GUARDED_BY(mu);  // empty: Wait() collects
};

}  // namespace internal

namespace {

using State = internal::WriteLeaseState;

// Ends one side of a lease: with the reply, or (the release) without.
void Finish(const std::shared_ptr<State>& s,
            std::optional<absl::StatusOr<CompoundReply>> reply) {
  WriteLease::DoneFn done;
  absl::StatusOr<CompoundReply> r;
  {
    absl::MutexLock l(&s->mu);
    if (reply.has_value()) s->reply = std::move(reply);
    if (--s->pending > 0 || !s->done) return;  // Wait() sees pending == 0
    done = std::move(s->done);
    r = std::move(*s->reply);
  }
  std::move(done)(std::move(r));
}

// The buffer's end: finishes when the Deleter holding it is released.
class ReleaseEnd {
 public:
  // A shared_ptr holds no pointer into itself: the Deleter keeps it inline.
  using TriviallyRelocatable = void;
  explicit ReleaseEnd(std::shared_ptr<State> s) : s_(std::move(s)) {}
  ReleaseEnd(ReleaseEnd&&) noexcept = default;
  ReleaseEnd& operator=(ReleaseEnd&&) = delete;
  ~ReleaseEnd() {
    if (s_ != nullptr) Finish(s_, std::nullopt);
  }

 private:
  std::shared_ptr<State> s_;
};

// The reply's end: finishes when called, or as Cancelled if destroyed
// uncalled.
class ReplyEnd {
 public:
  explicit ReplyEnd(std::shared_ptr<State> s) : s_(std::move(s)) {}
  ReplyEnd(ReplyEnd&&) noexcept = default;
  ReplyEnd& operator=(ReplyEnd&&) = delete;
  ~ReplyEnd() {
    if (s_ != nullptr) {
      Finish(s_, absl::CancelledError("the WRITE's reply never came (its "
                                      "callback was dropped unsent)"));
    }
  }
  void operator()(absl::StatusOr<CompoundReply> r) {
    std::shared_ptr<State> s = std::move(s_);
    if (s != nullptr) Finish(s, std::move(r));
  }

 private:
  std::shared_ptr<State> s_;
};

}  // namespace

WriteLease::WriteLease(DoneFn done) : state_(std::make_shared<State>()) {
  {
    absl::MutexLock l(&state_->mu);
    state_->done = std::move(done);
  }
  release_ = Deleter::Of(ReleaseEnd(state_));
  reply_ = ReplyEnd(state_);
}

WriteLease::WriteLease() : WriteLease(DoneFn()) {}

WriteLease::~WriteLease() = default;

absl::StatusOr<CompoundReply> WriteLease::Wait() {
  State& s = *state_;
  absl::MutexLock l(&s.mu);
  auto finished = [&s]() ABSL_SHARED_LOCKS_REQUIRED(s.mu) {
    return s.pending == 0;
  };
  s.mu.Await(absl::Condition(&finished));
  return std::move(*s.reply);
}

}  // namespace txbuf::client
