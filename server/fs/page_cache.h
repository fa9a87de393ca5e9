// server/fs/page_cache.h: txbufd's page cache of file data, with stable pages.
//
// File data live in 4 KiB `PageRef`s from a `PagePool`. A READ reply takes
// references on cached pages (no copy) and puts them into its txbuf; they stay
// pinned (use_count() > 1) until the txbuf's destructor runs. A write that
// lands on a pinned page copies it first (copy-on-write) and modifies the
// copy, which replaces it in the cache; the old version lives until its last
// reference drops. So bytes already handed to the kernel never change, and
// every Read() is a consistent snapshot: the bytes of its whole range as they
// were at one instant between the writes of that file (never part of one
// write and part of another). See docs/PAGE_CACHE.md.
//
// Writes follow NFS stability: kUnstable leaves dirty pages in the cache
// until Commit() (or eviction, or the dirty page limit) writes them back;
// kDataSync / kFileSync write the range through (pwrite + fdatasync / fsync)
// before returning. At most max_dirty_pages are dirty at a time. When the
// pool is exhausted or the cache holds `max_pages`, clean unpinned pages are
// evicted in LRU order (dirty ones are written back first when no clean one
// is left). If nothing can be evicted the operation fails with
// ResourceExhausted and changes nothing.
//
// Coherence with the disk. Other processes may change a cached file. Each
// File remembers the file's size, mtime and ctime as of its own last change
// or check (its "stamp"). `File::Revalidate(st)` compares a fresh stat with
// it, and Read, Write and Truncate do so themselves (one fstat) when the
// last check is older than PageCacheOptions::revalidate_interval. A file
// changed behind the cache loses its clean pages and takes the disk's size;
// its dirty pages (acknowledged writes) stay. A file found unlinked fails
// with ESTALE. See docs/PAGE_CACHE.md, "Coherence with the disk".
//
// Background write-back. `PageCache::WriteBackDue()` writes back the files
// whose dirty pages are older than an age, and more while dirty pages
// exceed half the dirty limit; a server calls it from a timer thread.
//
// Write-behind (PageCacheOptions::write_behind_pages). An unstable write
// that completes a run of that many whole pages (one large WRITE, or a
// sequential stream of smaller ones) queues the run, and
// `PageCache::WriteBehind()` writes it back soon after, from the server's
// write-back thread: while its bytes are still in the CPU's caches, rather
// than when the dirty limit forces the oldest (cold) pages out in the
// middle of a later WRITE. The pages stay cached, clean.
//
// Write-around (PageCacheOptions::write_around_bytes). A large unstable
// write of whole pages goes to the file at once, from the caller's buffer,
// and the range's cached pages leave the cache: its bytes are copied once
// (into the kernel), not into the cache first and into the kernel later.
//
// Thread-safety: thread-safe. Each file has its own lock (for its page map
// and size); one cache-wide lock guards the LRU list. Lock order:
// PageCache files-map lock -> File lock -> LRU lock -> PagePool's lock; no
// thread ever waits for a File lock while it holds another File lock or the
// LRU lock. Page references may be dropped on any thread without any lock.
// File I/O (pread of misses, pwrite of write-backs) runs under the file's
// lock and blocks the calling thread. With IoMode::kNoBlock (for event loops)
// an operation never does file I/O, sleeps or waits for a File lock: it
// returns WouldBlockError() before changing anything, to be repeated with
// kMayBlock on a worker thread.
//
// A Write or Truncate past the file system's largest file fails with
// FileTooLargeError (FBIG) before anything is cached. Dirty pages whose
// write-back fails are dropped (never served, never left unevictable), the
// size is corrected, and the error is reported by the file's next Commit.
//
// Example:
//   txbuf::PagePool pool(256 << 20);
//   txbuf::PageCache cache(pool);
//   absl::StatusOr<std::shared_ptr<txbuf::PageCache::File>> file =
//       cache.GetFile({st.st_dev, st.st_ino}, [&]() -> absl::StatusOr<int> {
//         int fd = ::openat(dirfd, name, O_RDWR | O_CLOEXEC);
//         if (fd < 0) return txbuf::ErrnoStatus(errno, "openat");
//         return fd;
//       });
//   absl::StatusOr<txbuf::CachedRead> r =
//       (*file)->Read(0, 1 << 20, txbuf::IoMode::kNoBlock);  // event loop
//   if (txbuf::IsWouldBlock(r.status())) r = (*file)->Read(0, 1 << 20);
//   for (txbuf::PageSlice& s : r->slices)
//     builder.AppendPage(std::move(s.page), s.offset, s.len);  // pinned
//   (*file)->Write(4096, bytes, txbuf::Stability::kUnstable);  // COW if pinned
//   (*file)->Commit();
#ifndef TXBUF_SERVER_FS_PAGE_CACHE_H_
#define TXBUF_SERVER_FS_PAGE_CACHE_H_

#include <sys/stat.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/counter_set.h"
#include "common/page_pool.h"
#include "common/socket_util.h"

