// open_beneath_test.cc: OpenBeneath and its walk without openat2, each on
// the same tree: nested plain paths open; "..", absolute paths, absolute
// symlinks and symlinks in the middle of the path that lead out of the root
// are all refused; and where the two differ (a symlink in the middle that
// stays beneath), the walk is the stricter.

#include "common/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/socket_util.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

using OpenFn = int (*)(int, const char*, int, mode_t);

int WithOpenat2(int dirfd, const char* path, int flags, mode_t mode) {
  return OpenBeneath(dirfd, path, flags, mode);
}

// Whether the kernel has openat2 (else OpenBeneath is the walk as well).
bool HaveOpenat2() {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  UniqueFd fd(
      static_cast<int>(syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how))));
  return fd.get() >= 0 || errno != ENOSYS;
}

// root/ and outside/ side by side in a fresh directory:
//   root/a/b/file       "inside"
//   root/top            "top"
//   root/rel -> a/b/file
//   root/dir -> a        (a symlink to a directory, beneath)
//   root/abs -> <outside>/secret
//   root/absdir -> <outside>
//   root/up -> ../outside
//   outside/secret      "secret"
class OpenBeneathTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/open_beneath_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    const std::string root = base_ + "/root", out = base_ + "/outside";
    std::filesystem::create_directories(root + "/a/b");
    std::filesystem::create_directories(out);
    Write(root + "/a/b/file", "inside");
    Write(root + "/top", "top");
    Write(out + "/secret", "secret");
    ASSERT_EQ(symlink("a/b/file", (root + "/rel").c_str()), 0);
    ASSERT_EQ(symlink("a", (root + "/dir").c_str()), 0);
    ASSERT_EQ(symlink((out + "/secret").c_str(), (root + "/abs").c_str()), 0);
    ASSERT_EQ(symlink(out.c_str(), (root + "/absdir").c_str()), 0);
    ASSERT_EQ(symlink("../outside", (root + "/up").c_str()), 0);
    root_ = UniqueFd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_.get() >= 0);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  static void Write(const std::string& path, const std::string& bytes) {
    std::ofstream(path) << bytes;
  }

  bool by_hand() const { return GetParam(); }
  // Whether the walk resolves (by hand, or OpenBeneath without openat2).
  bool walks() const { return by_hand() || !HaveOpenat2(); }
  OpenFn open_fn() const {
    return by_hand() ? &internal::OpenBeneathByHand : &WithOpenat2;
  }

  // The contents of `path` opened beneath the root, or "errno N".
  std::string Read(const char* path, int flags = 0) {
    errno = 0;
    UniqueFd fd(open_fn()(root_.get(), path, O_RDONLY | O_CLOEXEC | flags, 0));
    if (fd.get() < 0) return "errno " + std::to_string(errno);
    char buf[64];
    const ssize_t n = pread(fd.get(), buf, sizeof(buf), 0);
    return n < 0 ? "read failed" : std::string(buf, static_cast<size_t>(n));
  }
  static std::string Errno(int e) { return "errno " + std::to_string(e); }

  std::string base_;
  UniqueFd root_;
};

TEST_P(OpenBeneathTest, NestedPlainPathsOpen) {
  EXPECT_EQ(Read("top"), "top");
  EXPECT_EQ(Read("a/b/file"), "inside");
  EXPECT_EQ(Read("a//b/./file"), "inside");
  EXPECT_EQ(Read("a/b/missing"), Errno(ENOENT));
}

TEST_P(OpenBeneathTest, DotDotOutOfTheRootIsRefused) {
  EXPECT_EQ(Read("../outside/secret"), Errno(EXDEV));
  EXPECT_EQ(Read("a/../../outside/secret"), Errno(EXDEV));
}

TEST_P(OpenBeneathTest, AbsolutePathsAreRefused) {
  const std::string secret = base_ + "/outside/secret";
  EXPECT_EQ(Read(secret.c_str()), Errno(EXDEV));
  EXPECT_EQ(Read("/"), Errno(EXDEV));
}

TEST_P(OpenBeneathTest, AbsoluteSymlinksAreRefused) {
  EXPECT_EQ(Read("abs"), Errno(EXDEV));
}

TEST_P(OpenBeneathTest, SymlinksInTheMiddleThatLeaveAreRefused) {
  // Where the kernel has no openat2 the walk refuses every symlink before
  // the last component (ENOTDIR); openat2 says EXDEV.
  const std::string refused = Errno(walks() ? ENOTDIR : EXDEV);
  EXPECT_EQ(Read("absdir/secret"), refused);
  EXPECT_EQ(Read("up/secret"), refused);
}

TEST_P(OpenBeneathTest, RelativeSymlinksBeneathAreFollowedAtTheEnd) {
  EXPECT_EQ(Read("rel"), "inside");
  EXPECT_EQ(Read("rel", O_NOFOLLOW), Errno(ELOOP));
}

TEST_P(OpenBeneathTest, TheWalkIsStricterInTheMiddle) {
  // A symlink to a directory beneath: openat2 follows it, the walk does not.
  EXPECT_EQ(Read("dir/b/file"), walks() ? Errno(ENOTDIR) : "inside");
}

TEST_P(OpenBeneathTest, ADirectoryOpensWithOPath) {
  UniqueFd d(
      open_fn()(root_.get(), "a/b", O_PATH | O_DIRECTORY | O_CLOEXEC, 0));
  ASSERT_GE(d.get(), 0) << errno;
  struct stat st {};
  ASSERT_EQ(fstat(d.get(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  // And beneath it, as the root of another lookup.
  UniqueFd f(open_fn()(d.get(), "file", O_RDONLY | O_CLOEXEC, 0));
  EXPECT_GE(f.get(), 0) << errno;
  EXPECT_LT(open_fn()(d.get(), "../../top", O_RDONLY | O_CLOEXEC, 0), 0);
}

INSTANTIATE_TEST_SUITE_P(Both, OpenBeneathTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return std::string(
                               p.param
                                   ? "Walk"
                                   : (HaveOpenat2() ? "Openat2" : "NoOpenat2"));
                         });

}  // namespace
}  // namespace txbuf
