// tsan_absl_sync.cc: tells ThreadSanitizer what absl::Mutex and
// absl::Notification synchronize. Linked into every executable of the TSan
// build (-DTXBUF_TSAN=ON), and only there.
//
// Why: Debian's Abseil is not built with -fsanitize=thread, so TSan cannot
// see the atomics inside absl::Mutex::Lock()/Unlock() or Notification::
// Notify(): to it, two threads that take turns under an absl::Mutex, or one
// that writes before Notify() and one that reads after
// WaitForNotification(), race. Every test that runs threads reported such
// races, all false (e.g. PageCache::GetFile's map under files_mu_;
// Client::Connect's loop pointer handed over by a Notification). A
// suppression cannot tell those from real races in the same code, so
// instead these definitions interpose on the entry points our code calls
// (an executable's definitions take precedence over a shared library's),
// call the real ones (dlsym(RTLD_NEXT)) and add the happens-before edges
// Abseil's own TSan build would add:
//
//   Lock, ReaderLock              acquire(mu) after
//   TryLock                       acquire(mu) after, if it took the lock
//   Unlock, ReaderUnlock          release(mu) before
//   Await, AwaitWithTimeout       release(mu) before, acquire(mu) after; the
//                                 condition (which Abseil may evaluate on the
//                                 unlocking thread) between acquire(mu) and
//                                 release(mu)
//   Notification::Notify         release(n) before
//   WaitForNotification          acquire(n) after
//   Status::UnrefNonInlined      release(rep), acquire(rep) before: each
//                                copy's release is seen by the last one,
//                                which frees the shared error text (as a
//                                shared_ptr's count is modelled)
//
// Plain acquire/release rather than TSan's mutex annotations: Abseil also
// locks through entry points not listed here (LockWhen, inside
// Notification), and a mutex model that sees only some of them would report
// unlocks of unlocked mutexes. The cost: TSan's lock-order (deadlock)
// checking does not cover absl::Mutex, and readers under ReaderLock are
// ordered among themselves. Any new absl synchronization entry point our code
// starts to use must be added here (nm -u on a TSan binary lists them).
#ifndef TXBUF_TSAN
#error "tsan_absl_sync.cc belongs to the TSan build only"
#endif

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/options.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

#define TXBUF_STR2(x) #x
#define TXBUF_STR(x) TXBUF_STR2(x)

// The mangled name of absl::CLASS::MEMBER: `tail` is what follows the
// class name, e.g. "4LockEv".
std::string Mangled(bool is_const, const char* cls, const char* tail) {
  std::string ns = "4absl";
#if ABSL_OPTION_USE_INLINE_NAMESPACE
  std::string inl = TXBUF_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  ns += std::to_string(inl.size()) + inl;
#endif
  return std::string(is_const ? "_ZNK" : "_ZN") + ns + cls + tail;
}

template <typename Fn>
Fn Real(bool is_const, const char* cls, const char* tail) {
  std::string name = Mangled(is_const, cls, tail);
  void* p = dlsym(RTLD_NEXT, name.c_str());
  if (p == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found: %s\n", name.c_str(),
                 dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(p);
}

using MutexFn = void (*)(absl::Mutex*);
using TryLockFn = bool (*)(absl::Mutex*);
using AwaitFn = void (*)(absl::Mutex*, const absl::Condition&);
using AwaitTimeoutFn = bool (*)(absl::Mutex*, const absl::Condition&,
                                absl::Duration);
using NotifyFn = void (*)(absl::Notification*);
using UnrefFn = void (*)(uintptr_t);
using WaitFn = void (*)(const absl::Notification*);

// A condition evaluated as if under the mutex.
struct Annotated {
  absl::Mutex* mu;
  const absl::Condition* cond;
};
bool EvalAnnotated(void* arg) {
  auto* a = static_cast<Annotated*>(arg);
  __tsan_acquire(a->mu);
  bool r = a->cond->Eval();
  __tsan_release(a->mu);
  return r;
}

// Abseil's deadlock detector keeps one global graph of lock order, updated
// inside Lock() under Abseil's own (uninstrumented) spin lock: TSan sees its
// updates from two threads as races (GraphCycles::InsertEdge). TSan cannot
// check lock order on absl::Mutex here anyway (see above): turn it off in
// this build.
const bool kDeadlockGraphOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const MutexFn real = Real<MutexFn>(false, "5Mutex", "4LockEv");
  real(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  static const TryLockFn real = Real<TryLockFn>(false, "5Mutex", "7TryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const MutexFn real = Real<MutexFn>(false, "5Mutex", "6UnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::ReaderLock() {
  static const MutexFn real = Real<MutexFn>(false, "5Mutex", "10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderUnlock() {
  static const MutexFn real =
      Real<MutexFn>(false, "5Mutex", "12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::Await(const Condition& cond) {
  static const AwaitFn real =
      Real<AwaitFn>(false, "5Mutex", "5AwaitERKNS0_9ConditionE");
  Annotated a{this, &cond};
  __tsan_release(this);
  real(this, Condition(&EvalAnnotated, &a));
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const AwaitTimeoutFn real = Real<AwaitTimeoutFn>(
      false, "5Mutex", "16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Annotated a{this, &cond};
  __tsan_release(this);
  bool r = real(this, Condition(&EvalAnnotated, &a), timeout);
  __tsan_acquire(this);
  return r;
}

void Notification::Notify() {
  static const NotifyFn real =
      Real<NotifyFn>(false, "12Notification", "6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static const WaitFn real =
      Real<WaitFn>(true, "12Notification", "19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

// A Status that is not OK points to one shared, reference-counted rep; the
// copy that drops the count to zero deletes it, inside Abseil. Without this,
// a reader on one thread and the last copy's delete on another race to TSan
// (the client library's timeout error, read by the caller while the event
// loop lets go of its copy, was reported so in CI).
void Status::UnrefNonInlined(uintptr_t rep) {
  static const UnrefFn real =
      Real<UnrefFn>(false, "6Status", "15UnrefNonInlinedEm");
  void* shared = RepToPointer(rep);
  __tsan_release(shared);
  __tsan_acquire(shared);
  real(rep);
}

ABSL_NAMESPACE_END
}  // namespace absl
