// deleter.h: a move-only owner whose destructor is the release.
//
// A `Deleter` is what a txbuf segment holds to give its memory back: a slab
// object to its cache, a page reference to the page pool, a caller's buffer to
// the caller. It is three words and never allocates for the common kinds: it
// holds the owner object itself (`Deleter::Of`: a `SlabObject`, a `PageRef`,
// a `std::unique_ptr<T>`, ...) or a small callable (`FromCallable`) inline,
// and only a callable too big for two words goes to the heap.
//
// Thread-compatible: a Deleter is released on the thread that destroys it.
//
// Example:
//   auto s = std::make_unique<std::string>("bytes");
//   txbuf::Deleter d = txbuf::Deleter::Of(std::move(s));
//   // ... the string is deleted exactly once, when `d` (or whoever it was
//   // moved to) is destroyed or `d.Release()` is called.
#ifndef TXBUF_COMMON_DELETER_H_
#define TXBUF_COMMON_DELETER_H_

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"

namespace txbuf {

// Whether a `T` may be moved by copying its bytes, the source then being
// forgotten without running its destructor (a "trivially relocatable" type).
// True for trivially copyable types and `std::unique_ptr` with the default
// deleter; an owner type opts in by declaring
// `using TriviallyRelocatable = void;` (it must hold no pointer into itself).
template <typename T, typename = void>
struct IsTriviallyRelocatable : std::is_trivially_copyable<T> {};
template <typename T>
struct IsTriviallyRelocatable<T, std::void_t<typename T::TriviallyRelocatable>>
    : std::true_type {};
template <typename T>
struct IsTriviallyRelocatable<std::unique_ptr<T>> : std::true_type {};

class Deleter {
 public:
  // The bytes an owner or callable may take inline.
  static constexpr size_t kInlineSize = 2 * sizeof(void*);

  // Whether `T` is held inline (no allocation) by Of() and FromCallable().
  template <typename T>
  static constexpr bool kFitsInline =
      sizeof(T) <= kInlineSize && alignof(T) <= alignof(void*) &&
      IsTriviallyRelocatable<T>::value&& std::is_nothrow_move_constructible_v<
          T>;

  // An empty deleter releases nothing.
  Deleter() = default;

  // Takes over `owner`, an object whose destructor is the release (e.g. a
  // SlabObject, a PageRef, a std::unique_ptr<std::string>): the destructor
  // runs exactly once, when the Deleter is released. Never allocates: `owner`
  // must fit inline (kFitsInline) and have a destructor that does something.
  //
  // Example:
  //   auto heap = std::make_unique<std::string>(4096, '\0');
  //   builder.AppendExternal(heap->data(), heap->size(),
  //                          txbuf::Deleter::Of(std::move(heap)));
  template <typename T>
  static Deleter Of(T owner);

  // Releases by running `fn` exactly once. Inline if the callable is
  // trivially copyable and fits (a lambda capturing up to two pointers or
  // integers); otherwise the callable is moved to the heap.
  //
  // Example:
  //   auto buf = std::make_unique<char[]>(4096);
  //   txbuf::Deleter d = txbuf::Deleter::FromCallable(
  //       [b = std::move(buf)]() mutable { b.reset(); });
  template <typename F>
  static Deleter FromCallable(F fn);

  Deleter(const Deleter&) = delete;
  Deleter& operator=(const Deleter&) = delete;
  Deleter(Deleter&& other) noexcept
      : release_(std::exchange(other.release_, nullptr)) {
    std::memcpy(storage_, other.storage_, kInlineSize);
  }
  Deleter& operator=(Deleter&& other) noexcept {
    if (this != &other) {
      Release();
      release_ = std::exchange(other.release_, nullptr);
      std::memcpy(storage_, other.storage_, kInlineSize);
    }
    return *this;
  }
  ~Deleter() { Release(); }

  // Runs the release now (if not already run). Afterwards the deleter is empty.
  void Release() {
    if (release_ != nullptr) std::exchange(release_, nullptr)(storage_);
  }

  explicit operator bool() const { return release_ != nullptr; }

 private:
  // Ends the life of whatever `storage` holds (the release).
  using ReleaseFn = void (*)(void* storage);

  // Runs `fn` (held inline) once, on release.
  template <typename F>
  struct InlineCall {
    F fn;
  };
  // A callable too big or not trivially copyable, on the heap.
  struct HeapCall {
    using TriviallyRelocatable = void;
    explicit HeapCall(absl::AnyInvocable<void() &&>* f) : fn(f) {}
    HeapCall(HeapCall&& o) noexcept : fn(std::exchange(o.fn, nullptr)) {}
    HeapCall& operator=(HeapCall&&) = delete;
    ~HeapCall() {
      if (fn == nullptr) return;
      std::move (*fn)();
      delete fn;
    }
    absl::AnyInvocable<void() &&>* fn;
  };

  template <typename T>
  static T* Held(void* storage) {
    return std::launder(static_cast<T*>(storage));
  }

  ReleaseFn release_ = nullptr;
  alignas(void*) std::byte storage_[kInlineSize] = {};
};

static_assert(sizeof(Deleter) == 3 * sizeof(void*),
              "a Deleter is a function pointer and two words");

template <typename T>
Deleter Deleter::Of(T owner) {
  static_assert(kFitsInline<T>,
                "Deleter::Of holds the owner inline: at most two words, "
                "trivially relocatable (IsTriviallyRelocatable), nothrow "
                "movable; use FromCallable for anything else");
  static_assert(!std::is_trivially_destructible_v<T>,
                "Deleter::Of releases by destroying the owner: this type's "
                "destructor does nothing");
  Deleter d;
  ::new (static_cast<void*>(d.storage_)) T(std::move(owner));
  d.release_ = +[](void* storage) { std::destroy_at(Held<T>(storage)); };
  return d;
}

template <typename F>
Deleter Deleter::FromCallable(F fn) {
  if constexpr (std::is_trivially_copyable_v<F> && kFitsInline<InlineCall<F>>) {
    Deleter d;
    ::new (static_cast<void*>(d.storage_)) InlineCall<F>{std::move(fn)};
    d.release_ =
        +[](void* storage) { std::move(Held<InlineCall<F>>(storage)->fn)(); };
    return d;
  } else {
    return Of(HeapCall(new absl::AnyInvocable<void() &&>(std::move(fn))));
  }
}

}  // namespace txbuf

#endif  // TXBUF_COMMON_DELETER_H_
