// txbuf.h: one compound message as a chain of segments with one destructor.
//
// A txbuf is what the server hands to the socket: an ordered chain of
// segments (slab objects, bytes staged into pages the txbuf owns, page-cache
// pages, callers' buffers), each with an owner that knows how to release it,
// plus one completion destructor that runs exactly once, after the kernel is
// done with every byte. It follows the `struct net_txbuf` of the netdev
// thread in shared/reference/: segments live in chain nodes of up to
// `kNodeSegments`; each node pins its successor; a `TxBuf` handle pins the
// node where its view starts. So
//   - Clone() takes one more reference on the chain, not on the pages;
//   - Slice() / Advance() move a view forward and pin only from the node
//     holding its first byte to the end, so memory before it comes back as
//     soon as nothing else needs it (progressive destruction);
//   - the destructor runs when the last node is released, after every
//     segment owner has run.
//
// Segments shorter than `TxBufOptions::stage_threshold` are copied into a
// staging page owned by the txbuf ("buffered") and their owner is released at
// once; longer ones are referenced.
//
// Thread-safety: a chain is built, sent and released on one thread (the
// event loop that owns the `TxBufContext`); handles are move-only and the
// reference counts are atomic so a handle may be dropped on another thread
// only if the context's slab caches permit it (they do not in debug builds).
//
// Example:
//   txbuf::TxBufBuilder b(ctx);
//   b.AppendBytes(header_bytes);                    // staged
//   b.AppendSlab(std::move(attr_obj), attr_len);    // staged or referenced
//   for (auto& p : pages) b.AppendPage(p, 0, txbuf::kPageSize);
//   absl::StatusOr<txbuf::TxBuf> tx =
//       b.Finish([](const txbuf::TxBufCompletion& c) { /* memory is back */ });
//   socket.Send(*std::move(tx));
#ifndef TXBUF_COMMON_TXBUF_H_
#define TXBUF_COMMON_TXBUF_H_

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/deleter.h"
#include "common/memory_stats.h"
#include "common/owned_bytes.h"
#include "common/page_pool.h"
#include "common/slab.h"

namespace txbuf {

enum class SegmentKind : uint8_t {
  kSlab = 0,      // a slab object, referenced; freed by the destructor.
  kBuffered = 1,  // bytes copied into a staging page owned by the txbuf.
  kPage = 2,      // a page-cache page, referenced (pinned).
  kExternal = 3,  // a caller's buffer with its own releaser.
};

struct TxBufOptions {
  // Segments shorter than this many bytes are staged (copied); others are
  // referenced. 0 references everything (except AppendBytes, always staged).
  size_t stage_threshold = 1024;
};

// What the completion destructor is told.
struct TxBufCompletion {
  uint64_t bytes = 0;       // the message size.
  bool submitted = false;   // handed to an engine at least once.
  uint64_t latency_ns = 0;  // submit to destructor (0 if never submitted).
  bool copied = false;      // the kernel (or the copy engine) copied bytes.
  absl::Status status;      // OK, or why the send was cut short.
};

using TxBufDestructor = absl::AnyInvocable<void(const TxBufCompletion&) &&>;

// The per-thread things every txbuf is made from: the slab caches of its
// nodes, the page pool of its staging pages, and the accounting.
class TxBufContext {
 public:
  TxBufContext(SlabAllocator& slabs, PagePool& pages, MemoryStats& stats,
               TxBufOptions options = {});
  ~TxBufContext();
  TxBufContext(const TxBufContext&) = delete;
  TxBufContext& operator=(const TxBufContext&) = delete;

  SlabAllocator& slabs() const { return slabs_; }
  PagePool& pages() const { return pages_; }
  MemoryStats& stats() const { return stats_; }
  const TxBufOptions& options() const { return options_; }
  void set_options(const TxBufOptions& o) { options_ = o; }

  // Staging pages kept for reuse (not pinned by any txbuf), and giving them
  // back to the pool.
  size_t cached_pages() const { return staging_free_.size(); }
  void ReleaseCachedPages();

 private:
  friend class TxBufBuilder;
  friend class TxBuf;
  // Staging pages are recycled on this thread (a small free list) instead of
  // going back to the shared pool's mutex for every reply.
  PageRef AllocStagingPage();
  Deleter StagingDeleter(PageRef page);
  // What a staging segment's Deleter holds (txbuf.cc).
  class StagingPage;
  // Keeps `page` for reuse if it is the last reference and the list has
  // room; drops it otherwise.
  void RecycleStaging(PageRef page);
  static constexpr size_t kStagingKeep = 64;

