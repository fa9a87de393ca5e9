#include "server/logging.h"

#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

TEST(LoggingTest, LevelsParseByNameAndNothingElse) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                     LogLevel::kError}) {
    absl::StatusOr<LogLevel> p = ParseLogLevel(LogLevelName(l));
    ASSERT_TRUE(p.ok()) << LogLevelName(l);
    EXPECT_EQ(*p, l);
  }
  for (const char* bad : {"", "INFO", "warn", "verbose", "3"}) {
    EXPECT_FALSE(ParseLogLevel(bad).ok()) << bad;
  }
}

TEST(LoggingTest, MessagesBelowTheLevelAreNotWrittenNorEvaluated) {
  const LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kWarning);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  testing::internal::CaptureStderr();
  TXBUF_LOG(DEBUG) << "debug-line " << count();
  TXBUF_LOG(INFO) << "info-line " << count();
  TXBUF_LOG(WARNING) << "warning-line " << count();
  TXBUF_LOG(ERROR) << "error-line " << count();
  SetLogLevel(LogLevel::kDebug);
  TXBUF_LOG(DEBUG) << "debug-again " << count();
  const std::string err = testing::internal::GetCapturedStderr();
  SetLogLevel(saved);
  EXPECT_EQ(evaluated, 3);
  EXPECT_EQ(err.find("debug-line"), std::string::npos) << err;
  EXPECT_EQ(err.find("info-line"), std::string::npos) << err;
  EXPECT_NE(err.find("warning-line 1"), std::string::npos) << err;
  EXPECT_NE(err.find("error-line 2"), std::string::npos) << err;
  EXPECT_NE(err.find("debug-again 3"), std::string::npos) << err;
}

}  // namespace
}  // namespace txbuf::server
