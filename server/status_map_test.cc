#include "server/status_map.h"

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "common/page_cache.h"
#include "common/socket_util.h"
#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

TEST(StatusMapTest, ErrnoStatusKeepsItsErrnoUpToTheProtocol) {
  struct Case {
    int err;
    rpc::Status want;
  };
  for (const Case& c :
       {Case{EFBIG, rpc::STATUS_FBIG}, Case{ENOSPC, rpc::STATUS_NOSPC},
        Case{EDQUOT, rpc::STATUS_DQUOT}, Case{EIO, rpc::STATUS_IO},
        Case{EROFS, rpc::STATUS_ROFS}, Case{ENOENT, rpc::STATUS_NOENT},
        Case{EPERM, rpc::STATUS_PERM}, Case{EACCES, rpc::STATUS_ACCES},
        Case{ENOMEM, rpc::STATUS_DELAY}, Case{EMFILE, rpc::STATUS_DELAY}}) {
    absl::Status s = ErrnoStatus(c.err, "pwrite");
    EXPECT_EQ(ErrnoOf(s), c.err) << s;
    OpError e = FromAbsl(s);
    EXPECT_EQ(e.status, c.want) << s;
    EXPECT_EQ(e.message, s.message());
  }
}

TEST(StatusMapTest, PageCacheStatuses) {
  EXPECT_EQ(FromAbsl(FileTooLargeError(uint64_t{1} << 50, 1 << 20)).status,
            rpc::STATUS_FBIG);
  // Never meant for a client; if it gets there, DELAY.
  EXPECT_EQ(FromAbsl(WouldBlockError()).status, rpc::STATUS_DELAY);
}

TEST(StatusMapTest, StatusesWithoutErrnoMapByCode) {
  EXPECT_TRUE(FromAbsl(absl::OkStatus()).ok());
  EXPECT_EQ(ErrnoOf(absl::OkStatus()), 0);
  EXPECT_EQ(ErrnoOf(absl::ResourceExhaustedError("no page")), 0);
  EXPECT_EQ(FromAbsl(absl::ResourceExhaustedError("no page")).status,
            rpc::STATUS_DELAY);
  EXPECT_EQ(FromAbsl(absl::NotFoundError("x")).status, rpc::STATUS_NOENT);
  EXPECT_EQ(FromAbsl(absl::PermissionDeniedError("x")).status,
            rpc::STATUS_ACCES);
  EXPECT_EQ(FromAbsl(absl::InvalidArgumentError("x")).status,
            rpc::STATUS_INVAL);
  EXPECT_EQ(FromAbsl(absl::InternalError("x")).status, rpc::STATUS_IO);
}

}  // namespace
}  // namespace txbuf::server
