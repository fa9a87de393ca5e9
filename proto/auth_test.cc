// The handshake's MACs against fixed vectors: the wire format of
// docs/PROTOCOL.md section 2 (HMAC-SHA256(secret, label || a || b)) must not
// change when the code computing it does.
#include "proto/auth.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

std::string Hex(const Sha256Digest& d) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// Secret "correct horse battery staple", server nonce 00 01 .. 1f, client
// nonce e0 e1 .. ff. The expected MACs were computed at authoring time,
// independently of this code, with
//   sn=$(for i in $(seq 0 31); do printf '\\x%02x' $i; done)
//   cn=$(for i in $(seq 224 255); do printf '\\x%02x' $i; done)
//   printf "txbuf-auth-v1 client${sn}${cn}" |
//     openssl dgst -sha256 -hmac 'correct horse battery staple'
//   printf "txbuf-auth-v1 server${cn}${sn}" |
//     openssl dgst -sha256 -hmac 'correct horse battery staple'
// They agree with Python's hmac module and with the hand-written SHA-256/HMAC
// (common/sha256.cc) that the handshake used before libcrypto replaced it, so
// old and new peers interoperate.
class HandshakeWireFormatTest : public ::testing::Test {
 protected:
  HandshakeWireFormatTest() {
    for (int i = 0; i < 32; ++i) {
      server_nonce_.push_back(static_cast<char>(i));
      client_nonce_.push_back(static_cast<char>(0xe0 + i));
    }
  }
  const std::string secret_ = "correct horse battery staple";
  std::string server_nonce_, client_nonce_;
};

TEST_F(HandshakeWireFormatTest, ClientMacIsFixed) {
  EXPECT_EQ(
      Hex(AuthMac(secret_, kClientAuthLabel, server_nonce_, client_nonce_)),
      "f6d44baf09d0c6cbb4d13faaf3f32c29805a0d1cd60d060955006efccca14481");
}

TEST_F(HandshakeWireFormatTest, ServerMacIsFixed) {
  EXPECT_EQ(
      Hex(AuthMac(secret_, kServerAuthLabel, client_nonce_, server_nonce_)),
      "a6ab84ef1440dfc0aa7b64b3f6de22586531ce9aff9d630ef1948b1050a61ac6");
}

TEST_F(HandshakeWireFormatTest, LabelsAreThoseOfTheProtocol) {
  EXPECT_EQ(kClientAuthLabel, "txbuf-auth-v1 client");
  EXPECT_EQ(kServerAuthLabel, "txbuf-auth-v1 server");
}

TEST_F(HandshakeWireFormatTest, EveryInputChangesTheMac) {
  std::string want =
      Hex(AuthMac(secret_, kClientAuthLabel, server_nonce_, client_nonce_));
  std::string sn = server_nonce_, cn = client_nonce_;
  sn[31] ^= 1;
  cn[0] ^= 1;
  EXPECT_NE(Hex(AuthMac(secret_ + "x", kClientAuthLabel, server_nonce_,
                        client_nonce_)),
            want);
  EXPECT_NE(
      Hex(AuthMac(secret_, kServerAuthLabel, server_nonce_, client_nonce_)),
      want);
  EXPECT_NE(Hex(AuthMac(secret_, kClientAuthLabel, sn, client_nonce_)), want);
  EXPECT_NE(Hex(AuthMac(secret_, kClientAuthLabel, server_nonce_, cn)), want);
  // The nonces are concatenated, not swapped in: order matters.
  EXPECT_NE(
      Hex(AuthMac(secret_, kClientAuthLabel, client_nonce_, server_nonce_)),
      want);
}

TEST_F(HandshakeWireFormatTest, EachSideTakesTheNoncesInItsOrder) {
  EXPECT_EQ(Hex(ClientAuthMac(secret_, server_nonce_, client_nonce_)),
            "f6d44baf09d0c6cbb4d13faaf3f32c29805a0d1cd60d060955006efccca14481");
  EXPECT_EQ(Hex(ServerAuthMac(secret_, client_nonce_, server_nonce_)),
            "a6ab84ef1440dfc0aa7b64b3f6de22586531ce9aff9d630ef1948b1050a61ac6");
}

TEST_F(HandshakeWireFormatTest, AuthMacEqualsComparesTheReceivedBytes) {
  const Sha256Digest mac = ClientAuthMac(secret_, server_nonce_, client_nonce_);
  std::string received(reinterpret_cast<const char*>(mac.data()), mac.size());
  EXPECT_TRUE(AuthMacEquals(mac, received));
  received[kAuthMacSize - 1] ^= 1;
  EXPECT_FALSE(AuthMacEquals(mac, received));
  EXPECT_FALSE(AuthMacEquals(mac, received.substr(0, kAuthMacSize - 1)));
  EXPECT_FALSE(AuthMacEquals(mac, ""));
}

}  // namespace
}  // namespace txbuf
