#include "common/crypto.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

std::string Hex(absl::Span<const uint8_t> d) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}
absl::Span<const uint8_t> S(absl::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// FIPS 180-4 examples (NIST "Cryptographic Standards and Guidelines: Example
// Values", SHA-256).
TEST(Sha256Test, FipsVectors) {
  EXPECT_EQ(Hex(Sha256Of(S(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256Of(S("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // The 448-bit message.
  EXPECT_EQ(Hex(Sha256Of(
                S("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(Hex(Sha256Of(S(million))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, EmptySpanWithNullPointer) {
  Sha256 s;
  s.Update(absl::Span<const uint8_t>());
  EXPECT_EQ(Hex(s.Finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256Of({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7));
  for (size_t split : {0, 1, 55, 56, 63, 64, 65, 500, 999, 1000}) {
    Sha256 s;
    s.Update(S(absl::string_view(data).substr(0, split)));
    s.Update(absl::string_view(data).substr(split));
    EXPECT_EQ(Hex(s.Finish()), Hex(Sha256Of(S(data)))) << split;
  }
}

TEST(Sha256Test, FinishStartsANewDigest) {
  Sha256 s;
  s.Update("ab");
  s.Update("c");
  EXPECT_EQ(Hex(s.Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(s.Finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  s.Update("abc");
  EXPECT_EQ(Hex(s.Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// RFC 4231 section 4, HMAC-SHA-256 results (test case 5, a truncated MAC,
// does not apply: the handshake sends the whole 32 bytes).
TEST(HmacSha256Test, Rfc4231Case1) {
  EXPECT_EQ(Hex(HmacSha256(S(std::string(20, '\x0b')), S("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256Test, Rfc4231Case2KeyShorterThanOutput) {
  EXPECT_EQ(Hex(HmacSha256(S("Jefe"), S("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Test, Rfc4231Case3CombinedKeyAndDataOver64Bytes) {
  EXPECT_EQ(
      Hex(HmacSha256(S(std::string(20, '\xaa')), S(std::string(50, '\xdd')))),
      "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(HmacSha256Test, Rfc4231Case4) {
  std::string key;
  for (int i = 1; i <= 25; ++i) key.push_back(static_cast<char>(i));
  ASSERT_EQ(Hex(S(key)), "0102030405060708090a0b0c0d0e0f10111213141516171819");
  EXPECT_EQ(Hex(HmacSha256(S(key), S(std::string(50, '\xcd')))),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256Test, Rfc4231Case6KeyLongerThanBlock) {
  EXPECT_EQ(Hex(HmacSha256(
                S(std::string(131, '\xaa')),
                S("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, Rfc4231Case7KeyAndDataLongerThanBlock) {
  EXPECT_EQ(
      Hex(HmacSha256(
          S(std::string(131, '\xaa')),
          S("This is a test using a larger than block-size key and a larger "
            "than block-size data. The key needs to be hashed before being "
            "used by the HMAC algorithm."))),
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// Not in RFC 4231; computed at authoring time with Python's
// hmac.new(b"", b"", hashlib.sha256).hexdigest(). Empty spans may carry null
// pointers, which libcrypto 3.0's HMAC() refuses when both are null.
TEST(HmacSha256Test, EmptyKeyAndMessage) {
  const std::string want =
      "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad";
  EXPECT_EQ(Hex(HmacSha256({}, {})), want);
  EXPECT_EQ(Hex(HmacSha256(S(""), {})), want);
  EXPECT_EQ(Hex(HmacSha256({}, S(""))), want);
  EXPECT_EQ(Hex(HmacSha256(S(""), S(""))), want);
}

TEST(ConstantTimeEqualTest, EqualDifferingAndDifferentLengths) {
  Sha256Digest a = Sha256Of(S("x"));
  Sha256Digest b = a;
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(ConstantTimeEqual(a, b));
  b = a;
  b[0] ^= 0x80;
  EXPECT_FALSE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(S("abc"), S("abcd")));
  EXPECT_FALSE(ConstantTimeEqual(S("abcd"), S("abc")));
  EXPECT_FALSE(ConstantTimeEqual(a, {}));
  EXPECT_TRUE(ConstantTimeEqual({}, {}));
}

TEST(RandomBytesTest, FillsAndDiffers) {
  // Two 32-byte draws are equal, or all zero, with probability 2^-256.
  uint8_t zero[32] = {};
  uint8_t a[32] = {}, b[32] = {};
  RandomBytes(a);
  RandomBytes(b);
  EXPECT_FALSE(ConstantTimeEqual(a, zero));
  EXPECT_FALSE(ConstantTimeEqual(b, zero));
  EXPECT_FALSE(ConstantTimeEqual(a, b));
  // A large buffer is filled to the end, not just its start.
  std::string big(1 << 20, '\0');
  RandomBytes({reinterpret_cast<uint8_t*>(big.data()), big.size()});
  EXPECT_NE(big.substr(big.size() - 32), std::string(32, '\0'));
  RandomBytes({});  // nothing to fill: no call, no crash
}

}  // namespace
}  // namespace txbuf
