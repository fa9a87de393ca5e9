#include "server/fs/page_cache.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"

namespace txbuf {
namespace {

// The largest file offset (off_t is signed).
constexpr uint64_t kMaxFileSize =
    static_cast<uint64_t>(std::numeric_limits<off_t>::max());
// When eviction must write dirty pages back, it writes at least this many.
constexpr size_t kWritebackBatch = 32;
// An operation that keeps losing its reserved pages to other threads gives
// up after this many rounds.
constexpr int kMaxAttempts = 64;
// A reservation that finds nothing to evict while other operations hold
// reserved pages waits this long for them, at most this many times.
constexpr std::chrono::microseconds kReserveWait(100);
constexpr int kMaxReserveWaits = 20;
// Eviction rounds whose candidates all changed under it before giving up.
constexpr int kMaxEvictRaces = 16;
// Pages per preadv / pwritev call.
constexpr size_t kMaxRunPages = 256;
static_assert(kMaxRunPages <= IOV_MAX);

// Drops the first `n` bytes of iov[*i...].
void AdvanceIov(std::vector<iovec>& iov, size_t* i, size_t n) {
  while (n > 0 && *i < iov.size()) {
    if (n >= iov[*i].iov_len) {
      n -= iov[*i].iov_len;
      ++*i;
    } else {
      iov[*i].iov_base = static_cast<std::byte*>(iov[*i].iov_base) + n;
      iov[*i].iov_len -= n;
      n = 0;
    }
  }
}

// Reads into `iov` from `offset` until it is full or the file ends; returns
// the bytes read.
absl::StatusOr<uint64_t> PreadvAll(int fd, std::vector<iovec> iov,
                                   uint64_t offset) {
  uint64_t total = 0;
  size_t i = 0;
  while (i < iov.size()) {
    int cnt = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
    ssize_t n = ::preadv(fd, &iov[i], cnt, static_cast<off_t>(offset + total));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "page cache: pread");
    }
    if (n == 0) break;  // end of file
    total += static_cast<uint64_t>(n);
    AdvanceIov(iov, &i, static_cast<size_t>(n));
  }
  return total;
}

// Writes all of `iov` at `offset`.
absl::Status PwritevAll(int fd, std::vector<iovec> iov, uint64_t offset) {
  uint64_t total = 0;
  size_t i = 0;
  while (i < iov.size()) {
    int cnt = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
    ssize_t n = ::pwritev(fd, &iov[i], cnt, static_cast<off_t>(offset + total));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "page cache: pwrite");
    }
    if (n == 0) return absl::DataLossError("page cache: pwrite wrote nothing");
    total += static_cast<uint64_t>(n);
    AdvanceIov(iov, &i, static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Whether lseek(SEEK_SET) takes offset `off` on `fd`.
bool SeekTakes(int fd, uint64_t off) {
  return ::lseek(fd, static_cast<off_t>(off), SEEK_SET) >= 0 || errno != EINVAL;
}

// The largest size the file system lets a file on `fd` have. `hint`, if not
// 0, is what another file of the same file system gave: checked with two
// lseeks (the limit can differ per inode, as on ext4 between extent and
// block-mapped files) before the search. Moves and restores the file
// offset (the cache uses pread/pwrite only).
uint64_t ProbeFileSystemMax(int fd, uint64_t hint) {
  // Not FILESIZEBITS: glibc answers it from statfs's f_type and is wrong
  // both ways here (64 for ext4, which stops at 16 TiB - 4 KiB; 32 for
  // tmpfs, which takes 2^63 - 1).
  //
  // lseek(SEEK_SET) refuses (EINVAL) an offset past the inode's maximum
  // (generic_file_llseek_size with s_maxbytes), which is where writes stop
  // (EFBIG): the largest offset it takes is the limit. File systems whose
  // lseek checks nothing keep the largest off_t.
  const off_t pos = ::lseek(fd, 0, SEEK_CUR);
  uint64_t max = kMaxFileSize;
  if (hint != 0 && SeekTakes(fd, hint) &&
      (hint == kMaxFileSize || !SeekTakes(fd, hint + 1))) {
    max = hint;
  } else if (!SeekTakes(fd, kMaxFileSize)) {
    uint64_t ok = 0;              // accepted
    uint64_t bad = kMaxFileSize;  // refused
    while (bad - ok > 1) {
      const uint64_t mid = ok + (bad - ok) / 2;
      if (SeekTakes(fd, mid)) {
        ok = mid;
      } else {
        bad = mid;
      }
    }
    max = ok;
  }
  ::lseek(fd, pos >= 0 ? pos : 0, SEEK_SET);
  return max;
}

// The largest size a file may have under RLIMIT_FSIZE (past it a write
// fails with EFBIG and raises SIGXFSZ).
uint64_t ProcessMaxFileSize() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    return std::min<uint64_t>(kMaxFileSize, rl.rlim_cur);
  }
  return kMaxFileSize;
}

// The payload that marks a WouldBlockError().
constexpr absl::string_view kWouldBlockPayload = "txbuf/page_cache/would_block";
constexpr absl::string_view kReleasedPayload = "txbuf/page_cache/released";

// Locks `mu` for the scope in IoMode::kMayBlock; in kNoBlock only tries to
// (another holder may be doing file I/O): see locked().
class ABSL_SCOPED_LOCKABLE MaybeLock {
 public:
  MaybeLock(absl::Mutex* mu, IoMode mode) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    if (mode == IoMode::kMayBlock) {
      mu_->Lock();
      locked_ = true;
    } else {
      locked_ = mu_->TryLock();
    }
  }
  ~MaybeLock() ABSL_UNLOCK_FUNCTION() {
    if (locked_) mu_->Unlock();
  }
  MaybeLock(const MaybeLock&) = delete;
  MaybeLock& operator=(const MaybeLock&) = delete;
  bool locked() const { return locked_; }

 private:
  absl::Mutex* const mu_;
  bool locked_;
};

}  // namespace

absl::Status WouldBlockError() {
  absl::Status s = absl::UnavailableError(
      "page cache: the operation would wait for file I/O; repeat it with "
      "IoMode::kMayBlock");
  s.SetPayload(kWouldBlockPayload, absl::Cord("1"));
  return s;
}

bool IsWouldBlock(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable &&
         s.GetPayload(kWouldBlockPayload).has_value();
}

absl::Status FileReleasedError() {
  absl::Status s = absl::AbortedError(
      "page cache: the file was released from the cache; get it again");
  s.SetPayload(kReleasedPayload, absl::Cord("1"));
  return s;
}

bool IsFileReleased(const absl::Status& s) {
  return s.code() == absl::StatusCode::kAborted &&
         s.GetPayload(kReleasedPayload).has_value();
}

absl::Status FileTooLargeError(uint64_t end, uint64_t max_size) {
  return ErrnoStatus(
      EFBIG, absl::StrCat("page cache: the range would end at byte ", end,
                          ", past the largest file the file system allows (",
                          max_size, " bytes)"));
}

bool IsFileTooLarge(const absl::Status& s) { return ErrnoOf(s) == EFBIG; }

// One cached page of one file. `page` is the cache's reference and never
// changes: a copy-on-write makes a new Entry. So the LRU walk may read
// `file`, `index` and `page` of any linked entry under the LRU lock alone.
struct PageCache::Entry : PageCache::LruLink, PageCache::DirtyLink {
  Entry(File* f, uint64_t i, PageRef p)
      : file(f), index(i), page(std::move(p)) {}
  File* const file;
  const uint64_t index;
  // The cache's reference: counts the page as cached (and pinned while
  // others hold it too) in PagePool::cached_pinned_pages().
  const PageRef::Cached page;
  // Changed under file->mu_; read without it only as a hint (eviction
  // re-checks under the file lock).
  std::atomic<bool> dirty{false};
  // PageCache::lru_clock_ when this entry last moved to the recent end.
  std::atomic<uint64_t> lru_stamp{0};
};

struct PageCache::Candidate {
  std::shared_ptr<File> file;
  uint64_t index;
  const Page* page;  // the version seen; compared, never dereferenced.
};

size_t CachedRead::CopyTo(absl::Span<std::byte> out) const {
  size_t done = 0;
  for (const PageSlice& s : slices) {
    if (done == out.size()) break;
    size_t n = std::min<size_t>(s.len, out.size() - done);
    std::memcpy(out.data() + done, s.page.data() + s.offset, n);
    done += n;
  }
  return done;
}

// ---------------------------------------------------------------------------
// PageCache

PageCache::PageCache(PagePool& pool, PageCacheOptions options)
    : pool_(pool),
      max_pages_(options.max_pages != 0 ? options.max_pages
                                        : pool.Stats().capacity_pages),
      max_dirty_pages_(
          options.max_dirty_pages != 0
              ? options.max_dirty_pages
              : std::max(max_pages_ / 4, std::min<size_t>(max_pages_, 256))),
      revalidate_ns_(-1),
      write_behind_pages_(options.write_behind_pages),
      write_around_bytes_(options.write_around_bytes) {
  set_revalidate_interval(options.revalidate_interval);
}

