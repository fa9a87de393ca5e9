// owned_bytes.h: a view of bytes together with the owner that releases them.
//
// `OwnedBytes` is the pointer, the size and the `Deleter` of one buffer kept
// together (as Seastar's temporary_buffer): whoever holds it may read the
// bytes, and dropping it releases them exactly once. It is what a caller
// hands over when the bytes must outlive the call: a WRITE's payload
// (client::Compound::Write), an external txbuf segment
// (TxBufBuilder::AppendExternal).
//
// Thread-compatible: the owner is released on the thread that destroys the
// OwnedBytes (or whoever it was moved to).
//
// Example:
//   txbuf::OwnedBytes b = txbuf::OwnedBytes::Of(std::string(8192, 'x'));
//   builder.AppendExternal(std::move(b));   // the string lives until the
//                                           // txbuf's segment is released.
#ifndef TXBUF_COMMON_OWNED_BYTES_H_
#define TXBUF_COMMON_OWNED_BYTES_H_

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/types/span.h"
#include "common/deleter.h"

namespace txbuf {

class OwnedBytes {
 public:
  // No bytes, no owner.
  OwnedBytes() = default;

  // `bytes`, valid and unchanged until `owner` is released.
  OwnedBytes(absl::Span<const std::byte> bytes, Deleter owner)
      : data_(bytes.data()), size_(bytes.size()), owner_(std::move(owner)) {}

  // The bytes of `s`, which moves to the heap (its bytes are not copied) and
  // is freed on release.
  static OwnedBytes Of(std::string s) {
    auto held = std::make_unique<std::string>(std::move(s));
    absl::Span<const std::byte> bytes(
        reinterpret_cast<const std::byte*>(held->data()), held->size());
    return OwnedBytes(bytes, Deleter::Of(std::move(held)));
  }

  // A copy of `bytes` on the heap (one allocation), freed on release.
  static OwnedBytes Copy(absl::Span<const std::byte> bytes) {
    if (bytes.empty()) return {};
    auto held = std::make_unique_for_overwrite<std::byte[]>(bytes.size());
    std::memcpy(held.get(), bytes.data(), bytes.size());
    absl::Span<const std::byte> view(held.get(), bytes.size());
    return OwnedBytes(view, Deleter::Of(std::move(held)));
  }

  OwnedBytes(OwnedBytes&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        owner_(std::move(o.owner_)) {}
  OwnedBytes& operator=(OwnedBytes&& o) noexcept {
    if (this != &o) {
      owner_ = std::move(o.owner_);  // releases ours first
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  OwnedBytes(const OwnedBytes&) = delete;
  OwnedBytes& operator=(const OwnedBytes&) = delete;
  ~OwnedBytes() = default;  // `owner_` releases the bytes.

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  absl::Span<const std::byte> span() const { return {data_, size_}; }

  // Gives up the owner: the bytes stay valid until the returned Deleter is
  // released. Afterwards this is empty.
  Deleter TakeOwner() && {
    data_ = nullptr;
    size_ = 0;
    return std::move(owner_);
  }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  Deleter owner_;
};

}  // namespace txbuf

#endif  // TXBUF_COMMON_OWNED_BYTES_H_
