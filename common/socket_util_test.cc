#include "common/socket_util.h"

#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace txbuf {
namespace {

using HostPort = std::pair<std::string, uint16_t>;

TEST(SplitHostPortTest, AnAddressWithoutAPortGetsTheDefault) {
  EXPECT_EQ(*SplitHostPort("files.example", kDefaultPort),
            HostPort("files.example", kDefaultPort));
  EXPECT_EQ(*SplitHostPort("10.0.0.7", kDefaultPort),
            HostPort("10.0.0.7", kDefaultPort));
  EXPECT_EQ(*SplitHostPort("[::1]", kDefaultPort),
            HostPort("::1", kDefaultPort));
}

TEST(SplitHostPortTest, AGivenPortWins) {
  EXPECT_EQ(*SplitHostPort("10.0.0.7:9000", kDefaultPort),
            HostPort("10.0.0.7", 9000));
  EXPECT_EQ(*SplitHostPort("[::1]:0", kDefaultPort), HostPort("::1", 0));
}

TEST(SplitHostPortTest, BadAddressesAreErrors) {
  EXPECT_FALSE(SplitHostPort("", kDefaultPort).ok());
  EXPECT_FALSE(SplitHostPort("[]", kDefaultPort).ok());
  EXPECT_FALSE(SplitHostPort("host:", kDefaultPort).ok());
  EXPECT_FALSE(SplitHostPort("host:70000", kDefaultPort).ok());
  // Without a default, a port is required.
  EXPECT_FALSE(SplitHostPort("files.example").ok());
}

}  // namespace
}  // namespace txbuf
