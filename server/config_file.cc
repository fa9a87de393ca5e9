#include "server/config_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/socket_util.h"

namespace txbuf::server {

namespace {

absl::StatusOr<toml::table> ParseToml(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoStatus(errno, absl::StrCat("reading ", path));
  try {  // toml++ reports syntax errors by exception: none leaves here.
    return toml::parse(in, path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", e.source().begin.line, ":", e.source().begin.column, ": ",
        std::string(e.description())));
  }
}

// An error about `node` (its line) and `key`.
absl::Status ConfigError(const std::string& path, const toml::node& node,
                         absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ":", node.source().begin.line, ": ", key, ": ", what));
}

// A uid or gid: an integer in [0, 2^32 - 2] (-1 means "unchanged" to chown).
absl::StatusOr<uint32_t> IdValue(const std::string& path,
                                 const toml::node& node,
                                 absl::string_view key) {
  const auto* i = node.as_integer();
  if (i == nullptr || i->get() < 0 || i->get() >= 0xffffffffLL) {
    return ConfigError(path, node, key, "expected a numeric id");
  }
  return static_cast<uint32_t>(i->get());
}

// One { from = "...", access = "ro"|"rw" } of an export's `clients`.
absl::StatusOr<AccessRule> RuleValue(const std::string& path,
                                     const toml::node& node) {
  const toml::table* t = node.as_table();
  if (t == nullptr) {
    return ConfigError(path, node, "clients",
                       "expected tables { from = \"RANGE\", access = "
                       "\"ro\" | \"rw\" }");
  }
  AccessRule rule;
  bool have_from = false;
  for (const auto& [k, v] : *t) {
    const std::string key(k.str());
    const auto* str = v.as_string();
    if (key == "from" && str != nullptr) {
      absl::StatusOr<AddressRange> r = AddressRange::Parse(str->get());
      if (!r.ok())
        return ConfigError(path, v, "clients.from", r.status().message());
      rule.from = *std::move(r);
      have_from = true;
    } else if (key == "access" && str != nullptr) {
      absl::StatusOr<Access> a = ParseAccess(str->get());
      if (!a.ok())
        return ConfigError(path, v, "clients.access", a.status().message());
      rule.access = *a;
    } else if (key == "from" || key == "access") {
      return ConfigError(path, v, absl::StrCat("clients.", key),
                         "expected a string");
    } else {
      return ConfigError(path, v, absl::StrCat("clients.", key),
                         "unknown key (from, access)");
    }
  }
  if (!have_from) return ConfigError(path, node, "clients", "no `from`");
  return rule;
}

absl::StatusOr<ExportConfig> ExportValue(const std::string& path,
                                         const toml::table& t) {
  ExportConfig e;
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    const auto* str = v.as_string();
    if (key == "name" || key == "path") {
      if (str == nullptr) return ConfigError(path, v, key, "expected a string");
      (key == "name" ? e.name : e.path) = str->get();
    } else if (key == "read-only") {
      const auto* b = v.as_boolean();
      if (b == nullptr)
        return ConfigError(path, v, key, "expected true or false");
      e.read_only = b->get();
    } else if (key == "squash-uid" || key == "squash-gid") {
      absl::StatusOr<uint32_t> id = IdValue(path, v, key);
      if (!id.ok()) return id.status();
      (key == "squash-uid" ? e.squash_uid : e.squash_gid) = *id;
    } else if (key == "clients") {
      const toml::array* a = v.as_array();
      if (a == nullptr) {
        return ConfigError(path, v, key, "expected an array of tables");
      }
      for (const toml::node& r : *a) {
        absl::StatusOr<AccessRule> rule = RuleValue(path, r);
        if (!rule.ok()) return rule.status();
        e.clients.push_back(*std::move(rule));
      }
      if (e.clients.empty()) {
        return ConfigError(path, v, key,
                           "empty: no client could use the export (leave "
                           "`clients` out to let every client in)");
      }
    } else {
      return ConfigError(path, v, key,
                         "unknown key in [[export]] (name, path, read-only, "
                         "squash-uid, squash-gid, clients)");
    }
  }
  if (e.name.empty()) return ConfigError(path, t, "export", "no `name`");
  if (e.path.empty()) return ConfigError(path, t, "export", "no `path`");
  return e;
}

}  // namespace

absl::StatusOr<std::vector<ExportConfig>> ReadConfigExports(
    const std::string& path) {
  absl::StatusOr<toml::table> table = ParseToml(path);
  if (!table.ok()) return table.status();
  std::vector<ExportConfig> out;
  const toml::node* node = table->get("export");
  if (node == nullptr || node->is_string()) return out;
  const toml::array* a = node->as_array();
  if (a == nullptr) {
    return ConfigError(path, *node, "export",
                       "expected a directory or [[export]] tables");
  }
  for (const toml::node& n : *a) {
    const toml::table* t = n.as_table();
    if (t == nullptr) {
      return ConfigError(path, n, "export", "expected [[export]] tables");
    }
    absl::StatusOr<ExportConfig> e = ExportValue(path, *t);
    if (!e.ok()) return e.status();
    out.push_back(*std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<ConfigEntry>> ReadConfigFile(
    const std::string& path) {
  absl::StatusOr<toml::table> parsed = ParseToml(path);
  if (!parsed.ok()) return parsed.status();
  const toml::table& table = *parsed;
  struct Keyed {
    ConfigEntry entry;
    toml::source_position at;
  };
  std::vector<Keyed> out;
  for (const auto& [key, node] : table) {
    // [[export]] tables: ReadConfigExports.
    if (key.str() == "export" && node.is_array()) continue;
    ConfigEntry e{std::string(key.str()), "",
                  static_cast<int>(node.source().begin.line)};
    if (const auto* s = node.as_string()) {
      e.value = s->get();
    } else if (const auto* i = node.as_integer()) {
      e.value = absl::StrCat(i->get());
    } else if (const auto* f = node.as_floating_point()) {
      e.value = absl::StrCat(f->get());
    } else if (const auto* b = node.as_boolean()) {
      e.value = b->get() ? "true" : "false";
    } else if (const toml::array* a = node.as_array();
               a != nullptr && key.str() == "listen" && !a->empty() &&
               a->is_homogeneous(toml::node_type::string)) {
      // Several addresses: as many --listen flags.
      std::vector<std::string> parts;
      for (const toml::node& n : *a) parts.push_back(n.as_string()->get());
      e.value = absl::StrJoin(parts, ",");
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", node.source().begin.line, ": ", e.key,
                       ": expected a string, a number or true/false",
                       e.key == "listen" ? " (or an array of strings)" : ""));
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
