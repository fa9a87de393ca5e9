// open_beneath.h: openat(2) confined to a directory, for the server's
// exports (server/export.cc) and the bench's peer servers
// (bench/targets/export_root.cc).
//
// OpenBeneath() never opens anything outside `dirfd`. Where the kernel has
// openat2 (Linux 5.6+) it resolves with RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS: an absolute path, a ".." that climbs out, and a
// symlink that leads out (absolute, or relative through "..") fail with
// EXDEV; symlinks that stay beneath are followed (the last one unless
// O_NOFOLLOW). Without openat2 (older kernels, valgrind: ENOSYS) it walks
// the path one component at a time with O_NOFOLLOW, stricter than
// RESOLVE_BENEATH and never looser:
//   - an absolute or empty path, or any ".." component: EXDEV;
//   - a symlink before the last component: refused (ENOTDIR), wherever it
//     points;
//   - a symlink as the last component (unless O_NOFOLLOW, or O_PATH which
//     opens the link itself): followed within its directory if its target
//     is relative and has no "..", else EXDEV.
//
// At the syscall edge, like openat(2): a descriptor, or -1 with errno set.
// openat2's EAGAIN (a rename or mount raced a ".." step) is retried a few
// times, then returned.
//
// Thread-safety: thread-safe (no shared state).
//
// Example:
//   int fd = txbuf::OpenBeneath(root, "dir/file", O_RDONLY | O_CLOEXEC);
//   if (fd < 0) return txbuf::ErrnoStatus(errno, "open dir/file");
#ifndef TXBUF_COMMON_OPEN_BENEATH_H_
#define TXBUF_COMMON_OPEN_BENEATH_H_

#include <sys/types.h>

namespace txbuf {

// Opens `path` relative to directory `dirfd`, confined beneath it (above),
// with open(2) `flags` and `mode`.
int OpenBeneath(int dirfd, const char* path, int flags, mode_t mode = 0);

namespace internal {

// The walk without openat2 (above), on its own: for tests.
int OpenBeneathByHand(int dirfd, const char* path, int flags, mode_t mode);

}  // namespace internal
}  // namespace txbuf

#endif  // TXBUF_COMMON_OPEN_BENEATH_H_
