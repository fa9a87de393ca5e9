// Copyright the txbuf authors.
// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note
//
// Tests of TxbufDevice.  The error mapping is tested everywhere; the tests
// that need /dev/txbuf skip when it is absent (always on the host) and run
// inside the emulated guest (run-guest-test.sh --gtest).

#include "common/engine/txbuf_device.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

using ::testing::HasSubstr;

// The UAPI layout is part of the ABI: same sizes and offsets everywhere.
static_assert(sizeof(txbuf_seg) == 32);
static_assert(offsetof(txbuf_seg, addr) == 8);
static_assert(offsetof(txbuf_seg, offset) == 16);
static_assert(offsetof(txbuf_seg, len) == 24);
static_assert(sizeof(txbuf_send) == 32);
static_assert(offsetof(txbuf_send, cookie) == 8);
static_assert(offsetof(txbuf_send, segs) == 16);
static_assert(offsetof(txbuf_send, nr_segs) == 24);
static_assert(sizeof(txbuf_completion) == 32);
static_assert(offsetof(txbuf_completion, status) == 24);
// Statistics are size-prefixed and append-only: version 0 ends with
// write_space_kicks, and later fields only ever come after it.
static_assert(offsetof(txbuf_stats, write_space_kicks) + 8 ==
              TXBUF_STATS_SIZE_VER0);
static_assert(sizeof(txbuf_stats) >= TXBUF_STATS_SIZE_VER0);
static_assert(sizeof(txbuf_stats) % 8 == 0);
static_assert(TXBUF_IOC_STATS_VER0 == 0x8100b802);

TEST(TxbufDeviceTest, OpenMissingPathIsNotFound) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open("/nonexistent/txbuf");
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(dev.status().message(), HasSubstr("/nonexistent/txbuf"));
  EXPECT_THAT(dev.status().message(), HasSubstr("No such file or directory"));
  EXPECT_THAT(dev.status().message(), HasSubstr("(ENOENT)"));
  EXPECT_THAT(dev.status().message(), HasSubstr("txbuf module loaded"));
  EXPECT_EQ(TxbufErrno(dev.status()), ENOENT);
}

TEST(TxbufDeviceTest, OpenOtherDeviceIsFailedPrecondition) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open("/dev/null");
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(dev.status().message(), HasSubstr("/dev/null"));
  EXPECT_THAT(dev.status().message(), HasSubstr("not a txbuf device"));
}

TEST(TxbufDeviceTest, OpenDirectoryFailsWithItsErrno) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open("/");
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(TxbufErrno(dev.status()), EISDIR);
  EXPECT_THAT(dev.status().message(), HasSubstr("open /"));
}

TEST(TxbufDeviceTest, ErrnoStatusMapsCodesAndKeepsTheErrno) {
  struct Case {
    int err;
    absl::StatusCode code;
    const char* name;
  };
  const Case cases[] = {
      {ENOENT, absl::StatusCode::kNotFound, "ENOENT"},
      {EINVAL, absl::StatusCode::kInvalidArgument, "EINVAL"},
      {ENOBUFS, absl::StatusCode::kResourceExhausted, "ENOBUFS"},
      {ENOMEM, absl::StatusCode::kResourceExhausted, "ENOMEM"},
      {EAGAIN, absl::StatusCode::kUnavailable, "EAGAIN"},
      {EFAULT, absl::StatusCode::kInvalidArgument, "EFAULT"},
      {E2BIG, absl::StatusCode::kInvalidArgument, "E2BIG"},
      {EOVERFLOW, absl::StatusCode::kOutOfRange, "EOVERFLOW"},
      {ENOTSOCK, absl::StatusCode::kInvalidArgument, "ENOTSOCK"},
      {ENOTCONN, absl::StatusCode::kFailedPrecondition, "ENOTCONN"},
      {EBADF, absl::StatusCode::kFailedPrecondition, "EBADF"},
      {EMSGSIZE, absl::StatusCode::kOutOfRange, "EMSGSIZE"},
      {EPROTONOSUPPORT, absl::StatusCode::kUnimplemented, "EPROTONOSUPPORT"},
  };
  for (const Case& c : cases) {
    absl::Status s = DeviceErrnoStatus(c.err, "ctx");
    EXPECT_EQ(s.code(), c.code) << c.name;
    EXPECT_EQ(TxbufErrno(s), c.err) << c.name;
    EXPECT_THAT(s.message(), HasSubstr("ctx: "));
    EXPECT_THAT(s.message(), HasSubstr(std::strerror(c.err)));
    EXPECT_THAT(s.message(), HasSubstr(std::string("(") + c.name + ")"));
  }
  EXPECT_TRUE(DeviceErrnoStatus(0, "ctx").ok());
  EXPECT_EQ(TxbufErrno(absl::OkStatus()), 0);
  EXPECT_EQ(TxbufErrno(absl::InternalError("no errno here")), 0);
}

TEST(TxbufDeviceTest, SegmentBuilders) {
  char buf[16] = {};
  txbuf_seg in = TxbufDevice::Inline(buf, 10);
  EXPECT_EQ(in.type, TXBUF_SEG_INLINE);
  EXPECT_EQ(in.addr, reinterpret_cast<uintptr_t>(buf));
  EXPECT_EQ(in.len, 10u);
  EXPECT_EQ(in.fd, 0);
  EXPECT_EQ(in.offset, 0u);
  txbuf_seg f = TxbufDevice::File(7, 4096, 100);
  EXPECT_EQ(f.type, TXBUF_SEG_FILE);
  EXPECT_EQ(f.fd, 7);
  EXPECT_EQ(f.offset, 4096u);
  EXPECT_EQ(f.len, 100u);
  EXPECT_EQ(f.addr, 0u);
  txbuf_seg u = TxbufDevice::User(buf, 3);
  EXPECT_EQ(u.type, TXBUF_SEG_USER);
  EXPECT_EQ(u.addr, reinterpret_cast<uintptr_t>(buf));
  EXPECT_EQ(u.len, 3u);
}

