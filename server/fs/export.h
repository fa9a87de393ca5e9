// server/fs/export.h: the exported directory tree, its file handles and
// metadata ops.
//
// Every file the server has handed a handle for is a `Node`, keyed by
// (dev, ino). A node holds an O_PATH descriptor of its file (which follows
// the inode across renames) while it is among the most recently used ones:
// descriptors are a budget (`ExportOptions::fd_budget`, derived from
// RLIMIT_NOFILE by the server), and past it the least recently used nodes
// give theirs back. A node without a descriptor finds its file again when it
// is next used: by kernel file handle (open_by_handle_at, when the server has
// CAP_DAC_READ_SEARCH) or else by the directory and name it was last seen
// at, checking that (dev, ino) still match. So an evicted handle of an
// existing file keeps working. A handle is STALE once its file has no links
// left (removed), after a server restart (a new epoch), or when the node
// table itself is full (`max_nodes`) and drops its oldest idle nodes.
//
// Confinement. Paths are resolved with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS) from the directory the lookup starts at, after
// refusing absolute paths and `..`, so no name leaves that directory. And
// every use of a directory node (LOOKUP in it, CREATE, MKDIR, REMOVE, RMDIR,
// RENAME, READDIR, and GETATTR/SETATTR/GETFH of it) first checks that the
// directory is still beneath the export root, walking `..` up to the root
// by (dev, ino) as knfsd's subtree_check does: a directory moved out of the
// export on the server host is STALE. A regular file moved out keeps working
// on that one file, as in NFS, and gives access to nothing else.
//
// Special files. No open here ever blocks on a FIFO, a device or a socket:
// names are resolved O_PATH (which opens nothing), CREATE opens only files
// it creates itself (O_EXCL), and file data are opened (by the page cache)
// only for regular files, non-blocking. CREATE, READ, WRITE and SETATTR size
// of a non-regular file fail with INVAL.
//
// Removal. REMOVE and RENAME over a file drop its node, its descriptor and
// its page-cache file at once, so the file's space comes back as soon as the
// replies in flight that pin its pages are sent.
//
// File data goes through the shared `PageCache` (see page_cache.h); this
// class does names, handles and attributes.
//
// Errors. It knows no protocol: its operations take and return plain types
// (FileAttr, SetAttrArgs, DirEntry, FsStats) and fail with an absl::Status:
// ErrnoStatus for a failed syscall, FsError (fs_error.h) for what the export
// decides itself. The compound executor maps both onto the wire
// (server/compound/status_map.h).
//
// Thread-safety: thread-safe. Lock order: Export::names_mu_ (held by an
// operation that changes a name, across its syscalls) -> Export::mu_ ->
// Node::mu -> the page
// cache's locks (which eviction only try-locks: a file's lock may be held
// across I/O); Node::mu is never held while taking Export::mu_. File system
// calls run without Export::mu_, except closing descriptors.
//
// Example:
//   auto ex = txbuf::server::Export::Open("/srv/data", {}).value();
//   NodeRef root = ex->Root();
//   absl::StatusOr<NodeRef> f = ex->Lookup(*root, "docs/a.txt");
#ifndef TXBUF_SERVER_FS_EXPORT_H_
#define TXBUF_SERVER_FS_EXPORT_H_

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/socket_util.h"
#include "server/fs/fs_error.h"
#include "server/fs/page_cache.h"

namespace txbuf::server {

// An open descriptor shared by the operations using it: it stays open while
// any of them holds it, even if its node gives it back meanwhile.
using FdRef = std::shared_ptr<const UniqueFd>;

struct Node;
using NodeRef = std::shared_ptr<Node>;

// A file of the export the server knows.
struct Node : std::enable_shared_from_this<Node> {
  uint64_t id = 0;
  FileKey key;
  bool is_dir = false;
  bool is_regular = false;
  // Set when this server removed the file's last link (REMOVE, RENAME over
  // it), or found it without links: handles are STALE from then on.
  std::atomic<bool> removed{false};
  // The kernel's file handle (struct file_handle: type, then bytes), empty
  // if the server cannot open by handle. Immutable.
  std::string kernel_handle;

