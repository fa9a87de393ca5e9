#include "server/fs/export.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "common/open_beneath.h"

namespace txbuf::server {
namespace {

constexpr char kHandleMagic[4] = {'T', 'X', 'H', '\x01'};
// magic (4), export id (8), epoch (8), node id (8).
constexpr size_t kHandleSize = 28;
// Deepest directory the subtree check walks before giving up (STALE).
constexpr int kMaxDepth = 4096;
// Nodes whose parent chain is longer than this are not found again by name.
constexpr int kMaxReopenDepth = 256;
// The longest symlink target SYMLINK takes (PATH_MAX less the NUL).
constexpr size_t kMaxSymlinkTarget = 4095;
// Descriptor eviction looks at this many LRU nodes per call at most.
constexpr int kMaxEvictScan = 256;

// Every resolution of the export: confined beneath `dirfd`
// (common/open_beneath.h; `resolve` is always kBeneath, what it does).
int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t mode,
            [[maybe_unused]] uint64_t resolve) {
  return OpenBeneath(dirfd, path, static_cast<int>(flags),
                     static_cast<mode_t>(mode));
}

constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

std::string ProcPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

FileType TypeOf(mode_t m) {
  if (S_ISREG(m)) return FileType::kRegular;
  if (S_ISDIR(m)) return FileType::kDirectory;
  if (S_ISLNK(m)) return FileType::kSymlink;
  return FileType::kOther;
}

int64_t Ns(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

FileKey KeyOf(const struct stat& st) { return {st.st_dev, st.st_ino}; }

// An error for a failed resolution of `what` beneath the export.
absl::Status ResolveError(int err, absl::string_view what) {
  if (err == EXDEV || err == ELOOP) {
    return FsError(FsErrorKind::kAccess,
                   absl::StrCat(what, ": path leaves the export"));
  }
  return ErrnoStatus(err, what);
}

// The node of an object CREATE, MKDIR or SYMLINK just made (or found): if
// another client removed it meanwhile, that is NOENT, not STALE (the op
// carried no handle of it).
absl::StatusOr<NodeRef> Made(absl::StatusOr<NodeRef> n) {
  if (IsStale(n.status())) {
    return FsError(FsErrorKind::kNotFound,
                   "created, then removed by another client before the reply");
  }
  return n;
}

absl::Status MovedOut() {
  return FsError(FsErrorKind::kStale,
                 "the directory is no longer beneath the export (moved out)");
}

// The kernel's handle of the file open at `fd` (type, then bytes), or "".
std::string KernelHandleOf(int fd) {
  alignas(file_handle) char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<file_handle*>(buf);
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) != 0) return "";
  std::string out(sizeof(int) + fh->handle_bytes, '\0');
  std::memcpy(out.data(), &fh->handle_type, sizeof(int));
  std::memcpy(out.data() + sizeof(int), fh->f_handle, fh->handle_bytes);
  return out;
}

// Opens (O_PATH) the file of a KernelHandleOf() string.
int OpenByKernelHandle(int mount_fd, const std::string& h) {
  if (h.size() < sizeof(int) || h.size() - sizeof(int) > MAX_HANDLE_SZ) {
    return errno = ESTALE, -1;
  }
  alignas(file_handle) char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<file_handle*>(buf);
  fh->handle_bytes = static_cast<unsigned>(h.size() - sizeof(int));
  std::memcpy(&fh->handle_type, h.data(), sizeof(int));
  std::memcpy(fh->f_handle, h.data() + sizeof(int), fh->handle_bytes);
  return open_by_handle_at(mount_fd, fh, O_PATH | O_CLOEXEC);
}

}  // namespace

