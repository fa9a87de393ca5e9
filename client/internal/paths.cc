#include "client/internal/paths.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace txbuf::client::internal {

std::string NormalizePath(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view p : absl::StrSplit(path, '/')) {
    if (p.empty() || p == ".") continue;
    parts.push_back(p);
  }
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<std::pair<std::string, std::string>> SplitParent(
    absl::string_view path) {
  std::string p = NormalizePath(path);
  if (p.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is the export root, which has no name"));
  }
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return std::make_pair(std::string(), p);
  return std::make_pair(p.substr(0, slash), p.substr(slash + 1));
}

std::string BaseName(absl::string_view path) {
  std::string p = NormalizePath(path);
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

}  // namespace txbuf::client::internal
