// status_map.h: errno and absl::Status to the protocol's rpc::Status.
//
// The server's ops fail with an `OpError` (an rpc::Status plus a message);
// this file builds them from errno values and absl::Status codes.
//
// Thread-safety: pure functions.
#ifndef TXBUF_SERVER_STATUS_MAP_H_
#define TXBUF_SERVER_STATUS_MAP_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/txbuf.pb.h"

namespace txbuf::server {

// A failed op: the status on the wire and a human-readable detail.
struct OpError {
  rpc::Status status = rpc::STATUS_OK;
  std::string message;

  bool ok() const { return status == rpc::STATUS_OK; }
  static OpError Ok() { return {}; }
};

inline OpError Err(rpc::Status s, std::string msg) {
  return {s, std::move(msg)};
}

// The protocol status for an errno value.
rpc::Status StatusFromErrno(int err);

// `what: strerror(err)` with the mapped status.
OpError ErrnoError(int err, absl::string_view what);

// A library absl::Status (e.g. from the page cache) as an op error. A
// status that carries an errno (ErrnoStatus, the page cache's
// FileTooLargeError) maps as that errno (StatusFromErrno: EFBIG is FBIG,
// ENOSPC NOSPC, EDQUOT DQUOT); the page cache's WouldBlockError is DELAY;
// others map by their absl code.
//
// Example:
//   if (absl::Status s = file->Commit(); !s.ok()) return FromAbsl(s);
OpError FromAbsl(const absl::Status& s);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_STATUS_MAP_H_
