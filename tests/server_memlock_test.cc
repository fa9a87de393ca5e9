// txbufd under a locked-memory limit (RLIMIT_MEMLOCK): it registers io_uring
// fixed buffers only as far as the limit allows (never more than the cache,
// and by default only its first 64 MiB, --fixed-buffer-size: no 1 GiB of
// locked memory at start unless asked), says so in one log line naming
// LimitMEMLOCK and ulimit -l, and always starts and serves
// (docs/OPERATING.md, "Memory").
#include <sys/resource.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/event_loop.h"
#include "gtest/gtest.h"
#include "tests/server_fixture.h"

namespace txbuf::testing {
namespace {

class MemlockTest : public ServerTest {
 protected:
  // The log's lines that name the locked-memory limit.
  std::vector<std::string> HintLines() {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(ReadFileOrDie(log_), '\n')) {
      if (absl::StrContains(line, "LimitMEMLOCK") ||
          absl::StrContains(line, "ulimit -l")) {
        out.emplace_back(line);
      }
    }
    return out;
  }

  // `want`, or the hard locked-memory limit if that is lower (without
  // CAP_SYS_RESOURCE it cannot be raised).
  static unsigned long LimitUpTo(unsigned long want) {
    rlimit rl{};
    EXPECT_EQ(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
    return rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
               ? want
               : static_cast<unsigned long>(rl.rlim_max);
  }

  // Fixed buffers are registered only by uring_zc and auto, on a kernel
  // that takes SENDMSG_ZC from them.
  static bool KernelHasFixedBufferSends() {
    return ProbeUringFeatures().fixed_sendmsg_zc;
  }

  TempDir etc_;
  const std::string log_ = etc_.Join("txbufd.log");
};

// The old txbufd registered the whole cache (1 GiB by default) at start
// whatever the limit, as root: 1 GiB of VmPin and of RSS.
TEST_F(MemlockTest, TheDefaultCacheLocksNoMoreThanTheLimit) {
  constexpr unsigned long kLimit = 8ul << 20;  // Linux's default ulimit -l
  // The default cache (1G), not the fixture's 64M.
  StartServer({"--cache-size", "1G", "--threads", "1"},
              {.memlock = kLimit, .stderr_path = log_});
  EXPECT_LE(server_->VmPinKib(), static_cast<long>(kLimit >> 10));
  EXPECT_LT(server_->RssKib(), 256 << 10) << "KiB resident after start";
  ExpectStillServing();
  if (!KernelHasFixedBufferSends()) {
    GTEST_SKIP() << "the kernel registers no fixed buffers for SENDMSG_ZC: "
                    "no hint to check";
  }
  std::vector<std::string> hints = HintLines();
  ASSERT_EQ(hints.size(), 1u) << ReadFileOrDie(log_);
  EXPECT_TRUE(absl::StrContains(hints[0], "LimitMEMLOCK")) << hints[0];
  EXPECT_TRUE(absl::StrContains(hints[0], "ulimit -l")) << hints[0];
  EXPECT_TRUE(absl::StrContains(
      hints[0], "8 MiB of the 64 MiB asked (fixed-buffer-size; cache 1 GiB)"))
      << hints[0];
}

// What an operator gets from the shipped unit (LimitMEMLOCK=1G) and the
// default settings (cache 1G): the first 64 MiB of the cache registered and
// locked, not all of it (the old txbufd locked the whole 1 GiB at start).
// Where the hard limit cannot be raised to 1G (no CAP_SYS_RESOURCE), the
// highest limit allowed.
TEST_F(MemlockTest, TheDefaultsLockWellUnderTheCache) {
  const unsigned long limit = LimitUpTo(1ul << 30);  // LimitMEMLOCK=1G
  StartServer({"--cache-size", "1G", "--threads", "1"},
              {.memlock = limit, .stderr_path = log_});
  EXPECT_LE(server_->VmPinKib(), 64 << 10) << "KiB locked at start";
  EXPECT_LT(server_->RssKib(), 256 << 10) << "KiB resident after start";
  ExpectStillServing();
  if (KernelHasFixedBufferSends() && limit >= (64ul << 20)) {
    // (Not run where the hard limit is 8 MiB, as on the build machines.)
    EXPECT_GE(server_->VmPinKib(), 32 << 10) << "registered too little";
    EXPECT_TRUE(HintLines().empty()) << ReadFileOrDie(log_);
  }
}

// --fixed-buffer-size picks how much is registered under a limit that
// would allow more (0 registers nothing); neither is worth a hint.
TEST_F(MemlockTest, FixedBufferSizeChoosesHowMuchIsLocked) {
  if (!KernelHasFixedBufferSends()) {
    GTEST_SKIP() << "the kernel registers no fixed buffers for SENDMSG_ZC";
  }
  constexpr unsigned long kLimit = 8ul << 20;
  if (LimitUpTo(kLimit) < kLimit) {
    GTEST_SKIP() << "the hard locked-memory limit is under 8 MiB and cannot "
                    "be raised here";
  }
  // One event loop: each registers its own fixed-buffer-size.
  StartServer(
      {"--cache-size", "8M", "--fixed-buffer-size", "2M", "--threads", "1"},
      {.memlock = kLimit, .stderr_path = log_});
  EXPECT_EQ(server_->VmPinKib(), 2 << 10);
  EXPECT_TRUE(HintLines().empty()) << ReadFileOrDie(log_);
  ExpectStillServing();
}

TEST_F(MemlockTest, FixedBufferSizeZeroLocksNothing) {
  const unsigned long limit = LimitUpTo(8ul << 20);
  StartServer({"--cache-size", "8M", "--fixed-buffer-size", "0"},
              {.memlock = limit, .stderr_path = log_});
  EXPECT_EQ(server_->VmPinKib(), 0);
  EXPECT_TRUE(HintLines().empty()) << ReadFileOrDie(log_);
  ExpectStillServing();
}

TEST_F(MemlockTest, EachEventLoopGetsItsShareOfTheLimit) {
  constexpr unsigned long kLimit = 4ul << 20;
  StartServer({"--threads", "2"}, {.memlock = kLimit, .stderr_path = log_});
  EXPECT_LE(server_->VmPinKib(), static_cast<long>(kLimit >> 10));
  ExpectStillServing();
  if (KernelHasFixedBufferSends()) {
    EXPECT_GT(server_->VmPinKib(), 0) << "registered nothing";
    EXPECT_EQ(HintLines().size(), 1u) << ReadFileOrDie(log_);
  }
}

// Under a page per event loop: no fixed buffers at all, the hint, and
// service as usual. (One page, so that the server's probe of the kernel,
// which registers a page, works without privileges.)
TEST_F(MemlockTest, ALimitUnderAPageTurnsFixedBuffersOff) {
  StartServer({"--engine", "uring_zc", "--threads", "2"},
              {.memlock = 4096, .stderr_path = log_});
  EXPECT_EQ(server_->VmPinKib(), 0);
  ExpectStillServing();
  if (KernelHasFixedBufferSends()) {
    std::vector<std::string> hints = HintLines();
    ASSERT_EQ(hints.size(), 1u) << ReadFileOrDie(log_);
    EXPECT_TRUE(absl::StrContains(hints[0], "fixed buffers off")) << hints[0];
  }
}

// A limit that holds the cache: all of it is registered (VmPin is the
// cache, not more), and nothing is said.
TEST_F(MemlockTest, ALimitThatHoldsTheCacheRegistersAllOfIt) {
  if (!KernelHasFixedBufferSends()) {
    GTEST_SKIP() << "the kernel registers no fixed buffers for SENDMSG_ZC";
  }
  constexpr unsigned long kCache = 4ul << 20;
  if (LimitUpTo(kCache) < kCache) {
    GTEST_SKIP() << "the hard locked-memory limit is under 4 MiB and cannot "
                    "be raised here";
  }
  StartServer({"--cache-size", "4M", "--threads", "1"},
              {.memlock = kCache, .stderr_path = log_});
  EXPECT_EQ(server_->VmPinKib(), static_cast<long>(kCache >> 10));
  EXPECT_TRUE(HintLines().empty()) << ReadFileOrDie(log_);
  ExpectStillServing();
}

}  // namespace
}  // namespace txbuf::testing
