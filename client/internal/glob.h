// client/internal/glob.h: shell-style patterns in remote paths for the
// `txbuf` command-line tool.
//
// A remote path with '*', '?' or '[' in it, such as "logs/2025-*/app?.log",
// is a pattern: it is expanded one component at a time against the server's
// READDIR of the directories matched so far, with fnmatch(3) (FNM_PERIOD: a
// leading '.' is matched only by a pattern that starts with '.', as in sh).
// In a pattern a backslash quotes the next character ("\\[x]" is the name
// "[x]"). A path without '*', '?' or '[' is used as it is (backslashes
// included), without asking the server.
//
// Not for callers: the CLI only.
//
// Thread-safety: pure functions (the lister is called on the calling
// thread); thread-safe if the lister is.
#ifndef TXBUF_CLIENT_INTERNAL_GLOB_H_
#define TXBUF_CLIENT_INTERNAL_GLOB_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::internal {

// Lists the entries of directory `dir` (a normalized export-relative path).
using DirLister = std::function<absl::StatusOr<std::vector<rpc::DirEntry>>(
    const std::string& dir)>;

// Whether `path` is a pattern: has a '*', '?' or '[' (quoted or not).
//
// Example:
//   HasGlob("a/*.txt") == true;  HasGlob("a/b.txt") == false
bool HasGlob(absl::string_view path);

// The paths (normalized, sorted) that `pattern` matches, listing directories
// with `list`. A pattern without special characters gives itself
// (normalized), whether or not it exists. NotFound if a pattern matches
// nothing ("no match for 'PATTERN'"); errors of `list` are passed on, except
// that a non-directory met on the way is no match.
//
// Example:
//   ExpandGlob("docs/*.txt", lister) == {"docs/a.txt", "docs/b.txt"}
absl::StatusOr<std::vector<std::string>> ExpandGlob(absl::string_view pattern,
                                                    const DirLister& list);

}  // namespace txbuf::client::internal

#endif  // TXBUF_CLIENT_INTERNAL_GLOB_H_
