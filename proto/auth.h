// proto/auth.h: the connection handshake's MACs (docs/PROTOCOL.md section 2),
// the one place that knows how a proof is computed from the token and the two
// nonces. Server, client, fake server and tests all call these.
//
// Each proof is HMAC-SHA256(secret, label || a || b): the client proves it
// knows the secret with ClientAuthMac (over the server's nonce, then its own),
// the server answers with ServerAuthMac (the client's nonce, then its own).
//
// Thread-safety: pure functions; thread-safe.
//
// Example:
//   Sha256Digest mac = txbuf::ClientAuthMac(secret, hello.server_nonce(),
//                                           client_nonce);
//   if (!txbuf::AuthMacEquals(mac, request.mac())) { /* refuse */ }
#ifndef TXBUF_PROTO_AUTH_H_
#define TXBUF_PROTO_AUTH_H_

#include <cstddef>

#include "absl/strings/string_view.h"
#include "common/crypto.h"

namespace txbuf {

// The size of each nonce (Hello.server_nonce, AuthRequest.client_nonce) and
// of each MAC, in bytes.
inline constexpr size_t kAuthNonceSize = 32;
inline constexpr size_t kAuthMacSize = 32;

// The labels of the HMAC messages.
inline constexpr absl::string_view kClientAuthLabel = "txbuf-auth-v1 client";
inline constexpr absl::string_view kServerAuthLabel = "txbuf-auth-v1 server";

// HMAC-SHA256(secret, label || a || b).
//
// Example:
//   Sha256Digest mac = AuthMac(secret, kClientAuthLabel, sn, cn);
Sha256Digest AuthMac(absl::string_view secret, absl::string_view label,
                     absl::string_view a, absl::string_view b);

// The client's proof (AuthRequest.mac):
// AuthMac(secret, kClientAuthLabel, server_nonce, client_nonce).
//
// Example:
//   req.set_client_nonce(cn);
//   Sha256Digest mac = ClientAuthMac(secret, hello.server_nonce(), cn);
Sha256Digest ClientAuthMac(absl::string_view secret,
                           absl::string_view server_nonce,
                           absl::string_view client_nonce);

// The server's proof (AuthReply.mac):
// AuthMac(secret, kServerAuthLabel, client_nonce, server_nonce).
//
// Example:
//   Sha256Digest mac = ServerAuthMac(secret, req.client_nonce(), sn);
Sha256Digest ServerAuthMac(absl::string_view secret,
                           absl::string_view client_nonce,
                           absl::string_view server_nonce);

// True if the MAC received from the peer is `want`, compared in constant time
// (a received MAC of another length is simply unequal).
//
// Example:
//   if (!AuthMacEquals(ClientAuthMac(secret, sn, req.client_nonce()),
//                      req.mac())) { /* wrong token */ }
bool AuthMacEquals(const Sha256Digest& want, absl::string_view received);

}  // namespace txbuf

#endif  // TXBUF_PROTO_AUTH_H_
