// proto/status_map.h: what each protocol status (rpc::Status,
// docs/PROTOCOL.md section 4) is: the errno values and absl::Status codes
// that map to it (the server's side), its name, description and the
// absl::StatusCode it maps to (the client's side). One table for both ends.
//
// Thread-safety: pure functions; thread-safe.
//
// Example:
//   rpc::Status s = txbuf::StatusFromErrno(ENOENT);   // STATUS_NOENT
//   txbuf::RpcStatusName(s) == "NOENT";
//   txbuf::RpcStatusCode(s) == absl::StatusCode::kNotFound;
#ifndef TXBUF_PROTO_STATUS_MAP_H_
#define TXBUF_PROTO_STATUS_MAP_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/txbuf.pb.h"

namespace txbuf {

// The protocol status for an errno value: the errnos the table of
// PROTOCOL.md section 4 names map to their status, a shortage a retry can
// fix (ENOMEM, ENOBUFS, EAGAIN, EMFILE, ENFILE) to DELAY, any other to IO.
//
// Example:
//   StatusFromErrno(EDQUOT) == rpc::STATUS_DQUOT
rpc::Status StatusFromErrno(int err);

// The protocol status for an absl::Status code that carries no errno:
// NotFound is NOENT, AlreadyExists EXIST, PermissionDenied ACCES,
// InvalidArgument and OutOfRange INVAL, ResourceExhausted and Unavailable
// DELAY, FailedPrecondition ROFS, OK OK, any other IO.
//
// Example:
//   StatusFromAbslCode(absl::StatusCode::kNotFound) == rpc::STATUS_NOENT
rpc::Status StatusFromAbslCode(absl::StatusCode code);

// The protocol name of a status code without its prefix: "NOENT", "TOOBIG".
// Unknown values give "STATUS_<number>".
//
// Example:
//   RpcStatusName(rpc::STATUS_NOENT) == "NOENT"
std::string RpcStatusName(rpc::Status code);

// A short description of a status code ("no such file or directory"), used
// when the server sent no error text.
//
// Example:
//   RpcStatusDescription(rpc::STATUS_EXIST) == "already exists"
absl::string_view RpcStatusDescription(rpc::Status code);

// The errno a protocol status stands for, for a client that answers with
// one (a mount): each to its errno (NOENT ENOENT, NOTEMPTY ENOTEMPTY, ...),
// STALE and BADHANDLE ESTALE, NOTSUPP and OP_ILLEGAL EOPNOTSUPP, DELAY
// EAGAIN, AUTH EACCES, TOOBIG E2BIG; SERVERFAULT, NOFILEHANDLE, BADXDR and
// unknown values EIO; OK 0.
//
// Example:
//   RpcStatusErrno(rpc::STATUS_NOTEMPTY) == ENOTEMPTY
int RpcStatusErrno(rpc::Status code);

// The absl::StatusCode a protocol status maps to:
//   NOENT                              -> NotFound
//   EXIST                              -> AlreadyExists
//   PERM, ACCES                        -> PermissionDenied
//   ROFS, NOTDIR, ISDIR, NOTEMPTY, XDEV,
//   NOFILEHANDLE, STALE                -> FailedPrecondition
//   INVAL, NAMETOOLONG, BADHANDLE,
//   BADXDR                             -> InvalidArgument
//   FBIG                               -> OutOfRange
//   NOSPC, DQUOT, MLINK, TOOBIG        -> ResourceExhausted
//   NOTSUPP, OP_ILLEGAL                -> Unimplemented
//   DELAY                              -> Unavailable (retry later)
//   AUTH                               -> Unauthenticated
//   IO, SERVERFAULT, unknown           -> Internal
//
// Example:
//   RpcStatusCode(rpc::STATUS_NOENT) == absl::StatusCode::kNotFound
absl::StatusCode RpcStatusCode(rpc::Status code);

}  // namespace txbuf

#endif  // TXBUF_PROTO_STATUS_MAP_H_
