// proto/slicing_frame_reader.cc: receive blocks with an atomic reference
// count, and a frame reader whose frames can be sliced out of them in place.
// Thread-safety: see slicing_frame_reader.h (the reader: one thread; blocks:
// released on any).
#include "proto/slicing_frame_reader.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <memory>
#include <new>

#include "common/deleter.h"

namespace txbuf {

static_assert(Deleter::kFitsInline<RxBlockRef>,
              "a slice's owner is one pointer, held inline by its Deleter");

RxBlock* RxBlock::Allocate(size_t size) {
  static_assert(sizeof(RxBlock) <= kDataOffset);
  void* p = ::operator new (kDataOffset + size, std::align_val_t{kDataOffset});
  return ::new (p) RxBlock(size);
}

void RxBlock::Free() {
  void* p = this;
  this->~RxBlock();
  ::operator delete (p, std::align_val_t{kDataOffset});
}

SlicingFrameReader::~SlicingFrameReader() { DropAll(); }

SlicingFrameReader::SlicingFrameReader(SlicingFrameReader&& o) noexcept
    : limits_(o.limits_),
      block_(std::exchange(o.block_, nullptr)),
      retired_(std::move(o.retired_)),
      begin_(std::exchange(o.begin_, 0)),
      end_(std::exchange(o.end_, 0)),
      need_(std::exchange(o.need_, kFrameHeaderSize)),
      blocks_allocated_(o.blocks_allocated_),
      blocks_reused_(o.blocks_reused_),
      bytes_carried_(o.bytes_carried_) {
  o.retired_.clear();
}

SlicingFrameReader& SlicingFrameReader::operator=(
    SlicingFrameReader&& o) noexcept {
  if (this != &o) {
    DropAll();
    limits_ = o.limits_;
    block_ = std::exchange(o.block_, nullptr);
    retired_ = std::move(o.retired_);
    o.retired_.clear();
    begin_ = std::exchange(o.begin_, 0);
    end_ = std::exchange(o.end_, 0);
    need_ = std::exchange(o.need_, kFrameHeaderSize);
    blocks_allocated_ = o.blocks_allocated_;
    blocks_reused_ = o.blocks_reused_;
    bytes_carried_ = o.bytes_carried_;
  }
  return *this;
}

void SlicingFrameReader::DropAll() {
  for (RxBlock* b : retired_) b->Unref();
  retired_.clear();
  if (block_ != nullptr) std::exchange(block_, nullptr)->Unref();
  begin_ = end_ = 0;
}

absl::Span<std::byte> SlicingFrameReader::WritableSpan(size_t min_bytes) {
  // Everything consumed and nobody else reading the block: start over at
  // its front (FrameReader does so in Next(); here a slice may be taken
  // between Next() and this call).
  if (begin_ == end_ && begin_ != 0 && block_->exclusive()) begin_ = end_ = 0;
  const size_t size = block_ == nullptr ? 0 : block_->size();
  if (block_ == nullptr || size - end_ < min_bytes) {
    const size_t pending = end_ - begin_;
    const size_t want = pending + min_bytes;
    if (block_ != nullptr && size >= want && block_->exclusive()) {
      // Only the reader reads it: move the unconsumed bytes to the front.
      if (pending > 0) {
        std::memmove(block_->data(), block_->data() + begin_, pending);
      }
      begin_ = 0;
      end_ = pending;
    } else if (block_ != nullptr && size >= want) {
      // Slices hold it: a block of the same size (frames of one size tend
      // to follow each other), with only the partial frame copied.
      Replace(size);
    } else {
      // Doubling keeps the copies of a large frame linear in its size; the
      // cap keeps the block within what the frame in progress needs.
      const size_t cap = std::max(want, need_);
      Replace(std::min(std::max(want, 2 * size), cap));
    }
  }
  return {block_->data() + end_, block_->size() - end_};
}

void SlicingFrameReader::Replace(size_t size) {
  // Whole pages: frames of nearly one size then fit each other's blocks.
  constexpr size_t kGrain = 4096;
  size = (size + kGrain - 1) / kGrain * kGrain;
  RxBlock* next = nullptr;
  // A retired block whose slices are all released: take the first that
  // fits (not much larger), free the others that do not.
  for (size_t i = 0; i < retired_.size();) {
    RxBlock* r = retired_[i];
    if (!r->exclusive()) {
      ++i;
      continue;
    }
    retired_.erase(retired_.begin() + static_cast<ptrdiff_t>(i));
    if (next == nullptr && r->size() >= size && r->size() <= 2 * size) {
      next = r;
      ++blocks_reused_;
    } else {
      r->Unref();
    }
  }
  if (next == nullptr) {
    next = RxBlock::Allocate(size);
    ++blocks_allocated_;
  }
  const size_t pending = end_ - begin_;
  if (block_ != nullptr) {
    if (pending > 0) {
      std::memcpy(next->data(), block_->data() + begin_, pending);
    }
    if (block_->exclusive()) {
      block_->Unref();  // freed
    } else {
      bytes_carried_ += pending;
      retired_.push_back(block_);
      if (retired_.size() > kRetiredBlocks) {
        // Freed by whoever releases its last slice.
        retired_.front()->Unref();
        retired_.erase(retired_.begin());
      }
    }
  }
  block_ = next;
  begin_ = 0;
  end_ = pending;
}

std::optional<absl::StatusOr<Frame>> SlicingFrameReader::Next() {
  if (buffered() < kFrameHeaderSize) {
    need_ = kFrameHeaderSize;
    return std::nullopt;
  }
  const std::byte* p = block_->data() + begin_;
  absl::StatusOr<FrameHeader> h =
      DecodeFrameHeader({p, kFrameHeaderSize}, limits_);
  if (!h.ok()) return absl::StatusOr<Frame>(h.status());
  size_t total = kFrameHeaderSize + size_t{h->envelope_len} + h->payload_len;
  if (buffered() < total) {
    need_ = total;
    return std::nullopt;
  }
  p += kFrameHeaderSize;
  Frame f{*h, {p, h->envelope_len}, {p + h->envelope_len, h->payload_len}};
  begin_ += total;
  need_ = kFrameHeaderSize;
  return absl::StatusOr<Frame>(f);
}

OwnedBytes SlicingFrameReader::Slice(absl::Span<const std::byte> bytes) {
  if (bytes.empty()) return {};
  assert(block_ != nullptr && bytes.data() >= block_->data() &&
         bytes.data() + bytes.size() <= block_->data() + end_);
  block_->Ref();
  return OwnedBytes(bytes, Deleter::Of(RxBlockRef(block_)));
}

size_t SlicingFrameReader::capacity() const {
  size_t n = block_ == nullptr ? 0 : block_->size();
  for (const RxBlock* b : retired_) n += b->size();
  return n;
}

void SlicingFrameReader::Shrink(size_t keep) {
  if (buffered() != 0) return;
  for (RxBlock* b : retired_) b->Unref();
  retired_.clear();
  if (block_ != nullptr && block_->size() > keep) {
    std::exchange(block_, nullptr)->Unref();
    begin_ = end_ = 0;
  }
}

}  // namespace txbuf