// ---------------------------------------------------------------- device

class TxbufDeviceLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kTxbufDevicePath, F_OK) != 0) {
      GTEST_SKIP() << kTxbufDevicePath
                   << " is absent (the module runs in the guest test only)";
    }
  }

  // A connected loopback TCP pair: {sender, receiver}.
  static std::pair<int, int> TcpPair() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(l, 1), 0);
    EXPECT_EQ(getsockname(l, reinterpret_cast<sockaddr*>(&a), &alen), 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    int r = accept(l, nullptr, nullptr);
    close(l);
    return {s, r};
  }
};

TEST_F(TxbufDeviceLiveTest, OpenAndStats) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_GE(dev->fd(), 0);
  absl::StatusOr<txbuf_stats> st = dev->Stats();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->fd_chains_in_flight, 0u);
  EXPECT_GT(st->fd_pinned_cap, 0u);
}

TEST_F(TxbufDeviceLiveTest, SendErrorsCarryTheErrno) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  char buf[8] = {};
  const txbuf_seg seg = TxbufDevice::Inline(buf, sizeof(buf));
  absl::Status s = dev->Send(/*sock_fd=*/9999, 1, 0, {&seg, 1});
  EXPECT_EQ(TxbufErrno(s), EBADF) << s;
  EXPECT_THAT(s.message(), HasSubstr("TXBUF_IOC_SEND"));
  s = dev->Send(dev->fd(), 1, 0, {&seg, 1});
  EXPECT_EQ(TxbufErrno(s), ENOTSOCK) << s;
  auto [snd, rcv] = TcpPair();
  s = dev->Send(snd, 1, 0, {});
  EXPECT_EQ(TxbufErrno(s), EINVAL) << s;
  s = dev->Send(snd, 1, /*flags=*/0x80, {&seg, 1});
  EXPECT_EQ(TxbufErrno(s), EINVAL) << s;
  std::vector<txbuf_seg> many(TXBUF_MAX_SEGS + 1, seg);
  s = dev->Send(snd, 1, 0, many);
  EXPECT_EQ(TxbufErrno(s), E2BIG) << s;
  EXPECT_EQ(TxbufErrno(dev->SetPinnedCap(0)), EINVAL);
  close(snd);
  close(rcv);
}

// The kmod engine's call: the errno itself, 0 when accepted.
TEST_F(TxbufDeviceLiveTest, SendErrnoReturnsTheErrno) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  char buf[8] = {};
  const txbuf_seg seg = TxbufDevice::Inline(buf, sizeof(buf));
  EXPECT_EQ(dev->SendErrno(/*sock_fd=*/9999, 1, 0, {&seg, 1}), EBADF);
  EXPECT_EQ(dev->SendErrno(dev->fd(), 1, 0, {&seg, 1}), ENOTSOCK);
  auto [snd, rcv] = TcpPair();
  EXPECT_EQ(dev->SendErrno(snd, 1, 0, {}), EINVAL);
  EXPECT_EQ(dev->SendErrno(snd, 7, 0, {&seg, 1}), 0);
  pollfd p{dev->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 60000), 1);  // a bound: an emulated guest can be slow
  txbuf_completion rec{};
  absl::StatusOr<size_t> n = dev->ReadCompletions({&rec, 1});
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(rec.cookie, 7u);
  EXPECT_EQ(rec.status, 0);
  close(snd);
  close(rcv);
}

TEST_F(TxbufDeviceLiveTest, SendAndReadCompletion) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  txbuf_completion recs[4];
  absl::StatusOr<size_t> n = dev->ReadCompletions(absl::MakeSpan(recs));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);

  auto [snd, rcv] = TcpPair();
  const std::string header = "HEADER:";
  std::vector<char> payload(100000);
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>('a' + i % 26);
  const txbuf_seg segs[] = {
      TxbufDevice::Inline(header.data(), header.size()),
      TxbufDevice::User(payload.data(), payload.size()),
  };
  ASSERT_TRUE(dev->Send(snd, /*cookie=*/42, 0, segs).ok());
  std::string got;
  std::vector<char> buf(65536);
  while (got.size() < header.size() + payload.size()) {
    ssize_t k = read(rcv, buf.data(), buf.size());
    ASSERT_GT(k, 0);
    got.append(buf.data(), k);
  }
  EXPECT_EQ(got, header + std::string(payload.begin(), payload.end()));

  pollfd p{dev->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 60000), 1);  // a bound: an emulated guest can be slow
  n = dev->ReadCompletions(absl::MakeSpan(recs));
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(recs[0].cookie, 42u);
  EXPECT_EQ(recs[0].status, 0);
  EXPECT_EQ(recs[0].bytes, header.size() + payload.size());
  EXPECT_GT(recs[0].latency_ns, 0u);
  EXPECT_EQ(*dev->ReadCompletions({}), 0u);
  close(snd);
  close(rcv);
}

TEST_F(TxbufDeviceLiveTest, MoveLeavesAClosedHandle) {
  absl::StatusOr<TxbufDevice> dev = TxbufDevice::Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  int fd = dev->fd();
  TxbufDevice moved = std::move(*dev);
  EXPECT_EQ(moved.fd(), fd);
  EXPECT_EQ(dev->fd(), -1);  // NOLINT(bugprone-use-after-move): testing it
  EXPECT_EQ(dev->Send(0, 0, 0, {}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(dev->Stats().status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(moved.Stats().ok());
}

}  // namespace
}  // namespace txbuf