absl::Status Export::CheckName(absl::string_view name) {
  if (name.empty()) return FsError(FsErrorKind::kInvalid, "empty name");
  if (name == ".") return FsError(FsErrorKind::kInvalid, "'.' is not a name");
  if (name == "..") return FsError(FsErrorKind::kInvalid, "'..' is not a name");
  if (name.size() > 255) {
    return FsError(FsErrorKind::kNameTooLong,
                   absl::StrCat("name of ", name.size(), " bytes"));
  }
  if (name.find('/') != absl::string_view::npos) {
    return FsError(FsErrorKind::kInvalid, "a name cannot contain '/'");
  }
  if (name.find('\0') != absl::string_view::npos) {
    return FsError(FsErrorKind::kInvalid, "a name cannot contain NUL");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Export>> Export::Open(const std::string& dir,
                                                     ExportOptions options) {
  std::unique_ptr<Export> ex(new Export(options));
  ex->lru_.lru_prev = ex->lru_.lru_next = &ex->lru_;
  UniqueFd fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("export ", dir));
  uint8_t epoch[8];
  RandomBytes(epoch);
  std::memcpy(&ex->epoch_, epoch, sizeof(epoch));
  struct stat root_st;
  if (fstat(fd.get(), &root_st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("export ", dir));
  }
  // The same for every instance exporting this directory: their handles
  // are STALE to each other (like a restart's), anything else BADHANDLE.
  ex->export_id_ =
      (static_cast<uint64_t>(root_st.st_dev) * 0x9e3779b97f4a7c15ULL) ^
      static_cast<uint64_t>(root_st.st_ino);
  // Finding files again by kernel handle needs CAP_DAC_READ_SEARCH: try it.
  std::string kh = KernelHandleOf(fd.get());
  if (!kh.empty()) {
    UniqueFd again(OpenByKernelHandle(fd.get(), kh));
    if (again) ex->mount_fd_ = fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
  }
  absl::StatusOr<NodeRef> root = ex->Adopt(std::move(fd), nullptr, "");
  if (!root.ok()) {
    return absl::InternalError(
        absl::StrCat("export ", dir, ": ", root.status().message()));
  }
  ex->root_ = *root;
  return ex;
}

void Export::ProbeKernelHandles() {
  if (mount_fd_ < 0) return;
  UniqueFd again(OpenByKernelHandle(mount_fd_, root_->kernel_handle));
  if (again) return;
  close(mount_fd_);
  mount_fd_ = -1;
}

Export::~Export() {
  {
    absl::MutexLock l(&mu_);
    for (Node* n = lru_.lru_next; n != &lru_;) {
      Node* next = n->lru_next;
      n->lru_prev = n->lru_next = nullptr;
      n = next;
    }
    lru_.lru_prev = lru_.lru_next = &lru_;
    by_key_.clear();
    by_id_.clear();
  }
  if (mount_fd_ >= 0) close(mount_fd_);
}

size_t Export::nodes() const {
  absl::MutexLock l(&mu_);
  return by_id_.size();
}

NodeRef Export::FindLocked(const FileKey& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  auto n = by_id_.find(it->second);
  if (n == by_id_.end() || n->second->removed.load(std::memory_order_acquire)) {
    return nullptr;
  }
  return n->second;
}

bool Export::SameFile(Node& n, int opath) {
  if (mount_fd_ >= 0 && !n.kernel_handle.empty()) {
    // The kernel handle carries the inode's generation: a new file that got
    // a removed one's inode number has another.
    return KernelHandleOf(opath) == n.kernel_handle;
  }
  FdRef fd;
  {
    absl::MutexLock l(&n.mu);
    fd = n.fd;
  }
  struct stat st;
  return fd == nullptr || fstat(fd->get(), &st) != 0 || st.st_nlink != 0;
}

void Export::Gone(Node& n) {
  n.removed.store(true, std::memory_order_release);
  {
    absl::MutexLock l(&mu_);
    if (n.in_table) DropNodeLocked(n.shared_from_this());
  }
  // Its descriptors go now, so that the file's space comes back.
  if (cache_ != nullptr) cache_->Forget(n.key);
}

// ---------------------------------------------------------------------------
// Descriptors: the LRU list and the budget.

void Export::UnlinkLruLocked(Node* n) {
  if (n->lru_next == nullptr) return;
  n->lru_prev->lru_next = n->lru_next;
  n->lru_next->lru_prev = n->lru_prev;
  n->lru_prev = n->lru_next = nullptr;
}

void Export::TouchLocked(Node* n) {
  if (!n->in_table) return;  // dropped: never linked again
  UnlinkLruLocked(n);
  n->lru_prev = lru_.lru_prev;
  n->lru_next = &lru_;
  lru_.lru_prev->lru_next = n;
  lru_.lru_prev = n;
  n->lru_stamp.store(lru_clock_.fetch_add(1, std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);
}

void Export::Touch(Node* n) {
  // A node moved to the recent end within the last budget/2 moves is still
  // in the recent half: leave it, so hot nodes take no lock (approximate
  // LRU, as in the page cache).
  const uint64_t st = n->lru_stamp.load(std::memory_order_relaxed);
  const uint64_t window = std::max<uint64_t>(16, options_.fd_budget / 2);
  if (st != 0 && lru_clock_.load(std::memory_order_relaxed) - st < window) {
    return;
  }
  absl::MutexLock l(&mu_);
  TouchLocked(n);
}

void Export::EvictFdsLocked() {
  int scanned = 0;
  Node* n = lru_.lru_next;
  while (open_fds() > options_.fd_budget && n != &lru_ &&
         scanned++ < kMaxEvictScan) {
    Node* next = n->lru_next;
    if (n != root_.get() && n->mu.TryLock()) {
      n->fd.reset();  // closes when the last operation using it lets go
      bool dirty = false;
      if (n->file != nullptr) {
        const PageCache::Release r = cache_ == nullptr
                                         ? PageCache::Release::kReleased
                                         : cache_->ReleaseIfClean(*n->file);
        if (r == PageCache::Release::kReleased) n->file.reset();
        dirty = r == PageCache::Release::kDirty;
      }
      const bool holds = n->fd != nullptr || n->file != nullptr;
      n->mu.Unlock();
      if (dirty && !n->writeback_queued) {
        // Its unwritten pages keep it open: a pool thread writes them back
        // (FlushEvicted), and it goes at the next eviction.
        n->writeback_queued = true;
        to_write_back_.push_back(n->shared_from_this());
        write_back_due_.store(true, std::memory_order_release);
      }
      if (holds) {
        TouchLocked(n);  // try others first next time
      } else {
        UnlinkLruLocked(n);
      }
    }
    n = next;
  }
}

void Export::FlushEvicted() {
  // Called after every compound a pool thread runs: nothing to do costs
  // one load.
  if (!write_back_due_.load(std::memory_order_acquire)) return;
  std::vector<NodeRef> nodes;
  {
    absl::MutexLock l(&mu_);
    write_back_due_.store(false, std::memory_order_relaxed);
    if (to_write_back_.empty()) return;
    nodes.swap(to_write_back_);
  }
  for (const NodeRef& n : nodes) {
    std::shared_ptr<PageCache::File> f;
    {
      absl::MutexLock l(&n->mu);
      f = n->file;
    }
    // A failure is kept for the file's next COMMIT (and the verifier
    // changes): nothing to do with it here.
    if (f != nullptr) f->WriteBack().IgnoreError();
    absl::MutexLock l(&mu_);
    n->writeback_queued = false;
  }
  absl::MutexLock l(&mu_);
  EvictFdsLocked();
}

void Export::InstallFd(Node& n, FdRef fd) {
  {
    absl::MutexLock l(&n.mu);
    if (n.fd != nullptr) return;
    n.fd = std::move(fd);
  }
  absl::MutexLock l(&mu_);
  if (!n.in_table) {
    // Dropped meanwhile (removed, swept): nothing would ever evict it.
    absl::MutexLock nl(&n.mu);
    n.fd.reset();
    return;
  }
  TouchLocked(&n);
  EvictFdsLocked();
}

FdRef Export::Own(UniqueFd fd) {
  opath_fds_->fetch_add(1);
  std::shared_ptr<std::atomic<size_t>> count = opath_fds_;
  return FdRef(new UniqueFd(std::move(fd)), [count](const UniqueFd* p) {
    delete p;
    count->fetch_sub(1);
  });
}

size_t Export::open_fds() const {
  return opath_fds_->load() + (cache_ != nullptr ? cache_->open_files() : 0);
}

absl::StatusOr<FdRef> Export::Fd(Node& n) {
  FdRef fd;
  {
    absl::MutexLock l(&n.mu);
    fd = n.fd;
  }
  if (fd != nullptr) {
    Touch(&n);
    return fd;
  }
  if (n.removed.load(std::memory_order_acquire)) {
    return FsError(FsErrorKind::kStale, "the file was removed");
  }
  absl::StatusOr<UniqueFd> opened = Reopen(n, 0);
  if (!opened.ok()) {
    return FsError(FsErrorKind::kStale,
                   absl::StrCat("cannot find the file again: ",
                                opened.status().message()));
  }
  fd = Own(std::move(*opened));
  InstallFd(n, fd);
  return fd;
}

absl::StatusOr<UniqueFd> Export::Reopen(Node& n, int depth) {
  if (depth > kMaxReopenDepth) {
    return absl::NotFoundError("directory chain too deep");
  }
  if (mount_fd_ >= 0 && !n.kernel_handle.empty() &&
      n.key.dev == root_->key.dev) {
    UniqueFd fd(OpenByKernelHandle(mount_fd_, n.kernel_handle));
    if (!fd) {
      const int err = errno;
      if (err == ESTALE) Gone(n);  // its inode is no more
      return ErrnoStatus(err, "open_by_handle_at");
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat");
    if (KeyOf(st) != n.key) return absl::NotFoundError("a different file");
    return fd;
  }
  NodeRef parent;
  std::string name;
  {
    absl::MutexLock l(&n.mu);
    parent = n.parent;
    name = n.name;
  }
  if (parent == nullptr) return absl::NotFoundError("no parent known");
  UniqueFd pfd;
  {
    absl::MutexLock l(&parent->mu);
    if (parent->fd != nullptr) {
      pfd.reset(fcntl(parent->fd->get(), F_DUPFD_CLOEXEC, 0));
    }
  }
  if (!pfd) {
    absl::StatusOr<UniqueFd> p = Reopen(*parent, depth + 1);
    if (!p.ok()) return p.status();
    pfd = std::move(*p);
  }
  // The name was resolved like this when the node was made: following a
  // final symlink only for nodes found by LOOKUP of a path.
  UniqueFd fd(
      OpenAt2(pfd.get(), name.c_str(), O_PATH | O_CLOEXEC, 0, kBeneath));
  if (!fd) {  // maybe a symlink's node, whose target dangles or leaves
    fd.reset(OpenAt2(pfd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC,
                     0, kBeneath));
  }
  if (!fd) return ErrnoStatus(errno, absl::StrCat("reopen '", name, "'"));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat");
  if (KeyOf(st) != n.key) {
    // Maybe it is the symlink itself that the node stands for.
    UniqueFd nf(OpenAt2(pfd.get(), name.c_str(),
                        O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
    if (nf && fstat(nf.get(), &st) == 0 && KeyOf(st) == n.key) return nf;
    return absl::NotFoundError(
        "the file was moved or replaced outside the server");
  }
  return fd;
}

absl::Status Export::CheckBeneathRoot(int fd) {
  const FileKey root = root_->key;
  UniqueFd cur(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!cur) return ErrnoStatus(errno, "dup");
  struct stat st;
  if (fstat(cur.get(), &st) != 0) return ErrnoStatus(errno, "fstat");
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    if (KeyOf(st) == root) return absl::OkStatus();
    UniqueFd up(openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!up) return ErrnoStatus(errno, "subtree check: open ..");
    struct stat ust;
    if (fstat(up.get(), &ust) != 0) return ErrnoStatus(errno, "fstat");
    if (KeyOf(ust) == KeyOf(st)) return MovedOut();  // reached "/"
    cur = std::move(up);
    st = ust;
  }
  return MovedOut();
}

absl::StatusOr<FdRef> Export::DirFd(Node& dir) {
  if (!dir.is_dir) return FsError(FsErrorKind::kNotDir, "not a directory");
  absl::StatusOr<FdRef> fd = Fd(dir);
  if (!fd.ok() || &dir == root_.get()) return fd;
  if (absl::Status e = CheckBeneathRoot((*fd)->get()); !e.ok()) return e;
  return fd;
}

// ---------------------------------------------------------------------------
// The node table.

void Export::SweepLocked() {
  // Drop the least recently used half of the nodes no operation is using
  // and whose file is not open (an open file's node stays until its
  // descriptor is evicted). Their handles become STALE: the price of a
  // bounded table (like NFSv4 volatile handles).
  std::vector<std::pair<uint64_t, NodeRef>> idle;
  for (const auto& [id, n] : by_id_) {
    if (n.use_count() != 1 || n == root_ || !n->mu.TryLock()) continue;
    const bool open = n->file != nullptr;
    n->mu.Unlock();
    if (!open) idle.emplace_back(n->lru_stamp.load(), n);
  }
  const size_t drop = (idle.size() + 1) / 2;
  std::nth_element(
      idle.begin(), idle.begin() + static_cast<ptrdiff_t>(drop), idle.end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < drop && i < idle.size(); ++i) {
    DropNodeLocked(idle[i].second);
  }
}

void Export::DropNodeLocked(const NodeRef& n) {
  UnlinkLruLocked(n.get());
  n->in_table = false;
  auto k = by_key_.find(n->key);
  if (k != by_key_.end() && k->second == n->id) by_key_.erase(k);
  by_id_.erase(n->id);
  // Its descriptors go with it (an operation using one keeps it until done).
  absl::MutexLock l(&n->mu);
  n->fd.reset();
  n->file.reset();
  n->parent.reset();
}

absl::StatusOr<NodeRef> Export::Adopt(UniqueFd opath, const NodeRef& parent,
                                      absl::string_view name) {
  struct stat st;
  if (fstat(opath.get(), &st) != 0) return ErrnoStatus(errno, "fstat");
  if (st.st_nlink == 0 && !S_ISDIR(st.st_mode)) {
    return FsError(FsErrorKind::kStale, "the file was removed");
  }
  const FileKey key = KeyOf(st);
  NodeRef n;
  {
    absl::MutexLock l(&mu_);
    n = FindLocked(key);
  }
  if (n != nullptr && !SameFile(*n, opath.get())) {
    Gone(*n);  // a removed file whose inode number this one reuses
    n = nullptr;
  }
  if (n != nullptr) {
    {
      absl::MutexLock l(&n->mu);
      if (parent != nullptr) {
        n->parent = parent;
        n->name.assign(name.data(), name.size());
      }
    }
    // If the node gave its descriptor back earlier, it takes this one.
    InstallFd(*n, Own(std::move(opath)));
    Touch(n.get());
    return n;
  }
  auto fresh = std::make_shared<Node>();
  fresh->key = key;
  fresh->is_dir = S_ISDIR(st.st_mode);
  fresh->is_regular = S_ISREG(st.st_mode);
  if (mount_fd_ >= 0) fresh->kernel_handle = KernelHandleOf(opath.get());
  {
    absl::MutexLock nl(&fresh->mu);
    fresh->fd = Own(std::move(opath));
    fresh->parent = parent;
    fresh->name.assign(name.data(), name.size());
  }
  {
    absl::MutexLock l(&mu_);
    if (NodeRef raced = FindLocked(key)) {
      // Another thread made it meanwhile; ours closes with `fresh`.
      return raced;
    }
    if (by_id_.size() >= options_.max_nodes) SweepLocked();
    fresh->id = next_id_++;
    by_id_[fresh->id] = fresh;
    by_key_[key] = fresh->id;
    fresh->in_table = true;
    TouchLocked(fresh.get());
    EvictFdsLocked();
  }
  // A REMOVE between the fstat above and the insertion did not find the
  // node to drop: look at the links again, now that it is in the table.
  if (!fresh->is_dir) {
    if (absl::StatusOr<struct stat> again = Stat(*fresh); !again.ok()) {
      return again.status();
    }
  }
  return fresh;
}

void Export::Moved(const FileKey& key, const NodeRef& to_dir,
                   absl::string_view to_name) {
  NodeRef n;
  {
    absl::MutexLock l(&mu_);
    n = FindLocked(key);
  }
  if (n == nullptr) return;
  absl::MutexLock l(&n->mu);
  n->parent = to_dir;
  n->name.assign(to_name.data(), to_name.size());
}

void Export::ForgetIfUnlinked(const FileKey& key, nlink_t links_before) {
  NodeRef n;
  {
    absl::MutexLock l(&mu_);
    n = FindLocked(key);
  }
  bool gone = links_before <= 1;
  if (n != nullptr) {
    FdRef fd;
    {
      absl::MutexLock l(&n->mu);
      fd = n->fd;
    }
    struct stat st;
    if (fd != nullptr && fstat(fd->get(), &st) == 0) gone = st.st_nlink == 0;
    if (gone) {
      n->removed.store(true, std::memory_order_release);
      absl::MutexLock l(&mu_);
      DropNodeLocked(n);
    }
  }
  // Pages of the file pinned by replies in flight live on in those txbufs.
  if (gone && cache_ != nullptr) cache_->Forget(key);
}

std::string Export::HandleOf(const Node& n) const {
  std::string h(kHandleSize, '\0');
  std::memcpy(h.data(), kHandleMagic, 4);
  std::memcpy(h.data() + 4, &export_id_, 8);
  std::memcpy(h.data() + 12, &epoch_, 8);
  std::memcpy(h.data() + 20, &n.id, 8);
  return h;
}

bool Export::ExportIdOfHandle(absl::string_view fh, uint64_t* export_id) {
  if (fh.size() != kHandleSize ||
      std::memcmp(fh.data(), kHandleMagic, 4) != 0) {
    return false;
  }
  std::memcpy(export_id, fh.data() + 4, 8);
  return true;
}

absl::StatusOr<NodeRef> Export::FromHandle(absl::string_view fh) {
  if (fh.size() != kHandleSize ||
      std::memcmp(fh.data(), kHandleMagic, 4) != 0) {
    return FsError(FsErrorKind::kBadHandle, "not a file handle of this server");
  }
  uint64_t export_id, epoch, id;
  std::memcpy(&export_id, fh.data() + 4, 8);
  std::memcpy(&epoch, fh.data() + 12, 8);
  std::memcpy(&id, fh.data() + 20, 8);
  if (export_id != export_id_) {
    return FsError(FsErrorKind::kBadHandle,
                   "a file handle of a server exporting another directory");
  }
  if (epoch != epoch_) {
    return FsError(FsErrorKind::kStale,
                   "file handle from before a server restart (or of another "
                   "instance exporting this directory)");
  }
  NodeRef n;
  {
    absl::MutexLock l(&mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) n = it->second;
  }
  if (n == nullptr)
    return FsError(FsErrorKind::kStale, "unknown or expired handle");
  absl::StatusOr<struct stat> st = Stat(*n);
  if (!st.ok()) return st.status();
  return n;
}

// ---------------------------------------------------------------------------
// Operations.

absl::StatusOr<struct stat> Export::Stat(Node& n) {
  if (n.removed.load(std::memory_order_acquire)) {
    return FsError(FsErrorKind::kStale, "the file was removed");
  }
  absl::StatusOr<FdRef> fd = Fd(n);
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (fstat((*fd)->get(), &st) != 0) return ErrnoStatus(errno, "fstat");
  if (st.st_nlink == 0) {
    Gone(n);
    return FsError(FsErrorKind::kStale, "the file was removed");
  }
  if (n.is_dir && &n != root_.get()) {
    if (absl::Status e = CheckBeneathRoot((*fd)->get()); !e.ok()) return e;
  }
  return st;
}

bool Export::ToAttr(const struct stat& st, Node* n, FileAttr* a, IoMode mode) {
  uint64_t size = static_cast<uint64_t>(st.st_size);
  int64_t unwritten_mtime_ns = 0;
  if (std::shared_ptr<PageCache::File> f =
          n != nullptr && n->is_regular ? OpenFileIfAny(*n) : nullptr) {
    // Changed on disk behind the cache? Then its pages go and the size is
    // the disk's (plus unstable writes): what a READ now returns.
    if (IsWouldBlock(f->Revalidate(st, mode))) return false;
    size = f->size();
    // The modification is the WRITE, not its write-back, which is later.
    unwritten_mtime_ns = f->unwritten_mtime_ns();
  }
  a->type = TypeOf(st.st_mode);
  a->mode = st.st_mode & 07777;
  a->nlink = static_cast<uint32_t>(st.st_nlink);
  a->uid = st.st_uid;
  a->gid = st.st_gid;
  a->size = size;
  a->used = static_cast<uint64_t>(st.st_blocks) * 512;
  a->fileid = st.st_ino;
  a->atime_ns = Ns(st.st_atim);
  a->mtime_ns = Ns(st.st_mtim);
  a->ctime_ns = Ns(st.st_ctim);
  if (unwritten_mtime_ns != 0) {  // 0: none (times before 1970 are < 0)
    a->mtime_ns = std::max(a->mtime_ns, unwritten_mtime_ns);
    a->ctime_ns = std::max(a->ctime_ns, unwritten_mtime_ns);
  }
  return true;
}

absl::StatusOr<FileAttr> Export::GetAttr(Node& n, IoMode mode) {
  absl::StatusOr<struct stat> st = Stat(n);
  if (!st.ok()) return st.status();
  FileAttr a;
  if (!ToAttr(*st, &n, &a, mode)) return WouldBlockError();
  return a;
}

absl::Status Export::SquashOwner(int fd, int dir_fd, const std::string& name,
                                 bool is_dir) const {
  if (!options_.squash_uid.has_value() && !options_.squash_gid.has_value()) {
    return absl::OkStatus();
  }
  const uid_t uid = options_.squash_uid.has_value()
                        ? static_cast<uid_t>(*options_.squash_uid)
                        : static_cast<uid_t>(-1);
  const gid_t gid = options_.squash_gid.has_value()
                        ? static_cast<gid_t>(*options_.squash_gid)
                        : static_cast<gid_t>(-1);
  // The object itself, never what a symlink points to.
  if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == 0) return absl::OkStatus();
  const int err = errno;
  unlinkat(dir_fd, name.c_str(), is_dir ? AT_REMOVEDIR : 0);
  return ErrnoStatus(
      err, absl::StrCat("giving '", name, "' to the export's squash owner"));
}

absl::Status Export::CheckWritable() const {
  if (options_.read_only) {
    return FsError(FsErrorKind::kReadOnly, "the export is read-only");
  }
  return absl::OkStatus();
}

absl::StatusOr<NodeRef> Export::Lookup(Node& dir, absl::string_view path,
                                       bool no_follow) {
  if (path.empty()) return FsError(FsErrorKind::kInvalid, "empty path");
  if (path.front() == '/') {
    return FsError(FsErrorKind::kAccess,
                   "absolute path refused: it leaves the export");
  }
  for (absl::string_view c : absl::StrSplit(path, '/')) {
    if (c == "..") {
      return FsError(
          FsErrorKind::kAccess,
          absl::StrCat("lookup '", path,
                       "': '..' is refused: path leaves the export"));
    }
    if (absl::Status e = CheckName(c); !e.ok()) {
      return WithPrefix(e, absl::StrCat("lookup '", path, "': "));
    }
  }
  if (!dir.is_dir)
    return FsError(FsErrorKind::kNotDir, "lookup in a non-directory");
  absl::StatusOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.status();
  std::string p(path);
  UniqueFd fd(OpenAt2((*dfd)->get(), p.c_str(),
                      O_PATH | O_CLOEXEC | (no_follow ? O_NOFOLLOW : 0), 0,
                      kBeneath));
  if (!fd) return ResolveError(errno, absl::StrCat("lookup '", path, "'"));
  return Adopt(std::move(fd), dir.shared_from_this(), path);
}

absl::StatusOr<NodeRef> Export::Create(Node& dir, absl::string_view name,
                                       uint32_t mode, bool exclusive) {
  if (absl::Status e = CheckWritable(); !e.ok()) return e;
  if (absl::Status e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir)
    return FsError(FsErrorKind::kNotDir, "create in a non-directory");
  absl::StatusOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.status();
  NodeRef parent = dir.shared_from_this();
  const int d = (*dfd)->get();
  const std::string n(name);
  // No set-user-ID or set-group-ID program can be made through the server.
  const uint64_t perm = mode & 01777;
  // Never open an existing file for I/O here: it may be a FIFO or a device
  // (opening those blocks or acts). Look at it through O_PATH instead, and
  // open for writing only a file this call creates (O_EXCL).
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (!exclusive) {
      UniqueFd fd(
          OpenAt2(d, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
      if (fd) {
        struct stat st;
        if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat");
        if (!S_ISREG(st.st_mode)) {
          return FsError(
              FsErrorKind::kInvalid,
              absl::StrCat("create '", name,
                           "': it exists and is not a regular file"));
        }
        return Made(Adopt(std::move(fd), parent, name));
      }
      if (errno != ENOENT) {
        return ResolveError(errno, absl::StrCat("create '", name, "'"));
      }
    }
    absl::MutexLock names(&names_mu_);
    UniqueFd fd(OpenAt2(
        d, n.c_str(),
        O_CREAT | O_EXCL | O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, perm,
        kBeneath));
    if (!fd) {
      if (errno == EEXIST && !exclusive) continue;  // made meanwhile
      return ResolveError(errno, absl::StrCat("create '", name, "'"));
    }
    if (absl::Status e = SquashOwner(fd.get(), d, n, false); !e.ok()) return e;
    UniqueFd opath(open(ProcPath(fd.get()).c_str(), O_PATH | O_CLOEXEC));
    if (!opath) return ErrnoStatus(errno, "create: O_PATH");
    return Made(Adopt(std::move(opath), parent, name));
  }
  return FsError(FsErrorKind::kBusy,
                 absl::StrCat("create '", name, "': raced with other changes"));
}

absl::StatusOr<NodeRef> Export::Mkdir(Node& dir, absl::string_view name,
                                      uint32_t mode) {
  if (absl::Status e = CheckWritable(); !e.ok()) return e;
  if (absl::Status e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir)
    return FsError(FsErrorKind::kNotDir, "mkdir in a non-directory");
  absl::StatusOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.status();
  const int d = (*dfd)->get();
  std::string n(name);
  absl::MutexLock names(&names_mu_);
  if (mkdirat(d, n.c_str(), mode & 01777) != 0) {
    return ErrnoStatus(errno, absl::StrCat("mkdir '", name, "'"));
  }
  UniqueFd opath(OpenAt2(d, n.c_str(),
                         O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                         kBeneath));
  if (!opath) return ResolveError(errno, absl::StrCat("mkdir '", name, "'"));
  if (absl::Status e = SquashOwner(opath.get(), d, n, true); !e.ok()) return e;
  return Made(Adopt(std::move(opath), dir.shared_from_this(), name));
}

absl::StatusOr<NodeRef> Export::Symlink(Node& dir, absl::string_view name,
                                        absl::string_view target) {
  if (absl::Status e = CheckWritable(); !e.ok()) return e;
  if (absl::Status e = CheckName(name); !e.ok()) return e;
  if (target.empty())
    return FsError(FsErrorKind::kInvalid, "empty symlink target");
  if (target.find('\0') != absl::string_view::npos) {
    return FsError(FsErrorKind::kInvalid,
                   "a symlink target cannot contain NUL");
  }
  if (target.size() > kMaxSymlinkTarget) {
    return FsError(FsErrorKind::kNameTooLong,
                   absl::StrCat("symlink target of ", target.size(), " bytes"));
  }
  if (!dir.is_dir) {
    return FsError(FsErrorKind::kNotDir, "symlink in a non-directory");
  }
  absl::StatusOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.status();
  const int d = (*dfd)->get();
  const std::string n(name), t(target);
  // The target is stored as it is and never resolved here.
  absl::MutexLock names(&names_mu_);
  if (symlinkat(t.c_str(), d, n.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("symlink '", name, "'"));
  }
  UniqueFd opath(
      OpenAt2(d, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
  if (!opath) {
    return ResolveError(errno, absl::StrCat("symlink '", name, "'"));
  }
  if (absl::Status e = SquashOwner(opath.get(), d, n, false); !e.ok()) return e;
  return Made(Adopt(std::move(opath), dir.shared_from_this(), name));
}

absl::StatusOr<std::string> Export::Readlink(Node& n) {
  absl::StatusOr<struct stat> st = Stat(n);
  if (!st.ok()) return st.status();
  if (!S_ISLNK(st->st_mode)) {
    return FsError(n.is_dir ? FsErrorKind::kIsDir : FsErrorKind::kInvalid,
                   "READLINK of a file that is not a symbolic link");
  }
  absl::StatusOr<FdRef> fd = Fd(n);
  if (!fd.ok()) return fd.status();
  // The link itself (an O_PATH descriptor of it, empty path): never its
  // target.
  std::string buf(kMaxSymlinkTarget + 1, '\0');
  ssize_t len = readlinkat((*fd)->get(), "", buf.data(), buf.size());
  if (len < 0) return ErrnoStatus(errno, "readlink");
  buf.resize(static_cast<size_t>(len));
  return buf;
}

absl::Status Export::Remove(Node& dir, absl::string_view name) {
  if (absl::Status e = CheckWritable(); !e.ok()) return e;
  if (absl::Status e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir)
    return FsError(FsErrorKind::kNotDir, "remove in a non-directory");
  absl::StatusOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.status();
  const int d = (*dfd)->get();
  std::string n(name);
  // Hold the inode the name leads to, so that what is forgotten afterwards
  // is what was unlinked (names_mu_: no operation of ours changes the name
  // meanwhile; a process beside txbufd still may).
  absl::MutexLock names(&names_mu_);
  UniqueFd held(openat(d, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!held || fstat(held.get(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("remove '", name, "'"));
  }
  if (S_ISDIR(st.st_mode)) {
    return FsError(
        FsErrorKind::kIsDir,
        absl::StrCat("remove '", name, "': is a directory (use rmdir)"));
  }
  if (unlinkat(d, n.c_str(), 0) != 0) {
    return ErrnoStatus(errno, absl::StrCat("remove '", name, "'"));
  }
  // Its links now: 0 if the name was its last (and was still it).
  struct stat after;
  const nlink_t links = fstat(held.get(), &after) == 0 ? after.st_nlink + 1 : 2;
  ForgetIfUnlinked(KeyOf(st), links);
  return absl::OkStatus();
}

absl::Status Export::Rmdir(Node& dir, absl::string_view name) {
  if (absl::Status e = CheckWritable(); !e.ok()) return e;
  if (absl::Status e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir)
    return FsError(FsErrorKind::kNotDir, "rmdir in a non-directory");
  absl::StatusOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.status();
  const int d = (*dfd)->get();
  std::string n(name);
  struct stat st;
  absl::MutexLock names(&names_mu_);
  const bool known = fstatat(d, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (unlinkat(d, n.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rmdir '", name, "'"));
  }
  if (known) ForgetIfUnlinked(KeyOf(st), 1);
  return absl::OkStatus();
}

absl::Status Export::Rename(Node& from_dir, absl::string_view from_name,
                            Node& to_dir, absl::string_view to_name) {
  if (absl::Status e = CheckWritable(); !e.ok()) return e;
  if (absl::Status e = CheckName(from_name); !e.ok()) return e;
  if (absl::Status e = CheckName(to_name); !e.ok()) return e;
  if (!from_dir.is_dir || !to_dir.is_dir) {
    return FsError(FsErrorKind::kNotDir, "rename between non-directories");
  }
  absl::StatusOr<FdRef> ffd = DirFd(from_dir);
  if (!ffd.ok()) return ffd.status();
  absl::StatusOr<FdRef> tfd = DirFd(to_dir);
  if (!tfd.ok()) return tfd.status();
  std::string f(from_name), t(to_name);
  struct stat moved, replaced;
  absl::MutexLock names(&names_mu_);
  const bool known =
      fstatat((*ffd)->get(), f.c_str(), &moved, AT_SYMLINK_NOFOLLOW) == 0;
  bool had_target =
      fstatat((*tfd)->get(), t.c_str(), &replaced, AT_SYMLINK_NOFOLLOW) == 0;
  if (renameat((*ffd)->get(), f.c_str(), (*tfd)->get(), t.c_str()) != 0) {
    return ErrnoStatus(
        errno, absl::StrCat("rename '", from_name, "' to '", to_name, "'"));
  }
  if (had_target && known && KeyOf(replaced) != KeyOf(moved)) {
    ForgetIfUnlinked(KeyOf(replaced),
                     S_ISDIR(replaced.st_mode) ? 1 : replaced.st_nlink);
  }
  if (known) Moved(KeyOf(moved), to_dir.shared_from_this(), to_name);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<PageCache::File>> Export::File(Node& n,
                                                              bool write) {
  if (n.is_dir) return FsError(FsErrorKind::kIsDir, "is a directory");
  if (!n.is_regular)
    return FsError(FsErrorKind::kInvalid, "not a regular file");
  if (write && options_.read_only) {
    return FsError(FsErrorKind::kReadOnly, "the export is read-only");
  }
  // Opened for what the op needs (docs/SECURITY.md, "File access"): read-
  // only for reading, read-write once something writes. A read-only File
  // is never dirty, so an upgrade releases it from the cache (its holders
  // get it again) and caches the read-write one.
  for (int tries = 0; tries < 64; ++tries) {
    std::shared_ptr<PageCache::File> cached;
    {
      absl::MutexLock l(&n.mu);
      cached = n.file;
    }
    if (cached != nullptr && (!write || cached->writable())) {
      return cached;
    }
    absl::StatusOr<FdRef> opath = Fd(n);
    if (!opath.ok()) return opath.status();
    // Through the O_PATH descriptor: the same inode, which is a regular
    // file. O_NONBLOCK: a lease held by another process fails the open
    // rather than blocking this thread (DELAY).
    const std::string p = ProcPath((*opath)->get());
    UniqueFd fd(
        open(p.c_str(), (write ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open");
    if (cached != nullptr) {  // read-only: make room for the read-write one
      // Waits for the lock: readers taking it all the time must not starve
      // the write (they would, with try-locks only; seen under TSan).
      // Only that File: another writer may have cached its read-write one
      // meanwhile, which must stay (its holders would be told to retry).
      const PageCache::Release r =
          cache_->ReleaseIfClean(*cached, IoMode::kMayBlock);
      if (r != PageCache::Release::kReleased) {
        std::this_thread::yield();  // kBusy: a READ holds its lock now
        continue;
      }
      absl::MutexLock l(&n.mu);
      if (n.file == cached) n.file.reset();
    }
    absl::StatusOr<std::shared_ptr<PageCache::File>> f = cache_->GetFile(
        n.key, [&fd]() -> absl::StatusOr<int> { return fd.release(); });
    if (!f.ok()) return f.status();
    std::shared_ptr<PageCache::File> out;
    {
      absl::MutexLock l(&n.mu);
      if (n.file == nullptr && !n.removed.load(std::memory_order_acquire)) {
        n.file = *f;
      }
      out = *f;
    }
    // Removed meanwhile: the REMOVE forgot the file before this made it.
    if (n.removed.load(std::memory_order_acquire)) cache_->Forget(n.key);
    {
      absl::MutexLock l(&mu_);
      TouchLocked(&n);
      EvictFdsLocked();
    }
    // Another thread cached a read-only File first: upgrade that one.
    if (write && !out->writable()) continue;
    return out;
  }
  return FsError(FsErrorKind::kBusy,
                 "the file is busy being read; retry the write");
}

std::shared_ptr<PageCache::File> Export::OpenFileIfAny(Node& n) {
  absl::MutexLock l(&n.mu);
  return n.file;
}

void Export::DropReleased(Node& n, const std::shared_ptr<PageCache::File>& f) {
  absl::MutexLock l(&n.mu);
  if (n.file == f) n.file.reset();
}

bool Export::HasFd(Node& n) {
  absl::MutexLock l(&n.mu);
  return n.fd != nullptr;
}

absl::Status Export::DropSetId(const PageCache::File& f) {
  struct stat st;
  if (fstat(f.fd(), &st) != 0) return ErrnoStatus(errno, "fstat");
  const mode_t privs = S_ISUID | S_ISGID;
  if ((st.st_mode & privs) == 0) return absl::OkStatus();
  if (fchmod(f.fd(), st.st_mode & 07777 & ~privs) != 0) {
    return ErrnoStatus(errno, "clearing set-id bits");
  }
  return absl::OkStatus();
}

absl::Status Export::SetAttr(Node& n, const SetAttrArgs& a) {
  if (absl::Status e = CheckWritable(); !e.ok()) return e;
  if (a.mode.has_value() && (*a.mode & (S_ISUID | S_ISGID)) != 0) {
    return FsError(
        FsErrorKind::kPermission,
        "set-user-ID and set-group-ID bits cannot be set through the "
        "server");
  }
  absl::StatusOr<struct stat> st = Stat(n);
  if (!st.ok()) return st.status();
  if (a.mode.has_value() && S_ISLNK(st->st_mode)) {
    return FsError(FsErrorKind::kNotSupported,
                   "a symbolic link has no mode to change");
  }
  absl::StatusOr<FdRef> fd = Fd(n);
  if (!fd.ok()) return fd.status();
  // The O_PATH descriptor's /proc link leads to the node itself, a
  // symlink's included (never to its target).
  std::string p = ProcPath((*fd)->get());
  if (a.mode.has_value() &&
      fchmodat(AT_FDCWD, p.c_str(), *a.mode & 07777, 0) != 0) {
    return ErrnoStatus(errno, "chmod");
  }
  if (a.size.has_value()) {
    absl::Status s;
    for (int tries = 0; tries < 4; ++tries) {
      absl::StatusOr<std::shared_ptr<PageCache::File>> f = File(n, true);
      if (!f.ok()) return f.status();
      s = (*f)->Truncate(*a.size);
      if (!IsFileReleased(s)) break;  // else released meanwhile: again
    }
    if (!s.ok()) return s;
  }
  if (a.atime_ns.has_value() || a.mtime_ns.has_value()) {
    timespec ts[2];
    auto set = [](std::optional<int64_t> time, timespec* t) {
      if (!time.has_value()) {
        t->tv_nsec = UTIME_OMIT;
      } else if (*time == -1) {
        t->tv_nsec = UTIME_NOW;
      } else {  // before 1970 too: tv_nsec is always in [0, 1e9)
        int64_t sec = *time / 1000000000;
        int64_t ns = *time % 1000000000;
        if (ns < 0) {
          sec -= 1;
          ns += 1000000000;
        }
        t->tv_sec = static_cast<time_t>(sec);
        t->tv_nsec = static_cast<long>(ns);
      }
    };
    set(a.atime_ns, &ts[0]);
    set(a.mtime_ns, &ts[1]);
    // A cached file's dirty pages go to disk first (SetTimes), else their
    // write-back would move the modification time set here.
    std::shared_ptr<PageCache::File> f =
        n.is_regular ? OpenFileIfAny(n) : nullptr;
    for (int tries = 0; f != nullptr && tries < 4; ++tries) {
      absl::Status s = f->SetTimes(ts);
      if (!IsFileReleased(s)) return s;
      DropReleased(n, f);  // released (so written back) meanwhile: again
      f = OpenFileIfAny(n);
    }
    if (utimensat(AT_FDCWD, p.c_str(), ts, 0) != 0) {
      return ErrnoStatus(errno, "utimensat");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Export::ReadDir(Node& dir, uint64_t cookie,
                                     uint32_t max_entries, bool with_attrs,
                                     absl::FunctionRef<bool(DirEntry&)> take) {
  if (!dir.is_dir) {
    return FsError(FsErrorKind::kNotDir, "readdir of a non-directory");
  }
  absl::StatusOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.status();
  NodeRef parent = dir.shared_from_this();
  UniqueFd fd(openat((*dfd)->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "opendir");
  if (cookie != 0 &&
      lseek(fd.get(), static_cast<off_t>(cookie), SEEK_SET) < 0) {
    return FsError(FsErrorKind::kInvalid, "bad readdir cookie");
  }
  if (max_entries == 0) max_entries = 1024;
  max_entries = std::min(max_entries, options_.max_readdir_entries);
  uint32_t taken = 0;
  alignas(8) char buf[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, fd.get(), buf, sizeof(buf));
    if (n < 0) return ErrnoStatus(errno, "getdents64");
    if (n == 0) return true;  // the end of the directory
    for (long at = 0; at < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + at);
      at += d->d_reclen;
      absl::string_view name(d->d_name);
      if (name == "." || name == "..") continue;
      if (taken == max_entries) return false;  // more remain
      DirEntry e;
      e.name = std::string(name);
      e.cookie = static_cast<uint64_t>(d->d_off);
      e.fileid = d->d_ino;
      switch (d->d_type) {
        case DT_REG:
          e.type = FileType::kRegular;
          break;
        case DT_DIR:
          e.type = FileType::kDirectory;
          break;
        case DT_LNK:
          e.type = FileType::kSymlink;
          break;
        case DT_UNKNOWN:
          e.type = FileType::kUnknown;
          break;
        default:
          e.type = FileType::kOther;
      }
      if (with_attrs) {
        UniqueFd op(OpenAt2(fd.get(), d->d_name,
                            O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
        if (op) {
          absl::StatusOr<NodeRef> node = Adopt(std::move(op), parent, name);
          if (node.ok()) {
            absl::StatusOr<FdRef> nfd = Fd(**node);
            struct stat st;
            if (nfd.ok() && fstat((*nfd)->get(), &st) == 0) {
              ToAttr(st, node->get(), &e.attr.emplace());
              e.type = e.attr->type;
            }
            e.fh = HandleOf(**node);
          }
        }  // else removed meanwhile: keep the bare entry
      }
      if (!take(e)) {  // no room left for it
        if (taken == 0) {
          return FsError(FsErrorKind::kTooBig,
                         "READDIR: no room left in the reply for an entry");
        }
        return false;  // cut here; more remain
      }
      ++taken;
    }
  }
}

absl::StatusOr<FsStats> Export::StatFs() {
  struct statvfs sv;
  absl::StatusOr<FdRef> fd = Fd(*root_);
  if (!fd.ok()) return fd.status();
  if (fstatvfs((*fd)->get(), &sv) != 0) {
    return ErrnoStatus(errno, "statvfs");
  }
  FsStats r;
  uint64_t bs = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
  r.total_bytes = sv.f_blocks * bs;
  r.free_bytes = sv.f_bfree * bs;
  r.avail_bytes = sv.f_bavail * bs;
  r.total_files = sv.f_files;
  r.free_files = sv.f_ffree;
  r.block_size = static_cast<uint32_t>(sv.f_bsize);
  r.name_max = static_cast<uint32_t>(sv.f_namemax);
  return r;
}

}  // namespace txbuf::server
