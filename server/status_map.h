// server/status_map.h: the server's failed ops (`OpError`: an rpc::Status
// plus a message) built from errno values and absl::Status. Which status an
// errno or absl code is belongs to the protocol: proto/status_map.h.
//
// Thread-safety: pure functions.
#ifndef TXBUF_SERVER_STATUS_MAP_H_
#define TXBUF_SERVER_STATUS_MAP_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/status_map.h"
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

// `what: strerror(err)` with the mapped status (StatusFromErrno).
OpError ErrnoError(int err, absl::string_view what);

// A library absl::Status (e.g. from the page cache) as an op error. A
// status that carries an errno (ErrnoStatus, the page cache's
// FileTooLargeError) maps as that errno (StatusFromErrno: EFBIG is FBIG,
// ENOSPC NOSPC, EDQUOT DQUOT); the page cache's WouldBlockError is DELAY;
// others map by their absl code (StatusFromAbslCode).
//
// Example:
//   if (absl::Status s = file->Commit(); !s.ok()) return FromAbsl(s);
OpError FromAbsl(const absl::Status& s);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_STATUS_MAP_H_
