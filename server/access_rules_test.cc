#include "server/access_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

sockaddr_storage Addr(const std::string& text) {
  sockaddr_storage ss{};
  if (text.find(':') == std::string::npos) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, text.c_str(), &in->sin_addr), 1) << text;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr), 1) << text;
  }
  return ss;
}

AddressRange Range(const std::string& text) {
  absl::StatusOr<AddressRange> r = AddressRange::Parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status();
  return r.ok() ? *r : AddressRange();
}

TEST(AddressRangeTest, ContainsByPrefix) {
  const AddressRange lan = Range("10.0.0.0/8");
  EXPECT_EQ(lan.text(), "10.0.0.0/8");
  EXPECT_TRUE(lan.Contains(Addr("10.0.0.1")));
  EXPECT_TRUE(lan.Contains(Addr("10.255.255.255")));
  EXPECT_FALSE(lan.Contains(Addr("11.0.0.0")));
  EXPECT_FALSE(lan.Contains(Addr("9.255.255.255")));

  const AddressRange odd = Range("192.168.4.0/22");  // .4.0 - .7.255
  EXPECT_TRUE(odd.Contains(Addr("192.168.7.9")));
  EXPECT_FALSE(odd.Contains(Addr("192.168.8.0")));
  EXPECT_FALSE(odd.Contains(Addr("192.168.3.255")));

  const AddressRange one = Range("127.0.0.2");  // a single address: /32
  EXPECT_EQ(one.text(), "127.0.0.2/32");
  EXPECT_TRUE(one.Contains(Addr("127.0.0.2")));
  EXPECT_FALSE(one.Contains(Addr("127.0.0.1")));

  const AddressRange all = Range("0.0.0.0/0");
  EXPECT_TRUE(all.Contains(Addr("203.0.113.9")));
  EXPECT_FALSE(all.Contains(Addr("::1")));  // IPv4 ranges hold IPv4 only
}

TEST(AddressRangeTest, Ipv6AndMappedIpv4) {
  const AddressRange ula = Range("fd00::/8");
  EXPECT_TRUE(ula.Contains(Addr("fd12:3456::1")));
  EXPECT_FALSE(ula.Contains(Addr("fe80::1")));
  EXPECT_TRUE(Range("::1").Contains(Addr("::1")));
  EXPECT_FALSE(Range("::1").Contains(Addr("::2")));
  // An IPv4 client on an IPv6 socket is matched as IPv4.
  EXPECT_TRUE(Range("10.0.0.0/8").Contains(Addr("::ffff:10.1.2.3")));
  EXPECT_FALSE(Range("10.0.0.0/8").Contains(Addr("::ffff:11.1.2.3")));
  EXPECT_FALSE(Range("::/0").Contains(Addr("::ffff:10.1.2.3")));
}

TEST(AddressRangeTest, RefusesWhatIsNotARange) {
  for (const char* bad :
       {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/8x",
        "10.1.0.0/8",  // host bits set: a typo that would open more
        "fd00::1/8", "host.example", "10.0.0", "::ffff:10.0.0.1", "10.0.0.0/ 8",
        "10.0.0.0/0008"}) {
    absl::StatusOr<AddressRange> r = AddressRange::Parse(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "' parsed as " << r->text();
  }
}

TEST(AccessForTest, FirstMatchingRuleWinsNoneOutside) {
  const std::vector<AccessRule> rules = {
      {Range("10.1.0.0/16"), Access::kReadOnly},
      {Range("10.0.0.0/8"), Access::kReadWrite},
  };
  EXPECT_EQ(AccessFor(rules, Access::kReadWrite, Addr("10.1.2.3")),
            Access::kReadOnly);
  EXPECT_EQ(AccessFor(rules, Access::kReadWrite, Addr("10.2.2.3")),
            Access::kReadWrite);
  EXPECT_EQ(AccessFor(rules, Access::kReadWrite, Addr("192.0.2.1")),
            Access::kNone);
  // No rules: the export's own access, for everyone.
  EXPECT_EQ(AccessFor({}, Access::kReadOnly, Addr("192.0.2.1")),
            Access::kReadOnly);
  // A peer without an address family matches nothing.
  sockaddr_storage none{};
  EXPECT_EQ(AccessFor(rules, Access::kReadWrite, none), Access::kNone);
}

TEST(AccessTest, ParsesNames) {
  EXPECT_EQ(*ParseAccess("ro"), Access::kReadOnly);
  EXPECT_EQ(*ParseAccess("read-write"), Access::kReadWrite);
  EXPECT_FALSE(ParseAccess("none").ok());
  EXPECT_FALSE(ParseAccess("RW").ok());
}

}  // namespace
}  // namespace txbuf::server
