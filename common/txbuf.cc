#include "common/txbuf.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "common/clock.h"

namespace txbuf {

using internal::ChainControl;
using internal::ChainNode;
using internal::Segment;

TxBufContext::TxBufContext(SlabAllocator& slabs, PagePool& pages,
                           MemoryStats& stats, TxBufOptions options)
    : slabs_(slabs),
      pages_(pages),
      stats_(stats),
      options_(options),
      node_cache_(slabs.CreateCache("txbuf_node", sizeof(ChainNode))),
      control_cache_(slabs.CreateCache("txbuf_chain", sizeof(ChainControl))) {}

TxBufContext::~TxBufContext() { ReleaseCachedPages(); }

void TxBufContext::ReleaseCachedPages() { staging_free_.clear(); }

PageRef TxBufContext::AllocStagingPage() {
  if (!staging_free_.empty()) {
    PageRef p = std::move(staging_free_.back());
    staging_free_.pop_back();
    return p;
  }
  return pages_.Allocate();
}

// A staging page held by a txbuf segment; given back to its context (for
// reuse) when the segment is released.
class TxBufContext::StagingPage {
 public:
  using TriviallyRelocatable = void;
  StagingPage(TxBufContext* ctx, PageRef page)
      : ctx_(ctx), page_(std::move(page)) {}
  StagingPage(StagingPage&& o) noexcept = default;
  StagingPage& operator=(StagingPage&&) = delete;
  ~StagingPage() {
    if (page_) ctx_->RecycleStaging(std::move(page_));
  }