  SlabAllocator& slabs_;
  PagePool& pages_;
  MemoryStats& stats_;
  TxBufOptions options_;
  SlabCache* node_cache_;
  SlabCache* control_cache_;
  std::vector<PageRef> staging_free_;
};

namespace internal {

inline constexpr int kNodeSegments = 16;

struct Segment {
  const std::byte* base;
  uint32_t len;
  SegmentKind kind;
  Deleter owner;  // may be empty: bytes owned by a later segment's owner.
};

struct ChainControl {
  TxBufDestructor destructor;
  TxBufContext* ctx;
  uint64_t size;
  int64_t submit_ns;  // 0: never submitted.
  std::atomic<bool> copied;
  absl::Status status;
};

struct ChainNode {
  std::atomic<uint32_t> refs;
  uint16_t nsegs;
  ChainNode* next;  // pinned by this node.
  ChainControl* ctl;
  uint64_t start;  // message offset of this node's first byte.
  uint64_t bytes;
  // Segments [0, nsegs) are constructed; the rest is raw storage, so a new
  // node costs no zeroing.
  alignas(Segment) unsigned char storage[sizeof(Segment) * kNodeSegments];

  Segment& seg(int i) { return reinterpret_cast<Segment*>(storage)[i]; }
  const Segment& seg(int i) const {
    return reinterpret_cast<const Segment*>(storage)[i];
  }
  // Runs every segment's owner.
  void DestroySegments() {
    for (int i = 0; i < nsegs; ++i) seg(i).~Segment();
    nsegs = 0;
  }
};

class TxBufEngineAccess;

}  // namespace internal

// A move-only handle on a byte range (view) of a txbuf's message. Dropping
// the last handle (and every engine's hold) runs the destructor.
class TxBuf {
 public:
  TxBuf() = default;
  TxBuf(const TxBuf&) = delete;
  TxBuf& operator=(const TxBuf&) = delete;
  TxBuf(TxBuf&& o) noexcept
      : node_(std::exchange(o.node_, nullptr)),
        begin_(o.begin_),
        end_(o.end_) {}
  TxBuf& operator=(TxBuf&& o) noexcept;
  ~TxBuf() { reset(); }

  // Drops this handle's reference.
  void reset();

  // Bytes in this view.
  size_t size() const { return static_cast<size_t>(end_ - begin_); }
  bool empty() const { return end_ == begin_; }
  // The whole message's size.
  uint64_t message_size() const;
  // Message offset of this view's first byte.
  uint64_t offset() const { return begin_; }

  // One more reference on the chain (no page references taken).
  //
  // Example:
  //   txbuf::TxBuf copy = tx.Clone();  // tx and copy view the same bytes
  TxBuf Clone() const;

  // A view of [offset, offset + len) of this view. It pins the nodes from the
  // one holding its first byte to the end of the chain, nothing before it.
  // An empty slice pins nothing.
  //
  // Example:
  //   txbuf::TxBuf tail = tx.Slice(4096, tx.size() - 4096);
  TxBuf Slice(size_t offset, size_t len) const;

  // Drops the first `n` bytes of this view, releasing nodes nothing else
  // holds (so memory of sent parts comes back early).
  void Advance(size_t n);

  // Fills `out` with iovecs for this view's bytes from `offset` on. Returns
  // the number of iovecs written; `*bytes` (if not null) gets their total.
  //
  // Example (continue a partial send):
  //   iovec iov[64];
  //   size_t n = tx.FillIovecs(sent, iov, &len);
  //   ssize_t r = sendmsg(fd, &(msghdr){.msg_iov = iov, .msg_iovlen = n}, 0);
  size_t FillIovecs(size_t offset, absl::Span<iovec> out,
                    size_t* bytes = nullptr) const;

  // Number of segments (iovecs) in this view.
  size_t SegmentCount() const;

  // Calls fn(const std::byte* p, size_t len, SegmentKind kind) for each
  // segment piece of this view, in order.
  template <typename Fn>
  void ForEachSegment(Fn&& fn) const;

  // Copies this view's bytes into `out` (out.size() >= size()); for tests.
  void CopyTo(absl::Span<std::byte> out) const;

  explicit operator bool() const { return node_ != nullptr; }

 private:
  friend class TxBufBuilder;
  friend class internal::TxBufEngineAccess;
  TxBuf(internal::ChainNode* node, uint64_t begin, uint64_t end)
      : node_(node), begin_(begin), end_(end) {}

