#include "server/export.h"

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

rpc::FileType TypeOf(mode_t m) {
  if (S_ISREG(m)) return rpc::FILE_TYPE_REGULAR;
  if (S_ISDIR(m)) return rpc::FILE_TYPE_DIRECTORY;
  if (S_ISLNK(m)) return rpc::FILE_TYPE_SYMLINK;
  return rpc::FILE_TYPE_OTHER;
}

int64_t Ns(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

FileKey KeyOf(const struct stat& st) { return {st.st_dev, st.st_ino}; }

// An error for a failed resolution of `what` beneath the export.
OpError ResolveError(int err, absl::string_view what) {
  if (err == EXDEV || err == ELOOP) {
    return Err(rpc::STATUS_ACCES,
               absl::StrCat(what, ": path leaves the export"));
  }
  return ErrnoError(err, what);
}

// The node of an object CREATE, MKDIR or SYMLINK just made (or found): if
// another client removed it meanwhile, that is NOENT, not STALE (the op
// carried no handle of it).
OpResultOr<NodeRef> Made(OpResultOr<NodeRef> n) {
  if (n.error.status == rpc::STATUS_STALE) {
    n.error = Err(rpc::STATUS_NOENT,
                  "created, then removed by another client before the reply");
  }
  return n;
}

OpError MovedOut() {
  return Err(rpc::STATUS_STALE,
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

OpError Export::CheckName(absl::string_view name) {
  if (name.empty()) return Err(rpc::STATUS_INVAL, "empty name");
  if (name == ".") return Err(rpc::STATUS_INVAL, "'.' is not a name");
  if (name == "..") return Err(rpc::STATUS_INVAL, "'..' is not a name");
  if (name.size() > 255) {
    return Err(rpc::STATUS_NAMETOOLONG,
               absl::StrCat("name of ", name.size(), " bytes"));
  }
  if (name.find('/') != absl::string_view::npos) {
    return Err(rpc::STATUS_INVAL, "a name cannot contain '/'");
  }
  if (name.find('\0') != absl::string_view::npos) {
    return Err(rpc::STATUS_INVAL, "a name cannot contain NUL");
  }
  return OpError::Ok();
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
  OpResultOr<NodeRef> root = ex->Adopt(std::move(fd), nullptr, "");
  if (!root.ok()) {
    return absl::InternalError(
        absl::StrCat("export ", dir, ": ", root.error.message));
  }
  ex->root_ = root.value;
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
                                         : cache_->ReleaseIfClean(n->key);
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

OpResultOr<FdRef> Export::Fd(Node& n) {
  FdRef fd;
  {
    absl::MutexLock l(&n.mu);
    fd = n.fd;
  }
  if (fd != nullptr) {
    Touch(&n);
    return {OpError::Ok(), std::move(fd)};
  }
  if (n.removed.load(std::memory_order_acquire)) {
    return {Err(rpc::STATUS_STALE, "the file was removed")};
  }
  absl::StatusOr<UniqueFd> opened = Reopen(n, 0);
  if (!opened.ok()) {
    return {Err(rpc::STATUS_STALE, absl::StrCat("cannot find the file again: ",
                                                opened.status().message()))};
  }
  fd = Own(std::move(*opened));
  InstallFd(n, fd);
  return {OpError::Ok(), std::move(fd)};
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

OpError Export::CheckBeneathRoot(int fd) {
  const FileKey root = root_->key;
  UniqueFd cur(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!cur) return ErrnoError(errno, "dup");
  struct stat st;
  if (fstat(cur.get(), &st) != 0) return ErrnoError(errno, "fstat");
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    if (KeyOf(st) == root) return OpError::Ok();
    UniqueFd up(openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!up) return ErrnoError(errno, "subtree check: open ..");
    struct stat ust;
    if (fstat(up.get(), &ust) != 0) return ErrnoError(errno, "fstat");
    if (KeyOf(ust) == KeyOf(st)) return MovedOut();  // reached "/"
    cur = std::move(up);
    st = ust;
  }
  return MovedOut();
}

OpResultOr<FdRef> Export::DirFd(Node& dir) {
  if (!dir.is_dir) return {Err(rpc::STATUS_NOTDIR, "not a directory")};
  OpResultOr<FdRef> fd = Fd(dir);
  if (!fd.ok() || &dir == root_.get()) return fd;
  if (OpError e = CheckBeneathRoot(fd.value->get()); !e.ok()) return {e};
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

OpResultOr<NodeRef> Export::Adopt(UniqueFd opath, const NodeRef& parent,
                                  absl::string_view name) {
  struct stat st;
  if (fstat(opath.get(), &st) != 0) return {ErrnoError(errno, "fstat")};
  if (st.st_nlink == 0 && !S_ISDIR(st.st_mode)) {
    return {Err(rpc::STATUS_STALE, "the file was removed")};
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
    return {OpError::Ok(), n};
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
      return {OpError::Ok(), raced};
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
    if (OpResultOr<struct stat> again = Stat(*fresh); !again.ok()) {
      return {again.error};
    }
  }
  return {OpError::Ok(), fresh};
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

OpResultOr<NodeRef> Export::FromHandle(absl::string_view fh) {
  if (fh.size() != kHandleSize ||
      std::memcmp(fh.data(), kHandleMagic, 4) != 0) {
    return {Err(rpc::STATUS_BADHANDLE, "not a file handle of this server")};
  }
  uint64_t export_id, epoch, id;
  std::memcpy(&export_id, fh.data() + 4, 8);
  std::memcpy(&epoch, fh.data() + 12, 8);
  std::memcpy(&id, fh.data() + 20, 8);
  if (export_id != export_id_) {
    return {Err(rpc::STATUS_BADHANDLE,
                "a file handle of a server exporting another directory")};
  }
  if (epoch != epoch_) {
    return {Err(rpc::STATUS_STALE,
                "file handle from before a server restart (or of another "
                "instance exporting this directory)")};
  }
  NodeRef n;
  {
    absl::MutexLock l(&mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) n = it->second;
  }
  if (n == nullptr)
    return {Err(rpc::STATUS_STALE, "unknown or expired handle")};
  OpResultOr<struct stat> st = Stat(*n);
  if (!st.ok()) return {st.error};
  return {OpError::Ok(), n};
}

// ---------------------------------------------------------------------------
// Operations.

OpResultOr<struct stat> Export::Stat(Node& n) {
  OpResultOr<struct stat> r;
  if (n.removed.load(std::memory_order_acquire)) {
    r.error = Err(rpc::STATUS_STALE, "the file was removed");
    return r;
  }
  OpResultOr<FdRef> fd = Fd(n);
  if (!fd.ok()) {
    r.error = fd.error;
    return r;
  }
  if (fstat(fd.value->get(), &r.value) != 0) {
    r.error = ErrnoError(errno, "fstat");
  } else if (r.value.st_nlink == 0) {
    Gone(n);
    r.error = Err(rpc::STATUS_STALE, "the file was removed");
  } else if (n.is_dir && &n != root_.get()) {
    r.error = CheckBeneathRoot(fd.value->get());
  }
  return r;
}

bool Export::ToAttr(const struct stat& st, Node* n, rpc::Attr* a, IoMode mode) {
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (std::shared_ptr<PageCache::File> f =
          n != nullptr && n->is_regular ? OpenFileIfAny(*n) : nullptr) {
    // Changed on disk behind the cache? Then its pages go and the size is
    // the disk's (plus unstable writes): what a READ now returns.
    if (IsWouldBlock(f->Revalidate(st, mode))) return false;
    size = f->size();
  }
  a->set_type(TypeOf(st.st_mode));
  a->set_mode(st.st_mode & 07777);
  a->set_nlink(static_cast<uint32_t>(st.st_nlink));
  a->set_uid(st.st_uid);
  a->set_gid(st.st_gid);
  a->set_size(size);
  a->set_used(static_cast<uint64_t>(st.st_blocks) * 512);
  a->set_fileid(st.st_ino);
  a->set_atime_ns(Ns(st.st_atim));
  a->set_mtime_ns(Ns(st.st_mtim));
  a->set_ctime_ns(Ns(st.st_ctim));
  return true;
}

OpResultOr<rpc::Attr> Export::GetAttr(Node& n, IoMode mode, bool* would_block) {
  OpResultOr<struct stat> st = Stat(n);
  if (!st.ok()) return {st.error};
  OpResultOr<rpc::Attr> r;
  if (!ToAttr(st.value, &n, &r.value, mode) && would_block != nullptr) {
    *would_block = true;
  }
  return r;
}

OpError Export::SquashOwner(int fd, int dir_fd, const std::string& name,
                            bool is_dir) const {
  if (!options_.squash_uid.has_value() && !options_.squash_gid.has_value()) {
    return OpError::Ok();
  }
  const uid_t uid = options_.squash_uid.has_value()
                        ? static_cast<uid_t>(*options_.squash_uid)
                        : static_cast<uid_t>(-1);
  const gid_t gid = options_.squash_gid.has_value()
                        ? static_cast<gid_t>(*options_.squash_gid)
                        : static_cast<gid_t>(-1);
  // The object itself, never what a symlink points to.
  if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == 0) return OpError::Ok();
  const int err = errno;
  unlinkat(dir_fd, name.c_str(), is_dir ? AT_REMOVEDIR : 0);
  return ErrnoError(
      err, absl::StrCat("giving '", name, "' to the export's squash owner"));
}

OpError Export::CheckWritable() const {
  if (options_.read_only) {
    return Err(rpc::STATUS_ROFS, "the export is read-only");
  }
  return OpError::Ok();
}

OpResultOr<NodeRef> Export::Lookup(Node& dir, absl::string_view path) {
  if (path.empty()) return {Err(rpc::STATUS_INVAL, "empty path")};
  if (path.front() == '/') {
    return {
        Err(rpc::STATUS_ACCES, "absolute path refused: it leaves the export")};
  }
  for (absl::string_view c : absl::StrSplit(path, '/')) {
    if (c == "..") {
      return {Err(rpc::STATUS_ACCES,
                  absl::StrCat("lookup '", path,
                               "': '..' is refused: path leaves the export"))};
    }
    if (OpError e = CheckName(c); !e.ok()) {
      e.message = absl::StrCat("lookup '", path, "': ", e.message);
      return {e};
    }
  }
  if (!dir.is_dir)
    return {Err(rpc::STATUS_NOTDIR, "lookup in a non-directory")};
  OpResultOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return {dfd.error};
  std::string p(path);
  UniqueFd fd(
      OpenAt2(dfd.value->get(), p.c_str(), O_PATH | O_CLOEXEC, 0, kBeneath));
  if (!fd) return {ResolveError(errno, absl::StrCat("lookup '", path, "'"))};
  return Adopt(std::move(fd), dir.shared_from_this(), path);
}

OpResultOr<NodeRef> Export::Create(Node& dir, absl::string_view name,
                                   uint32_t mode, bool exclusive) {
  if (OpError e = CheckWritable(); !e.ok()) return {e};
  if (OpError e = CheckName(name); !e.ok()) return {e};
  if (!dir.is_dir)
    return {Err(rpc::STATUS_NOTDIR, "create in a non-directory")};
  OpResultOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return {dfd.error};
  NodeRef parent = dir.shared_from_this();
  const int d = dfd.value->get();
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
        if (fstat(fd.get(), &st) != 0) return {ErrnoError(errno, "fstat")};
        if (!S_ISREG(st.st_mode)) {
          return {Err(rpc::STATUS_INVAL,
                      absl::StrCat("create '", name,
                                   "': it exists and is not a regular file"))};
        }
        return Made(Adopt(std::move(fd), parent, name));
      }
      if (errno != ENOENT) {
        return {ResolveError(errno, absl::StrCat("create '", name, "'"))};
      }
    }
    UniqueFd fd(OpenAt2(
        d, n.c_str(),
        O_CREAT | O_EXCL | O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, perm,
        kBeneath));
    if (!fd) {
      if (errno == EEXIST && !exclusive) continue;  // made meanwhile
      return {ResolveError(errno, absl::StrCat("create '", name, "'"))};
    }
    if (OpError e = SquashOwner(fd.get(), d, n, false); !e.ok()) return {e};
    UniqueFd opath(open(ProcPath(fd.get()).c_str(), O_PATH | O_CLOEXEC));
    if (!opath) return {ErrnoError(errno, "create: O_PATH")};
    return Made(Adopt(std::move(opath), parent, name));
  }
  return {Err(rpc::STATUS_DELAY,
              absl::StrCat("create '", name, "': raced with other changes"))};
}

OpResultOr<NodeRef> Export::Mkdir(Node& dir, absl::string_view name,
                                  uint32_t mode) {
  if (OpError e = CheckWritable(); !e.ok()) return {e};
  if (OpError e = CheckName(name); !e.ok()) return {e};
  if (!dir.is_dir) return {Err(rpc::STATUS_NOTDIR, "mkdir in a non-directory")};
  OpResultOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return {dfd.error};
  const int d = dfd.value->get();
  std::string n(name);
  if (mkdirat(d, n.c_str(), mode & 01777) != 0) {
    return {ErrnoError(errno, absl::StrCat("mkdir '", name, "'"))};
  }
  UniqueFd opath(OpenAt2(d, n.c_str(),
                         O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                         kBeneath));
  if (!opath) return {ResolveError(errno, absl::StrCat("mkdir '", name, "'"))};
  if (OpError e = SquashOwner(opath.get(), d, n, true); !e.ok()) return {e};
  return Made(Adopt(std::move(opath), dir.shared_from_this(), name));
}

OpResultOr<NodeRef> Export::Symlink(Node& dir, absl::string_view name,
                                    absl::string_view target) {
  if (OpError e = CheckWritable(); !e.ok()) return {e};
  if (OpError e = CheckName(name); !e.ok()) return {e};
  if (target.empty()) return {Err(rpc::STATUS_INVAL, "empty symlink target")};
  if (target.find('\0') != absl::string_view::npos) {
    return {Err(rpc::STATUS_INVAL, "a symlink target cannot contain NUL")};
  }
  if (target.size() > kMaxSymlinkTarget) {
    return {Err(rpc::STATUS_NAMETOOLONG,
                absl::StrCat("symlink target of ", target.size(), " bytes"))};
  }
  if (!dir.is_dir) {
    return {Err(rpc::STATUS_NOTDIR, "symlink in a non-directory")};
  }
  OpResultOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return {dfd.error};
  const int d = dfd.value->get();
  const std::string n(name), t(target);
  // The target is stored as it is and never resolved here.
  if (symlinkat(t.c_str(), d, n.c_str()) != 0) {
    return {ErrnoError(errno, absl::StrCat("symlink '", name, "'"))};
  }
  UniqueFd opath(
      OpenAt2(d, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
  if (!opath) {
    return {ResolveError(errno, absl::StrCat("symlink '", name, "'"))};
  }
  if (OpError e = SquashOwner(opath.get(), d, n, false); !e.ok()) return {e};
  return Made(Adopt(std::move(opath), dir.shared_from_this(), name));
}

OpResultOr<std::string> Export::Readlink(Node& n) {
  OpResultOr<struct stat> st = Stat(n);
  if (!st.ok()) return {st.error};
  if (!S_ISLNK(st.value.st_mode)) {
    return {Err(n.is_dir ? rpc::STATUS_ISDIR : rpc::STATUS_INVAL,
                "READLINK of a file that is not a symbolic link")};
  }
  OpResultOr<FdRef> fd = Fd(n);
  if (!fd.ok()) return {fd.error};
  // The link itself (an O_PATH descriptor of it, empty path): never its
  // target.
  std::string buf(kMaxSymlinkTarget + 1, '\0');
  ssize_t len = readlinkat(fd.value->get(), "", buf.data(), buf.size());
  if (len < 0) return {ErrnoError(errno, "readlink")};
  buf.resize(static_cast<size_t>(len));
  return {OpError::Ok(), std::move(buf)};
}

OpError Export::Remove(Node& dir, absl::string_view name) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (OpError e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir) return Err(rpc::STATUS_NOTDIR, "remove in a non-directory");
  OpResultOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.error;
  const int d = dfd.value->get();
  std::string n(name);
  // Hold the inode the name leads to, so that what is forgotten afterwards
  // is what was unlinked (the name may be replaced meanwhile by others).
  UniqueFd held(openat(d, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!held || fstat(held.get(), &st) != 0) {
    return ErrnoError(errno, absl::StrCat("remove '", name, "'"));
  }
  if (S_ISDIR(st.st_mode)) {
    return Err(rpc::STATUS_ISDIR,
               absl::StrCat("remove '", name, "': is a directory (use rmdir)"));
  }
  if (unlinkat(d, n.c_str(), 0) != 0) {
    return ErrnoError(errno, absl::StrCat("remove '", name, "'"));
  }
  // Its links now: 0 if the name was its last (and was still it).
  struct stat after;
  const nlink_t links = fstat(held.get(), &after) == 0 ? after.st_nlink + 1 : 2;
  ForgetIfUnlinked(KeyOf(st), links);
  return OpError::Ok();
}

OpError Export::Rmdir(Node& dir, absl::string_view name) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (OpError e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir) return Err(rpc::STATUS_NOTDIR, "rmdir in a non-directory");
  OpResultOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return dfd.error;
  const int d = dfd.value->get();
  std::string n(name);
  struct stat st;
  const bool known = fstatat(d, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (unlinkat(d, n.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoError(errno, absl::StrCat("rmdir '", name, "'"));
  }
  if (known) ForgetIfUnlinked(KeyOf(st), 1);
  return OpError::Ok();
}

OpError Export::Rename(Node& from_dir, absl::string_view from_name,
                       Node& to_dir, absl::string_view to_name) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (OpError e = CheckName(from_name); !e.ok()) return e;
  if (OpError e = CheckName(to_name); !e.ok()) return e;
  if (!from_dir.is_dir || !to_dir.is_dir) {
    return Err(rpc::STATUS_NOTDIR, "rename between non-directories");
  }
  OpResultOr<FdRef> ffd = DirFd(from_dir);
  if (!ffd.ok()) return ffd.error;
  OpResultOr<FdRef> tfd = DirFd(to_dir);
  if (!tfd.ok()) return tfd.error;
  std::string f(from_name), t(to_name);
  struct stat moved, replaced;
  const bool known =
      fstatat(ffd.value->get(), f.c_str(), &moved, AT_SYMLINK_NOFOLLOW) == 0;
  bool had_target =
      fstatat(tfd.value->get(), t.c_str(), &replaced, AT_SYMLINK_NOFOLLOW) == 0;
  if (renameat(ffd.value->get(), f.c_str(), tfd.value->get(), t.c_str()) != 0) {
    return ErrnoError(
        errno, absl::StrCat("rename '", from_name, "' to '", to_name, "'"));
  }
  if (had_target && known && KeyOf(replaced) != KeyOf(moved)) {
    ForgetIfUnlinked(KeyOf(replaced),
                     S_ISDIR(replaced.st_mode) ? 1 : replaced.st_nlink);
  }
  if (known) Moved(KeyOf(moved), to_dir.shared_from_this(), to_name);
  return OpError::Ok();
}

OpResultOr<std::shared_ptr<PageCache::File>> Export::File(Node& n, bool write) {
  if (n.is_dir) return {Err(rpc::STATUS_ISDIR, "is a directory")};
  if (!n.is_regular) return {Err(rpc::STATUS_INVAL, "not a regular file")};
  if (write && options_.read_only) {
    return {Err(rpc::STATUS_ROFS, "the export is read-only")};
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
      return {OpError::Ok(), std::move(cached)};
    }
    OpResultOr<FdRef> opath = Fd(n);
    if (!opath.ok()) return {opath.error};
    // Through the O_PATH descriptor: the same inode, which is a regular
    // file. O_NONBLOCK: a lease held by another process fails the open
    // rather than blocking this thread (DELAY).
    const std::string p = ProcPath(opath.value->get());
    UniqueFd fd(
        open(p.c_str(), (write ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return {ErrnoError(errno, "open")};
    if (cached != nullptr) {  // read-only: make room for the read-write one
      // Waits for the lock: readers taking it all the time must not starve
      // the write (they would, with try-locks only; seen under TSan).
      const PageCache::Release r =
          cache_->ReleaseIfClean(n.key, IoMode::kMayBlock);
      if (r != PageCache::Release::kReleased) {
        std::this_thread::yield();  // kBusy: a READ holds its lock now
        continue;
      }
      absl::MutexLock l(&n.mu);
      if (n.file == cached) n.file.reset();
    }
    absl::StatusOr<std::shared_ptr<PageCache::File>> f = cache_->GetFile(
        n.key, [&fd]() -> absl::StatusOr<int> { return fd.release(); });
    if (!f.ok()) return {FromAbsl(f.status())};
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
    return {OpError::Ok(), std::move(out)};
  }
  return {
      Err(rpc::STATUS_DELAY, "the file is busy being read; retry the write")};
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

OpError Export::DropSetId(const PageCache::File& f) {
  struct stat st;
  if (fstat(f.fd(), &st) != 0) return ErrnoError(errno, "fstat");
  const mode_t privs = S_ISUID | S_ISGID;
  if ((st.st_mode & privs) == 0) return OpError::Ok();
  if (fchmod(f.fd(), st.st_mode & 07777 & ~privs) != 0) {
    return ErrnoError(errno, "clearing set-id bits");
  }
  return OpError::Ok();
}

OpError Export::SetAttr(Node& n, const rpc::SetAttr& a) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (a.has_mode() && (a.mode() & (S_ISUID | S_ISGID)) != 0) {
    return Err(rpc::STATUS_PERM,
               "set-user-ID and set-group-ID bits cannot be set through the "
               "server");
  }
  OpResultOr<struct stat> st = Stat(n);
  if (!st.ok()) return st.error;
  if (a.has_mode() && S_ISLNK(st.value.st_mode)) {
    return Err(rpc::STATUS_NOTSUPP, "a symbolic link has no mode to change");
  }
  OpResultOr<FdRef> fd = Fd(n);
  if (!fd.ok()) return fd.error;
  // The O_PATH descriptor's /proc link leads to the node itself, a
  // symlink's included (never to its target).
  std::string p = ProcPath(fd.value->get());
  if (a.has_mode() && fchmodat(AT_FDCWD, p.c_str(), a.mode() & 07777, 0) != 0) {
    return ErrnoError(errno, "chmod");
  }
  if (a.has_size()) {
    absl::Status s;
    for (int tries = 0; tries < 4; ++tries) {
      OpResultOr<std::shared_ptr<PageCache::File>> f = File(n, true);
      if (!f.ok()) return f.error;
      s = f.value->Truncate(a.size());
      if (!IsFileReleased(s)) break;  // else released meanwhile: again
    }
    if (!s.ok()) return FromAbsl(s);
  }
  if (a.has_atime_ns() || a.has_mtime_ns()) {
    timespec ts[2];
    auto set = [](bool has, int64_t v, timespec* t) {
      if (!has) {
        t->tv_nsec = UTIME_OMIT;
      } else if (v == -1) {
        t->tv_nsec = UTIME_NOW;
      } else {  // before 1970 too: tv_nsec is always in [0, 1e9)
        int64_t sec = v / 1000000000;
        int64_t ns = v % 1000000000;
        if (ns < 0) {
          sec -= 1;
          ns += 1000000000;
        }
        t->tv_sec = static_cast<time_t>(sec);
        t->tv_nsec = static_cast<long>(ns);
      }
    };
    set(a.has_atime_ns(), a.atime_ns(), &ts[0]);
    set(a.has_mtime_ns(), a.mtime_ns(), &ts[1]);
    if (utimensat(AT_FDCWD, p.c_str(), ts, 0) != 0) {
      return ErrnoError(errno, "utimensat");
    }
  }
  return OpError::Ok();
}

OpResultOr<Export::DirPage> Export::ReadDir(Node& dir, uint64_t cookie,
                                            uint32_t max_entries,
                                            bool with_attrs, size_t max_bytes) {
  if (!dir.is_dir)
    return {Err(rpc::STATUS_NOTDIR, "readdir of a non-directory")};
  OpResultOr<FdRef> dfd = DirFd(dir);
  if (!dfd.ok()) return {dfd.error};
  NodeRef parent = dir.shared_from_this();
  UniqueFd fd(
      openat(dfd.value->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return {ErrnoError(errno, "opendir")};
  if (cookie != 0 &&
      lseek(fd.get(), static_cast<off_t>(cookie), SEEK_SET) < 0) {
    return {Err(rpc::STATUS_INVAL, "bad readdir cookie")};
  }
  if (max_entries == 0) max_entries = 1024;
  max_entries = std::min(max_entries, options_.max_readdir_entries);
  OpResultOr<DirPage> r;
  size_t bytes = 0;
  alignas(8) char buf[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, fd.get(), buf, sizeof(buf));
    if (n < 0) return {ErrnoError(errno, "getdents64")};
    if (n == 0) {
      r.value.eof = true;
      break;
    }
    for (long at = 0; at < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + at);
      at += d->d_reclen;
      absl::string_view name(d->d_name);
      if (name == "." || name == "..") continue;
      if (r.value.entries.size() == max_entries) return r;  // more remain
      rpc::DirEntry e;
      e.set_name(std::string(name));
      e.set_cookie(static_cast<uint64_t>(d->d_off));
      e.set_fileid(d->d_ino);
      switch (d->d_type) {
        case DT_REG:
          e.set_type(rpc::FILE_TYPE_REGULAR);
          break;
        case DT_DIR:
          e.set_type(rpc::FILE_TYPE_DIRECTORY);
          break;
        case DT_LNK:
          e.set_type(rpc::FILE_TYPE_SYMLINK);
          break;
        case DT_UNKNOWN:
          e.set_type(rpc::FILE_TYPE_UNKNOWN);
          break;
        default:
          e.set_type(rpc::FILE_TYPE_OTHER);
      }
      if (with_attrs) {
        UniqueFd op(OpenAt2(fd.get(), d->d_name,
                            O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
        if (op) {
          OpResultOr<NodeRef> node = Adopt(std::move(op), parent, name);
          if (node.ok()) {
            OpResultOr<FdRef> nfd = Fd(*node.value);
            struct stat st;
            if (nfd.ok() && fstat(nfd.value->get(), &st) == 0) {
              ToAttr(st, node.value.get(), e.mutable_attr());
              e.set_type(e.attr().type());
            }
            e.set_fh(HandleOf(*node.value));
          }
        }  // else removed meanwhile: keep the bare entry
      }
      // The entry's share of the reply: its bytes plus tag and length.
      const size_t size = e.ByteSizeLong() + 6;
      if (bytes + size > max_bytes) {
        if (r.value.entries.empty()) {
          return {Err(rpc::STATUS_TOOBIG,
                      "READDIR: no room left in the reply for an entry")};
        }
        return r;  // cut here; more remain
      }
      bytes += size;
      r.value.entries.push_back(std::move(e));
    }
  }
  return r;
}

OpResultOr<rpc::StatFsResult> Export::StatFs() {
  struct statvfs sv;
  OpResultOr<FdRef> fd = Fd(*root_);
  if (!fd.ok()) return {fd.error};
  if (fstatvfs(fd.value->get(), &sv) != 0) {
    return {ErrnoError(errno, "statvfs")};
  }
  OpResultOr<rpc::StatFsResult> r;
  uint64_t bs = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
  r.value.set_total_bytes(sv.f_blocks * bs);
  r.value.set_free_bytes(sv.f_bfree * bs);
  r.value.set_avail_bytes(sv.f_bavail * bs);
  r.value.set_total_files(sv.f_files);
  r.value.set_free_files(sv.f_ffree);
  r.value.set_block_size(static_cast<uint32_t>(sv.f_bsize));
  r.value.set_name_max(static_cast<uint32_t>(sv.f_namemax));
  return r;
}

}  // namespace txbuf::server
