#include "bench/targets/export_root.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/open_beneath.h"

namespace txbuf::peers::internal {

absl::Status CheckRelativePath(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("absolute path not allowed: '", path, "'"));
  }
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("NUL in path");
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("path must be plain and relative: '", path, "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ExportRoot> ExportRoot::Open(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", dir));
  return ExportRoot(UniqueFd(fd));
}

absl::StatusOr<UniqueFd> ExportRoot::OpenFile(absl::string_view path) const {
  if (absl::Status s = CheckRelativePath(path); !s.ok()) return s;
  std::string p(path);
  const int fd =
      OpenBeneath(root_.get(), p.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", p));
  return UniqueFd(fd);
}

absl::StatusOr<int> FileTable::Get(absl::string_view path) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = fds_.find(path);
    if (it != fds_.end()) return it->second.get();
  }
  absl::MutexLock lock(&mu_);
  auto it = fds_.find(path);
  if (it != fds_.end()) return it->second.get();
  absl::StatusOr<UniqueFd> fd = root_.OpenFile(path);
  if (!fd.ok()) return fd.status();
  int raw = fd->get();
  std::string key(path);
  fds_.emplace(std::move(key), *std::move(fd));
  return raw;
}

}  // namespace txbuf::peers::internal
