// client/mount/errno_map.h: the errno a FUSE reply carries for a txbuf
// status: a protocol status (docs/PROTOCOL.md section 4) maps to the errno
// it stands for (NOENT -> ENOENT, NOTEMPTY -> ENOTEMPTY, STALE -> ESTALE,
// NOTSUPP -> EOPNOTSUPP, ...); a transport failure to EIO, or ETIMEDOUT
// for a request that timed out.
//
// A protocol status's errno is proto/status_map.h's RpcStatusErrno (one
// table for both ends).
//
// Thread-safety: pure functions; thread-safe.
//
// Example:
//   fuse_reply_err(req, ErrnoFromStatus(reply.status()));
#ifndef TXBUF_CLIENT_MOUNT_ERRNO_MAP_H_
#define TXBUF_CLIENT_MOUNT_ERRNO_MAP_H_

#include "absl/status/status.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::mount {

// The errno for a failed absl::Status: its rpc::Status payload
// (client/status.h) if it has one, else by code: DeadlineExceeded
// ETIMEDOUT, Unimplemented EOPNOTSUPP, InvalidArgument EINVAL, any other
// (Unavailable: the connection is gone) EIO. OK gives 0.
//
// Example:
//   ErrnoFromStatus(absl::DeadlineExceededError("late")) == ETIMEDOUT
int ErrnoFromStatus(const absl::Status& status);

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_ERRNO_MAP_H_
