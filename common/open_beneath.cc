#include "common/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/socket_util.h"

namespace txbuf {
namespace {

// Symlinks the walk follows in a row at most (as the kernel's limit).
constexpr int kMaxSymlinks = 40;
// openat2's EAGAIN retried this many times.
constexpr int kMaxRetries = 16;

int Walk(int dirfd, const std::string& path, int flags, mode_t mode,
         int depth) {
  if (depth > kMaxSymlinks) return errno = ELOOP, -1;
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (path.empty() || path[0] == '/' || parts.empty()) return errno = EXDEV, -1;
  UniqueFd dir(fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  if (!dir) return -1;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& c = parts[i];
    if (c == "..") return errno = EXDEV, -1;
    const bool last = i + 1 == parts.size();
    const int f = last ? flags | O_NOFOLLOW
                       : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd next(openat(dir.get(), c.c_str(), f, mode));
    // Not a directory before the end (a symlink included): refused.
    if (!next && errno == ENOTDIR && !last) return -1;
    if (!next && (errno == ELOOP || errno == ENOTDIR) &&
        (!last || (flags & O_NOFOLLOW) == 0)) {
      // A symlink: follow it within the current directory. (Not one,
      // EINVAL: the open's own error stands.)
      const int open_errno = errno;
      char target[4096];
      ssize_t n = readlinkat(dir.get(), c.c_str(), target, sizeof(target) - 1);
      if (n < 0) {
        if (errno == EINVAL) errno = open_errno;
        return -1;
      }
      std::string t(target, static_cast<size_t>(n));
      for (size_t j = i + 1; j < parts.size(); ++j) t += "/" + parts[j];
      return Walk(dir.get(), t, flags, mode, depth + 1);
    }
    if (!next) return -1;
    dir = std::move(next);
  }
  return dir.release();
}

}  // namespace

namespace internal {

int OpenBeneathByHand(int dirfd, const char* path, int flags, mode_t mode) {
  return Walk(dirfd, path, flags, mode, 0);
}

}  // namespace internal

int OpenBeneath(int dirfd, const char* path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(static_cast<unsigned>(flags));
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int tries = 0;; ++tries) {
    const long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == ENOSYS || errno == E2BIG) {
      return internal::OpenBeneathByHand(dirfd, path, flags, mode);
    }
    if (errno != EAGAIN || tries == kMaxRetries) return -1;
  }
}

}  // namespace txbuf
