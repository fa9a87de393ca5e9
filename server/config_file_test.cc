#include "server/config_file.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

// Writes `text` to a fresh temporary file; returns its path.
std::string TempConfig(const std::string& text) {
  char tmpl[] = "/tmp/config_file_test.XXXXXX";
  int fd = mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()),
            static_cast<ssize_t>(text.size()));
  close(fd);
  return tmpl;
}

TEST(ConfigFileTest, KeysAndValuesInFileOrder) {
  const std::string path = TempConfig(
      "# txbufd\n"
      "export = \"/srv/data\"\n"
      "conn-budget = \"64M\"\n"
      "budget = 33554432\n"
      "budget-deadline = 2.5\n"
      "read-only = true\n"
      "no-fixed-buffers = false\n");
  absl::StatusOr<std::vector<ConfigEntry>> c = ReadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<std::pair<std::string, std::string>> got;
  for (const ConfigEntry& e : *c) got.emplace_back(e.key, e.value);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"export", "/srv/data"},
                     {"conn-budget", "64M"},
                     {"budget", "33554432"},
                     {"budget-deadline", "2.5"},
                     {"read-only", "true"},
                     {"no-fixed-buffers", "false"}}));
  unlink(path.c_str());
}

TEST(ConfigFileTest, ErrorsNameTheFileAndLine) {
  struct Case {
    std::string text;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {"export = \"/a\"\nexport = \"/b\"\n", ":2:"},  // repeated key
           {"threads = \n", ":1:"},                        // no value
           {"listen = [\"a\", \"b\"]\n", "expected a string"},
           {"[export]\npath = \"/a\"\n", "expected a string"},
           {"when = 1979-05-27\n", "expected a string"},
       }) {
    const std::string path = TempConfig(c.text);
    absl::StatusOr<std::vector<ConfigEntry>> r = ReadConfigFile(path);
    EXPECT_FALSE(r.ok()) << c.text;
    EXPECT_TRUE(absl::StrContains(r.status().message(), path)) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), c.says)) << r.status();
    unlink(path.c_str());
  }
  EXPECT_FALSE(ReadConfigFile("/nonexistent/txbufd.conf").ok());
}

}  // namespace
}  // namespace txbuf::server
