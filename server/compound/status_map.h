// server/compound/status_map.h: a failed op's absl::Status as the status on
// the wire. The one place where what the file system (server/fs/), the page
// cache and the executor itself say about a failure becomes an rpc::Status;
// which status an errno or an absl code is belongs to the protocol
// (proto/status_map.h).
//
// A status carries what the wire needs in one of four ways, tried in this
// order: an rpc::Status the executor chose itself (RpcError, e.g.
// NOFILEHANDLE, XDEV, OP_ILLEGAL: protocol notions the file system does not
// have); a file-system kind (FsError, server/fs/fs_error.h); the page
// cache's WouldBlockError; an errno (ErrnoStatus); else its absl code.
//
// Thread-safety: pure functions; thread-safe.
//
// Example:
//   absl::Status s = ex.Remove(dir, name);
//   if (!s.ok()) {
//     res->set_status(WireStatusOf(s));
//     res->set_error(std::string(s.message()));
//   }
#ifndef TXBUF_SERVER_COMPOUND_STATUS_MAP_H_
#define TXBUF_SERVER_COMPOUND_STATUS_MAP_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/status_map.h"
#include "proto/txbuf.pb.h"

namespace txbuf::server {

// An op failure the executor decides itself, with exactly `status` on the
// wire (the absl code is RpcStatusCode(status), for readers and logs).
//
// Example:
//   return RpcError(rpc::STATUS_XDEV, "RENAME into another export");
absl::Status RpcError(rpc::Status status, absl::string_view message);

// The wire status of `s` (OK for an OK status):
//   - RpcError's status;
//   - an FsError's kind: NotFound NOENT, Access ACCES, Permission PERM,
//     Stale STALE, BadHandle BADHANDLE, Invalid INVAL, NameTooLong
//     NAMETOOLONG, NotDir NOTDIR, IsDir ISDIR, ReadOnly ROFS, NotSupported
//     NOTSUPP, Busy DELAY, TooBig TOOBIG;
//   - the page cache's WouldBlockError: DELAY (meant to be retried off the
//     event loop, never to reach a client; if it does, "retry" is honest);
//   - a status with an errno (ErrnoStatus, the page cache's
//     FileTooLargeError): StatusFromErrno (EFBIG FBIG, ENOSPC NOSPC,
//     EDQUOT DQUOT, EIO IO; only errnos a retry can fix are DELAY);
//   - else its absl code (StatusFromAbslCode).
//
// Example:
//   WireStatusOf(ErrnoStatus(ENOSPC, "pwrite")) == rpc::STATUS_NOSPC
rpc::Status WireStatusOf(const absl::Status& s);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_COMPOUND_STATUS_MAP_H_
