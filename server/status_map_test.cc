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

// docs/PROTOCOL.md section 4: every errno the status table names maps to
// its status; DELAY only for a shortage a retry can fix; anything else IO.
TEST(StatusMapTest, EveryErrnoOfTheSpecsTableMapsToItsStatus) {
  struct Case {
    int err;
    rpc::Status want;
  };
  for (const Case& c : {
           Case{EPERM, rpc::STATUS_PERM},
           Case{ENOENT, rpc::STATUS_NOENT},
           Case{EIO, rpc::STATUS_IO},
           Case{EACCES, rpc::STATUS_ACCES},
           Case{ELOOP, rpc::STATUS_ACCES},
           Case{EEXIST, rpc::STATUS_EXIST},
           Case{EXDEV, rpc::STATUS_XDEV},
           Case{ENOTDIR, rpc::STATUS_NOTDIR},
           Case{EISDIR, rpc::STATUS_ISDIR},
           Case{EINVAL, rpc::STATUS_INVAL},
           Case{EFBIG, rpc::STATUS_FBIG},
           Case{ENOSPC, rpc::STATUS_NOSPC},
           Case{EROFS, rpc::STATUS_ROFS},
           Case{EMLINK, rpc::STATUS_MLINK},
           Case{ENAMETOOLONG, rpc::STATUS_NAMETOOLONG},
           Case{ENOTEMPTY, rpc::STATUS_NOTEMPTY},
           Case{EDQUOT, rpc::STATUS_DQUOT},
           Case{ESTALE, rpc::STATUS_STALE},
           Case{EOPNOTSUPP, rpc::STATUS_NOTSUPP},
           Case{ENOMEM, rpc::STATUS_DELAY},
           Case{ENOBUFS, rpc::STATUS_DELAY},
           Case{EAGAIN, rpc::STATUS_DELAY},
           Case{EMFILE, rpc::STATUS_DELAY},
           Case{ENFILE, rpc::STATUS_DELAY},
           Case{EBUSY, rpc::STATUS_IO},
           Case{ETXTBSY, rpc::STATUS_IO},
       }) {
    EXPECT_EQ(StatusFromErrno(c.err), c.want) << std::strerror(c.err);
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
