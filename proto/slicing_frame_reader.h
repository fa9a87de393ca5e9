// proto/slicing_frame_reader.h: a FrameReader whose frames' bytes can be
// handed out in place, as `OwnedBytes` that keep their receive block alive.
//
// The client library receives replies with it: a large READ's data reaches
// the caller as a slice of the buffer the bytes were received into, with no
// copy (client/internal/connection.cc). It cuts frames exactly as
// `FrameReader` (proto/frame.h) does, with the same limits and growth rule,
// but its buffer is a reference-counted block (`RxBlock`) instead of a
// vector, and `Slice()` hands out a reference to it.
//
// The block rule (as Seastar's input_stream): bytes handed out by Slice()
// never move and never change while a slice holds them. When the reader
// needs room (WritableSpan) and its block is held by slices, it does not
// compact or grow that block: it starts a new one and copies into it only
// the bytes of the frame not yet complete (counted in bytes_carried()). The
// old block is freed by whoever releases its last slice. The reader keeps
// up to kRetiredBlocks such blocks referenced and takes one back once every
// slice of it is released (a ping-pong between two warm blocks when a caller
// holds one reply while the next arrives), instead of a fresh allocation.
// When no slice holds the block, it behaves as FrameReader: compaction in
// place, growth by doubling capped at the frame in progress.
//
// Memory: a slice pins its whole block (at most max(the receive size asked
// for plus a partial frame, the largest frame in progress), rounded up to a
// page). Deciding which bytes are worth slicing (large ones) and which are
// better copied (small ones, so that a caller holding many small replies
// pins only its own bytes) is the caller's rule.
//
// Thread-safety: the reader is thread-compatible (one thread: the client's
// loop). The OwnedBytes from Slice() may be read and released on any thread
// at any time, also after the reader is destroyed: the block's reference
// count is atomic, and the last release frees it.
//
// Example:
//   txbuf::SlicingFrameReader reader({.max_envelope = 1 << 20});
//   absl::Span<std::byte> buf = reader.WritableSpan(256 * 1024);
//   ssize_t n = recv(fd, buf.data(), buf.size(), 0);
//   reader.Commit(n);
//   while (auto frame = reader.Next()) {
//     if (!frame->ok()) { /* malformed: close */ }
//     txbuf::OwnedBytes data = reader.Slice((*frame)->payload);
//     Deliver(std::move(data));  // valid until released, on any thread
//   }
#ifndef TXBUF_PROTO_SLICING_FRAME_READER_H_
#define TXBUF_PROTO_SLICING_FRAME_READER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/owned_bytes.h"
#include "proto/frame.h"

namespace txbuf {

// One receive block: a reference count and `size()` bytes, in one
// allocation. Created with one reference (the reader's).
class RxBlock {
 public:
  static RxBlock* Allocate(size_t size);
  RxBlock(const RxBlock&) = delete;
  RxBlock& operator=(const RxBlock&) = delete;

  std::byte* data() { return reinterpret_cast<std::byte*>(this) + kDataOffset; }
  size_t size() const { return size_; }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Drops a reference; the last one frees the block (on any thread).
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) Free();
  }
  // True if the caller's reference is the only one: nobody else reads the
  // bytes, and (the reader being the only one who adds references) nobody
  // will until the caller hands out another.
  bool exclusive() const { return refs_.load(std::memory_order_acquire) == 1; }

 private:
  // The bytes start one cache line in (the header is the count and size).
  static constexpr size_t kDataOffset = 64;
  explicit RxBlock(size_t size) : size_(size) {}
  ~RxBlock() = default;
  void Free();

  std::atomic<uint32_t> refs_{1};
  const size_t size_;
};

// One reference to an RxBlock: the owner a slice's Deleter holds.
class RxBlockRef {
 public:
  using TriviallyRelocatable = void;  // one pointer, none into itself.
  explicit RxBlockRef(RxBlock* b) : block_(b) {}
  RxBlockRef(RxBlockRef&& o) noexcept
      : block_(std::exchange(o.block_, nullptr)) {}
  RxBlockRef& operator=(RxBlockRef&&) = delete;
  RxBlockRef(const RxBlockRef&) = delete;
  RxBlockRef& operator=(const RxBlockRef&) = delete;
  ~RxBlockRef() {
    if (block_ != nullptr) block_->Unref();
  }

 private:
  RxBlock* block_;
};

class SlicingFrameReader {
 public:
  // Blocks replaced while slices held them that the reader keeps, to take
  // one back once its slices are released.
  static constexpr size_t kRetiredBlocks = 2;

  explicit SlicingFrameReader(FrameLimits limits = {}) : limits_(limits) {}
  ~SlicingFrameReader();
  SlicingFrameReader(SlicingFrameReader&& o) noexcept;
  SlicingFrameReader& operator=(SlicingFrameReader&& o) noexcept;
  SlicingFrameReader(const SlicingFrameReader&) = delete;
  SlicingFrameReader& operator=(const SlicingFrameReader&) = delete;

  // Room for at least `min_bytes` more bytes (as FrameReader::WritableSpan).
  // Never inside bytes a slice holds.
  absl::Span<std::byte> WritableSpan(size_t min_bytes);
  void Commit(size_t n) { end_ += n; }

  // The next complete frame, nullopt if more bytes are needed, or an error
  // for a malformed header (close the stream). Its spans stay valid until
  // the next WritableSpan() (Slice() them to keep them longer).
  std::optional<absl::StatusOr<Frame>> Next();

  // `bytes` (a span of a frame returned by Next() since the last
  // WritableSpan(), e.g. its payload) held by a reference to the block: valid
  // and unchanged until the result is released, on any thread. No copy.
  OwnedBytes Slice(absl::Span<const std::byte> bytes);

  // As FrameReader.
  void set_limits(FrameLimits limits) { limits_ = limits; }
  size_t buffered() const { return end_ - begin_; }
  bool partial() const { return buffered() > 0; }
  // Bytes of block memory the reader references: its block and the retired
  // ones (slices may hold more).
  size_t capacity() const;
  // Drops the retired blocks, and the block if it is larger than `keep`
  // bytes, when nothing is buffered.
  void Shrink(size_t keep);

  // Statistics (for tests and the client's counters).
  // Blocks allocated so far.
  uint64_t blocks_allocated() const { return blocks_allocated_; }
  // Retired blocks taken back once their slices were released.
  uint64_t blocks_reused() const { return blocks_reused_; }
  // Bytes of partial frames copied into a new block because slices held the
  // old one.
  uint64_t bytes_carried() const { return bytes_carried_; }

 private:
  // Makes a block of at least `size` bytes (a retired one if free and not
  // much larger, else a new one) the current one, copying the bytes
  // buffered; the old block is freed, or retired if slices hold it.
  void Replace(size_t size);
  void DropAll();

  FrameLimits limits_;
  RxBlock* block_ = nullptr;
  std::vector<RxBlock*> retired_;   // oldest first; the reader's references.
  size_t begin_ = 0;                // first unconsumed byte
  size_t end_ = 0;                  // one past the last received byte
  size_t need_ = kFrameHeaderSize;  // bytes the frame at begin_ needs
  uint64_t blocks_allocated_ = 0;
  uint64_t blocks_reused_ = 0;
  uint64_t bytes_carried_ = 0;
};

}  // namespace txbuf

#endif  // TXBUF_PROTO_SLICING_FRAME_READER_H_