  absl::Mutex mu;
  // The O_PATH descriptor, while the node holds one.
  FdRef fd ABSL_GUARDED_BY(mu);
  // The file's page-cache entry once its data has been used (regular files).
  std::shared_ptr<PageCache::File> file ABSL_GUARDED_BY(mu);
  // Where the file was last seen (for finding it without a kernel handle):
  // the directory's node and the name in it. Null for the root.
  NodeRef parent ABSL_GUARDED_BY(mu);
  std::string name ABSL_GUARDED_BY(mu);

  // Guarded by Export::mu_: whether the node is in the table, and its links
  // in the list of nodes holding descriptors.
  bool in_table = false;
  bool writeback_queued = false;  // in Export::to_write_back_
  Node* lru_prev = nullptr;
  Node* lru_next = nullptr;
  std::atomic<uint64_t> lru_stamp{0};
};

// What kind of file a node or directory entry is.
enum class FileType { kUnknown, kRegular, kDirectory, kSymlink, kOther };

// A file's attributes (GETATTR).
struct FileAttr {
  FileType type = FileType::kUnknown;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // the page cache's, with unstable writes
  uint64_t used = 0;  // bytes of storage used
  uint64_t fileid = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

// What SETATTR changes: each field that is set.
struct SetAttrArgs {
  std::optional<uint32_t> mode;
  std::optional<uint64_t> size;     // truncate or extend
  std::optional<int64_t> atime_ns;  // -1: the server's time now
  std::optional<int64_t> mtime_ns;  // -1: the server's time now
};

// One entry of a directory (READDIR).
struct DirEntry {
  std::string name;
  uint64_t cookie = 0;  // resume after this entry
  uint64_t fileid = 0;
  FileType type = FileType::kUnknown;
  // With attributes asked for: the entry's attributes and handle (each
  // absent if the entry went away meanwhile).
  std::optional<FileAttr> attr;
  std::string fh;
};

// The file system's space and file counts (STATFS).
struct FsStats {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t avail_bytes = 0;
  uint64_t total_files = 0;
  uint64_t free_files = 0;
  uint32_t block_size = 0;
  uint32_t name_max = 0;
};

struct ExportOptions {
  bool read_only = false;
  // Ownership squashing: what CREATE, MKDIR and SYMLINK make is given this
  // owner and group (when set) instead of the server process's, as
  // /etc/exports' all_squash with anonuid/anongid. Needs a server that may
  // chown (root), or ids equal to its own.
  std::optional<uint32_t> squash_uid;
  std::optional<uint32_t> squash_gid;
  // Node table cap: past it the oldest idle half of the nodes is dropped
  // (their handles become STALE, like NFSv4 volatile handles).
  size_t max_nodes = 1 << 19;
  // Descriptors the export may hold open (O_PATH descriptors of nodes plus
  // page-cache files); past it the least recently used nodes close theirs.
  size_t fd_budget = 1 << 16;
  // READDIR: at most this many entries per reply, whatever the client asks.
  uint32_t max_readdir_entries = 4096;
};

class Export {
 public:
  static absl::StatusOr<std::unique_ptr<Export>> Open(const std::string& dir,
                                                      ExportOptions options);
  ~Export();

  const ExportOptions& options() const { return options_; }
  bool read_only() const { return options_.read_only; }
  NodeRef Root() const { return root_; }

  // The opaque handle of a node, and back. FromHandle fails with
  // FsErrorKind::kBadHandle (not ours) or kStale (removed, dropped from the
  // table, from before a restart, or a directory no longer beneath the
  // export).
  std::string HandleOf(const Node& n) const;
  absl::StatusOr<NodeRef> FromHandle(absl::string_view fh);
  // Which export a handle names (its export_id()); false if `fh` is not
  // a handle of this server's form.
  static bool ExportIdOfHandle(absl::string_view fh, uint64_t* export_id);
  // The same for every instance exporting this directory (from the root's
  // device and inode).
  uint64_t export_id() const { return export_id_; }

  // Resolves `path` (components joined by '/') beneath directory `dir`.
  // A symlink as the last component is followed unless `no_follow` (then
  // the node is the link itself).
  absl::StatusOr<NodeRef> Lookup(Node& dir, absl::string_view path,
                                 bool no_follow = false);