PageCache::~PageCache() {
  absl::flat_hash_map<FileKey, std::shared_ptr<File>> files;
  {
    absl::MutexLock l(&files_mu_);
    files.swap(files_);
  }
  files.clear();
  uint64_t live = live_files_.load();
  if (live != 0) {
    std::fprintf(stderr,
                 "txbuf: PageCache destroyed while %llu files are still "
                 "referenced\n",
                 static_cast<unsigned long long>(live));
    std::abort();
  }
}

absl::StatusOr<std::shared_ptr<PageCache::File>> PageCache::GetFile(
    FileKey key, absl::FunctionRef<absl::StatusOr<int>()> open_fd,
    IoMode mode) {
  {
    absl::MutexLock l(&files_mu_);
    auto it = files_.find(key);
    if (it != files_.end()) return it->second;
  }
  if (mode == IoMode::kNoBlock) return WouldBlockError();
  // Open without the lock: opening may block on the file system.
  absl::StatusOr<int> opened = open_fd();
  if (!opened.ok()) return opened.status();
  if (*opened < 0) {
    return absl::InvalidArgumentError("page cache: open_fd gave no fd");
  }
  UniqueFd fd(*opened);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return ErrnoStatus(errno, "page cache: fstat");
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError("page cache: not a regular file");
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0) return ErrnoStatus(errno, "page cache: fcntl(F_GETFL)");
  const int access = flags & O_ACCMODE;
  if (access != O_RDONLY && access != O_RDWR) {
    return absl::InvalidArgumentError(
        "page cache: the fd must be opened O_RDWR or O_RDONLY");
  }
  // (see File::max_file_size())
  uint64_t hint = 0;
  {
    absl::MutexLock l(&max_size_mu_);
    auto it = max_size_by_dev_.find(st.st_dev);
    if (it != max_size_by_dev_.end()) hint = it->second;
  }
  const uint64_t fs_max = ProbeFileSystemMax(fd.get(), hint);
  if (fs_max != hint) {
    absl::MutexLock l(&max_size_mu_);
    max_size_by_dev_[st.st_dev] = fs_max;
  }
  const uint64_t max_size = std::min(fs_max, ProcessMaxFileSize());
  std::shared_ptr<File> file(
      new File(this, key, std::move(fd), st, max_size, access == O_RDWR));
  std::shared_ptr<File> loser;  // dropped after the lock is released.
  absl::MutexLock l(&files_mu_);
  auto [it, inserted] = files_.try_emplace(key, file);
  if (!inserted) loser = std::move(file);
  return it->second;
}

void PageCache::Forget(FileKey key) {
  std::shared_ptr<File> gone;
  {
    absl::MutexLock l(&files_mu_);
    auto it = files_.find(key);
    if (it == files_.end()) return;
    gone = std::move(it->second);
    files_.erase(it);
  }
  // `gone` is dropped here; its pages go with the last holder.
}

PageCache::Release PageCache::ReleaseIfClean(File& file, IoMode mode) {
  const FileKey key = file.key();
  // Where `file` is in files_ if it is still the File cached for its key (a
  // newer one may be), else files_.end(). Under files_mu_.
  auto cached = [&] {
    auto it = files_.find(key);
    return it != files_.end() && it->second.get() == &file ? it : files_.end();
  };
  if (mode == IoMode::kMayBlock) {
    {
      absl::MutexLock l(&files_mu_);
      if (cached() == files_.end()) return Release::kReleased;
    }
    {
      absl::MutexLock fl(&file.mu_);  // without files_mu_: may wait for I/O
      if (file.dirty_count_ != 0 || !file.error_.ok()) return Release::kDirty;
      file.released_ = true;  // (a holder meanwhile gets FileReleasedError)
    }
    std::shared_ptr<File> gone;
    absl::MutexLock l(&files_mu_);
    if (auto it = cached(); it != files_.end()) {
      gone = std::move(it->second);
      files_.erase(it);
    }
    return Release::kReleased;  // `gone` dropped after the lock
  }
  std::shared_ptr<File> gone;
  {
    absl::MutexLock l(&files_mu_);
    auto it = cached();
    if (it == files_.end()) return Release::kReleased;
    if (!file.mu_.TryLock()) return Release::kBusy;
    // A write-back error kept for the next Commit lives on the File: the
    // File must stay until it is reported, like dirty pages.
    const bool dirty = file.dirty_count_ != 0 || !file.error_.ok();
    // A holder that still has it must not write into a File nobody will
    // write back, nor read pages a newer File may change.
    if (!dirty) file.released_ = true;
    file.mu_.Unlock();
    if (dirty) return Release::kDirty;
    gone = std::move(it->second);
    files_.erase(it);
  }
  return Release::kReleased;  // `gone` is dropped here, without locks held.
}

