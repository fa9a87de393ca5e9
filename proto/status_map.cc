#include "proto/status_map.h"

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace txbuf {
namespace {

struct StatusInfo {
  rpc::Status code;
  absl::string_view name;
  absl::string_view description;
  absl::StatusCode absl_code;
  int err;  // the errno it stands for (a client's file system answers it)
};

constexpr StatusInfo kStatusInfo[] = {
    {rpc::STATUS_OK, "OK", "success", absl::StatusCode::kOk, 0},
    {rpc::STATUS_PERM, "PERM", "operation not permitted",
     absl::StatusCode::kPermissionDenied, EPERM},
    {rpc::STATUS_NOENT, "NOENT", "no such file or directory",
     absl::StatusCode::kNotFound, ENOENT},
    {rpc::STATUS_IO, "IO", "input/output error", absl::StatusCode::kInternal,
     EIO},
    {rpc::STATUS_ACCES, "ACCES", "permission denied",
     absl::StatusCode::kPermissionDenied, EACCES},
    {rpc::STATUS_EXIST, "EXIST", "already exists",
     absl::StatusCode::kAlreadyExists, EEXIST},
    {rpc::STATUS_XDEV, "XDEV", "rename across file systems",
     absl::StatusCode::kFailedPrecondition, EXDEV},
    {rpc::STATUS_NOTDIR, "NOTDIR", "not a directory",
     absl::StatusCode::kFailedPrecondition, ENOTDIR},
    {rpc::STATUS_ISDIR, "ISDIR", "is a directory",
     absl::StatusCode::kFailedPrecondition, EISDIR},
    {rpc::STATUS_INVAL, "INVAL", "invalid argument",
     absl::StatusCode::kInvalidArgument, EINVAL},
    {rpc::STATUS_FBIG, "FBIG", "file too large", absl::StatusCode::kOutOfRange,
     EFBIG},
    {rpc::STATUS_NOSPC, "NOSPC", "no space left on the export",
     absl::StatusCode::kResourceExhausted, ENOSPC},
    {rpc::STATUS_ROFS, "ROFS", "the export is read-only",
     absl::StatusCode::kFailedPrecondition, EROFS},
    {rpc::STATUS_MLINK, "MLINK", "too many links",
     absl::StatusCode::kResourceExhausted, EMLINK},
    {rpc::STATUS_NAMETOOLONG, "NAMETOOLONG", "name too long",
     absl::StatusCode::kInvalidArgument, ENAMETOOLONG},
    {rpc::STATUS_NOTEMPTY, "NOTEMPTY", "directory not empty",
     absl::StatusCode::kFailedPrecondition, ENOTEMPTY},
    {rpc::STATUS_DQUOT, "DQUOT", "quota exceeded",
     absl::StatusCode::kResourceExhausted, EDQUOT},
    {rpc::STATUS_STALE, "STALE",
     "stale file handle (the file no longer exists)",
     absl::StatusCode::kFailedPrecondition, ESTALE},
    {rpc::STATUS_BADHANDLE, "BADHANDLE", "not a file handle of this server",
     absl::StatusCode::kInvalidArgument, ESTALE},
    {rpc::STATUS_NOTSUPP, "NOTSUPP", "operation not supported on this object",
     absl::StatusCode::kUnimplemented, EOPNOTSUPP},
    {rpc::STATUS_SERVERFAULT, "SERVERFAULT", "internal server error",
     absl::StatusCode::kInternal, EIO},
    {rpc::STATUS_DELAY, "DELAY", "server out of a resource for now; retry",
     absl::StatusCode::kUnavailable, EAGAIN},
    {rpc::STATUS_NOFILEHANDLE, "NOFILEHANDLE",
     "the op needs a current file handle",
     absl::StatusCode::kFailedPrecondition, EIO},
    {rpc::STATUS_BADXDR, "BADXDR", "malformed frame or envelope",
     absl::StatusCode::kInvalidArgument, EIO},
    {rpc::STATUS_TOOBIG, "TOOBIG", "over a server limit",
     absl::StatusCode::kResourceExhausted, E2BIG},
    {rpc::STATUS_OP_ILLEGAL, "OP_ILLEGAL", "unknown operation",
     absl::StatusCode::kUnimplemented, EOPNOTSUPP},
    {rpc::STATUS_AUTH, "AUTH", "authentication failed or missing",
     absl::StatusCode::kUnauthenticated, EACCES},
};

const StatusInfo* Find(rpc::Status code) {
  for (const StatusInfo& i : kStatusInfo) {
    if (i.code == code) return &i;
  }
  return nullptr;
}

}  // namespace

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

rpc::Status StatusFromAbslCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return rpc::STATUS_OK;
    case absl::StatusCode::kNotFound:
      return rpc::STATUS_NOENT;
    case absl::StatusCode::kAlreadyExists:
      return rpc::STATUS_EXIST;
    case absl::StatusCode::kPermissionDenied:
      return rpc::STATUS_ACCES;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return rpc::STATUS_INVAL;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return rpc::STATUS_DELAY;
    case absl::StatusCode::kFailedPrecondition:
      return rpc::STATUS_ROFS;
    default:
      return rpc::STATUS_IO;
  }
}

std::string RpcStatusName(rpc::Status code) {
  if (const StatusInfo* i = Find(code)) return {i->name.data(), i->name.size()};
  return absl::StrCat("STATUS_", static_cast<int>(code));
}

absl::string_view RpcStatusDescription(rpc::Status code) {
  if (const StatusInfo* i = Find(code)) return i->description;
  return "unknown error";
}

int RpcStatusErrno(rpc::Status code) {
  if (const StatusInfo* i = Find(code)) return i->err;
  return EIO;
}

absl::StatusCode RpcStatusCode(rpc::Status code) {
  if (const StatusInfo* i = Find(code)) return i->absl_code;
  return absl::StatusCode::kInternal;
}

}  // namespace txbuf
