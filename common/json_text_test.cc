#include "common/json_text.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace txbuf {
namespace {

using Json = nlohmann::ordered_json;

TEST(JsonTextTest, CompactOneLineInInsertionOrder) {
  Json j = {{"zeta", 1}, {"alpha", Json::array({true, nullptr, "x"})}};
  j["empty"] = Json::object();
  EXPECT_EQ(JsonText(j), R"({"zeta":1,"alpha":[true,null,"x"],"empty":{}})");
}

TEST(JsonTextTest, QuotesBackslashesAndControlBytesAreEscaped) {
  EXPECT_EQ(JsonText(Json("a\"b\\c")), R"("a\"b\\c")");
  EXPECT_EQ(JsonText(Json("\n\r\t")), R"("\n\r\t")");
  EXPECT_EQ(JsonText(Json(std::string("\x01\x1f", 2))), R"("\u0001\u001f")");
  EXPECT_EQ(JsonText(Json(std::string("a\0b", 3))), R"("a\u0000b")");
  EXPECT_EQ(JsonText(Json("caf\xc3\xa9")), "\"caf\xc3\xa9\"");  // UTF-8 kept
}

// A path or an error text need not be UTF-8: the text stays valid JSON
// (nlohmann's default would throw), each bad byte U+FFFD.
TEST(JsonTextTest, InvalidUtf8IsReplacedNotThrown) {
  const std::string bad("dir/\xff\xfe-\xc3(.txt", 13);
  std::string text;
  ASSERT_NO_THROW(text = JsonText(Json{{"path", bad}}));
  const Json back = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(back.is_discarded()) << text;
  EXPECT_EQ(back["path"].get<std::string>(),
            "dir/\xef\xbf\xbd\xef\xbf\xbd-\xef\xbf\xbd(.txt");
  EXPECT_EQ(text.find('\n'), std::string::npos);
}

TEST(JsonTextTest, NumbersAreExactOrNull) {
  Json j = {{"max", std::numeric_limits<uint64_t>::max()},
            {"neg", int64_t{-3}},
            {"mean", 2.5},
            {"nan", std::nan("")},
            {"inf", HUGE_VAL}};
  EXPECT_EQ(JsonText(j), R"({"max":18446744073709551615,"neg":-3,"mean":2.5,)"
                         R"("nan":null,"inf":null})");
}

}  // namespace
}  // namespace txbuf
