// client/status.h: txbuf RPC status codes as absl::Status.
//
// The server reports a failing op with an `rpc::Status` (an errno-like code,
// docs/PROTOCOL.md section 4) and an error text. The client library turns it
// into an absl::Status whose code says what kind of failure it is (NOENT ->
// NotFound, EXIST -> AlreadyExists, ACCES -> PermissionDenied, ...) and whose
// message carries the op, the server's text and the protocol name of the code,
// e.g. "LOOKUP 'a/b': no such file or directory [NOENT]". The rpc::Status is
// kept as a payload of the absl::Status: `RpcStatusOf()` gets it back.
//
// Thread-safety: pure functions; thread-safe.
//
// Example:
//   absl::StatusOr<txbuf::rpc::Attr> attr = client->Stat("a/b");
//   if (std::optional<txbuf::rpc::Status> code =
//           txbuf::client::RpcStatusOf(attr.status());
//       code && *code == txbuf::rpc::STATUS_NOENT) {
//     // no such file
//   }
#ifndef TXBUF_CLIENT_STATUS_H_
#define TXBUF_CLIENT_STATUS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/status_map.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client {

// The protocol's table of statuses (proto/status_map.h): each code's name
// ("NOENT"), description ("no such file or directory") and absl::StatusCode
// (NOENT -> NotFound, EXIST -> AlreadyExists, ACCES -> PermissionDenied,
// DELAY -> Unavailable, ...; the whole table is there).
//
// Example:
//   RpcStatusName(rpc::STATUS_NOENT) == "NOENT"
//   RpcStatusCode(rpc::STATUS_NOENT) == absl::StatusCode::kNotFound
using ::txbuf::RpcStatusCode;
using ::txbuf::RpcStatusDescription;
using ::txbuf::RpcStatusName;

// Builds the absl::Status for a failed op: code from RpcStatusCode(), message
// "<context>: <error or description> [<NAME>]" (no "<context>: " when
// `context` is empty), and the rpc::Status as a payload. OK gives OkStatus().
//
// Example:
//   absl::Status s = StatusFromRpc(rpc::STATUS_NOENT, "no entry 'b'",
//                                  "LOOKUP 'a/b'");
//   // s.code() == kNotFound,
//   // s.message() == "LOOKUP 'a/b': no entry 'b' [NOENT]"
absl::Status StatusFromRpc(rpc::Status code, absl::string_view error,
                           absl::string_view context = "");

// The rpc::Status carried by a status made by StatusFromRpc() (also those the
// blocking Client API returns), or nullopt for other statuses (transport
// errors, OK).
//
// Example:
//   if (RpcStatusOf(s) == rpc::STATUS_NOTEMPTY) { ... }
std::optional<rpc::Status> RpcStatusOf(const absl::Status& status);

}  // namespace txbuf::client

#endif  // TXBUF_CLIENT_STATUS_H_