namespace txbuf {

// How durable a write must be when Write() returns (as NFS's stable_how).
enum class Stability {
  kUnstable,  // in the cache only; durable after Commit().
  kDataSync,  // written through, then fdatasync.
  kFileSync,  // written through, then fsync.
};

// Whether an operation may wait for file I/O.
//
// Example:
//   // On an event loop: never wait; hand the op to a worker if needed.
//   absl::StatusOr<txbuf::CachedRead> r =
//       file->Read(off, len, txbuf::IoMode::kNoBlock);
//   if (txbuf::IsWouldBlock(r.status())) return RunOnWorker(op);
enum class IoMode {
  kMayBlock,  // may pread/pwrite/fsync and wait for pages (worker threads).
  kNoBlock,   // must not: returns WouldBlockError() instead (event loops).
};

// Returned in IoMode::kNoBlock when the operation would need file I/O or a
// wait: nothing was changed; repeat it with kMayBlock off the event loop.
// (Code Unavailable with a payload of its own, so IsWouldBlock() never
// mistakes another Unavailable status for it.)
//
// Example:
//   if (!cached) return txbuf::WouldBlockError();
absl::Status WouldBlockError();

// True for a WouldBlockError().
//
// Example:
//   absl::Status s = file->Write(off, data, how, txbuf::IoMode::kNoBlock);
//   if (txbuf::IsWouldBlock(s)) return RunOnWorker(op);
bool IsWouldBlock(const absl::Status& s);

// Returned by File::Read, Write, Truncate and Commit once the cache has
// dropped the
// File (PageCache::ReleaseIfClean) while the caller still held it: nothing
// was done; get the file from the cache again and repeat.
//
// Example:
//   absl::StatusOr<txbuf::CachedRead> r = file->Read(off, len);
//   if (txbuf::IsFileReleased(r.status())) file = ReopenFromCache();
absl::Status FileReleasedError();
bool IsFileReleased(const absl::Status& s);

// The status of a write or truncate that would end past the largest file
// the file's file system allows (File::max_file_size()): OutOfRange, with
// errno EFBIG (ErrnoOf), so the server answers FBIG. Nothing was changed.
//
// Example:
//   if (end > file->max_file_size())
//     return txbuf::FileTooLargeError(end, file->max_file_size());
absl::Status FileTooLargeError(uint64_t end, uint64_t max_size);

// True for a FileTooLargeError (or any status carrying errno EFBIG).
//
// Example:
//   if (txbuf::IsFileTooLarge(s)) return rpc::STATUS_FBIG;
bool IsFileTooLarge(const absl::Status& s);

// Identifies a file: its device and inode numbers.
struct FileKey {
  uint64_t dev = 0;
  uint64_t ino = 0;

  friend bool operator==(const FileKey& a, const FileKey& b) {
    return a.dev == b.dev && a.ino == b.ino;
  }
  template <typename H>
  friend H AbslHashValue(H h, const FileKey& k) {
    return H::combine(std::move(h), k.dev, k.ino);
  }
};

// Bytes [offset, offset + len) of a cached page. `page` pins it: the bytes do
// not change while any reference is held.
struct PageSlice {
  PageRef page;
  uint32_t offset = 0;
  uint32_t len = 0;

  // The bytes of the slice.
  //
  // Example:
  //   for (const txbuf::PageSlice& s : read.slices) Hash(s.bytes());
  absl::Span<const std::byte> bytes() const {
    return {page.data() + offset, len};
  }
};

// The result of PageCache::File::Read: the range's bytes as pinned slices in
// file order (one per page touched), their total, and whether the range
// reached the end of the file.
struct CachedRead {
  // Inline up to 4 (a 4 KiB READ has 1 or 2): no allocation per small READ.
  absl::InlinedVector<PageSlice, 4> slices;
  uint64_t bytes = 0;
  bool eof = false;

  // Copies the first min(bytes, out.size()) bytes into `out`; returns how
  // many were copied.
  //
  // Example:
  //   std::vector<std::byte> buf(read.bytes);
  //   read.CopyTo(absl::MakeSpan(buf));
  size_t CopyTo(absl::Span<std::byte> out) const;
};

// The cache's counters: `C` is std::atomic<uint64_t> live (in the PageCache)
// and uint64_t in a snapshot (PageCacheStats); see counter_set.h.
template <typename C>
struct PageCacheCountersOf {
  C pages{};                   // pages in the cache (in some file's page map).
  C dirty_pages{};             // ... of which not written back yet.
  C cow_copies{};              // pinned pages copied before a change.
  C hits{};                    // Read() pages found in the cache.
  C misses{};                  // Read() pages filled from the file.
  C evictions{};               // pages dropped to make room.
  C writebacks_bytes{};        // bytes written to files (pwrite).
  C writeback_failed_pages{};  // dirty pages dropped unwritten after a
                               // write-back error.
  C invalidations{};           // files found changed on disk by another
                               // process (their clean pages dropped).
  C background_writebacks{};   // files written back by WriteBackDue() (age
                               // or pressure).
  C write_behind_pages{};      // pages written back by WriteBehind().
  C write_around_pages{};      // pages written straight to the file by
                               // large unstable writes (write-around).

