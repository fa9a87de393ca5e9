#include "common/json_string.h"

#include <string>

#include "gtest/gtest.h"

namespace txbuf {
namespace {

TEST(JsonQuoteTest, PlainTextIsQuoted) {
  EXPECT_EQ(JsonQuote(""), "\"\"");
  EXPECT_EQ(JsonQuote("read-4k"), "\"read-4k\"");
}

TEST(JsonQuoteTest, QuotesBackslashesAndControlBytesAreEscaped) {
  EXPECT_EQ(JsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonQuote("\n\r\t"), "\"\\n\\r\\t\"");
  EXPECT_EQ(JsonQuote(std::string("\x01\x1f\x7f", 3)),
            "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(JsonQuote(std::string("a\0b", 3)), "\"a\\u0000b\"");
}

TEST(JsonQuoteTest, Utf8PassesThrough) {
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

}  // namespace
}  // namespace txbuf
