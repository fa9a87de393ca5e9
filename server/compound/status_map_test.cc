#include "server/compound/status_map.h"

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/socket_util.h"
#include "gtest/gtest.h"
#include "server/fs/fs_error.h"
#include "server/fs/page_cache.h"

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
    EXPECT_EQ(WireStatusOf(s), c.want) << s;
    EXPECT_EQ(s.message(), absl::StrCat("pwrite: ", std::strerror(c.err)));
  }
}

TEST(StatusMapTest, PageCacheStatuses) {
  EXPECT_EQ(WireStatusOf(FileTooLargeError(uint64_t{1} << 50, 1 << 20)),
            rpc::STATUS_FBIG);
  // Never meant for a client; if it gets there, DELAY.
  EXPECT_EQ(WireStatusOf(WouldBlockError()), rpc::STATUS_DELAY);
}

TEST(StatusMapTest, StatusesWithoutErrnoMapByCode) {
  EXPECT_EQ(WireStatusOf(absl::OkStatus()), rpc::STATUS_OK);
  EXPECT_EQ(ErrnoOf(absl::OkStatus()), 0);
  EXPECT_EQ(ErrnoOf(absl::ResourceExhaustedError("no page")), 0);
  EXPECT_EQ(WireStatusOf(absl::ResourceExhaustedError("no page")),
            rpc::STATUS_DELAY);
  EXPECT_EQ(WireStatusOf(absl::NotFoundError("x")), rpc::STATUS_NOENT);
  EXPECT_EQ(WireStatusOf(absl::PermissionDeniedError("x")), rpc::STATUS_ACCES);
  EXPECT_EQ(WireStatusOf(absl::InvalidArgumentError("x")), rpc::STATUS_INVAL);
  EXPECT_EQ(WireStatusOf(absl::InternalError("x")), rpc::STATUS_IO);
}

// The kinds that share an absl code still reach the wire apart.
TEST(StatusMapTest, FileSystemKindsMapOneToOne) {
  struct Case {
    FsErrorKind kind;
    rpc::Status want;
  };
  for (const Case& c :
       {Case{FsErrorKind::kNotFound, rpc::STATUS_NOENT},
        Case{FsErrorKind::kAccess, rpc::STATUS_ACCES},
        Case{FsErrorKind::kPermission, rpc::STATUS_PERM},
        Case{FsErrorKind::kStale, rpc::STATUS_STALE},
        Case{FsErrorKind::kBadHandle, rpc::STATUS_BADHANDLE},
        Case{FsErrorKind::kInvalid, rpc::STATUS_INVAL},
        Case{FsErrorKind::kNameTooLong, rpc::STATUS_NAMETOOLONG},
        Case{FsErrorKind::kNotDir, rpc::STATUS_NOTDIR},
        Case{FsErrorKind::kIsDir, rpc::STATUS_ISDIR},
        Case{FsErrorKind::kReadOnly, rpc::STATUS_ROFS},
        Case{FsErrorKind::kNotSupported, rpc::STATUS_NOTSUPP},
        Case{FsErrorKind::kBusy, rpc::STATUS_DELAY},
        Case{FsErrorKind::kTooBig, rpc::STATUS_TOOBIG}}) {
    absl::Status s = FsError(c.kind, "why");
    EXPECT_EQ(WireStatusOf(s), c.want) << s;
    EXPECT_EQ(s.message(), "why");
    // A prefixed message keeps its kind.
    EXPECT_EQ(WireStatusOf(WithPrefix(s, "lookup 'x': ")), c.want);
  }
}

TEST(StatusMapTest, TheExecutorsOwnStatusesReachTheWireAsTheyAre) {
  for (rpc::Status st :
       {rpc::STATUS_NOFILEHANDLE, rpc::STATUS_XDEV, rpc::STATUS_OP_ILLEGAL,
        rpc::STATUS_TOOBIG, rpc::STATUS_ROFS, rpc::STATUS_ACCES,
        rpc::STATUS_BADHANDLE}) {
    absl::Status s = RpcError(st, "detail");
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), RpcStatusCode(st));
    EXPECT_EQ(s.message(), "detail");
    EXPECT_EQ(WireStatusOf(s), st);
  }
}

}  // namespace
}  // namespace txbuf::server