 private:
  TxBufContext* ctx_;
  PageRef page_;
};

Deleter TxBufContext::StagingDeleter(PageRef page) {
  return Deleter::Of(StagingPage(this, std::move(page)));
}

void TxBufContext::RecycleStaging(PageRef page) {
  if (staging_free_.size() < kStagingKeep && page.use_count() == 1) {
    staging_free_.push_back(std::move(page));  // keep our reference
  }
  // Otherwise `page` drops its reference here.
}

// --- TxBuf -----------------------------------------------------------------

TxBuf& TxBuf::operator=(TxBuf&& o) noexcept {
  if (this != &o) {
    reset();
    node_ = std::exchange(o.node_, nullptr);
    begin_ = o.begin_;
    end_ = o.end_;
  }
  return *this;
}

void TxBuf::reset() {
  if (node_ != nullptr) Unref(std::exchange(node_, nullptr));
  begin_ = end_ = 0;
}

uint64_t TxBuf::message_size() const {
  return node_ != nullptr ? node_->ctl->size : 0;
}

ChainNode* TxBuf::NodeAt(ChainNode* n, uint64_t off) {
  while (n->next != nullptr && off >= n->start + n->bytes) n = n->next;
  return n;
}

void TxBuf::Unref(ChainNode* n) {
  while (n != nullptr) {
    if (n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    ChainNode* next = n->next;
    ChainControl* ctl = n->ctl;
    TxBufContext* ctx = ctl->ctx;
    uint64_t bytes = n->bytes;
    n->DestroySegments();  // runs every segment owner of this node.
    n->~ChainNode();
    ctx->node_cache_->Free(n);
    ctx->stats().SubPinned(bytes);
    if (next == nullptr) {
      Complete(ctl);
      return;
    }
    n = next;  // drop the pin this node held on its successor.
  }
}

void TxBuf::Complete(ChainControl* ctl) {
  TxBufCompletion c;
  c.bytes = ctl->size;
  c.submitted = ctl->submit_ns != 0;
  c.latency_ns =
      c.submitted ? static_cast<uint64_t>(MonoNowNs() - ctl->submit_ns) : 0;
  c.copied = ctl->copied.load(std::memory_order_relaxed);
  c.status = std::move(ctl->status);
  TxBufDestructor destructor = std::move(ctl->destructor);
  TxBufContext* ctx = ctl->ctx;
  ctl->~ChainControl();
  ctx->control_cache_->Free(ctl);
  ctx->stats().TxbufDestroyed(c.submitted, c.latency_ns, c.copied);
  if (destructor) std::move(destructor)(c);
}

TxBuf TxBuf::Clone() const {
  if (node_ == nullptr) return TxBuf();
  node_->refs.fetch_add(1, std::memory_order_relaxed);
  return TxBuf(node_, begin_, end_);
}

TxBuf TxBuf::Slice(size_t offset, size_t len) const {
  if (offset > size()) offset = size();
  len = std::min(len, size() - offset);
  if (len == 0 || node_ == nullptr) return TxBuf();
  uint64_t b = begin_ + offset;
  ChainNode* n = NodeAt(node_, b);
  n->refs.fetch_add(1, std::memory_order_relaxed);
  return TxBuf(n, b, b + len);
}

void TxBuf::Advance(size_t n) {
  if (node_ == nullptr) return;
  n = std::min(n, size());
  begin_ += n;
  if (begin_ == end_) {
    Unref(std::exchange(node_, nullptr));
    begin_ = end_ = 0;
    return;
  }
  ChainNode* target = NodeAt(node_, begin_);
  if (target != node_) {
    target->refs.fetch_add(1, std::memory_order_relaxed);
    Unref(std::exchange(node_, target));
  }
}

size_t TxBuf::FillIovecs(size_t offset, absl::Span<iovec> out,
                         size_t* bytes) const {
  size_t count = 0;
  size_t total = 0;
  uint64_t from = begin_ + offset;
  if (node_ != nullptr && from < end_) {
    for (ChainNode* n = NodeAt(node_, from); n != nullptr && count < out.size();
         n = n->next) {
      uint64_t pos = n->start;
      for (int i = 0; i < n->nsegs && count < out.size(); ++i) {
        const Segment& s = n->seg(i);
        uint64_t seg_end = pos + s.len;
        if (seg_end > from) {
          uint64_t a = from > pos ? from - pos : 0;
          uint64_t b = seg_end > end_ ? end_ - pos : s.len;
          out[count++] = {const_cast<std::byte*>(s.base) + a,
                          static_cast<size_t>(b - a)};
          total += static_cast<size_t>(b - a);
        }
        pos = seg_end;
        if (pos >= end_) break;
      }
      if (pos >= end_) break;
    }
  }
  if (bytes != nullptr) *bytes = total;
  return count;
}

size_t TxBuf::SegmentCount() const {
  size_t n = 0;
  ForEachSegment([&](const std::byte*, size_t, SegmentKind) { ++n; });
  return n;
}

void TxBuf::CopyTo(absl::Span<std::byte> out) const {
  size_t at = 0;
  ForEachSegment([&](const std::byte* p, size_t len, SegmentKind) {
    std::memcpy(out.data() + at, p, len);
    at += len;
  });
}

// --- TxBufBuilder ----------------------------------------------------------

TxBufBuilder::TxBufBuilder(TxBufContext& ctx) : ctx_(ctx) {}

TxBufBuilder::~TxBufBuilder() { ReleaseAll(); }

void TxBufBuilder::Fail(absl::Status s) {
  if (status_.ok()) status_ = std::move(s);
}

bool TxBufBuilder::NewNode() {
  void* mem = ctx_.node_cache_->Alloc();
  if (mem == nullptr) {
    Fail(absl::ResourceExhaustedError("txbuf: out of memory for chain nodes"));
    return false;
  }
  auto* n = new (mem) ChainNode;  // segment storage left uninitialized
  n->refs.store(1, std::memory_order_relaxed);  // handle's or predecessor's
  n->nsegs = 0;
  n->next = nullptr;
  n->ctl = nullptr;
  n->start = size_;
  n->bytes = 0;
  if (tail_ != nullptr) {
    tail_->next = n;
  } else {
    head_ = n;
  }
  tail_ = n;
  return true;
}

void TxBufBuilder::AddSegmentSlow(const std::byte* p, size_t len,
                                  SegmentKind kind, Deleter owner) {
  // Segments hold 32-bit lengths; split longer ones. The owner goes on the
  // last piece: a later node outlives every earlier one.
  Segment* last = nullptr;
  while (len > 0) {
    if (tail_ == nullptr || tail_->nsegs == internal::kNodeSegments) {
      if (!NewNode()) return;  // `owner` releases as it goes out of scope.
    }
    size_t piece = std::min(len, kMaxPiece);
    last = new (&tail_->seg(tail_->nsegs++))
        Segment{p, static_cast<uint32_t>(piece), kind, Deleter()};
    tail_->bytes += piece;
    size_ += piece;
    p += piece;
    len -= piece;
  }
  if (last != nullptr) last->owner = std::move(owner);
}

void TxBufBuilder::RetireStage() {
  if (!stage_) return;
  if (stage_last_ != nullptr) {
    stage_last_->owner = ctx_.StagingDeleter(std::move(stage_));
  } else {
    stage_.reset();
  }
  stage_used_ = 0;
  stage_last_ = nullptr;
}

absl::Span<std::byte> TxBufBuilder::AppendBuffered(size_t n) {
  if (!status_.ok() || n == 0) return {};
  if (n > kPageSize) {
    Fail(absl::InvalidArgumentError("txbuf: AppendBuffered over a page"));
    return {};
  }
  if (!stage_ || kPageSize - stage_used_ < n) {
    RetireStage();
    stage_ = ctx_.AllocStagingPage();
    if (!stage_) {
      Fail(absl::ResourceExhaustedError("txbuf: page pool exhausted"));
      return {};
    }
  }
  std::byte* dst = stage_.data() + stage_used_;
  stage_used_ += n;
  bool extend = stage_last_ != nullptr && tail_ != nullptr &&
                tail_->nsegs > 0 &&
                stage_last_ == &tail_->seg(tail_->nsegs - 1) &&
                stage_last_->base + stage_last_->len == dst;
  if (extend) {
    stage_last_->len += static_cast<uint32_t>(n);
    tail_->bytes += n;
    size_ += n;
  } else {
    AddSegment(dst, n, SegmentKind::kBuffered, Deleter());
    if (!status_.ok()) return {};
    stage_last_ = &tail_->seg(tail_->nsegs - 1);
  }
  return {dst, n};
}

void TxBufBuilder::AppendBytes(absl::Span<const std::byte> bytes) {
  while (!bytes.empty() && status_.ok()) {
    size_t room = stage_ ? kPageSize - stage_used_ : 0;
    if (room == 0) room = kPageSize;
    size_t chunk = std::min(room, bytes.size());
    absl::Span<std::byte> dst = AppendBuffered(chunk);
    if (dst.empty()) return;
    std::memcpy(dst.data(), bytes.data(), chunk);
    bytes.remove_prefix(chunk);
  }
}

void TxBufBuilder::AppendSlab(SlabObject obj, size_t len) {
  if (!status_.ok()) return;
  len = std::min(len, obj.capacity());
  if (len < ctx_.options().stage_threshold) {
    AppendBytes(obj.data(), len);  // obj is freed when this returns.
    return;
  }
  const std::byte* p = obj.data();
  AddSegment(p, len, SegmentKind::kSlab, std::move(obj).ToDeleter());
}

void TxBufBuilder::AppendPage(PageRef page, size_t offset, size_t len) {
  if (!status_.ok() || !page) return;
  if (offset >= kPageSize) return;
  len = std::min(len, kPageSize - offset);
  if (len < ctx_.options().stage_threshold) {
    AppendBytes(page.data() + offset, len);
    return;
  }
  const std::byte* p = page.data() + offset;
  AddSegment(p, len, SegmentKind::kPage, std::move(page).ToTxDeleter(len));
}

void TxBufBuilder::AppendExternal(OwnedBytes bytes) {
  if (!status_.ok()) return;  // `bytes` are released as they go out of scope.
  if (bytes.size() < ctx_.options().stage_threshold) {
    AppendBytes(bytes.data(), bytes.size());
    return;  // `bytes` are released now: they were copied.
  }
  const std::byte* p = bytes.data();
  const size_t len = bytes.size();
  AddSegment(p, len, SegmentKind::kExternal, std::move(bytes).TakeOwner());
}

absl::StatusOr<TxBuf> TxBufBuilder::Finish(TxBufDestructor destructor) {
  RetireStage();
  void* mem = nullptr;
  if (status_.ok()) {
    mem = ctx_.control_cache_->Alloc();
    if (mem == nullptr) {
      Fail(absl::ResourceExhaustedError("txbuf: out of memory for a chain"));
    }
  }
  if (status_.ok() && head_ == nullptr) NewNode();  // an empty message.
  if (!status_.ok()) {
    if (mem != nullptr) ctx_.control_cache_->Free(mem);
    ReleaseAll();
    return status_;
  }
  auto* ctl = new (mem) ChainControl{};
  ctl->destructor = std::move(destructor);
  ctl->ctx = &ctx_;
  ctl->size = size_;
  ctl->submit_ns = 0;
  ctl->copied.store(false, std::memory_order_relaxed);
  for (ChainNode* n = head_; n != nullptr; n = n->next) n->ctl = ctl;
  ctx_.stats().AddPinned(size_);
  ctx_.stats().TxbufCreated();
  TxBuf t(head_, 0, size_);
  head_ = tail_ = nullptr;
  size_ = 0;
  return t;
}

void TxBufBuilder::ReleaseAll() {
  stage_.reset();
  stage_last_ = nullptr;
  stage_used_ = 0;
  for (ChainNode* n = head_; n != nullptr;) {
    ChainNode* next = n->next;
    n->DestroySegments();
    n->~ChainNode();
    ctx_.node_cache_->Free(n);
    n = next;
  }
  head_ = tail_ = nullptr;
  size_ = 0;
}

}  // namespace txbuf