  // Calls f(name, sets.counter...) for each counter; `name` as in
  // rpc::PageCacheStats.
  template <typename F, typename... Sets>
  static void ForEach(F&& f, Sets&... sets) {
    f("pages", sets.pages...);
    f("dirty_pages", sets.dirty_pages...);
    f("cow_copies", sets.cow_copies...);
    f("hits", sets.hits...);
    f("misses", sets.misses...);
    f("evictions", sets.evictions...);
    f("writeback_bytes", sets.writebacks_bytes...);
    f("writeback_failed_pages", sets.writeback_failed_pages...);
    f("invalidations", sets.invalidations...);
    f("background_writebacks", sets.background_writebacks...);
    f("write_behind_pages", sets.write_behind_pages...);
    f("write_around_pages", sets.write_around_pages...);
  }
};

// A snapshot of the cache's counters, and what is counted when asked.
struct PageCacheStats : PageCacheCountersOf<uint64_t> {
  // Cached pages referenced outside the cache (of every cache on this
  // cache's pool: one per server).
  uint64_t pinned_pages = 0;
  uint64_t files = 0;  // files in the cache.
};

struct PageCacheOptions {
  // At most this many pages in the cache; 0 means the pool's capacity. Pages
  // that were dropped from the cache but are still pinned by txbufs (old
  // versions, truncated or forgotten files) do not count.
  size_t max_pages = 0;
  // At most this many dirty pages (unstable writes not written back yet) in
  // the cache; 0 means a quarter of max_pages, but at least 256 pages
  // (1 MiB) or max_pages if that is smaller. An unstable Write that would
  // go past it first writes back dirty pages (its own file's dirty the
  // longest first, then other files' in LRU order); a Write that alone needs
  // more is written through (as kDataSync without the sync).
  size_t max_dirty_pages = 0;
  // How long a File trusts its cached pages without looking at its file on
  // disk: a Read, Write or Truncate of a file last checked longer ago
  // fstat()s it first (see "Coherence with the disk" above). Zero checks at
  // every operation; InfiniteDuration (the default) never, unless asked
  // (File::Revalidate).
  absl::Duration revalidate_interval = absl::InfiniteDuration();
  // Write-behind: an unstable write that completes a run of at least this
  // many whole pages of one file (written in one write, or by writes each
  // starting where the last one ended) queues them for WriteBehind(). 0
  // turns it off (pages wait for Commit, the dirty limit or WriteBackDue).
  size_t write_behind_pages = 0;
  // Write-around: an unstable write of at least this many bytes that covers
  // whole pages (it starts on a page boundary and ends on one, or at or past
  // the end of the file) is written to the file at once from the caller's
  // buffer (one pwrite, as a server without a cache would), and the cached
  // pages of its range are dropped: its bytes are not copied into the
  // cache and written back later. 0 turns it off.
  size_t write_around_bytes = 0;
};

class PageCache {
 public:
  class File;

  // A cache whose pages come from `pool`, which must outlive it.
  //
  // Example:
  //   txbuf::PageCache cache(pool, {.max_pages = 16384});  // at most 64 MiB
  explicit PageCache(PagePool& pool, PageCacheOptions options = {});

  // Drops every cached page (dirty ones are NOT written back: call SyncAll()
  // first). Aborts if a File is still referenced outside the cache. Pages
  // still pinned by txbufs go back to the pool when they are released.
  ~PageCache();
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  // The cache entry of file `key`. If it is not cached yet, calls `open_fd`,
  // which returns a file descriptor of the regular file opened O_RDWR or
  // O_RDONLY (an O_RDONLY file refuses writes); the File then owns and
  // closes it. If two threads race, one fd is closed and both get the same
  // File. Errors of `open_fd` are returned as they are. In IoMode::kNoBlock
  // a file not cached yet gives WouldBlockError() (opening can block) and
  // `open_fd` is not called.
  //
  // Example:
  //   auto file = cache.GetFile(key, [&]() -> absl::StatusOr<int> {
  //     int fd = ::open(path, O_RDWR | O_CLOEXEC);
  //     if (fd < 0) return txbuf::ErrnoStatus(errno, "open");
  //     return fd;
  //   });
  //   if (!file.ok()) return file.status();
  absl::StatusOr<std::shared_ptr<File>> GetFile(
      FileKey key, absl::FunctionRef<absl::StatusOr<int>()> open_fd,
      IoMode mode = IoMode::kMayBlock) ABSL_LOCKS_EXCLUDED(files_mu_);

  // The file was removed (or replaced by a rename): drops it from the cache,
  // with its dirty pages. Holders of the File may still use it; its pages go
  // when the last holder does, and pages pinned by txbufs live on until
  // released. A later GetFile(key) opens the file again.
  //
  // Example:
  //   if (unlinkat(dirfd, name, 0) == 0) cache.Forget(key);
  void Forget(FileKey key) ABSL_LOCKS_EXCLUDED(files_mu_);

  // What ReleaseIfClean() did.
  enum class Release {
    kReleased,  // dropped (or not, or no longer, the File cached)
    kDirty,     // kept: dirty pages or a write-back error to report first
    kBusy,      // kept: another thread holds the file's lock right now
  };
  // Drops `file` from the cache if it is still the File cached for its key
  // and has no dirty pages, so that its descriptor closes once the last
  // holder lets go (a bound on open files); its clean pages go with it.
  // A newer File cached for the same key is never touched: two threads that
  // each saw the old File must not drop each other's new one. Never waits
  // for the file's lock (it may be held across I/O): kBusy instead. A
  // holder's later Read, Write, Truncate or Commit of the dropped File fails
  // with FileReleasedError() (it would otherwise write into a File nobody
  // writes back).
  //
  // Example:
  //   if (cache.ReleaseIfClean(*node.file) == PageCache::Release::kReleased) {
  //     node.file.reset();
  //   }
  //
  // With IoMode::kMayBlock it waits for the file's lock instead (never
  // kBusy; for a caller that must drop the file, e.g. to reopen it for
  // writing, while readers keep taking the lock). The cache-wide locks are
  // not held while it waits.
  Release ReleaseIfClean(File& file, IoMode mode = IoMode::kNoBlock)
      ABSL_LOCKS_EXCLUDED(files_mu_);

  // Dirty pages dropped because they could not be written back, since the
  // start. A server folds it into its write verifier, so that clients
  // resend what they wrote but did not commit (as NFS after a restart).
  uint64_t lost_pages() const {
    return counters_.writeback_failed_pages.load(std::memory_order_relaxed);
  }

  // Files open (File objects alive, each holding a descriptor), whether in
  // the cache or only held by callers after Forget / ReleaseIfClean.
  size_t open_files() const { return live_files_.load(); }