absl::Status PageCache::SyncAll() {
  std::vector<std::shared_ptr<File>> files;
  {
    absl::MutexLock l(&files_mu_);
    files.reserve(files_.size());
    for (const auto& [key, file] : files_) files.push_back(file);
  }
  absl::Status first;
  for (const std::shared_ptr<File>& f : files) {
    if (!f->writable()) continue;  // never dirty
    absl::Status s = f->Commit();
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

namespace {
int64_t RevalidateNs(absl::Duration d) {
  return d == absl::InfiniteDuration()
             ? -1
             : std::max<int64_t>(0, absl::ToInt64Nanoseconds(d));
}
}  // namespace

void PageCache::set_revalidate_interval(absl::Duration d) {
  revalidate_ns_.store(RevalidateNs(d), std::memory_order_relaxed);
}

size_t PageCache::WriteBackDue(absl::Duration max_age,
                               absl::Status* first_error) {
  struct Dirty {
    std::shared_ptr<File> file;
    int64_t since;
  };
  std::vector<Dirty> dirty;
  {
    absl::MutexLock l(&files_mu_);
    for (const auto& [key, f] : files_) {
      const int64_t since = f->dirty_since_ns_.load(std::memory_order_relaxed);
      if (since != 0) dirty.push_back({f, since});
    }
  }
  std::stable_sort(
      dirty.begin(), dirty.end(),
      [](const Dirty& a, const Dirty& b) { return a.since < b.since; });
  const int64_t now = MonoCoarseNowNs();
  const int64_t age = absl::ToInt64Nanoseconds(max_age);
  const uint64_t background = max_dirty_pages_ / 2;
  size_t done = 0;
  for (const Dirty& d : dirty) {
    // Oldest first: once a file is young enough, only pressure goes on.
    if (now - d.since < age &&
        counters_.dirty_pages.load(std::memory_order_relaxed) <= background) {
      break;
    }
    // An error is also kept for the file's next Commit.
    if (absl::Status s = d.file->WriteBack();
        !s.ok() && first_error != nullptr && first_error->ok()) {
      *first_error = std::move(s);
    }
    ++done;
  }
  counters_.background_writebacks.fetch_add(done, std::memory_order_relaxed);
  return done;
}

bool PageCache::WaitForWriteBehind(absl::Duration timeout) {
  absl::MutexLock l(&behind_mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(behind_mu_) {
    return !behind_.empty() || behind_wake_;
  };
  behind_mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  behind_wake_ = false;
  return !behind_.empty();
}

void PageCache::WakeWriteBehind() {
  absl::MutexLock l(&behind_mu_);
  behind_wake_ = true;
}

size_t PageCache::WriteBehind(absl::Status* first_error) {
  std::vector<std::weak_ptr<File>> queued;
  {
    absl::MutexLock l(&behind_mu_);
    queued.swap(behind_);
  }
  size_t done = 0;
  for (const std::weak_ptr<File>& w : queued) {
    std::shared_ptr<File> f = w.lock();
    if (f == nullptr) continue;  // gone: its pages with it
    // A run at a time (one pwritev of up to kMaxRunPages), the file's lock
    // released between them: a WRITE of the same file waits for one run,
    // not for the whole queue.
    for (bool more = true; more;) {
      absl::Status error;
      done += f->WriteBehindSome(kMaxRunPages, &error, &more);
      if (!error.ok() && first_error != nullptr && first_error->ok()) {
        *first_error = std::move(error);
      }
    }
  }
  counters_.write_behind_pages.fetch_add(done, std::memory_order_relaxed);
  return done;
}

PageCacheStats PageCache::Stats() const {
  PageCacheStats st{LoadCounters<PageCacheCountersOf<uint64_t>>(counters_)};
  // Counted as references come and go: no walk of the cache (a STATS
  // request or a metrics scrape is O(1) and holds no lock READs take).
  st.pinned_pages = pool_.cached_pinned_pages();
  {
    absl::MutexLock l(&files_mu_);
    st.files = files_.size();
  }
  return st;
}

PageRef PageCache::TryAllocate() {
  uint64_t c = charged_.load(std::memory_order_relaxed);
  do {
    if (c >= max_pages_) return PageRef();
  } while (!charged_.compare_exchange_weak(c, c + 1));
  PageRef p = pool_.Allocate();
  if (!p) charged_.fetch_sub(1);
  return p;
}

bool PageCache::TopUp(std::vector<PageRef>& spare, size_t n) {
  while (spare.size() < n) {
    PageRef p = TryAllocate();
    if (!p) return false;
    spare.push_back(std::move(p));
  }
  return true;
}

absl::Status PageCache::Reserve(size_t n, std::vector<PageRef>& spare,
                                IoMode mode) {
  if (n > max_pages_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "page cache: an operation needs ", n,
        " new pages at once, more than the cache holds (", max_pages_, ")"));
  }
  absl::Status error;
  int waits = 0;
  int races = 0;
  while (spare.size() < n) {
    if (PageRef p = TryAllocate()) {
      spare.push_back(std::move(p));
      continue;
    }
    bool found = false;
    if (EvictSome(n - spare.size(), &found, &error, mode) == 0) {
      // Dirty pages (write-back) or a wait would be next; and in kNoBlock
      // candidates are not evicted when their file's lock is busy, so
      // looking again right away would only spin.
      if (mode == IoMode::kNoBlock) return WouldBlockError();
      // Candidates were found but changed before their file lock was taken
      // (another thread evicted, pinned or dirtied them): look again.
      if (found && races++ < kMaxEvictRaces) continue;
      // Pages reserved by other operations come back soon (to the cache or
      // the pool). Waiting for them while holding ours could leave every
      // operation holding part of what it needs: give ours back and wait a
      // little, a bounded number of times.
      const uint64_t charged = charged_.load();
      const uint64_t cached = counters_.pages.load();
      const uint64_t others =
          charged > cached + spare.size() ? charged - cached - spare.size() : 0;
      if (others > 0 && waits++ < kMaxReserveWaits) {
        ReturnSpare(spare);
        std::this_thread::sleep_for(kReserveWait);
        continue;
      }
      return absl::ResourceExhaustedError(absl::StrCat(
          "page cache: no page can be evicted (every cached page is pinned "
          "or the pool is held elsewhere); needed ",
          n - spare.size(), " more",
          error.ok() ? ""
                     : absl::StrCat("; write-back failed: ", error.message())));
    }
  }
  return absl::OkStatus();
}

template <typename Attempt>
absl::Status PageCache::WithSparePages(IoMode mode, absl::string_view lost,
                                       Attempt&& attempt) {
  std::vector<PageRef> spare;
  absl::Status status;
  for (int tries = 0;; ++tries) {
    SpareAttempt a = attempt(spare);
    if (a.done) {
      status = std::move(a.status);
      break;
    }
    // Short of pages: evict without holding the file lock, then retry (the
    // file may have changed meanwhile).
    if (tries >= kMaxAttempts) {
      status = absl::ResourceExhaustedError(
          absl::StrCat("page cache: ", lost, " to other threads too often"));
      break;
    }
    status = Reserve(a.need, spare, mode);
    if (!status.ok()) break;
  }
  ReturnSpare(spare);
  return status;
}

void PageCache::ReturnSpare(std::vector<PageRef>& spare) {
  uint64_t n = 0;
  for (PageRef& p : spare) {
    if (p) {
      p.reset();
      ++n;
    }
  }
  spare.clear();
  if (n != 0) charged_.fetch_sub(n);
}

bool PageCache::ChargeDirty(size_t n) {
  uint64_t d = counters_.dirty_pages.load(std::memory_order_relaxed);
  do {
    if (d + n > max_dirty_pages_) return false;
  } while (!counters_.dirty_pages.compare_exchange_weak(d, d + n));
  return true;
}

size_t PageCache::CleanSome(size_t want, File* own, absl::Status* own_error) {
  // At least a batch of pages each time (fewer, larger writes), but other
  // files' only if the writer's own file did not have `want`.
  const size_t batch = std::max(want, kWritebackBatch);
  size_t done = own->CleanOldest(batch, own_error);
  if (done >= want) return done;
  want = batch - done;
  std::vector<Candidate> cands;
  {
    absl::MutexLock l(&lru_mu_);
    for (LruLink* link = lru_.next; link != &lru_ && cands.size() < want;
         link = link->next) {
      auto* e = static_cast<Entry*>(link);
      if (e->file == own || !e->dirty.load(std::memory_order_relaxed)) {
        continue;
      }
      std::shared_ptr<File> f = e->file->weak_from_this().lock();
      if (f == nullptr) continue;
      cands.push_back(Candidate{std::move(f), e->index, e->page.get()});
    }
  }
  // One file lock at a time, each file's candidates together.
  absl::flat_hash_map<const File*, size_t> rank;
  for (const Candidate& c : cands) rank.try_emplace(c.file.get(), rank.size());
  std::stable_sort(cands.begin(), cands.end(),
                   [&rank](const Candidate& a, const Candidate& b) {
                     return rank.find(a.file.get())->second <
                            rank.find(b.file.get())->second;
                   });
  for (size_t i = 0; i < cands.size();) {
    size_t j = i;
    while (j < cands.size() && cands[j].file == cands[i].file) ++j;
    done += cands[i].file->CleanCandidates(
        absl::MakeConstSpan(cands.data() + i, j - i));
    i = j;
  }
  return done;
}

size_t PageCache::EvictSome(size_t want, bool* found, absl::Status* error,
                            IoMode mode) {
  std::vector<Candidate> cands;
  size_t limit = want;
  {
    absl::MutexLock l(&lru_mu_);
    // Clean pages first, the least recently used first. Only when no clean
    // page can go, dirty ones: a batch of them is written back (so the next
    // evictions find clean pages) and `want` of them go.
    for (bool dirty : {false, true}) {
      if (dirty && mode == IoMode::kNoBlock) break;  // would write back
      limit = dirty ? std::max(want, kWritebackBatch) : want;
      cands.reserve(limit);
      for (LruLink* link = lru_.next; link != &lru_ && cands.size() < limit;
           link = link->next) {
        auto* e = static_cast<Entry*>(link);
        if (e->dirty.load(std::memory_order_relaxed) != dirty) continue;
        if (e->page.use_count() != 1) continue;  // pinned
        // The File is alive (its destructor unlinks its entries under this
        // lock first) but may be on its way out: then lock() fails.
        std::shared_ptr<File> f = e->file->weak_from_this().lock();
        if (f == nullptr) continue;
        cands.push_back(Candidate{std::move(f), e->index, e->page.get()});
      }
      if (!cands.empty()) break;
    }
  }
  *found = !cands.empty();
  // Without the LRU lock: one file lock at a time. A file's candidates are
  // taken together (so its write-back runs coalesce), files in the order of
  // their least recently used candidate, each file's in LRU order.
  absl::flat_hash_map<const File*, size_t> rank;
  for (const Candidate& c : cands) rank.try_emplace(c.file.get(), rank.size());
  std::stable_sort(cands.begin(), cands.end(),
                   [&rank](const Candidate& a, const Candidate& b) {
                     return rank.find(a.file.get())->second <
                            rank.find(b.file.get())->second;
                   });
  size_t evicted = 0;
  for (size_t i = 0; i < cands.size();) {
    size_t j = i;
    while (j < cands.size() && cands[j].file == cands[i].file) ++j;
    const size_t left = want > evicted ? want - evicted : 0;
    evicted += cands[i].file->EvictCandidates(
        absl::MakeConstSpan(cands.data() + i, j - i), left, error, mode);
    i = j;
  }
  counters_.evictions.fetch_add(evicted, std::memory_order_relaxed);
  return evicted;  // `cands` (File references) dropped without locks.
}

void PageCache::UpdateLru(absl::Span<Entry* const> gone,
                          absl::Span<Entry* const> used) {
  if (gone.empty() && used.empty()) return;
  // A page moved to the recent end within the last max_pages/2 moves is
  // still in the recent half: leave it, so hits on a hot set take no lock.
  // Eviction (from the old end) stays an approximate LRU.
  const uint64_t now = lru_clock_.load(std::memory_order_relaxed);
  const uint64_t window = std::max<uint64_t>(64, max_pages_ / 2);
  bool any = !gone.empty();
  for (Entry* e : used) {
    uint64_t st = e->lru_stamp.load(std::memory_order_relaxed);
    if (st == 0 || now - st >= window) {
      any = true;
      break;
    }
  }
  if (!any) return;
  auto unlink = [](LruLink* e) {
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
  };
  absl::MutexLock l(&lru_mu_);
  for (Entry* e : gone) unlink(e);
  for (Entry* e : used) {
    uint64_t st = e->lru_stamp.load(std::memory_order_relaxed);
    LruLink* link = e;
    if (st != 0 && now - st < window && link->next != link) continue;
    e->lru_stamp.store(lru_clock_.fetch_add(1, std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
    unlink(link);
    link->prev = lru_.prev;
    link->next = &lru_;
    lru_.prev->next = link;
    lru_.prev = link;
  }
}

void PageCache::Retire(std::vector<std::unique_ptr<Entry>>& gone) {
  uint64_t dirty = 0;
  for (const auto& e : gone) {
    if (!e->dirty.load()) continue;
    ++dirty;
    // Every entry of `gone` is of one file, whose lock the caller holds.
    e->file->UnlinkDirtyLocked(e.get());
    if (--e->file->dirty_count_ == 0) {
      e->file->dirty_since_ns_.store(0, std::memory_order_relaxed);
      e->file->unwritten_mtime_ns_.store(0, std::memory_order_relaxed);
    }
  }
  const uint64_t n = gone.size();
  gone.clear();  // drops the cache's references
  if (n == 0) return;
  counters_.pages.fetch_sub(n, std::memory_order_relaxed);
  if (dirty != 0)
    counters_.dirty_pages.fetch_sub(dirty, std::memory_order_relaxed);
  charged_.fetch_sub(n);
}

// ---------------------------------------------------------------------------
// PageCache::File

PageCache::File::File(PageCache* cache, FileKey key, UniqueFd fd,
                      const struct stat& st, uint64_t max_file_size,
                      bool writable)
    : cache_(cache),
      key_(key),
      fd_(std::move(fd)),
      max_file_size_(max_file_size),
      writable_(writable),
      size_(static_cast<uint64_t>(st.st_size)),
      published_size_(static_cast<uint64_t>(st.st_size)) {
  cache_->live_files_.fetch_add(1);
  absl::MutexLock l(&mu_);
  StampLocked(st);
  checked_ns_.store(MonoCoarseNowNs(), std::memory_order_relaxed);
}

namespace {
int64_t TimeNs(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}
}  // namespace

bool PageCache::File::MatchesStamp(const struct stat& st) const {
  return disk_size_.load(std::memory_order_relaxed) ==
             static_cast<uint64_t>(st.st_size) &&
         disk_mtime_ns_.load(std::memory_order_relaxed) == TimeNs(st.st_mtim) &&
         disk_ctime_ns_.load(std::memory_order_relaxed) == TimeNs(st.st_ctim);
}

void PageCache::File::StampLocked(const struct stat& st) {
  disk_size_.store(static_cast<uint64_t>(st.st_size),
                   std::memory_order_relaxed);
  disk_mtime_ns_.store(TimeNs(st.st_mtim), std::memory_order_relaxed);
  disk_ctime_ns_.store(TimeNs(st.st_ctim), std::memory_order_relaxed);
}

absl::Status PageCache::File::CheckDiskIfDue() {
  const int64_t interval =
      cache_->revalidate_ns_.load(std::memory_order_relaxed);
  if (interval < 0) return absl::OkStatus();
  if (interval > 0) {
    const int64_t now = MonoCoarseNowNs();
    if (now - checked_ns_.load(std::memory_order_relaxed) < interval) {
      return absl::OkStatus();
    }
    checked_ns_.store(now, std::memory_order_relaxed);
  }
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return absl::OkStatus();  // next time
  if (st.st_nlink == 0) {
    return ErrnoStatus(ESTALE, "page cache: the file was removed");
  }
  if (!MatchesStamp(st)) stale_.store(true, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status PageCache::File::Revalidate(const struct stat& st, IoMode mode) {
  checked_ns_.store(MonoCoarseNowNs(), std::memory_order_relaxed);
  if (MatchesStamp(st) && !stale_.load(std::memory_order_relaxed)) {
    return absl::OkStatus();
  }
  stale_.store(true, std::memory_order_relaxed);
  MaybeLock l(&mu_, mode);
  if (!l.locked()) return WouldBlockError();
  if (!released_) RefreshIfStaleLocked();
  return absl::OkStatus();
}

void PageCache::File::NoteForeignChangeLocked() {
  struct stat st;
  if (::fstat(fd_.get(), &st) == 0 && !MatchesStamp(st)) {
    stale_.store(true, std::memory_order_relaxed);
  }
}

void PageCache::File::StampFromDiskLocked() {
  struct stat st;
  if (::fstat(fd_.get(), &st) == 0) StampLocked(st);
}

void PageCache::File::RefreshIfStaleLocked() {
  if (!stale_.load(std::memory_order_relaxed)) return;
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return;  // stays stale: next time
  stale_.store(false, std::memory_order_relaxed);
  // Clean pages may hold bytes the file no longer has. Dirty pages are
  // acknowledged writes not yet written: they stay (and win, as a later
  // write would).
  DropCleanLocked(0, ~uint64_t{0});
  FixSizeLocked(size_, &st);
  StampLocked(st);
  ++write_gen_;  // the other writer's data may not be synced yet
  cache_->counters_.invalidations.fetch_add(1, std::memory_order_relaxed);
}

PageCache::File::~File() {
  {
    absl::MutexLock l(&mu_);
    DropLocked(pages_.begin(), pages_.end());
  }
  cache_->live_files_.fetch_sub(1);
}

PageCache::Entry* PageCache::File::PutLocked(
    uint64_t index, PageRef page, bool dirty,
    std::vector<std::unique_ptr<Entry>>& retired) {
  auto e = std::make_unique<Entry>(this, index, std::move(page));
  e->dirty.store(dirty, std::memory_order_relaxed);
  Entry* raw = e.get();
  std::unique_ptr<Entry>& cell = pages_[index];
  // A new version of a dirty page keeps its place in dirty_ (its age).
  DirtyLink* young_end = &dirty_;
  if (cell != nullptr && cell->dirty.load(std::memory_order_relaxed)) {
    young_end = cell.get();
  }
  if (cell != nullptr) retired.push_back(std::move(cell));
  cell = std::move(e);
  cache_->counters_.pages.fetch_add(1, std::memory_order_relaxed);
  if (dirty) {
    LinkDirtyLocked(raw, young_end);
    cache_->counters_.dirty_pages.fetch_add(1, std::memory_order_relaxed);
    if (dirty_count_++ == 0 &&
        dirty_since_ns_.load(std::memory_order_relaxed) == 0) {
      dirty_since_ns_.store(MonoCoarseNowNs(), std::memory_order_relaxed);
    }
  }
  return raw;
}

void PageCache::File::DropLocked(PageMap::iterator first,
                                 PageMap::iterator last) {
  std::vector<std::unique_ptr<Entry>> gone;
  std::vector<Entry*> raw;
  for (auto it = first; it != last; ++it) {
    raw.push_back(it->second.get());
    gone.push_back(std::move(it->second));
  }
  pages_.erase(first, last);
  cache_->UpdateLru(raw, {});
  cache_->Retire(gone);
}

void PageCache::File::DropCleanLocked(uint64_t first, uint64_t stop) {
  std::vector<std::unique_ptr<Entry>> gone;
  std::vector<Entry*> raw;
  for (auto it = pages_.lower_bound(first);
       it != pages_.end() && it->first < stop;) {
    if (it->second->dirty.load(std::memory_order_relaxed)) {
      ++it;
      continue;
    }
    raw.push_back(it->second.get());
    gone.push_back(std::move(it->second));
    it = pages_.erase(it);
  }
  cache_->UpdateLru(raw, {});
  cache_->Retire(gone);
}

void PageCache::File::AddDirtyPages(int64_t delta) {
  if (delta > 0) {
    cache_->counters_.dirty_pages.fetch_add(static_cast<uint64_t>(delta),
                                            std::memory_order_relaxed);
  } else if (delta < 0) {
    cache_->counters_.dirty_pages.fetch_sub(static_cast<uint64_t>(-delta),
                                            std::memory_order_relaxed);
  }
}

void PageCache::File::SetDirtyLocked(Entry* e, bool dirty, int64_t* batch) {
  if (e->dirty.load(std::memory_order_relaxed) == dirty) return;
  e->dirty.store(dirty, std::memory_order_relaxed);
  if (batch == nullptr) {
    AddDirtyPages(dirty ? 1 : -1);
  } else {
    *batch += dirty ? 1 : -1;
  }
  if (dirty) {
    LinkDirtyLocked(e, &dirty_);
    if (dirty_count_++ == 0 &&
        dirty_since_ns_.load(std::memory_order_relaxed) == 0) {
      dirty_since_ns_.store(MonoCoarseNowNs(), std::memory_order_relaxed);
    }
  } else {
    UnlinkDirtyLocked(e);
    if (--dirty_count_ == 0) {
      dirty_since_ns_.store(0, std::memory_order_relaxed);
      unwritten_mtime_ns_.store(0, std::memory_order_relaxed);
    }
  }
}

absl::Status PageCache::File::FillLocked(uint64_t first,
                                         absl::Span<PageRef> pages) {
  std::vector<iovec> iov;
  iov.reserve(pages.size());
  for (PageRef& p : pages) iov.push_back({p.data(), kPageSize});
  const uint64_t base = first * kPageSize;
  absl::StatusOr<uint64_t> n = PreadvAll(fd_.get(), std::move(iov), base);
  if (!n.ok()) return n.status();
  // Zero what the file did not have, and anything past the logical size.
  const uint64_t valid =
      std::min<uint64_t>(*n, size_ > base ? size_ - base : 0);
  for (size_t i = 0; i < pages.size(); ++i) {
    const uint64_t start = i * kPageSize;
    if (valid >= start + kPageSize) continue;
    const size_t keep = valid > start ? static_cast<size_t>(valid - start) : 0;
    std::memset(pages[i].data() + keep, 0, kPageSize - keep);
  }
  return absl::OkStatus();
}

absl::Status PageCache::File::WriteBackLocked(absl::Span<Entry* const> entries,
                                              std::vector<Entry*>* failed) {
  absl::Status first_error;
  if (entries.empty()) return first_error;
  NoteForeignChangeLocked();
  // The pwritev moves the file's mtime to now; the clients' last change was
  // earlier (unwritten_mtime_ns). Set it back after, then stamp.
  const int64_t client_mtime =
      unwritten_mtime_ns_.load(std::memory_order_relaxed);
  bool wrote = false;
  absl::Cleanup stamp = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (wrote && client_mtime != 0) {
      const struct timespec times[2] = {
          {0, UTIME_OMIT},
          {client_mtime / 1000000000, client_mtime % 1000000000}};
      // Best effort: without the right (EPERM), the disk keeps the
      // write-back's time, as before.
      (void)::futimens(fd_.get(), times);
    }
    StampFromDiskLocked();
  };
  for (size_t i = 0; i < entries.size();) {
    size_t j = i + 1;
    while (j < entries.size() && j - i < kMaxRunPages &&
           entries[j]->index == entries[j - 1]->index + 1) {
      ++j;
    }
    std::vector<iovec> iov;
    iov.reserve(j - i);
    uint64_t bytes = 0;
    for (size_t k = i; k < j; ++k) {
      const uint64_t start = entries[k]->index * kPageSize;
      // Invariant: every cached page starts below size_.
      const size_t len =
          static_cast<size_t>(std::min<uint64_t>(kPageSize, size_ - start));
      iov.push_back({entries[k]->page.data(), len});
      bytes += len;
    }
    absl::Status s =
        PwritevAll(fd_.get(), std::move(iov), entries[i]->index * kPageSize);
    ++write_gen_;  // even a failed pwrite may have changed the file
    if (s.ok()) {
      wrote = true;
      int64_t cleaned = 0;
      for (size_t k = i; k < j; ++k) {
        SetDirtyLocked(entries[k], false, &cleaned);
      }
      AddDirtyPages(cleaned);
      cache_->counters_.writebacks_bytes.fetch_add(bytes,
                                                   std::memory_order_relaxed);
    } else {
      // Part of the run may have reached the file: the caller decides what
      // the cache keeps (DiscardFailedLocked, or a stable write's roll-back).
      failed->insert(failed->end(), entries.begin() + static_cast<ptrdiff_t>(i),
                     entries.begin() + static_cast<ptrdiff_t>(j));
      if (first_error.ok()) first_error = s;
    }
    i = j;
  }
  return first_error;
}

size_t PageCache::File::DiscardFailedLocked(absl::Span<Entry* const> failed,
                                            const absl::Status& error,
                                            bool keep) {
  if (failed.empty()) return 0;
  if (keep && error_.ok()) error_ = error;
  std::vector<std::unique_ptr<Entry>> gone;
  std::vector<Entry*> raw;
  for (Entry* e : failed) {
    auto it = pages_.find(e->index);
    if (it == pages_.end() || it->second.get() != e) continue;
    raw.push_back(e);
    gone.push_back(std::move(it->second));
    pages_.erase(it);
  }
  cache_->counters_.writeback_failed_pages.fetch_add(gone.size(),
                                                     std::memory_order_relaxed);
  cache_->UpdateLru(raw, {});
  size_t n = gone.size();
  cache_->Retire(gone);
  return n + FixSizeLocked(size_);
}

size_t PageCache::File::FixSizeLocked(uint64_t clip, const struct stat* disk) {
  // The size is what the file holds, or what the remaining dirty pages
  // (not yet written) extend it to.
  uint64_t dirty_end = 0;
  for (auto it = pages_.rbegin(); it != pages_.rend(); ++it) {
    if (it->second->dirty.load(std::memory_order_relaxed)) {
      dirty_end = std::min(clip, (it->first + 1) * kPageSize);
      break;
    }
  }
  struct stat st;
  if (disk != nullptr) {
    st = *disk;
  } else if (::fstat(fd_.get(), &st) != 0) {
    return 0;  // keep the size as it is
  }
  SetSizeLocked(std::max(static_cast<uint64_t>(st.st_size), dirty_end));
  // Clean pages past it (e.g. holes read as zeros before the failed pages
  // extended the file) go too, so that every page starts below size_.
  auto first_gone = pages_.lower_bound((size_ + kPageSize - 1) / kPageSize);
  const size_t n = static_cast<size_t>(std::distance(first_gone, pages_.end()));
  DropLocked(first_gone, pages_.end());
  return n;
}

void PageCache::File::LinkDirtyLocked(Entry* e, DirtyLink* before) {
  DirtyLink* link = e;
  link->prev = before->prev;
  link->next = before;
  before->prev->next = link;
  before->prev = link;
}

void PageCache::File::UnlinkDirtyLocked(Entry* e) {
  DirtyLink* link = e;
  link->prev->next = link->next;
  link->next->prev = link->prev;
  link->prev = link->next = link;
}

std::vector<PageCache::Entry*> PageCache::File::DirtyEntriesLocked() const {
  std::vector<Entry*> out;
  out.reserve(dirty_count_);
  for (const DirtyLink* l = dirty_.next; l != &dirty_; l = l->next) {
    out.push_back(static_cast<Entry*>(const_cast<DirtyLink*>(l)));
  }
  std::sort(out.begin(), out.end(),
            [](const Entry* a, const Entry* b) { return a->index < b->index; });
  return out;
}

absl::Status PageCache::File::CleanLocked(absl::Span<Entry* const> dirty) {
  std::vector<Entry*> failed;
  absl::Status s = WriteBackLocked(dirty, &failed);
  if (!s.ok()) DiscardFailedLocked(failed, s, /*keep=*/true);
  return s;
}

size_t PageCache::File::CleanOldest(size_t want, absl::Status* error) {
  absl::MutexLock l(&mu_);
  std::vector<Entry*> dirty;
  dirty.reserve(std::min(want, dirty_count_));
  for (DirtyLink* l = dirty_.next; l != &dirty_ && dirty.size() < want;
       l = l->next) {
    dirty.push_back(static_cast<Entry*>(l));
  }
  // By index, so that runs coalesce into one pwritev each.
  std::sort(dirty.begin(), dirty.end(),
            [](const Entry* a, const Entry* b) { return a->index < b->index; });
  absl::Status s = CleanLocked(dirty);
  if (!s.ok() && error->ok()) *error = s;
  return dirty.size();  // each one is clean now, or gone
}

void PageCache::File::NoteWriteBehindLocked(uint64_t offset, uint64_t end) {
  const size_t want = cache_->write_behind_pages_;
  if (want == 0 || end <= offset) return;
  // A write that does not start where the last one ended starts a new run,
  // at its first whole page.
  if (offset != run_next_) run_first_ = (offset + kPageSize - 1) / kPageSize;
  run_next_ = end;
  const uint64_t run_end = end / kPageSize;  // past the last whole page
  if (run_end < run_first_ + want) return;
  if (behind_end_ == 0) {
    behind_first_ = run_first_;
    behind_end_ = run_end;
    absl::MutexLock l(&cache_->behind_mu_);
    cache_->behind_.push_back(weak_from_this());
  } else {  // queued already: one range covering both
    behind_first_ = std::min(behind_first_, run_first_);
    behind_end_ = std::max(behind_end_, run_end);
  }
  run_first_ = run_end;
}

size_t PageCache::File::WriteBehindSome(size_t max_pages, absl::Status* error,
                                        bool* more) {
  absl::MutexLock l(&mu_);
  *more = false;
  if (behind_end_ == 0) return 0;
  if (released_) {
    behind_end_ = 0;
    return 0;
  }
  std::vector<Entry*> dirty;
  dirty.reserve(std::min<uint64_t>(max_pages, behind_end_ - behind_first_));
  auto it = pages_.lower_bound(behind_first_);
  for (; it != pages_.end() && it->first < behind_end_ &&
         dirty.size() < max_pages;
       ++it) {
    if (it->second->dirty.load(std::memory_order_relaxed)) {
      dirty.push_back(it->second.get());
    }
  }
  if (it == pages_.end() || it->first >= behind_end_) {
    behind_end_ = 0;  // the whole range is done
  } else {
    behind_first_ = it->first;
    *more = true;
  }
  if (absl::Status s = CleanLocked(dirty); !s.ok() && error->ok()) {
    *error = std::move(s);
  }
  return dirty.size();
}

size_t PageCache::File::CleanCandidates(absl::Span<const Candidate> cands) {
  absl::MutexLock l(&mu_);
  std::vector<Entry*> dirty;
  for (const Candidate& c : cands) {
    auto it = pages_.find(c.index);
    if (it == pages_.end()) continue;
    Entry* e = it->second.get();
    if (e->page.get() != c.page || !e->dirty.load(std::memory_order_relaxed)) {
      continue;
    }
    dirty.push_back(e);
  }
  std::sort(dirty.begin(), dirty.end(),
            [](const Entry* a, const Entry* b) { return a->index < b->index; });
  CleanLocked(dirty).IgnoreError();  // kept for this file's next Commit
  return dirty.size();
}

size_t PageCache::File::EvictCandidates(absl::Span<const Candidate> cands,
                                        size_t max_evict, absl::Status* error,
                                        IoMode mode) {
  MaybeLock l(&mu_, mode);
  if (!l.locked()) return 0;
  struct Victim {
    uint64_t index;
    const Entry* entry;  // compared, never dereferenced after write-back
  };
  std::vector<Victim> victims;
  std::vector<Entry*> dirty;
  for (const Candidate& c : cands) {
    auto it = pages_.find(c.index);
    if (it == pages_.end()) continue;
    Entry* e = it->second.get();
    // Under this lock nobody can take a new reference, so use_count() == 1
    // means only the cache holds the page.
    if (e->page.get() != c.page || e->page.use_count() != 1) continue;
    // Dirtied since it was chosen: no write-back without blocking.
    if (mode == IoMode::kNoBlock && e->dirty.load(std::memory_order_relaxed)) {
      continue;
    }
    victims.push_back(Victim{c.index, e});
    if (e->dirty.load(std::memory_order_relaxed)) dirty.push_back(e);
  }
  size_t dropped = 0;
  if (!dirty.empty()) {
    std::sort(dirty.begin(), dirty.end(), [](const Entry* a, const Entry* b) {
      return a->index < b->index;
    });
    std::vector<Entry*> failed;
    absl::Status s = WriteBackLocked(dirty, &failed);
    if (!s.ok()) {
      if (error->ok()) *error = s;
      // Pages that cannot be written must not stay as dirty pages nobody
      // can evict: they go, and the error waits for the next Commit.
      dropped = DiscardFailedLocked(failed, s, /*keep=*/true);
    }
  }
  std::vector<std::unique_ptr<Entry>> gone;
  std::vector<Entry*> raw;
  const size_t limit = max_evict > dropped ? max_evict - dropped : 0;
  for (const Victim& v : victims) {
    if (gone.size() >= limit) break;
    auto it = pages_.find(v.index);
    if (it == pages_.end() || it->second.get() != v.entry) continue;
    if (it->second->dirty.load(std::memory_order_relaxed)) continue;
    raw.push_back(it->second.get());
    gone.push_back(std::move(it->second));
    pages_.erase(it);
  }
  cache_->UpdateLru(raw, {});
  const size_t n = gone.size();
  cache_->Retire(gone);
  return n + dropped;
}

absl::StatusOr<CachedRead> PageCache::File::Read(uint64_t offset, uint64_t len,
                                                 IoMode mode) {
  if (absl::Status s = CheckDiskIfDue(); !s.ok()) return s;
  CachedRead out;
  absl::Status status = cache_->WithSparePages(
      mode, "read lost its pages",
      [&](std::vector<PageRef>& spare) -> SpareAttempt {
        MaybeLock l(&mu_, mode);
        if (!l.locked()) return SpareAttempt::Done(WouldBlockError());
        if (released_) return SpareAttempt::Done(FileReleasedError());
        RefreshIfStaleLocked();
        if (offset >= size_ || len == 0) {
          out.eof = offset >= size_;
          return SpareAttempt::Done();
        }
        const uint64_t end = len > size_ - offset ? size_ : offset + len;
        const uint64_t first = offset / kPageSize;
        const uint64_t last = (end - 1) / kPageSize;
        const size_t npages = static_cast<size_t>(last - first + 1);
        size_t present = 0;
        for (auto it = pages_.lower_bound(first);
             it != pages_.end() && it->first <= last; ++it) {
          ++present;
        }
        const size_t need = npages - present;
        if (need > 0 && mode == IoMode::kNoBlock) {
          // A miss is a pread (`spare` is empty).
          return SpareAttempt::Done(WouldBlockError());
        }
        if (cache_->TopUp(spare, need)) {
          // Read the missing runs first: an error leaves the cache unchanged.
          size_t used = 0;
          auto it = pages_.lower_bound(first);
          for (uint64_t idx = first; idx <= last;) {
            if (it != pages_.end() && it->first == idx) {
              ++it;
              ++idx;
              continue;
            }
            uint64_t run_end = idx;  // exclusive
            while (run_end <= last &&
                   (it == pages_.end() || it->first != run_end))
              ++run_end;
            absl::Status s = FillLocked(
                idx, absl::MakeSpan(spare.data() + used, run_end - idx));
            if (!s.ok()) return SpareAttempt::Done(s);
            used += static_cast<size_t>(run_end - idx);
            idx = run_end;
          }
          // Install them and collect the slices.
          std::vector<std::unique_ptr<Entry>> retired;  // stays empty
          absl::InlinedVector<Entry*, 16> touched;  // no allocation to 64 KiB
          touched.reserve(npages);
          out.slices.reserve(npages);
          used = 0;
          it = pages_.lower_bound(first);
          for (uint64_t idx = first; idx <= last; ++idx) {
            Entry* e;
            if (it != pages_.end() && it->first == idx) {
              e = it->second.get();
              ++it;
            } else {
              e = PutLocked(idx, std::move(spare[used++]), false, retired);
              it = pages_.upper_bound(idx);  // the insertion moved entries
            }
            touched.push_back(e);
            const uint64_t pstart = idx * kPageSize;
            const uint64_t from = std::max(offset, pstart);
            const uint64_t to = std::min(end, pstart + kPageSize);
            out.slices.push_back(PageSlice{e->page.Share(),
                                           static_cast<uint32_t>(from - pstart),
                                           static_cast<uint32_t>(to - from)});
          }
          cache_->UpdateLru({}, touched);
          cache_->counters_.hits.fetch_add(present, std::memory_order_relaxed);
          cache_->counters_.misses.fetch_add(need, std::memory_order_relaxed);
          out.bytes = end - offset;
          out.eof = end == size_;
          spare.erase(spare.begin(),
                      spare.begin() + static_cast<ptrdiff_t>(used));
          return SpareAttempt::Done();
        }
        return SpareAttempt::Short(need);
      });
  if (!status.ok()) return status;
  return out;
}

absl::Status PageCache::File::Write(uint64_t offset,
                                    absl::Span<const std::byte> data,
                                    Stability stable, IoMode mode) {
  if (!writable_) {
    return absl::PermissionDeniedError(
        "page cache: write to a file opened read-only");
  }
  if (data.size() > max_file_size_ || offset > max_file_size_ - data.size()) {
    // (offset + size may overflow: report the saturated end.)
    const uint64_t end = offset > ~uint64_t{0} - data.size()
                             ? ~uint64_t{0}
                             : offset + data.size();
    return FileTooLargeError(end, max_file_size_);
  }
  // A stable write is a pwrite and an fsync.
  if (mode == IoMode::kNoBlock && stable != Stability::kUnstable) {
    return WouldBlockError();
  }
  if (absl::Status s = CheckDiskIfDue(); !s.ok()) return s;
  if (stable == Stability::kUnstable && GoesAround(offset, data.size())) {
    if (mode == IoMode::kNoBlock) return WouldBlockError();  // a pwrite
    if (std::optional<absl::Status> s = WriteAround(offset, data)) return *s;
  }
  const uint64_t end = offset + data.size();
  const uint64_t first = offset / kPageSize;
  const uint64_t last = data.empty() ? first : (end - 1) / kPageSize;

  // One touched page: the entry there (if cached) and whether it needs a
  // new page (not cached, or pinned: copy-on-write).
  struct Slot {
    uint64_t index;
    Entry* old;
    size_t fresh;     // index into `spare`, or kNone
    bool old_dirty;   // `old` held bytes not written yet
    size_t undo = 0;  // where its old bytes are in `undo` (through, in place)
  };
  constexpr size_t kNone = ~size_t{0};
  std::vector<PageRef> spare;
  absl::Status status;
  absl::Status earlier;      // a write-back error kept for this file
  uint64_t written_gen = 0;  // write_gen_ after the write-through
  int waits = 0;
  for (int attempt = 0;; ++attempt) {
    size_t need = 0;
    size_t dirty_short = 0;  // dirty pages over the limit
    {
      MaybeLock l(&mu_, mode);
      if (!l.locked()) {
        status = WouldBlockError();
        break;
      }
      if (released_) {
        status = FileReleasedError();
        break;
      }
      RefreshIfStaleLocked();
      std::vector<Slot> plan;
      bool rmw = false;      // a page must be read first
      size_t new_dirty = 0;  // pages this write makes dirty
      if (!data.empty()) {
        plan.reserve(static_cast<size_t>(last - first + 1));
        auto it = pages_.lower_bound(first);
        for (uint64_t idx = first; idx <= last; ++idx) {
          Entry* old = nullptr;
          if (it != pages_.end() && it->first == idx) {
            old = it->second.get();
            ++it;
          }
          // Pinned (or conservatively so: a reference being dropped right
          // now on another thread only makes us copy needlessly).
          const bool fresh = old == nullptr || old->page.use_count() > 1;
          plan.push_back(Slot{
              idx, old, fresh ? need++ : kNone,
              old != nullptr && old->dirty.load(std::memory_order_relaxed)});
          if (!plan.back().old_dirty) ++new_dirty;
          const uint64_t pstart = idx * kPageSize;
          if (old == nullptr && pstart < size_ &&
              (offset > pstart || end < pstart + kPageSize)) {
            rmw = true;
          }
        }
      }
      // A stable write goes through to the file before Write returns; so
      // does an unstable one that alone needs more than the dirty limit.
      const bool through = stable != Stability::kUnstable ||
                           new_dirty > cache_->max_dirty_pages_;
      if (mode == IoMode::kNoBlock &&
          (rmw || through ||
           (new_dirty > 0 && cache_->counters_.dirty_pages.load() + new_dirty >
                                 cache_->max_dirty_pages_))) {
        // A pread, a write-through, or a write-back to make room first.
        status = WouldBlockError();
        break;
      }
      // What an unstable write adds to the dirty pages is counted against
      // the limit before anything changes (and given back once its pages
      // count themselves).
      size_t charged = 0;
      if (!through && new_dirty > 0 && cache_->TopUp(spare, need)) {
        if (cache_->ChargeDirty(new_dirty)) {
          charged = new_dirty;
        } else {
          const uint64_t want =
              cache_->counters_.dirty_pages.load() + new_dirty;
          dirty_short = static_cast<size_t>(
              want > cache_->max_dirty_pages_ ? want - cache_->max_dirty_pages_
                                              : 1);
        }
      }
      absl::Cleanup uncharge = [&] {
        if (charged != 0) cache_->counters_.dirty_pages.fetch_sub(charged);
      };
      if (dirty_short != 0 && mode == IoMode::kNoBlock) {
        status = WouldBlockError();  // lost a race for the last dirty room
        break;
      }
      if (dirty_short == 0 && cache_->TopUp(spare, need)) {
        // Phase 1: prepare the new pages. Nothing visible changes, so an
        // error here leaves the file as it was.
        for (const Slot& s : plan) {
          if (s.fresh == kNone) continue;
          PageRef& p = spare[s.fresh];
          const uint64_t pstart = s.index * kPageSize;
          const bool whole = offset <= pstart && end >= pstart + kPageSize;
          if (whole) continue;  // every byte is overwritten below
          if (s.old != nullptr) {
            std::memcpy(p.data(), s.old->page.data(), kPageSize);
          } else if (pstart >= size_) {
            std::memset(p.data(), 0, kPageSize);
          } else {
            status = FillLocked(s.index, absl::MakeSpan(&p, 1));  // RMW
            if (!status.ok()) break;
          }
        }
        if (!status.ok()) break;
        // Phase 2: apply. A write-through keeps what it replaces (old
        // entries in `retired`, old bytes of dirty pages changed in place
        // in `undo`) until the file has taken it.
        const uint64_t prev_size = size_;
        std::vector<std::unique_ptr<Entry>> retired;
        std::vector<Entry*> touched;
        std::vector<std::byte> undo;
        touched.reserve(plan.size());
        uint64_t cows = 0;
        size_t own_dirty = 0;  // pages of this write dirty before it
        for (const Slot& s : plan) own_dirty += s.old_dirty ? 1 : 0;
        // A write-through of a file with no other dirty page leaves its
        // time on disk; otherwise GETATTR and write-backs use this one.
        unwritten_mtime_ns_.store(
            !through || dirty_count_ > own_dirty
                ? std::max(unwritten_mtime_ns_.load(std::memory_order_relaxed),
                           RealNowNs())
                : 0,
            std::memory_order_relaxed);
        int64_t dirtied = 0;  // pages changed in place that were clean
        for (Slot& s : plan) {
          const uint64_t pstart = s.index * kPageSize;
          const uint64_t from = std::max(offset, pstart);
          const uint64_t to = std::min(end, pstart + kPageSize);
          std::byte* dst =
              s.fresh != kNone ? spare[s.fresh].data() : s.old->page.data();
          if (through && s.fresh == kNone && s.old_dirty) {
            s.undo = undo.size();
            undo.insert(undo.end(), dst + (from - pstart), dst + (to - pstart));
          }
          std::memcpy(dst + (from - pstart), data.data() + (from - offset),
                      static_cast<size_t>(to - from));
          if (s.fresh != kNone) {
            if (s.old != nullptr) ++cows;
            touched.push_back(
                PutLocked(s.index, std::move(spare[s.fresh]), true, retired));
          } else {
            SetDirtyLocked(s.old, true, &dirtied);
            touched.push_back(s.old);
          }
        }
        AddDirtyPages(dirtied);
        if (!data.empty()) SetSizeLocked(std::max(size_, end));
        cache_->counters_.cow_copies.fetch_add(cows, std::memory_order_relaxed);
        if (!through) {
          NoteWriteBehindLocked(offset, end);
          std::vector<Entry*> gone;
          gone.reserve(retired.size());
          for (const auto& e : retired) gone.push_back(e.get());
          cache_->UpdateLru(gone, touched);
          cache_->Retire(retired);  // old versions live on in their pins
          break;
        }
        cache_->UpdateLru({}, touched);
        // Phase 3: write through (under the lock, so write-backs of one
        // page reach the file in the order of the versions).
        std::vector<Entry*> failed;
        status = WriteBackLocked(touched, &failed);
        if (!failed.empty()) {
          // READ must not serve what the file did not take, nor GETATTR
          // report the size it would have had. A failed page goes back to
          // the version it replaced if that one was dirty (the only copy of
          // an earlier unstable write); otherwise it leaves the cache, and
          // a READ reads what the file holds. Pages written stay, clean.
          std::vector<std::unique_ptr<Entry>> dropped;
          for (Entry* e : failed) {
            Slot& s = plan[static_cast<size_t>(e->index - first)];
            auto it = pages_.find(s.index);
            if (s.fresh == kNone && s.old_dirty) {  // changed in place
              const uint64_t pstart = s.index * kPageSize;
              const uint64_t from = std::max(offset, pstart);
              const uint64_t to = std::min(end, pstart + kPageSize);
              std::memcpy(e->page.data() + (from - pstart),
                          undo.data() + s.undo, static_cast<size_t>(to - from));
              continue;  // still dirty
            }
            dropped.push_back(std::move(it->second));
            pages_.erase(it);
            if (s.fresh != kNone && s.old_dirty) {
              for (std::unique_ptr<Entry>& r : retired) {
                if (r.get() == s.old) {
                  pages_[s.index] = std::move(r);  // still in the LRU list
                  break;
                }
              }
            }
          }
          for (std::unique_ptr<Entry>& r : retired) {
            if (r != nullptr) dropped.push_back(std::move(r));
          }
          retired.swap(dropped);
        }
        // Unlink and drop the versions replaced (or failed).
        std::vector<Entry*> gone;
        gone.reserve(retired.size());
        for (const auto& e : retired) gone.push_back(e.get());
        cache_->UpdateLru(gone, {});
        cache_->Retire(retired);
        if (!failed.empty()) {
          FixSizeLocked(prev_size);
        } else if (stable != Stability::kUnstable) {
          // The write is in the file: report an earlier failed write-back
          // of this file now (once), as Commit would.
          earlier = std::exchange(error_, absl::OkStatus());
          written_gen = write_gen_;
        }
        break;
      }
    }
    if (attempt >= kMaxAttempts) {
      status = absl::ResourceExhaustedError(
          "page cache: write lost its pages to other threads too often");
      break;
    }
    if (dirty_short != 0) {
      // Over the dirty limit: write some back (this file's first) without
      // the lock, then look again. If this file's own pages cannot be
      // written, this write fails with that error (nothing of it applied;
      // the error is also kept for the next Commit).
      absl::Status own_error;
      const size_t cleaned = cache_->CleanSome(dirty_short, this, &own_error);
      if (!own_error.ok()) {
        status = own_error;
        break;
      }
      if (cleaned == 0) {
        // Every dirty page is being written or counted by another write
        // right now: those finish soon. Wait a little, a bounded number
        // of times.
        if (waits++ >= kMaxReserveWaits) {
          status = absl::ResourceExhaustedError(
              "page cache: the dirty page limit is reached and no dirty "
              "page can be written back");
          break;
        }
        std::this_thread::sleep_for(kReserveWait);
      }
      continue;
    }
    status = cache_->Reserve(need, spare, mode);
    if (!status.ok()) break;
  }
  cache_->ReturnSpare(spare);  // the unused ones; used ones are empty
  if (!status.ok() || stable == Stability::kUnstable) return status;
  // The pages reached the file before this call: syncing without the lock
  // still makes them durable.
  const bool data_only = stable == Stability::kDataSync;
  if ((data_only ? ::fdatasync(fd_.get()) : ::fsync(fd_.get())) != 0) {
    absl::Status synced = ErrnoStatus(
        errno, data_only ? "page cache: fdatasync" : "page cache: fsync");
    // This write failed on its own account; an earlier failure (maybe of
    // another client's data) is still due at the next Commit.
    absl::MutexLock l(&mu_);
    if (error_.ok()) error_ = std::move(earlier);
    return synced;
  }
  if (!data_only) {
    absl::MutexLock l(&mu_);
    synced_gen_ = std::max(synced_gen_, written_gen);
  }
  return earlier;
}

bool PageCache::File::GoesAround(uint64_t offset, uint64_t len) const {
  const size_t min = cache_->write_around_bytes_;
  if (min == 0 || len < min || offset % kPageSize != 0) return false;
  const uint64_t end = offset + len;
  return end % kPageSize == 0 || end >= size();
}

std::optional<absl::Status> PageCache::File::WriteAround(
    uint64_t offset, absl::Span<const std::byte> data) {
  const uint64_t end = offset + data.size();
  absl::MutexLock l(&mu_);
  if (released_) return FileReleasedError();
  RefreshIfStaleLocked();
  // A last page partly written and partly the file's: through the cache.
  if (end % kPageSize != 0 && end < size_) return std::nullopt;
  NoteForeignChangeLocked();
  std::vector<iovec> iov = {{const_cast<std::byte*>(data.data()), data.size()}};
  absl::Status s = PwritevAll(fd_.get(), std::move(iov), offset);
  ++write_gen_;  // the next Commit fsyncs (even after a failure: see below)
  const uint64_t first = offset / kPageSize;
  const uint64_t stop = (end + kPageSize - 1) / kPageSize;
  if (s.ok()) {
    // The file has newer bytes than every cached page of the range, dirty
    // ones included (an unstable write they held is overwritten).
    DropLocked(pages_.lower_bound(first), pages_.lower_bound(stop));
    SetSizeLocked(std::max(size_, end));
    // Pages still dirty elsewhere are written later, and their write-back
    // sets the file's mtime back to this: not older than this write.
    if (dirty_count_ > 0) {
      unwritten_mtime_ns_.store(
          std::max(unwritten_mtime_ns_.load(std::memory_order_relaxed),
                   RealNowNs()),
          std::memory_order_relaxed);
    }
    // A write-behind run continues after it.
    run_next_ = end;
    run_first_ = stop;
    cache_->counters_.write_around_pages.fetch_add(stop - first,
                                                   std::memory_order_relaxed);
    cache_->counters_.writebacks_bytes.fetch_add(data.size(),
                                                 std::memory_order_relaxed);
    StampFromDiskLocked();
    return s;
  }
  // The file may hold part of the write: the range's clean pages no longer
  // say what it holds. Dirty ones stay (an earlier unstable write, still to
  // be written over whatever this one left).
  DropCleanLocked(first, stop);
  FixSizeLocked(size_);
  StampFromDiskLocked();
  return s;
}

absl::Status PageCache::File::WriteBack() {
  absl::Status error;
  CleanOldest(~size_t{0}, &error);
  return error;
}

absl::Status PageCache::File::Commit(IoMode mode) {
  absl::Status first;
  uint64_t gen = 0;
  {
    MaybeLock l(&mu_, mode);
    if (!l.locked()) return WouldBlockError();
    // Data written since may be in the File that replaced this one.
    if (released_) return FileReleasedError();
    if (!writable_) return absl::OkStatus();  // nothing can be dirty
    if (mode == IoMode::kNoBlock &&
        (dirty_count_ != 0 || write_gen_ != synced_gen_)) {
      return WouldBlockError();  // a write-back or an fsync to do
    }
    // A write-back that failed since the last Commit is reported now, once.
    first = std::exchange(error_, absl::OkStatus());
    if (dirty_count_ != 0) {
      std::vector<Entry*> failed;
      absl::Status s = WriteBackLocked(DirtyEntriesLocked(), &failed);
      if (!s.ok()) {
        DiscardFailedLocked(failed, s, /*keep=*/false);
        if (first.ok()) first = s;
      }
    }
    if (write_gen_ == synced_gen_) return first;  // nothing to sync
    gen = write_gen_;
  }
  // Without the lock: what was written before is made durable all the same.
  if (::fsync(fd_.get()) != 0) {
    if (first.ok()) first = ErrnoStatus(errno, "page cache: fsync");
  } else {
    absl::MutexLock l(&mu_);
    synced_gen_ = std::max(synced_gen_, gen);
  }
  return first;
}

absl::Status PageCache::File::SetTimes(const struct timespec times[2]) {
  if (absl::Status s = CheckDiskIfDue(); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  if (released_) return FileReleasedError();
  RefreshIfStaleLocked();
  // Under the lock, so that no write-back of this File lands between the
  // dirty pages' and the times'. A failed one is kept for the next Commit.
  if (times[1].tv_nsec != UTIME_OMIT) {
    // The time set replaces the WRITEs': none is put back after this.
    unwritten_mtime_ns_.store(0, std::memory_order_relaxed);
    if (dirty_count_ != 0) CleanLocked(DirtyEntriesLocked()).IgnoreError();
  }
  NoteForeignChangeLocked();
  if (::futimens(fd_.get(), times) != 0) {
    return ErrnoStatus(errno, "page cache: futimens");
  }
  StampFromDiskLocked();  // our own change: the clean pages stay valid
  return absl::OkStatus();
}

absl::Status PageCache::File::Truncate(uint64_t size, IoMode mode) {
  if (!writable_) {
    return absl::PermissionDeniedError(
        "page cache: truncate of a file opened read-only");
  }
  if (size > max_file_size_) return FileTooLargeError(size, max_file_size_);
  if (mode == IoMode::kNoBlock) return WouldBlockError();  // ftruncate
  if (absl::Status s = CheckDiskIfDue(); !s.ok()) return s;
  const uint64_t tail = size % kPageSize;
  const uint64_t tail_index = size / kPageSize;
  return cache_->WithSparePages(
      IoMode::kMayBlock, "truncate lost its page",
      [&](std::vector<PageRef>& spare) -> SpareAttempt {
        absl::MutexLock l(&mu_);
        if (released_) return SpareAttempt::Done(FileReleasedError());
        RefreshIfStaleLocked();
        Entry* partial = nullptr;
        if (tail != 0 && size < size_) {
          auto it = pages_.find(tail_index);
          if (it != pages_.end()) partial = it->second.get();
        }
        const bool cow = partial != nullptr && partial->page.use_count() > 1;
        const size_t need = cow ? 1 : 0;
        if (cache_->TopUp(spare, need)) {
          NoteForeignChangeLocked();
          if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
            return SpareAttempt::Done(
                ErrnoStatus(errno, "page cache: ftruncate"));
          }
          ++write_gen_;
          StampFromDiskLocked();
          DropLocked(pages_.lower_bound((size + kPageSize - 1) / kPageSize),
                     pages_.end());
          // The truncate is the latest change: a later write-back of pages
          // still dirty puts its time back, not an older WRITE's.
          unwritten_mtime_ns_.store(
              dirty_count_ != 0 ? disk_mtime_ns_.load(std::memory_order_relaxed)
                                : 0,
              std::memory_order_relaxed);
          if (partial != nullptr) {
            if (cow) {
              PageRef& p = spare[0];
              std::memcpy(p.data(), partial->page.data(), tail);
              std::memset(p.data() + tail, 0, kPageSize - tail);
              std::vector<std::unique_ptr<Entry>> retired;
              Entry* e = PutLocked(tail_index, std::move(p),
                                   partial->dirty.load(), retired);
              cache_->UpdateLru({partial}, {e});
              cache_->Retire(retired);
              cache_->counters_.cow_copies.fetch_add(1,
                                                     std::memory_order_relaxed);
            } else {
              std::memset(partial->page.data() + tail, 0, kPageSize - tail);
            }
          }
          SetSizeLocked(size);
          return SpareAttempt::Done();
        }
        return SpareAttempt::Short(need);
      });
}

}  // namespace txbuf
