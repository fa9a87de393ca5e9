// client/internal/handshake.h: TCP connect and the txbuf connection setup
// (docs/PROTOCOL.md section 2), done blocking, with a deadline, before the
// socket is handed to the client's event loop.
//
// Not for callers: the client library only.
//
// Thread-safety: thread-safe (no shared state).
#ifndef TXBUF_CLIENT_INTERNAL_HANDSHAKE_H_
#define TXBUF_CLIENT_INTERNAL_HANDSHAKE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/socket_util.h"
#include "proto/frame.h"
#include "proto/slicing_frame_reader.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::internal {

// A connected, set-up connection: the socket, the reader holding any bytes
// received after the handshake's frames, and the server's Hello.
struct Handshake {
  UniqueFd fd;
  SlicingFrameReader reader;
  rpc::Hello hello;
};

// Connects to host:port (TCP_NODELAY) and performs the setup: reads Hello,
// checks the version, and if the server requires it, proves knowledge of
// `secret` and checks the server's proof. Everything must finish before
// `deadline`. Errors: DeadlineExceeded ("timed out waiting for ..."),
// Unavailable (connect refused or failed, connection closed),
// Unauthenticated (token missing, refused, server proof wrong),
// FailedPrecondition (other protocol version), DataLoss (malformed frames).
//
// Example:
//   absl::StatusOr<Handshake> hs = ConnectAndHandshake(
//       "127.0.0.1", 7000, std::string("secret"),
//       absl::Now() + absl::Seconds(10), FrameLimits{});
absl::StatusOr<Handshake> ConnectAndHandshake(
    const std::string& host, uint16_t port,
    const std::optional<std::string>& secret, absl::Time deadline,
    const FrameLimits& reply_limits);

// Connects to host:port before `deadline` (non-blocking connect + poll).
// DeadlineExceeded if the deadline passes first, Unavailable if connecting
// fails.
//
// Example:
//   absl::StatusOr<UniqueFd> fd = ConnectWithDeadline("localhost", 7000,
//       absl::Now() + absl::Seconds(5));
absl::StatusOr<UniqueFd> ConnectWithDeadline(const std::string& host,
                                             uint16_t port,
                                             absl::Time deadline);

}  // namespace txbuf::client::internal

#endif  // TXBUF_CLIENT_INTERNAL_HANDSHAKE_H_
