#include "proto/auth.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace txbuf {
namespace {

absl::Span<const uint8_t> Bytes(absl::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Sha256Digest AuthMac(absl::string_view secret, absl::string_view label,
                     absl::string_view a, absl::string_view b) {
  const std::string msg = absl::StrCat(label, a, b);
  return HmacSha256(Bytes(secret), Bytes(msg));
}

Sha256Digest ClientAuthMac(absl::string_view secret,
                           absl::string_view server_nonce,
                           absl::string_view client_nonce) {
  return AuthMac(secret, kClientAuthLabel, server_nonce, client_nonce);
}

Sha256Digest ServerAuthMac(absl::string_view secret,
                           absl::string_view client_nonce,
                           absl::string_view server_nonce) {
  return AuthMac(secret, kServerAuthLabel, client_nonce, server_nonce);
}

bool AuthMacEquals(const Sha256Digest& want, absl::string_view received) {
  return ConstantTimeEqual(want, Bytes(received));
}

}  // namespace txbuf
