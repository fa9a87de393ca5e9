// server/fs/fs_error.h: the failures the file-system layer decides itself,
// as absl::Status.
//
// Every Export operation fails with an absl::Status of one of three kinds:
//   - a failed syscall: ErrnoStatus(errno, what) (common/socket_util.h),
//     whose errno rides along as a payload (ErrnoOf);
//   - a failure the export decides itself (a stale handle, a name that
//     leaves the export, a read-only export, ...): FsError(kind, message),
//     an absl code plus its `FsErrorKind` as a payload (FsErrorKindOf);
//   - a page-cache status (WouldBlockError, FileTooLargeError, ...).
//
// Why a kind beside the absl code: the protocol tells apart failures that
// share one absl code, and clients act on the difference (a STALE handle is
// looked up again by name, a BADHANDLE one is a bug; ROFS is not NOTDIR).
// NOTDIR, ISDIR, ROFS and STALE are all FailedPrecondition; INVAL,
// NAMETOOLONG and BADHANDLE all InvalidArgument; PERM and ACCES both
// PermissionDenied. So the kind names the failure exactly, and the absl code
// is for readers and logs. Nothing here knows the protocol: the compound
// executor maps kinds and errnos to wire statuses
// (server/compound/status_map.h).
//
// Thread-safety: pure functions; thread-safe.
//
// Example:
//   if (name.empty()) return FsError(FsErrorKind::kInvalid, "empty name");
//   ...
//   if (FsErrorKindOf(s) == FsErrorKind::kStale) { /* look it up again */ }
#ifndef TXBUF_SERVER_FS_FS_ERROR_H_
#define TXBUF_SERVER_FS_FS_ERROR_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace txbuf::server {

// What went wrong, as the file system sees it. The comment after each is
// its absl code.
enum class FsErrorKind : int {
  kNotFound = 1,  // NotFound: no such name, or no such export
  kAccess,        // PermissionDenied: a path that leaves the export
  kPermission,    // PermissionDenied: not allowed (e.g. setting set-id bits)
  kStale,         // FailedPrecondition: the handle's file is gone
  kBadHandle,     // InvalidArgument: not a handle of this server
  kInvalid,       // InvalidArgument: a bad argument
  kNameTooLong,   // InvalidArgument: a name or link target too long
  kNotDir,        // FailedPrecondition: a directory op on another file
  kIsDir,         // FailedPrecondition: a file op on a directory
  kReadOnly,      // FailedPrecondition: the export is read-only
  kNotSupported,  // Unimplemented: not for this kind of file
  kBusy,          // Unavailable: raced with other changes; retry
  kTooBig,        // ResourceExhausted: over a limit of the caller's
};

// A status of `kind` with `message`.
//
// Example:
//   return FsError(FsErrorKind::kStale, "the file was removed");
absl::Status FsError(FsErrorKind kind, absl::string_view message);

// The kind of a status FsError made; nullopt for any other (OK included).
std::optional<FsErrorKind> FsErrorKindOf(const absl::Status& s);

// Whether `s` says the file is gone: FsErrorKind::kStale, or the syscall
// errno ESTALE.
bool IsStale(const absl::Status& s);

// `s` with `prefix` put before its message, code and payloads kept.
//
// Example:
//   return WithPrefix(CheckName(c), absl::StrCat("lookup '", path, "': "));
absl::Status WithPrefix(const absl::Status& s, absl::string_view prefix);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_FS_FS_ERROR_H_
