// client/mount/errno_map_test.cc: every protocol status has its errno.
#include "client/mount/errno_map.h"

#include <cerrno>

#include "absl/status/status.h"
#include "client/status.h"
#include "gtest/gtest.h"
#include "proto/status_map.h"

namespace txbuf::client::mount {
namespace {

TEST(ErrnoMapTest, EveryStatusOfTheTable) {
  struct Case {
    rpc::Status code;
    int err;
  };
  const Case cases[] = {
      {rpc::STATUS_OK, 0},
      {rpc::STATUS_PERM, EPERM},
      {rpc::STATUS_NOENT, ENOENT},
      {rpc::STATUS_IO, EIO},
      {rpc::STATUS_ACCES, EACCES},
      {rpc::STATUS_EXIST, EEXIST},
      {rpc::STATUS_XDEV, EXDEV},
      {rpc::STATUS_NOTDIR, ENOTDIR},
      {rpc::STATUS_ISDIR, EISDIR},
      {rpc::STATUS_INVAL, EINVAL},
      {rpc::STATUS_FBIG, EFBIG},
      {rpc::STATUS_NOSPC, ENOSPC},
      {rpc::STATUS_ROFS, EROFS},
      {rpc::STATUS_MLINK, EMLINK},
      {rpc::STATUS_NAMETOOLONG, ENAMETOOLONG},
      {rpc::STATUS_NOTEMPTY, ENOTEMPTY},
      {rpc::STATUS_DQUOT, EDQUOT},
      {rpc::STATUS_STALE, ESTALE},
      {rpc::STATUS_BADHANDLE, ESTALE},
      {rpc::STATUS_NOTSUPP, EOPNOTSUPP},
      {rpc::STATUS_SERVERFAULT, EIO},
      {rpc::STATUS_DELAY, EAGAIN},
      {rpc::STATUS_NOFILEHANDLE, EIO},
      {rpc::STATUS_BADXDR, EIO},
      {rpc::STATUS_TOOBIG, E2BIG},
      {rpc::STATUS_OP_ILLEGAL, EOPNOTSUPP},
      {rpc::STATUS_AUTH, EACCES},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RpcStatusErrno(c.code), c.err) << rpc::Status_Name(c.code);
    if (c.code != rpc::STATUS_OK) {
      EXPECT_EQ(ErrnoFromStatus(StatusFromRpc(c.code, "x", "OP")), c.err)
          << rpc::Status_Name(c.code);
    }
  }
  // Every value of the enum is in the table above.
  EXPECT_EQ(static_cast<int>(std::size(cases)),
            rpc::Status_descriptor()->value_count());
  EXPECT_EQ(RpcStatusErrno(static_cast<rpc::Status>(12345)), EIO);
}

TEST(ErrnoMapTest, TransportErrors) {
  EXPECT_EQ(ErrnoFromStatus(absl::OkStatus()), 0);
  EXPECT_EQ(ErrnoFromStatus(absl::DeadlineExceededError("late")), ETIMEDOUT);
  EXPECT_EQ(ErrnoFromStatus(absl::UnavailableError("gone")), EIO);
  EXPECT_EQ(ErrnoFromStatus(absl::CancelledError("bye")), EIO);
}

}  // namespace
}  // namespace txbuf::client::mount
