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
      "no-fixed-buffers = false\n"
      "listen = [\"10.0.0.1\", \"[::1]:7420\"]\n");
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
                     {"no-fixed-buffers", "false"},
                     // Several addresses: one value, as --listen joins them.
                     {"listen", "10.0.0.1,[::1]:7420"}}));
  // Each entry knows its line, for txbufd's errors (the comment is line 1).
  EXPECT_EQ(c->front().line, 2);
  EXPECT_EQ(c->back().line, 8);
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
           {"threads = [1, 2]\n", "expected a string"},    // arrays: listen
           {"listen = [1, 2]\n", "or an array of strings"},
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

TEST(ConfigFileTest, ExportTables) {
  const std::string path = TempConfig(
      "budget = 1024\n"
      "[[export]]\n"
      "name = \"data\"\n"
      "path = \"/srv/data\"\n"
      "squash-uid = 1000\n"
      "clients = [ { from = \"10.0.0.0/8\", access = \"rw\" },\n"
      "            { from = \"fd00::/8\" } ]\n"
      "[[export]]\n"
      "name = \"ro\"\n"
      "path = \"/srv/ro\"\n"
      "read-only = true\n"
      "[[export.clients]]\n"
      "from = \"192.0.2.7\"\n"
      "access = \"read-write\"\n");
  absl::StatusOr<std::vector<ExportConfig>> e = ReadConfigExports(path);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->size(), 2u);
  const ExportConfig& a = (*e)[0];
  EXPECT_EQ(a.name, "data");
  EXPECT_EQ(a.path, "/srv/data");
  EXPECT_FALSE(a.read_only);
  EXPECT_EQ(a.squash_uid, 1000u);
  EXPECT_FALSE(a.squash_gid.has_value());
  ASSERT_EQ(a.clients.size(), 2u);
  EXPECT_EQ(a.clients[0].from.text(), "10.0.0.0/8");
  EXPECT_EQ(a.clients[0].access, Access::kReadWrite);
  EXPECT_EQ(a.clients[1].from.text(), "fd00::/8");
  EXPECT_EQ(a.clients[1].access, Access::kReadOnly);  // the default
  const ExportConfig& b = (*e)[1];
  EXPECT_TRUE(b.read_only);
  ASSERT_EQ(b.clients.size(), 1u);
  EXPECT_EQ(b.clients[0].from.text(), "192.0.2.7/32");
  // The tables are not options: the flat entries leave them out.
  absl::StatusOr<std::vector<ConfigEntry>> c = ReadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].key, "budget");
  unlink(path.c_str());

  // A plain `export = DIR` has no tables.
  const std::string flat = TempConfig("export = \"/srv/data\"\n");
  e = ReadConfigExports(flat);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->empty());
  unlink(flat.c_str());
}

TEST(ConfigFileTest, ExportTableErrorsNameTheLineAndKey) {
  struct Case {
    std::string text;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {"[[export]]\nname = \"a\"\npath = \"/a\"\nro = true\n",
            ":4: ro: unknown key"},
           {"[[export]]\nname = 3\npath = \"/a\"\n", ":2: name"},
           {"[[export]]\nname = \"a\"\n", "no `path`"},
           {"[[export]]\nname = \"a\"\npath = \"/a\"\n"
            "clients = [ { access = \"rw\" } ]\n",
            "no `from`"},
           {"[[export]]\nname = \"a\"\npath = \"/a\"\n"
            "clients = [ { from = \"10.0.0.0/33\" } ]\n",
            ":4: clients.from"},
           {"[[export]]\nname = \"a\"\npath = \"/a\"\n"
            "clients = [ { from = \"10.0.0.0/8\", when = 1 } ]\n",
            "clients.when"},
           {"[[export]]\nname = \"a\"\npath = \"/a\"\n"
            "clients = \"10.0.0.0/8\"\n",
            "expected an array of tables"},
           {"[[export]]\nname = \"a\"\npath = \"/a\"\n"
            "squash-gid = 4294967295\n",
            "squash-gid"},
           {"export = [1, 2]\n", "expected [[export]] tables"},
       }) {
    const std::string path = TempConfig(c.text);
    absl::StatusOr<std::vector<ExportConfig>> r = ReadConfigExports(path);
    EXPECT_FALSE(r.ok()) << c.text;
    EXPECT_TRUE(absl::StrContains(r.status().message(), path)) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), c.says)) << r.status();
    unlink(path.c_str());
  }
}

}  // namespace
}  // namespace txbuf::server