  // Metadata operations; `dir` must be a directory node.
  absl::StatusOr<NodeRef> Create(Node& dir, absl::string_view name,
                                 uint32_t mode, bool exclusive);
  absl::StatusOr<NodeRef> Mkdir(Node& dir, absl::string_view name,
                                uint32_t mode);
  absl::Status Remove(Node& dir, absl::string_view name);
  absl::Status Rmdir(Node& dir, absl::string_view name);
  absl::Status Rename(Node& from_dir, absl::string_view from_name, Node& to_dir,
                      absl::string_view to_name);
  // A symbolic link `name` -> `target` in `dir` (never followed here).
  absl::StatusOr<NodeRef> Symlink(Node& dir, absl::string_view name,
                                  absl::string_view target);
  // The target of a symlink node (FsErrorKind::kInvalid for other files,
  // kIsDir for a directory).
  absl::StatusOr<std::string> Readlink(Node& n);

  // stat(2) of a node; kStale if it has no links left or is a directory no
  // longer beneath the export.
  absl::StatusOr<struct stat> Stat(Node& n);
  // Fills `attr` from `st`. If the node's data are cached, the cache is
  // first checked against `st` (PageCache::File::Revalidate: pages another
  // process changed on disk are dropped) and the size is the cache's (it
  // includes unstable writes), so it agrees with what READ returns. False
  // (nothing filled) only in IoMode::kNoBlock, when that check would wait
  // for the file's lock (another thread's I/O on it).
  static bool ToAttr(const struct stat& st, Node* n, FileAttr* attr,
                     IoMode mode = IoMode::kMayBlock);
  // Stat() and ToAttr(). In IoMode::kNoBlock (an event loop), fails with
  // WouldBlockError() (page_cache.h) when checking the cache would wait for
  // the file's lock (another thread's I/O on it).
  absl::StatusOr<FileAttr> GetAttr(Node& n, IoMode mode = IoMode::kMayBlock);
  absl::Status SetAttr(Node& n, const SetAttrArgs& args);

  // Clears the set-user-ID and set-group-ID bits of a file just written, as
  // the kernel does for a writer without CAP_FSETID (txbufd usually has it).
  static absl::Status DropSetId(const PageCache::File& f);

  // The page-cache file of a regular node, opened on first use O_RDONLY, or
  // O_RDWR if `write` (a read-only one is then reopened read-write: ACCES
  // if the server's user may not write the file).
  absl::StatusOr<std::shared_ptr<PageCache::File>> File(Node& n,
                                                        bool write = false);
  // The node's page-cache file if it is open already (never blocks), else
  // null.
  static std::shared_ptr<PageCache::File> OpenFileIfAny(Node& n);
  // Forgets `f` as the node's page-cache file if it still is (the cache
  // released it: PageCache::FileReleasedError), so that File() gets the
  // file again.
  static void DropReleased(Node& n, const std::shared_ptr<PageCache::File>& f);
  // Whether the node holds its descriptor now (so Stat() will not block).
  static bool HasFd(Node& n);

  // Hands the entries after `cookie` (0: from the start) to `take`, in
  // order, at most min(max_entries, options().max_readdir_entries) of them
  // (max_entries 0: 1024); `take` returns false for an entry there is no
  // room for, which ends the page (FsErrorKind::kTooBig if it is the
  // first). True when the page reached the directory's end (eof), false if
  // more remain.
  //
  // Example:
  //   std::vector<DirEntry> page;
  //   absl::StatusOr<bool> eof = ex->ReadDir(
  //       dir, 0, 100, false, [&](DirEntry& e) {
  //         page.push_back(std::move(e));
  //         return true;
  //       });
  absl::StatusOr<bool> ReadDir(Node& dir, uint64_t cookie, uint32_t max_entries,
                               bool with_attrs,
                               absl::FunctionRef<bool(DirEntry&)> take);
  absl::StatusOr<FsStats> StatFs();

  PageCache& cache() { return *cache_; }
  bool has_cache() const { return cache_ != nullptr; }
  void set_cache(PageCache* cache) { cache_ = cache; }
  // Nodes in the table, and descriptors open (O_PATH descriptors, including
  // those evicted but still used by an operation, plus page-cache files).
  size_t nodes() const;
  size_t open_fds() const;
  // Whether evicted nodes are found again by kernel file handle.
  bool kernel_handles() const { return mount_fd_ >= 0; }
  // Checks again whether opening by kernel handle works (it needs
  // CAP_DAC_READ_SEARCH: not after dropping root); call before serving.
  void ProbeKernelHandles();

