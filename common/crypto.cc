#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace txbuf {
namespace {

// libcrypto failed a call that only fails when it is unusable (see the
// header): say which, print its error queue, and stop.
[[noreturn]] void Die(const char* call, const char* why) {
  std::fprintf(stderr, "txbuf: libcrypto: %s failed: %s\n", call, why);
  ERR_print_errors_fp(stderr);
  std::abort();
}

constexpr const char* kBroken =
    "libcrypto is unusable (out of memory, or no SHA-256 provider loaded); "
    "refusing to continue without it";

void CheckOne(int ret, const char* call) {
  if (ret != 1) Die(call, kBroken);
}

// An empty span may have a null data pointer; libcrypto 3.0's HMAC() fails
// when both the key and the message pointers are null, even with zero
// lengths. Hand it a valid pointer instead.
const uint8_t* NonNull(absl::Span<const uint8_t> s) {
  static constexpr uint8_t kNothing = 0;
  return s.data() != nullptr ? s.data() : &kNothing;
}

}  // namespace

void Sha256::CtxFree::operator()(evp_md_ctx_st* ctx) const {
  EVP_MD_CTX_free(ctx);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) Die("EVP_MD_CTX_new", kBroken);
  CheckOne(EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr),
           "EVP_DigestInit_ex(SHA-256)");
}

void Sha256::Update(absl::Span<const uint8_t> data) {
  CheckOne(EVP_DigestUpdate(ctx_.get(), NonNull(data), data.size()),
           "EVP_DigestUpdate");
}

Sha256Digest Sha256::Finish() {
  Sha256Digest out;
  unsigned int len = 0;
  CheckOne(EVP_DigestFinal_ex(ctx_.get(), out.data(), &len),
           "EVP_DigestFinal_ex");
  if (len != out.size()) Die("EVP_DigestFinal_ex", "digest is not 32 bytes");
  CheckOne(EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr),
           "EVP_DigestInit_ex(SHA-256)");
  return out;
}

Sha256Digest Sha256Of(absl::Span<const uint8_t> data) {
  Sha256Digest out;
  unsigned int len = 0;
  CheckOne(EVP_Digest(NonNull(data), data.size(), out.data(), &len,
                      EVP_sha256(), nullptr),
           "EVP_Digest(SHA-256)");
  if (len != out.size()) Die("EVP_Digest", "digest is not 32 bytes");
  return out;
}

Sha256Digest HmacSha256(absl::Span<const uint8_t> key,
                        absl::Span<const uint8_t> message) {
  // HMAC() takes the key length as an int. A key longer than the hash's
  // block size is replaced by its hash anyway (RFC 2104 section 2), so hash
  // an oversized one first: same MAC.
  if (key.size() > static_cast<size_t>(INT_MAX)) {
    Sha256Digest hashed = Sha256Of(key);
    return HmacSha256(hashed, message);
  }
  Sha256Digest out;
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), NonNull(key), static_cast<int>(key.size()),
           NonNull(message), message.size(), out.data(), &len) == nullptr) {
    Die("HMAC(SHA-256)", kBroken);
  }
  if (len != out.size()) Die("HMAC(SHA-256)", "MAC is not 32 bytes");
  return out;
}

bool ConstantTimeEqual(absl::Span<const uint8_t> a,
                       absl::Span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void RandomBytes(absl::Span<uint8_t> out) {
  while (!out.empty()) {
    size_t n = std::min(out.size(), static_cast<size_t>(INT_MAX));
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
      Die("RAND_bytes",
          "no secure random bytes (is getrandom(2) or /dev/urandom "
          "available?); refusing to run with guessable nonces");
    }
    out.remove_prefix(n);
  }
}

}  // namespace txbuf
