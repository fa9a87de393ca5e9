// client/mount/errno_map.cc: see errno_map.h.
#include "client/mount/errno_map.h"

#include <cerrno>
#include <optional>

#include "client/status.h"

namespace txbuf::client::mount {

int ErrnoFromRpc(rpc::Status code) {
  switch (code) {
    case rpc::STATUS_OK:
      return 0;
    case rpc::STATUS_PERM:
      return EPERM;
    case rpc::STATUS_NOENT:
      return ENOENT;
    case rpc::STATUS_IO:
      return EIO;
    case rpc::STATUS_ACCES:
      return EACCES;
    case rpc::STATUS_EXIST:
      return EEXIST;
    case rpc::STATUS_XDEV:
      return EXDEV;
    case rpc::STATUS_NOTDIR:
      return ENOTDIR;
    case rpc::STATUS_ISDIR:
      return EISDIR;
    case rpc::STATUS_INVAL:
      return EINVAL;
    case rpc::STATUS_FBIG:
      return EFBIG;
    case rpc::STATUS_NOSPC:
      return ENOSPC;
    case rpc::STATUS_ROFS:
      return EROFS;
    case rpc::STATUS_MLINK:
      return EMLINK;
    case rpc::STATUS_NAMETOOLONG:
      return ENAMETOOLONG;
    case rpc::STATUS_NOTEMPTY:
      return ENOTEMPTY;
    case rpc::STATUS_DQUOT:
      return EDQUOT;
    case rpc::STATUS_STALE:
    case rpc::STATUS_BADHANDLE:
      return ESTALE;
    case rpc::STATUS_NOTSUPP:
    case rpc::STATUS_OP_ILLEGAL:
      return EOPNOTSUPP;
    case rpc::STATUS_DELAY:
      return EAGAIN;
    case rpc::STATUS_AUTH:
      return EACCES;
    case rpc::STATUS_TOOBIG:
      return E2BIG;
    default:
      return EIO;
  }
}

int ErrnoFromStatus(const absl::Status& status) {
  if (status.ok()) return 0;
  if (std::optional<rpc::Status> code = RpcStatusOf(status)) {
    const int err = ErrnoFromRpc(*code);
    return err != 0 ? err : EIO;
  }
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return ETIMEDOUT;
    case absl::StatusCode::kUnimplemented:
      return EOPNOTSUPP;
    case absl::StatusCode::kInvalidArgument:
      return EINVAL;
    default:
      return EIO;
  }
}

}  // namespace txbuf::client::mount
