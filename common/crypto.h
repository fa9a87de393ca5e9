// crypto.h: SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), for the
// connection handshake's challenge-response. Small and dependency-free;
// checked against the FIPS and RFC 4231 test vectors.
//
// Thread-safety: thread-compatible (a Sha256 object is one running digest).
//
// Example:
//   std::array<uint8_t, 32> mac = txbuf::HmacSha256(secret, message);
//   bool same = txbuf::ConstantTimeEqual(mac, received);
#ifndef TXBUF_COMMON_CRYPTO_H_
#define TXBUF_COMMON_CRYPTO_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace txbuf {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  void Update(absl::Span<const uint8_t> data);
  void Update(absl::string_view s) {
    Update({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }
  Sha256Digest Finish();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

Sha256Digest Sha256Of(absl::Span<const uint8_t> data);

// HMAC-SHA256(key, message).
Sha256Digest HmacSha256(absl::Span<const uint8_t> key,
                        absl::Span<const uint8_t> message);

// Compares without an early exit, so timing does not reveal where they
// differ.
bool ConstantTimeEqual(absl::Span<const uint8_t> a,
                       absl::Span<const uint8_t> b);

// `n` bytes from getrandom(2).
void RandomBytes(absl::Span<uint8_t> out);

}  // namespace txbuf

#endif  // TXBUF_COMMON_CRYPTO_H_
