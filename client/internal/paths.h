// client/internal/paths.h: export-relative paths of the blocking API.
//
// Paths are '/'-separated and relative to the export root. Leading, trailing
// and repeated '/' and "." components are dropped, so "/a//b/./" is "a/b" and
// "", "/" and "." are the root (the empty path). ".." is kept: the server
// refuses it (ACCES).
//
// Not for callers: the client library and the CLI only.
//
// Thread-safety: pure functions; thread-safe.
#ifndef TXBUF_CLIENT_INTERNAL_PATHS_H_
#define TXBUF_CLIENT_INTERNAL_PATHS_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf::client::internal {

// The canonical form described above.
//
// Example:
//   NormalizePath("/a//b/./") == "a/b"
std::string NormalizePath(absl::string_view path);

// {parent, name} of a normalized non-root path; InvalidArgument for the root.
//
// Example:
//   SplitParent("a/b/c") == {"a/b", "c"};  SplitParent("c") == {"", "c"}
absl::StatusOr<std::pair<std::string, std::string>> SplitParent(
    absl::string_view path);

// The last component of `path` ("" for the root).
//
// Example:
//   BaseName("a/b/c.txt") == "c.txt"
std::string BaseName(absl::string_view path);

}  // namespace txbuf::client::internal

#endif  // TXBUF_CLIENT_INTERNAL_PATHS_H_
