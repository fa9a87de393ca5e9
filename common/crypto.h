// crypto.h: SHA-256, HMAC-SHA256 (FIPS 180-4, RFC 2104), constant-time
// comparison and secure random bytes, for the connection handshake's
// challenge-response (docs/PROTOCOL.md section 2), the server's nonces and the
// tests' checksums.
//
// A thin wrapper over OpenSSL's libcrypto (Debian's libssl-dev): no
// cryptography is implemented in this repository. It exists so that callers
// pass spans and get a `Sha256Digest` back, and never see OpenSSL's types.
//
// Errors: libcrypto fails these calls only when it cannot work at all (out of
// memory, no SHA-256 implementation loaded, no entropy). No caller could do
// anything useful with such an error, and a server that cannot compute a MAC
// or draw an unguessable nonce must not keep serving, so every function here
// prints libcrypto's error queue and aborts instead of returning a status.
//
// Thread-safety: the free functions are thread-safe (libcrypto 3 needs no
// locking setup). A `Sha256` object is thread-compatible: one running digest.
//
// Example:
//   uint8_t nonce[32];
//   txbuf::RandomBytes(nonce);
//   txbuf::Sha256Digest mac = txbuf::HmacSha256(secret, message);
//   bool same = txbuf::ConstantTimeEqual(mac, received);
//
//   txbuf::Sha256 file_sum;  // streaming, for data that arrives in pieces
//   file_sum.Update(chunk);
//   txbuf::Sha256Digest sum = file_sum.Finish();
#ifndef TXBUF_COMMON_CRYPTO_H_
#define TXBUF_COMMON_CRYPTO_H_

#include <array>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

// libcrypto's EVP_MD_CTX (<openssl/types.h>), declared here so that this
// header does not pull OpenSSL's headers into every user.
struct evp_md_ctx_st;

namespace txbuf {

using Sha256Digest = std::array<uint8_t, 32>;

// A SHA-256 digest computed piece by piece (EVP_DigestUpdate).
class Sha256 {
 public:
  Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::Span<const uint8_t> data);
  void Update(absl::string_view s) {
    Update({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }
  // The digest of everything given to Update() since construction or the
  // last Finish(); the object then starts a new, empty digest.
  Sha256Digest Finish();

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxFree> ctx_;
};

// SHA-256 of `data` (EVP_Digest).
Sha256Digest Sha256Of(absl::Span<const uint8_t> data);

// HMAC-SHA256(key, message) (OpenSSL's HMAC()). Any key length, empty
// included.
Sha256Digest HmacSha256(absl::Span<const uint8_t> key,
                        absl::Span<const uint8_t> message);

// True if `a` and `b` hold the same bytes. The time taken depends on the
// length only, never on where they differ (CRYPTO_memcmp), so comparing a
// received MAC with the expected one reveals nothing. Spans of different
// lengths are unequal (lengths are not secret).
bool ConstantTimeEqual(absl::Span<const uint8_t> a,
                       absl::Span<const uint8_t> b);

// Fills `out` from libcrypto's CSPRNG (RAND_bytes, seeded by getrandom(2)).
// Aborts with a message if no secure random bytes can be had: nonces must not
// be guessable, so a process without randomness must not run.
void RandomBytes(absl::Span<uint8_t> out);

}  // namespace txbuf

#endif  // TXBUF_COMMON_CRYPTO_H_