  // Commits every cached file: writes back every dirty page and fsyncs (for
  // server shutdown). Returns the first error, after trying every file.
  //
  // Example:
  //   absl::Status s = cache.SyncAll();
  absl::Status SyncAll() ABSL_LOCKS_EXCLUDED(files_mu_);

  // The counters. Safe from any thread; O(1) (pinned pages are counted as
  // references come and go: PagePool::cached_pinned_pages()).
  //
  // Example:
  //   txbuf::PageCacheStats st = cache.Stats();
  //   printf("%llu of %llu pages pinned\n", st.pinned_pages, st.pages);
  PageCacheStats Stats() const ABSL_LOCKS_EXCLUDED(files_mu_);

  // Background write-back, for a timer thread: writes back every file
  // whose oldest dirty page (since it was last clean) is at least
  // `max_age` old, then, while more than half of max_dirty_pages() are
  // dirty, the files dirty the longest. Errors are kept for each file's
  // next Commit (as eviction's are), and the first is also stored in
  // `*first_error` if given (for the log). Blocks (file I/O); call without
  // locks. Returns how many files it wrote back (or tried to).
  //
  // Example:
  //   while (!stop.WaitForNotificationWithTimeout(absl::Seconds(5))) {
  //     absl::Status error;
  //     cache.WriteBackDue(absl::Seconds(30), &error);
  //     if (!error.ok()) Log(error);
  //   }
  size_t WriteBackDue(absl::Duration max_age,
                      absl::Status* first_error = nullptr)
      ABSL_LOCKS_EXCLUDED(files_mu_);

