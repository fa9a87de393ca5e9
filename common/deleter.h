// deleter.h: a move-only owner whose destructor is the release.
//
// A `Deleter` is what a txbuf segment holds to give its memory back: a slab
// object to its cache, a page reference to the page pool, a caller's buffer to
// the caller. It is a function pointer and two words (no allocation) for the
// common kinds, or a heap-held callable for arbitrary releasers.
//
// Thread-compatible: a Deleter is released on the thread that destroys it.
//
// Example:
//   void* p = std::malloc(100);
//   txbuf::Deleter d(+[](void*, void* obj) { std::free(obj); }, nullptr, p);
//   // ... `p` is freed exactly once, when `d` (or whoever it was moved to)
//   // is destroyed or `d.Release()` is called.
#ifndef TXBUF_COMMON_DELETER_H_
#define TXBUF_COMMON_DELETER_H_

#include <utility>

#include "absl/functional/any_invocable.h"

namespace txbuf {

class Deleter {
 public:
  using ReleaseFn = void (*)(void* ctx, void* obj);

  // An empty deleter releases nothing.
  Deleter() = default;

  // Releases `obj` by calling `fn(ctx, obj)` exactly once.
  Deleter(ReleaseFn fn, void* ctx, void* obj) : fn_(fn), ctx_(ctx), obj_(obj) {}

  // Releases by running `fn` exactly once. Allocates the callable.
  //
  // Example:
  //   auto buf = std::make_unique<char[]>(4096);
  //   txbuf::Deleter d = txbuf::Deleter::FromCallable(
  //       [b = std::move(buf)]() mutable { b.reset(); });
  static Deleter FromCallable(absl::AnyInvocable<void() &&> fn);

  Deleter(const Deleter&) = delete;
  Deleter& operator=(const Deleter&) = delete;
  Deleter(Deleter&& other) noexcept
      : fn_(std::exchange(other.fn_, nullptr)),
        ctx_(other.ctx_),
        obj_(other.obj_) {}
  Deleter& operator=(Deleter&& other) noexcept {
    if (this != &other) {
      Release();
      fn_ = std::exchange(other.fn_, nullptr);
      ctx_ = other.ctx_;
      obj_ = other.obj_;
    }
    return *this;
  }
  ~Deleter() { Release(); }

  // Runs the release now (if not already run). Afterwards the deleter is empty.
  void Release() {
    if (fn_ != nullptr) std::exchange(fn_, nullptr)(ctx_, obj_);
  }

  explicit operator bool() const { return fn_ != nullptr; }

 private:
  ReleaseFn fn_ = nullptr;
  void* ctx_ = nullptr;
  void* obj_ = nullptr;
};

inline Deleter Deleter::FromCallable(absl::AnyInvocable<void() &&> fn) {
  auto* held = new absl::AnyInvocable<void() &&>(std::move(fn));
  return Deleter(
      +[](void*, void* obj) {
        auto* f = static_cast<absl::AnyInvocable<void() &&>*>(obj);
        std::move (*f)();
        delete f;
      },
      nullptr, held);
}

}  // namespace txbuf

#endif  // TXBUF_COMMON_DELETER_H_