  // Writes back the files whose descriptors eviction could not close
  // because of their dirty pages, so that the next eviction can. Blocks:
  // call on a pool thread, without locks (the executor does, after each
  // compound it runs there).
  void FlushEvicted() ABSL_LOCKS_EXCLUDED(mu_);

  // Checks a single name component.
  static absl::Status CheckName(absl::string_view name);

 private:
  explicit Export(ExportOptions options) : options_(options) {}

  // The node's O_PATH descriptor, opening it again if it was evicted.
  absl::StatusOr<FdRef> Fd(Node& n);
  // Fd() of a directory node, after checking it is still beneath the root.
  absl::StatusOr<FdRef> DirFd(Node& dir);
  // Whether the directory open at `fd` is beneath (or is) the export root.
  absl::Status CheckBeneathRoot(int fd);
  // Finds the node's file again (kernel handle, else parent + name).
  absl::StatusOr<UniqueFd> Reopen(Node& n, int depth);
  // The node for an O_PATH fd just opened as `name` in `parent` (takes it);
  // reuses an existing node of the same file.
  absl::StatusOr<NodeRef> Adopt(UniqueFd opath, const NodeRef& parent,
                                absl::string_view name);
  // A counted FdRef owning `fd`.
  FdRef Own(UniqueFd fd);
  // Gives `n` its descriptor back (it was evicted).
  void InstallFd(Node& n, FdRef fd);
  // Descriptor accounting and the LRU list.
  void TouchLocked(Node* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnlinkLruLocked(Node* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch(Node* n);
  void EvictFdsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `n` is the file open at `opath` (same key), not a removed file
  // whose inode number the other reuses.
  bool SameFile(Node& n, int opath);
  // The node's file has no links left: STALE from now on, its descriptors
  // and cache entry dropped.
  void Gone(Node& n);
  // Drops the node of a file whose last link this server removed.
  void ForgetIfUnlinked(const FileKey& key, nlink_t links_before);
  void DropNodeLocked(const NodeRef& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  NodeRef FindLocked(const FileKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Updates the parent/name hint of the node of `key`, if known.
  void Moved(const FileKey& key, const NodeRef& to_dir,
             absl::string_view to_name);
  absl::Status CheckWritable() const;
  // Gives what was just made at `name` in `dir_fd` (open as `fd`) to the
  // squash owner, if one is set; on failure removes it again and returns
  // the error (so nothing is left owned by the wrong user).
  absl::Status SquashOwner(int fd, int dir_fd, const std::string& name,
                           bool is_dir) const;

  ExportOptions options_;
  uint64_t epoch_ = 0;      // random per server start
  uint64_t export_id_ = 0;  // from the root's (dev, ino)
  NodeRef root_;
  int mount_fd_ = -1;  // root's fd for open_by_handle_at; -1 if unavailable
  PageCache* cache_ = nullptr;
  // O_PATH descriptors open (shared with the FdRefs' deleters).
  std::shared_ptr<std::atomic<size_t>> opath_fds_ =
      std::make_shared<std::atomic<size_t>>(0);

  // Held by an operation of ours that changes a name (create, mkdir,
  // symlink, remove, rmdir, rename) from the moment it looks at what the
  // name leads to until it has changed it, so that no other operation of
  // ours changes that name in between: the node a REMOVE forgets is the
  // file its unlink removed (without the lock, a REMOVE and a CREATE
  // racing with it could unlink a newer file of the same name, whose node
  // then kept a descriptor of a removed file). Taken before mu_.
  absl::Mutex names_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, NodeRef> by_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<FileKey, uint64_t> by_key_ ABSL_GUARDED_BY(mu_);
  // Nodes holding descriptors, least recently used first.
  Node lru_ ABSL_GUARDED_BY(mu_);
  // Nodes whose descriptors eviction could not close because their file
  // has dirty pages.
  std::vector<NodeRef> to_write_back_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> write_back_due_{false};  // to_write_back_ not empty
  std::atomic<uint64_t> lru_clock_{1};
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_FS_EXPORT_H_