  // Write-behind, for the server's write-back thread: waits until a file
  // has pages queued for write-behind (see PageCacheOptions::
  // write_behind_pages), `timeout` passes or WakeWriteBehind() is called.
  // True if pages are queued.
  //
  // Example:
  //   while (!stop) {
  //     if (cache.WaitForWriteBehind(absl::Seconds(5))) cache.WriteBehind();
  //   }
  bool WaitForWriteBehind(absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(behind_mu_);
  // Wakes a thread in WaitForWriteBehind() (e.g. to stop it).
  //
  // Example:
  //   stop = true;
  //   cache.WakeWriteBehind();
  void WakeWriteBehind() ABSL_LOCKS_EXCLUDED(behind_mu_);
  // Writes back the pages queued for write-behind that are still dirty, a
  // file's run a few hundred KiB at a time (its lock is released between
  // them, so its writers are not held up for the whole run). Errors are
  // kept for each file's next Commit (as WriteBackDue's are) and the first
  // is also stored in `*first_error` if given. Blocks (file I/O); call
  // without locks. Returns how many pages it wrote back.
  //
  // Example:
  //   absl::Status error;
  //   cache.WriteBehind(&error);
  size_t WriteBehind(absl::Status* first_error = nullptr)
      ABSL_LOCKS_EXCLUDED(files_mu_, behind_mu_);

  // The revalidation interval in effect, and a new one (from any thread;
  // it applies to each file's next check).
  absl::Duration revalidate_interval() const {
    const int64_t ns = revalidate_ns_.load(std::memory_order_relaxed);
    return ns < 0 ? absl::InfiniteDuration() : absl::Nanoseconds(ns);
  }
  void set_revalidate_interval(absl::Duration d);

  // The page limit in effect (options.max_pages or the pool's capacity).
  size_t max_pages() const { return max_pages_; }

  // The dirty page limit in effect (options.max_dirty_pages or its
  // default).
  //
  // Example:
  //   printf("%zu of %zu pages may be dirty\n", cache.max_dirty_pages(),
  //          cache.max_pages());
  size_t max_dirty_pages() const { return max_dirty_pages_; }

 private:
  struct Entry;
  // A link of the LRU list (the list's head is a bare link).
  struct LruLink {
    LruLink* prev = this;
    LruLink* next = this;
  };
  // A link of a File's dirty list (its head is a bare link in the File).
  struct DirtyLink {
    DirtyLink* prev = this;
    DirtyLink* next = this;
  };
  // An eviction candidate, chosen under the LRU lock.
  struct Candidate;

  // A new page charged to the cache, without evicting; empty if the pool is
  // exhausted or the cache holds max_pages.
  PageRef TryAllocate();
  // Tops `spare` up to `n` pages without evicting; true if it has them.
  bool TopUp(std::vector<PageRef>& spare, size_t n);
  // Tops `spare` up to `n` pages, evicting as needed. The caller holds no
  // File lock. ResourceExhausted if nothing more can be evicted. In
  // IoMode::kNoBlock it evicts clean pages only, skips files whose lock is
  // busy and never waits: WouldBlockError() where it would.
  absl::Status Reserve(size_t n, std::vector<PageRef>& spare, IoMode mode)
      ABSL_LOCKS_EXCLUDED(lru_mu_);
  // Gives unused spare pages back (uncharged, to the pool).
  void ReturnSpare(std::vector<PageRef>& spare);
  // One try of an operation that takes new pages from its spare pages under
  // its file's lock: done (with its status), or short of `need` pages.
  struct SpareAttempt {
    static SpareAttempt Done(absl::Status s = absl::OkStatus()) {
      return {true, 0, std::move(s)};
    }
    static SpareAttempt Short(size_t need) { return {false, need, {}}; }
    bool done;
    size_t need;
    absl::Status status;
  };
  // Runs `attempt(spare)` until it is done; after a short try, reserves the
  // pages it needs (Reserve, in `mode`, holding no File lock) and tries
  // again, at most kMaxAttempts times (then ResourceExhausted: "page cache:
  // <lost> to other threads too often"). The spare pages left over go back
  // at the end (ReturnSpare); the status is the last try's.
  // `attempt`: SpareAttempt(std::vector<PageRef>& spare). A template (defined
  // in page_cache.cc, its only user) so a cached READ pays no indirect call.
  template <typename Attempt>
  absl::Status WithSparePages(IoMode mode, absl::string_view lost,
                              Attempt&& attempt);
  // Counts `n` more dirty pages against max_dirty_pages if they fit (the
  // caller gives them back with counters_.dirty_pages.fetch_sub(n) once its own
  // pages are counted); false if they do not.
  bool ChargeDirty(size_t n);
  // Writes back dirty pages until `want` fewer are dirty or none is left to
  // write: `own`'s dirty the longest first, then other files' in LRU
  // order. Failed pages are dropped with their file's error kept
  // (File::DiscardFailedLocked); a failure of `own`'s goes to `*own_error`
  // too. The caller holds no File lock. Returns how many pages stopped
  // being dirty.
  size_t CleanSome(size_t want, File* own, absl::Status* own_error)
      ABSL_LOCKS_EXCLUDED(lru_mu_);
  // Evicts up to `want` unpinned pages in LRU order, clean ones first; when
  // none is clean, writes back a batch of dirty ones first. Returns how many
  // were evicted; `*found` tells whether there were candidates at all (they
  // may change before their file lock is taken); a write-back error goes to
  // `*error`. In IoMode::kNoBlock clean pages only, and a file whose lock
  // is busy is skipped.
  size_t EvictSome(size_t want, bool* found, absl::Status* error, IoMode mode)
      ABSL_LOCKS_EXCLUDED(lru_mu_);

  // Under the LRU lock: unlinks `gone`, and moves `used` (linked or not) to
  // the most recently used end.
  void UpdateLru(absl::Span<Entry* const> gone, absl::Span<Entry* const> used)
      ABSL_LOCKS_EXCLUDED(lru_mu_);
  // Accounts for entries removed from their map and the LRU list, and
  // destroys them (dropping the cache's page references).
  void Retire(std::vector<std::unique_ptr<Entry>>& gone);

  PagePool& pool_;
  const size_t max_pages_;
  const size_t max_dirty_pages_;
  // revalidate_interval in ns; -1: never.
  std::atomic<int64_t> revalidate_ns_;

  mutable absl::Mutex files_mu_;
  absl::flat_hash_map<FileKey, std::shared_ptr<File>> files_
      ABSL_GUARDED_BY(files_mu_);
  // The largest file size last found per file system (st_dev): a hint that
  // saves the search at the next open.
  absl::Mutex max_size_mu_;
  absl::flat_hash_map<dev_t, uint64_t> max_size_by_dev_
      ABSL_GUARDED_BY(max_size_mu_);
  std::atomic<uint64_t> live_files_{0};

  // Least recently used first (lru_.next), most recently used last.
  mutable absl::Mutex lru_mu_ ABSL_ACQUIRED_AFTER(files_mu_);
  LruLink lru_ ABSL_GUARDED_BY(lru_mu_);
  std::atomic<uint64_t> lru_clock_{1};  // counts moves to the recent end

  std::atomic<uint64_t> charged_{0};  // pages in maps + spare pages of ops.
  PageCacheCountersOf<std::atomic<uint64_t>> counters_;

  // Write-behind: files with a run queued (each once: File::behind_end_ !=
  // 0), and whether WakeWriteBehind() was called. Taken under a File's mu_
  // (it is the last lock taken).
  const size_t write_behind_pages_;
  // Write-around: the smallest unstable write that goes around (0: none).
  const size_t write_around_bytes_;
  absl::Mutex behind_mu_ ABSL_ACQUIRED_AFTER(lru_mu_);
  std::vector<std::weak_ptr<File>> behind_ ABSL_GUARDED_BY(behind_mu_);
  bool behind_wake_ ABSL_GUARDED_BY(behind_mu_) = false;
};

// One cached file. Obtained from PageCache::GetFile(); must be released
// before the cache is destroyed.
class PageCache::File : public std::enable_shared_from_this<File> {
 public:
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // A consistent snapshot of [offset, offset + len): every page of the range
  // is collected under this file's lock, so the result holds the bytes of
  // one instant between writes. Missing pages are read from the file (holes
  // read as zeros). The range is clipped at the end of the file: eof is true
  // when the result reaches it (and a read at or past it returns no bytes).
  // The slices pin their pages until dropped. ResourceExhausted if the pages
  // cannot all be held at once. In IoMode::kNoBlock: WouldBlockError() if a
  // page of the range is not cached (it would need a pread) or the file's
  // lock is held by another thread (which may be doing I/O); a read of
  // cached pages needs no page and no syscall.
  //
  // Example:
  //   absl::StatusOr<txbuf::CachedRead> r = file->Read(off, count);
  //   if (!r.ok()) return r.status();
  //   reply.set_eof(r->eof);
  //   for (txbuf::PageSlice& s : r->slices)
  //     builder.AppendPage(std::move(s.page), s.offset, s.len);
  absl::StatusOr<CachedRead> Read(uint64_t offset, uint64_t len,
                                  IoMode mode = IoMode::kMayBlock)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Writes `data` at `offset` under this file's lock. A touched page that is
  // pinned (use_count() > 1) is copied first and the copy replaces it
  // (cow_copies); an unpinned one is changed in place; a partly written page
  // that is not cached is read from the file first. Extends the size. With
  // kUnstable the pages stay dirty in the cache (if that would exceed
  // max_dirty_pages, dirty pages are written back first, this file's
  // first; if this file's cannot be, the write fails with that error); a
  // write needing more dirty pages than the limit alone is written through
  // without a sync. kDataSync / kFileSync write the touched pages through
  // and fdatasync / fsync before returning.
  // All-or-nothing: every page needed is reserved (evicting others) before
  // anything changes, so ResourceExhausted (or a read error) leaves the file
  // as it was. PermissionDenied on a file opened O_RDONLY; FileTooLargeError
  // past max_file_size(). If the write-through fails (EIO, ENOSPC, ...: the
  // status keeps its errno), the cache and the size are as before the call
  // for every page the file did not take (see docs/PAGE_CACHE.md, "When a
  // write-back fails"). A stable write also reports (once) a write-back of
  // this file that failed earlier during eviction.
  //
  // An unstable write of at least PageCacheOptions::write_around_bytes
  // whose range covers whole pages (it starts on a page boundary and ends
  // on one, or at or past the end of the file) goes around the cache: it is
  // written to the file (one pwrite from `data`, no sync) and the range's
  // cached pages, dirty or clean, are dropped (pinned ones live on in their
  // txbufs); Commit then fsyncs. If that pwrite fails, the write fails with
  // its error; the range's clean pages are dropped (the file may hold part
  // of the write), its dirty ones stay, and the size is what the file or the
  // dirty pages say.
  //
  // In IoMode::kNoBlock, WouldBlockError() (before anything changes) for a
  // write that goes around, a stable write, a partial write of an uncached page
  // inside the file (it would be read first), a write that would go past the
  // dirty page limit or alone exceeds it (write-back), when the pages cannot be
  // had by evicting clean unpinned pages (memory only) and no other wait, or
  // when the file's lock is held by another thread. An unstable write to cached
  // pages, whole uncached pages or pages past the end needs no syscall.
  //
  // Example:
  //   absl::Status s = file->Write(off, absl::MakeConstSpan(buf, n),
  //                                txbuf::Stability::kUnstable);
  absl::Status Write(uint64_t offset, absl::Span<const std::byte> data,
                     Stability stable, IoMode mode = IoMode::kMayBlock)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Writes back every dirty page (contiguous runs coalesced into one
  // pwritev), then fsyncs. The pages are clean afterwards. Pages are written
  // under the file's lock; fsync runs without it. Returns the first error:
  // one kept from a write-back that failed since the last Commit (during
  // eviction), this call's own, or fsync's; each is reported once. Pages
  // that could not be written are dropped from the cache and the size
  // corrected to what the file holds (docs/PAGE_CACHE.md). The fsync is
  // skipped when nothing was written to the file since the last one that
  // succeeded. In IoMode::kNoBlock: WouldBlockError() if a page is dirty or
  // an fsync is due (or the file's lock is busy); otherwise (nothing to do)
  // it returns the kept error, if any, or OK, without a syscall. A file
  // opened O_RDONLY commits at once, OK, in either mode.
  //
  // Example:
  //   if (absl::Status s = file->Commit(); !s.ok()) return s;
  absl::Status Commit(IoMode mode = IoMode::kMayBlock) ABSL_LOCKS_EXCLUDED(mu_);

  // Writes every dirty page back (no fsync), as eviction does: the pages
  // are clean afterwards (so ReleaseIfClean() can drop the file); a failure
  // drops the pages that failed and is kept for the next Commit (and also
  // returned). Blocks.
  //
  // Example:
  //   file->WriteBack().IgnoreError();  // reported by the next Commit
  absl::Status WriteBack() ABSL_LOCKS_EXCLUDED(mu_);

  // Checks the cached file against `st`, a stat of the file just taken
  // (through any descriptor of the inode): if another process changed it
  // since the cache last wrote or checked it (size, mtime or ctime differ),
  // drops the clean pages and takes the disk's size (dirty pages stay, and
  // extend the size as before). Afterwards size() agrees with what Read
  // returns. Costs three atomic loads when nothing changed. In
  // IoMode::kNoBlock: WouldBlockError() if there is something to drop and
  // the file's lock is busy (nothing changed; the next operation drops it).
  //
  // Example:
  //   struct stat st;
  //   fstat(fd, &st);
  //   if (file->Revalidate(st).ok()) attr.set_size(file->size());
  absl::Status Revalidate(const struct stat& st,
                          IoMode mode = IoMode::kMayBlock)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sets the size to `size` (ftruncate): pages past it are dropped from the
  // cache (pinned ones live on untouched in their txbufs), the tail of a
  // partial last page is zeroed (copied first if pinned). Growing leaves a
  // hole that reads as zeros. The file's size changes at once but is
  // durable only after Commit(). PermissionDenied on an O_RDONLY file;
  // ResourceExhausted if the last page is pinned and no page is free; an
  // ftruncate error changes nothing; FileTooLargeError past
  // max_file_size(). In IoMode::kNoBlock always WouldBlockError() (after
  // those checks): ftruncate can block.
  //
  // Example:
  //   absl::Status s = file->Truncate(0);
  absl::Status Truncate(uint64_t size, IoMode mode = IoMode::kMayBlock)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sets the file's access and modification times as futimens(2) does
  // (`times[0]` atime, `times[1]` mtime; UTIME_NOW and UTIME_OMIT work),
  // after writing back the dirty pages if the modification time is set: a
  // later write-back is a write to the file and would move the time the
  // caller just set. A write-back failure drops those pages and is kept for
  // the next Commit (as eviction's is); the times are set all the same.
  // FileReleasedError() if the cache released this File. Blocks.
  //
  // Example:
  //   const struct timespec keep_atime_set_mtime[2] = {{0, UTIME_OMIT},
  //                                                    {1700000000, 0}};
  //   absl::Status s = file->SetTimes(keep_atime_set_mtime);
  absl::Status SetTimes(const struct timespec times[2])
      ABSL_LOCKS_EXCLUDED(mu_);

  // The logical size, including unstable writes not yet written back.
  // Never blocks (it does not take the file's lock), so an event loop may
  // call it.
  //
  // Example:
  //   attrs.set_size(file->size());
  uint64_t size() const {
    return published_size_.load(std::memory_order_acquire);
  }

  // The modification time (CLOCK_REALTIME ns) of the last WRITE or truncate
  // whose pages are not all written back yet, or 0 if every change is on
  // disk. A client's modification is the WRITE, not the write-back: GETATTR
  // reports this time while the disk's mtime is older, and a write-back
  // sets the file's mtime back to it (so the time a client saw stays).
  // An explicit SetTimes of the mtime replaces it. Never blocks.
  //
  // Example:
  //   attr.mtime_ns = std::max(attr.mtime_ns, file->unwritten_mtime_ns());
  int64_t unwritten_mtime_ns() const {
    return unwritten_mtime_ns_.load(std::memory_order_relaxed);
  }

  // The largest size the file may have: where its file system refuses to
  // write (EFBIG). A Write or Truncate ending past it fails with
  // FileTooLargeError before anything is cached or changed. Learned when the
  // file is opened (see docs/PAGE_CACHE.md, "Limits"): the largest offset
  // lseek(SEEK_SET) accepts (the kernel checks the inode's maximum there,
  // e.g. 16 TiB - 4 KiB on ext4 with 4 KiB blocks, 2^63 - 1 on tmpfs),
  // capped by RLIMIT_FSIZE.
  //
  // Example:
  //   fsinfo.set_max_file_size(file->max_file_size());
  uint64_t max_file_size() const { return max_file_size_; }

  // The file descriptor (owned by the File), e.g. for fstat.
  //
  // Example:
  //   struct stat st;
  //   fstat(file->fd(), &st);
  int fd() const { return fd_.get(); }

  // The key the file was opened with.
  const FileKey& key() const { return key_; }

  // False if the file was opened O_RDONLY.
  bool writable() const { return writable_; }

 private:
  friend class PageCache;
  // A B-tree: a READ's lookup touches ~3 nodes of many keys each, where a
  // red-black tree of 65,536 pages was ~17 nodes, most of them cache misses
  // (71% of File::Read's samples on 4 KiB random READs). Insertion and
  // erasure invalidate its iterators: hold keys, not iterators, across them.
  using PageMap = absl::btree_map<uint64_t, std::unique_ptr<Entry>>;

  File(PageCache* cache, FileKey key, UniqueFd fd, const struct stat& st,
       uint64_t max_file_size, bool writable);

  // Whether `st` shows the file as the cache last knew it (lock-free).
  bool MatchesStamp(const struct stat& st) const;
  // Records `st` as the file's state the cache knows.
  void StampLocked(const struct stat& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Read, Write and Truncate, before their lock: if the last check is
  // older than the cache's revalidate interval, fstat()s the file and marks
  // it stale on a change. ESTALE (a Status) if the file has no links left.
  absl::Status CheckDiskIfDue();
  // Before this File changes the file (pwrite, ftruncate): marks it stale
  // if someone else changed it since the stamp (the change would otherwise
  // be taken for ours by StampFromDiskLocked). After: takes the new stamp.
  void NoteForeignChangeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StampFromDiskLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // If marked stale: drops the clean pages, takes the disk's size (the end
  // of the dirty pages if larger) and stamp. Under the lock, first thing.
  void RefreshIfStaleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Puts `page` at `index`, moving any entry there to `retired`. The new
  // entry is not in the LRU list yet (see PageCache::UpdateLru).
  Entry* PutLocked(uint64_t index, PageRef page, bool dirty,
                   std::vector<std::unique_ptr<Entry>>& retired)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the entries [first, last) of the map.
  void DropLocked(PageMap::iterator first, PageMap::iterator last)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the clean entries of the pages [first, stop); dirty ones stay.
  void DropCleanLocked(uint64_t first, uint64_t stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `e` dirty or clean (its place in dirty_, dirty_count_). The
  // cache-wide dirty_pages counter moves at once, or, with `batch`, by what
  // *batch adds up to (+1 dirty, -1 clean), which the caller applies with
  // AddDirtyPages once for many pages: one atomic operation on a counter
  // other threads write too, not one per page.
  void SetDirtyLocked(Entry* e, bool dirty, int64_t* batch = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddDirtyPages(int64_t delta);
  void SetSizeLocked(uint64_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_ = size;
    published_size_.store(size, std::memory_order_release);
  }
  // Fills `pages` (for page indices first, first + 1, ...) from the file;
  // bytes past the end of file or of size_ are zero.
  absl::Status FillLocked(uint64_t first, absl::Span<PageRef> pages)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `entries` (sorted by index) to the file, coalescing runs, and
  // marks the written ones clean. The entries of runs that failed stay
  // dirty and are appended to `*failed`. Returns the first error.
  absl::Status WriteBackLocked(absl::Span<Entry* const> entries,
                               std::vector<Entry*>* failed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `failed` (entries whose write-back failed; those no longer in the
  // map are skipped) from the cache, so that they are neither served nor
  // left as dirty pages nobody can evict; keeps `error` for the next Commit
  // or stable Write if `keep` and none is kept yet; then FixSizeLocked.
  // Returns how many pages left the cache.
  size_t DiscardFailedLocked(absl::Span<Entry* const> failed,
                             const absl::Status& error, bool keep)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After dirty pages were dropped unwritten: sets size_ to the larger of
  // the on-disk size (fstat) and the end of the last dirty page left
  // (clipped to `clip`), and drops any page that then starts past it.
  // Returns how many pages it dropped.
  // With `disk` given, uses it instead of an fstat.
  size_t FixSizeLocked(uint64_t clip, const struct stat* disk = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes back the dirty candidates still valid (unpinned), then evicts up
  // to `max_evict` of the valid clean ones. Returns how many went. In
  // IoMode::kNoBlock: only tries the lock (0 if busy) and skips dirty ones.
  size_t EvictCandidates(absl::Span<const Candidate> cands, size_t max_evict,
                         absl::Status* error, IoMode mode)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Every dirty entry, by index.
  std::vector<Entry*> DirtyEntriesLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Links `e` (just made dirty) into dirty_ just before `before`: &dirty_
  // for the young end, or the dirty entry `e` replaces (keeping its age).
  void LinkDirtyLocked(Entry* e, DirtyLink* before)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `e` off dirty_.
  void UnlinkDirtyLocked(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes back up to `want` of this file's dirty pages, those dirty the
  // longest first (as the kernel's write-back picks inodes by dirtied_when).
  // Returns how many stopped being dirty; a failure (those pages are dropped,
  // the error kept) goes to `*error`.
  size_t CleanOldest(size_t want, absl::Status* error) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes back the candidates still cached and dirty. Returns how many
  // stopped being dirty (failures are dropped, the error kept).
  size_t CleanCandidates(absl::Span<const Candidate> cands)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Whether an unstable write of `len` bytes at `offset` goes around the
  // cache, as far as can be told without the lock (size() may change).
  bool GoesAround(uint64_t offset, uint64_t len) const;
  // The write-around of Write (see there), under the file's lock; nullopt if
  // the write no longer qualifies (the file grew past its end meanwhile).
  std::optional<absl::Status> WriteAround(uint64_t offset,
                                          absl::Span<const std::byte> data)
      ABSL_LOCKS_EXCLUDED(mu_);
  // After an unstable write of [offset, end) (not written through): extends
  // or restarts the write-behind run and queues it once it is long enough.
  void NoteWriteBehindLocked(uint64_t offset, uint64_t end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes back up to `max_pages` dirty pages of the queued write-behind
  // range, from its start; takes them off the range. Returns how many were
  // written (or failed: dropped, the error kept and also in `*error`);
  // `*more` tells whether the range still has pages.
  size_t WriteBehindSome(size_t max_pages, absl::Status* error, bool* more)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Writes back `dirty` (dirty entries sorted by index); the failed ones
  // are dropped and the error kept (DiscardFailedLocked). Returns the
  // write-back's status.
  absl::Status CleanLocked(absl::Span<Entry* const> dirty)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  PageCache* const cache_;
  const FileKey key_;
  const UniqueFd fd_;
  const uint64_t max_file_size_;
  const bool writable_;

  // Taken after PageCache::files_mu_ (if at all) and before
  // PageCache::lru_mu_; never while holding another File's mu_.
  mutable absl::Mutex mu_;
  uint64_t size_ ABSL_GUARDED_BY(mu_);
  // Every cached page has index * kPageSize < size_; bytes of a page past
  // size_ are zero.
  PageMap pages_ ABSL_GUARDED_BY(mu_);
  // Dropped from the cache by ReleaseIfClean(): see FileReleasedError().
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  // size_, readable without the lock (size()).
  std::atomic<uint64_t> published_size_;
  // How many entries of pages_ are dirty.
  size_t dirty_count_ ABSL_GUARDED_BY(mu_) = 0;
  // The dirty entries, in the order they became dirty (oldest first), so
  // that choosing what to write back costs what is written back, not a walk
  // of pages_. An entry is linked exactly while its `dirty` flag is set and
  // it is not retired (PageCache::Retire unlinks it); for a moment inside
  // Write an entry being replaced and its replacement may both be linked.
  DirtyLink dirty_ ABSL_GUARDED_BY(mu_);
  // Counts writes to the file (pwrite, ftruncate); synced_gen_ is its value
  // before the last fsync that succeeded. Commit fsyncs when they differ.
  // (1 and 0 at first: data of an earlier process may not be synced yet.)
  uint64_t write_gen_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t synced_gen_ ABSL_GUARDED_BY(mu_) = 0;
  // The first write-back error since the last Commit (or stable Write) that
  // could not be returned to anyone: eviction's. Reported once, then OK.
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  // The stamp: the file on disk as this File last changed or saw it.
  // Written under mu_, read without it (MatchesStamp).
  std::atomic<uint64_t> disk_size_{0};
  std::atomic<int64_t> disk_mtime_ns_{0};
  std::atomic<int64_t> disk_ctime_ns_{0};
  // MonoCoarseNowNs() of the last check against the disk.
  std::atomic<int64_t> checked_ns_{0};
  // The disk changed behind the cache: clean pages are to be dropped.
  std::atomic<bool> stale_{false};
  // MonoCoarseNowNs() when the file last went from no dirty page to some;
  // 0 if it has none (or had none at its last write-back).
  std::atomic<int64_t> dirty_since_ns_{0};
  // See unwritten_mtime_ns(). Written under mu_; reset with dirty_since_ns_.
  std::atomic<int64_t> unwritten_mtime_ns_{0};
  // Write-behind: the run of whole pages not queued yet starts at page
  // run_first_; the last unstable write ended at byte run_next_ (a write
  // starting there continues the run). Pages [behind_first_, behind_end_)
  // are queued in PageCache::behind_ (none if behind_end_ is 0).
  uint64_t run_first_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t run_next_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t behind_first_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t behind_end_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace txbuf

#endif  // TXBUF_SERVER_FS_PAGE_CACHE_H_
