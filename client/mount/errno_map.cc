// client/mount/errno_map.cc: see errno_map.h.
#include "client/mount/errno_map.h"

#include <cerrno>
#include <optional>

#include "client/status.h"
#include "proto/status_map.h"

namespace txbuf::client::mount {

int ErrnoFromStatus(const absl::Status& status) {
  if (status.ok()) return 0;
  if (std::optional<rpc::Status> code = RpcStatusOf(status)) {
    const int err = RpcStatusErrno(*code);
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
