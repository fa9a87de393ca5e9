// export_root.h: opening files of an exported directory for the raw and
// gRPC peer servers, confined to that directory.
//
// A request path must be relative, must not contain "." or ".." components
// or empty ones, and is resolved confined to the directory
// (common/open_beneath.h: symlinks may not escape either, with or without
// openat2).
// `FileTable` caches one read-write descriptor per path for the server's
// lifetime (files are opened on first use, never closed while serving).
//
// Thread-safety: ExportRoot is immutable after Open (thread-safe);
// FileTable is thread-safe.
#ifndef TXBUF_BENCH_TARGETS_EXPORT_ROOT_H_
#define TXBUF_BENCH_TARGETS_EXPORT_ROOT_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/socket_util.h"

namespace txbuf::peers::internal {

// OK iff `path` is a plain relative path (see above).
absl::Status CheckRelativePath(absl::string_view path);

class ExportRoot {
 public:
  static absl::StatusOr<ExportRoot> Open(const std::string& dir);
  // Opens `path` (relative to the root) read-write.
  absl::StatusOr<UniqueFd> OpenFile(absl::string_view path) const;
  int fd() const { return root_.get(); }

 private:
  explicit ExportRoot(UniqueFd root) : root_(std::move(root)) {}
  UniqueFd root_;
};

class FileTable {
 public:
  explicit FileTable(const ExportRoot& root) : root_(root) {}
  // The descriptor of `path`, opened on first use.
  absl::StatusOr<int> Get(absl::string_view path);

 private:
  const ExportRoot& root_;
  absl::Mutex mu_;
  absl::node_hash_map<std::string, UniqueFd> fds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txbuf::peers::internal

#endif  // TXBUF_BENCH_TARGETS_EXPORT_ROOT_H_
