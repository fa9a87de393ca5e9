#include "client/internal/glob.h"

#include <fnmatch.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/internal/paths.h"

namespace txbuf::client::internal {
namespace {

// `component` without its quoting backslashes (for a component that has no
// special characters).
std::string Unquote(absl::string_view component) {
  std::string out;
  for (size_t i = 0; i < component.size(); ++i) {
    if (component[i] == '\\' && i + 1 < component.size()) ++i;
    out += component[i];
  }
  return out;
}

// Whether `component` has an unquoted '*', '?' or '['.
bool HasUnquotedGlob(absl::string_view component) {
  for (size_t i = 0; i < component.size(); ++i) {
    char c = component[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == '*' || c == '?' || c == '[') return true;
  }
  return false;
}

std::string Join(const std::string& dir, absl::string_view name) {
  return dir.empty() ? std::string(name) : absl::StrCat(dir, "/", name);
}

}  // namespace

bool HasGlob(absl::string_view path) {
  return path.find_first_of("*?[") != absl::string_view::npos;
}

absl::StatusOr<std::vector<std::string>> ExpandGlob(absl::string_view pattern,
                                                    const DirLister& list) {
  if (!HasGlob(pattern))
    return std::vector<std::string>{NormalizePath(pattern)};
  std::vector<std::string> matched = {""};  // the root
  for (absl::string_view comp : absl::StrSplit(pattern, '/')) {
    if (comp.empty() || comp == ".") continue;
    std::vector<std::string> next;
    if (!HasUnquotedGlob(comp)) {
      for (const std::string& dir : matched) {
        next.push_back(Join(dir, Unquote(comp)));
      }
    } else {
      const std::string pat(comp);
      for (const std::string& dir : matched) {
        absl::StatusOr<std::vector<rpc::DirEntry>> entries = list(dir);
        if (!entries.ok()) {
          if (absl::IsNotFound(entries.status()) ||
              absl::IsFailedPrecondition(entries.status())) {
            continue;  // not a directory, or gone: no match below it.
          }
          return entries.status();
        }
        std::vector<std::string> names;
        for (const rpc::DirEntry& e : *entries) {
          if (e.name() == "." || e.name() == "..") continue;
          if (fnmatch(pat.c_str(), e.name().c_str(), FNM_PERIOD) == 0) {
            names.push_back(Join(dir, e.name()));
          }
        }
        std::sort(names.begin(), names.end());
        for (std::string& n : names) next.push_back(std::move(n));
      }
    }
    matched = std::move(next);
    if (matched.empty()) break;
  }
  if (matched.empty()) {
    return absl::NotFoundError(absl::StrCat("no match for '", pattern, "'"));
  }
  return matched;
}

}  // namespace txbuf::client::internal
