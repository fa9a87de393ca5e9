#include "common/crypto.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

std::string Hex(const Sha256Digest& d) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}
absl::Span<const uint8_t> S(absl::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Sha256Test, FipsVectors) {
  EXPECT_EQ(Hex(Sha256Of(S(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256Of(S("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256Of(
                S("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(Hex(Sha256Of(S(million))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7));
  for (size_t split : {0, 1, 55, 56, 63, 64, 65, 500, 999}) {
    Sha256 s;
    s.Update(S(absl::string_view(data).substr(0, split)));
    s.Update(S(absl::string_view(data).substr(split)));
    EXPECT_EQ(Hex(s.Finish()), Hex(Sha256Of(S(data)))) << split;
  }
}

TEST(HmacSha256Test, Rfc4231Vectors) {
  // Test case 1
  std::string key1(20, '\x0b');
  EXPECT_EQ(Hex(HmacSha256(S(key1), S("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2
  EXPECT_EQ(Hex(HmacSha256(S("Jefe"), S("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: key longer than the block size
  std::string key6(131, '\xaa');
  EXPECT_EQ(Hex(HmacSha256(
                S(key6),
                S("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, ConstantTimeEqual) {
  Sha256Digest a = Sha256Of(S("x"));
  Sha256Digest b = a;
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(S("abc"), S("abcd")));
}

TEST(RandomBytesTest, FillsAndDiffers) {
  uint8_t a[32] = {}, b[32] = {};
  RandomBytes(a);
  RandomBytes(b);
  EXPECT_FALSE(ConstantTimeEqual(a, b));
}

}  // namespace
}  // namespace txbuf
