#include "server/status_map.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/page_cache.h"
#include "common/socket_util.h"

namespace txbuf::server {

rpc::Status StatusFromErrno(int err) {
  switch (err) {
    case 0:
      return rpc::STATUS_OK;
    case EPERM:
      return rpc::STATUS_PERM;
    case ENOENT:
      return rpc::STATUS_NOENT;
    case EACCES:
      return rpc::STATUS_ACCES;
    case EEXIST:
      return rpc::STATUS_EXIST;
    case EXDEV:
      return rpc::STATUS_XDEV;
    case ENOTDIR:
      return rpc::STATUS_NOTDIR;
    case EISDIR:
      return rpc::STATUS_ISDIR;
    case EINVAL:
      return rpc::STATUS_INVAL;
    case EFBIG:
      return rpc::STATUS_FBIG;
    case ENOSPC:
      return rpc::STATUS_NOSPC;
    case EROFS:
      return rpc::STATUS_ROFS;
    case EMLINK:
      return rpc::STATUS_MLINK;
    case ENAMETOOLONG:
      return rpc::STATUS_NAMETOOLONG;
    case ENOTEMPTY:
      return rpc::STATUS_NOTEMPTY;
    case EDQUOT:
      return rpc::STATUS_DQUOT;
    case ESTALE:
      return rpc::STATUS_STALE;
    case ELOOP:
      return rpc::STATUS_ACCES;
    case EOPNOTSUPP:  // e.g. a mode for a symbolic link
      return rpc::STATUS_NOTSUPP;
    case ENOMEM:
    case ENOBUFS:
    case EAGAIN:
    case EMFILE:
    case ENFILE:
      return rpc::STATUS_DELAY;
    default:
      return rpc::STATUS_IO;
  }
}

OpError ErrnoError(int err, absl::string_view what) {
  return {StatusFromErrno(err), absl::StrCat(what, ": ", std::strerror(err))};
}

OpError FromAbsl(const absl::Status& s) {
  if (s.ok()) return OpError::Ok();
  // Meant to be repeated off the event loop, never to reach a client; if it
  // does, "retry" is the honest answer.
  if (IsWouldBlock(s)) return {rpc::STATUS_DELAY, std::string(s.message())};
  // A failed syscall keeps its errno (ErrnoStatus), and so its identity:
  // EFBIG (also the page cache's FileTooLargeError) is FBIG, ENOSPC NOSPC,
  // EDQUOT DQUOT, EIO IO; only errnos a retry can fix are DELAY.
  if (int err = ErrnoOf(s); err != 0) {
    return {StatusFromErrno(err), std::string(s.message())};
  }
  rpc::Status code;
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      code = rpc::STATUS_NOENT;
      break;
    case absl::StatusCode::kAlreadyExists:
      code = rpc::STATUS_EXIST;
      break;
    case absl::StatusCode::kPermissionDenied:
      code = rpc::STATUS_ACCES;
      break;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      code = rpc::STATUS_INVAL;
      break;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      code = rpc::STATUS_DELAY;
      break;
    case absl::StatusCode::kFailedPrecondition:
      code = rpc::STATUS_ROFS;
      break;
    default:
      code = rpc::STATUS_IO;
  }
  return {code, std::string(s.message())};
}

}  // namespace txbuf::server
