#include "server/config_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/socket_util.h"

namespace txbuf::server {

absl::StatusOr<std::vector<ConfigEntry>> ReadConfigFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoStatus(errno, absl::StrCat("reading ", path));
  toml::table table;
  try {  // toml++ reports syntax errors by exception: none leaves here.
    table = toml::parse(in, path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", e.source().begin.line, ":", e.source().begin.column, ": ",
        std::string(e.description())));
  }
  struct Keyed {
    ConfigEntry entry;
    toml::source_position at;
  };
  std::vector<Keyed> out;
  for (const auto& [key, node] : table) {
    ConfigEntry e{std::string(key.str()), ""};
    if (const auto* s = node.as_string()) {
      e.value = s->get();
    } else if (const auto* i = node.as_integer()) {
      e.value = absl::StrCat(i->get());
    } else if (const auto* f = node.as_floating_point()) {
      e.value = absl::StrCat(f->get());
    } else if (const auto* b = node.as_boolean()) {
      e.value = b->get() ? "true" : "false";
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", node.source().begin.line, ": ", e.key,
                       ": expected a string, a number or true/false"));
    }
    out.push_back({std::move(e), node.source().begin});
  }
  std::stable_sort(out.begin(), out.end(), [](const Keyed& a, const Keyed& b) {
    return a.at.line < b.at.line ||
           (a.at.line == b.at.line && a.at.column < b.at.column);
  });
  std::vector<ConfigEntry> entries;
  entries.reserve(out.size());
  for (Keyed& k : out) entries.push_back(std::move(k.entry));
  return entries;
}

}  // namespace txbuf::server
