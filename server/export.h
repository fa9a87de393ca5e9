// export.h: the exported directory tree, its file handles and metadata ops.
//
// Every file the server has handed a handle for is a `Node`: an O_PATH file
// descriptor (which follows the inode across renames) keyed by (dev, ino).
// A handle names a node; it is STALE once the node's file has no links left
// (removed), and after a server restart (a new epoch). Paths are resolved
// with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) from the directory
// the lookup starts at, after refusing absolute paths and `..`, so nothing
// resolves outside the export: not by `..`, not by an absolute name, not by
// a symlink.
//
// File data goes through the shared `PageCache` (see page_cache.h); this
// class does names, handles and attributes.
//
// Thread-safety: thread-safe (the node table takes a mutex; file system
// calls are independent).
//
// Example:
//   auto ex = txbuf::server::Export::Open("/srv/data", {}).value();
//   NodeRef root = ex->Root();
//   absl::StatusOr<NodeRef> f = ex->Lookup(*root, "docs/a.txt");  // or OpError
#ifndef TXBUF_SERVER_EXPORT_H_
#define TXBUF_SERVER_EXPORT_H_

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/page_cache.h"
#include "common/socket_util.h"
#include "proto/txbuf.pb.h"
#include "server/status_map.h"

namespace txbuf::server {

// A file of the export the server knows. Immutable after creation except
// for the page-cache link.
struct Node {
  uint64_t id = 0;
  FileKey key;
  UniqueFd opath;  // O_PATH descriptor of the file itself
  bool is_dir = false;
  bool is_regular = false;
  // Set when this server removed the file's last link (REMOVE, RENAME over
  // it): handles are STALE from then on without a stat per use.
  std::atomic<bool> removed{false};

  // The file's page-cache entry once its data has been used.
  absl::Mutex mu;
  std::shared_ptr<PageCache::File> file ABSL_GUARDED_BY(mu);
};
using NodeRef = std::shared_ptr<Node>;

template <typename T>
struct OpResultOr {  // a value or an OpError
  OpError error;
  T value{};
  bool ok() const { return error.ok(); }
};

struct ExportOptions {
  bool read_only = false;
  size_t max_nodes = 1 << 20;  // node table cap (least recently used dropped)
};

class Export {
 public:
  static absl::StatusOr<std::unique_ptr<Export>> Open(const std::string& dir,
                                                      ExportOptions options);

  const ExportOptions& options() const { return options_; }
  bool read_only() const { return options_.read_only; }
  NodeRef Root() const { return root_; }

  // The opaque handle of a node, and back. FromHandle fails with BADHANDLE
  // (not ours), STALE (removed by this server, expired, or from before a
  // restart). It does not stat: a removal made outside the server shows up
  // as STALE on the next op that stats (GETATTR, LOOKUP, GETFH...).
  std::string HandleOf(const Node& n) const;
  OpResultOr<NodeRef> FromHandle(absl::string_view fh);

  // Resolves `path` (components joined by '/') beneath directory `dir`.
  OpResultOr<NodeRef> Lookup(const Node& dir, absl::string_view path);

  // Metadata operations; `dir` must be a directory node.
  OpResultOr<NodeRef> Create(const Node& dir, absl::string_view name,
                             uint32_t mode, bool exclusive);
  OpResultOr<NodeRef> Mkdir(const Node& dir, absl::string_view name,
                            uint32_t mode);
  OpError Remove(const Node& dir, absl::string_view name);
  OpError Rmdir(const Node& dir, absl::string_view name);
  OpError Rename(const Node& from_dir, absl::string_view from_name,
                 const Node& to_dir, absl::string_view to_name);

  // stat(2) of a node; STALE if it has no links left.
  OpResultOr<struct stat> Stat(const Node& n);
  // Fills `attr` from `st`, with the size the page cache knows if the node's
  // data is cached (it includes unstable writes).
  static void ToAttr(const struct stat& st, Node* n, rpc::Attr* attr);
  OpResultOr<rpc::Attr> GetAttr(const Node& n);
  OpError SetAttr(const Node& n, const rpc::SetAttr& args);

  // The page-cache file of a regular node (opened on first use).
  OpResultOr<std::shared_ptr<PageCache::File>> File(const Node& n);

  struct DirPage {
    std::vector<rpc::DirEntry> entries;
    bool eof = false;
  };
  OpResultOr<DirPage> ReadDir(const Node& dir, uint64_t cookie,
                              uint32_t max_entries, bool with_attrs);
  OpResultOr<rpc::StatFsResult> StatFs();

  PageCache& cache() { return *cache_; }
  void set_cache(PageCache* cache) { cache_ = cache; }
  size_t nodes() const;

  // Checks a single name component.
  static OpError CheckName(absl::string_view name);

 private:
  explicit Export(ExportOptions options) : options_(options) {}
  // The node for an O_PATH fd just opened (takes it); reuses an existing
  // node of the same file.
  OpResultOr<NodeRef> Adopt(UniqueFd opath);
  void ForgetIfUnlinked(const FileKey& key, nlink_t links_before);
  void SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  NodeRef FindLocked(const FileKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  OpError CheckWritable() const;

  ExportOptions options_;
  uint64_t epoch_ = 0;
  NodeRef root_;
  PageCache* cache_ = nullptr;

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, NodeRef> by_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<FileKey, uint64_t> by_key_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_EXPORT_H_