  static internal::ChainNode* NodeAt(internal::ChainNode* from, uint64_t off);
  static void Unref(internal::ChainNode* node);
  static void Complete(internal::ChainControl* ctl);

  // Holds one reference. Null for an empty slice (which pins nothing); an
  // empty message has one node with no segments.
  internal::ChainNode* node_ = nullptr;
  uint64_t begin_ = 0;
  uint64_t end_ = 0;
};

// Builds one txbuf. Appends are sticky on failure: after an allocation fails
// every append is ignored and Finish() returns the error, having released
// everything appended.
class TxBufBuilder {
 public:
  explicit TxBufBuilder(TxBufContext& ctx);
  ~TxBufBuilder();
  TxBufBuilder(const TxBufBuilder&) = delete;
  TxBufBuilder& operator=(const TxBufBuilder&) = delete;

  // Copies `bytes` into staging pages (the buffered kind).
  void AppendBytes(absl::Span<const std::byte> bytes);
  void AppendBytes(const void* p, size_t n) {
    AppendBytes({static_cast<const std::byte*>(p), n});
  }

  // Reserves `n` (<= kPageSize) contiguous staged bytes and returns them for
  // the caller to fill (e.g. serialize a protobuf in place). Empty on error.
  absl::Span<std::byte> AppendBuffered(size_t n);

  // The first `len` bytes of a slab object: staged below the threshold (the
  // object is freed at once), referenced otherwise.
  void AppendSlab(SlabObject obj, size_t len);

  // [offset, offset + len) of a page: referenced (pinned) unless shorter than
  // the threshold.
  void AppendPage(PageRef page, size_t offset, size_t len);

  // A caller's buffer; its owner is released when the kernel is done with
  // it (or at once if the bytes are staged).
  void AppendExternal(OwnedBytes bytes);
  // The same, for `len` bytes at `p` owned by `release`.
  void AppendExternal(const void* p, size_t len, Deleter release) {
    AppendExternal(OwnedBytes({static_cast<const std::byte*>(p), len},
                              std::move(release)));
  }

  // Bytes appended so far.
  uint64_t size() const { return size_; }
  bool ok() const { return status_.ok(); }

  // Ends the chain. `destructor` runs exactly once, after every segment has
  // been released.
  absl::StatusOr<TxBuf> Finish(TxBufDestructor destructor = nullptr);

 private:
  void AddSegment(const std::byte* p, size_t len, SegmentKind kind,
                  Deleter owner) {
    if (len - 1 < kMaxPiece && tail_ != nullptr &&
        tail_->nsegs < internal::kNodeSegments) {
      // The common case: fits the current node in one piece.
      new (&tail_->seg(tail_->nsegs++)) internal::Segment{
          p, static_cast<uint32_t>(len), kind, std::move(owner)};
      tail_->bytes += len;
      size_ += len;
      return;
    }
    AddSegmentSlow(p, len, kind, std::move(owner));
  }
  void AddSegmentSlow(const std::byte* p, size_t len, SegmentKind kind,
                      Deleter owner);
  static constexpr size_t kMaxPiece = size_t{1} << 30;
  bool NewNode();
  void RetireStage();
  void Fail(absl::Status s);
  void ReleaseAll();

  TxBufContext& ctx_;
  absl::Status status_;
  internal::ChainNode* head_ = nullptr;
  internal::ChainNode* tail_ = nullptr;
  uint64_t size_ = 0;
  PageRef stage_;
  size_t stage_used_ = 0;
  internal::Segment* stage_last_ = nullptr;  // last segment in stage_.
};

// ---------------------------------------------------------------------------

template <typename Fn>
void TxBuf::ForEachSegment(Fn&& fn) const {
  for (internal::ChainNode* n = node_; n != nullptr; n = n->next) {
    uint64_t pos = n->start;
    if (pos >= end_) break;
    for (int i = 0; i < n->nsegs; ++i) {
      const internal::Segment& s = n->seg(i);
      uint64_t seg_end = pos + s.len;
      if (seg_end > begin_ && pos < end_) {
        uint64_t from = pos < begin_ ? begin_ - pos : 0;
        uint64_t to = seg_end > end_ ? end_ - pos : s.len;
        fn(s.base + from, static_cast<size_t>(to - from), s.kind);
      }
      pos = seg_end;
      if (pos >= end_) return;
    }
  }
}

}  // namespace txbuf

#endif  // TXBUF_COMMON_TXBUF_H_
