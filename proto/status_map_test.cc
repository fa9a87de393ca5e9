// The protocol's status table (proto/status_map.h) against docs/PROTOCOL.md
// section 4: errno and absl codes to statuses (the server's side), statuses
// to names and absl codes (the client's side).
#include "proto/status_map.h"

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

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

TEST(StatusMapTest, AbslCodesWithoutErrnoMapToTheirStatus) {
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kOk), rpc::STATUS_OK);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kNotFound), rpc::STATUS_NOENT);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kAlreadyExists),
            rpc::STATUS_EXIST);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kPermissionDenied),
            rpc::STATUS_ACCES);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kInvalidArgument),
            rpc::STATUS_INVAL);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kOutOfRange),
            rpc::STATUS_INVAL);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kResourceExhausted),
            rpc::STATUS_DELAY);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kUnavailable),
            rpc::STATUS_DELAY);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kFailedPrecondition),
            rpc::STATUS_ROFS);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kInternal), rpc::STATUS_IO);
  EXPECT_EQ(StatusFromAbslCode(absl::StatusCode::kDataLoss), rpc::STATUS_IO);
}

// Every status the .proto defines has a name, a description and an absl
// code of its own in the table.
TEST(StatusMapTest, EveryStatusIsInTheTable) {
  const google::protobuf::EnumDescriptor* d = rpc::Status_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    const auto code = static_cast<rpc::Status>(d->value(i)->number());
    SCOPED_TRACE(d->value(i)->name());
    EXPECT_EQ("STATUS_" + RpcStatusName(code), d->value(i)->name());
    EXPECT_NE(RpcStatusDescription(code), "unknown error");
  }
  EXPECT_EQ(RpcStatusName(static_cast<rpc::Status>(4242)), "STATUS_4242");
  EXPECT_EQ(RpcStatusDescription(static_cast<rpc::Status>(4242)),
            "unknown error");
  EXPECT_EQ(RpcStatusCode(static_cast<rpc::Status>(4242)),
            absl::StatusCode::kInternal);
  EXPECT_EQ(RpcStatusCode(rpc::STATUS_NOENT), absl::StatusCode::kNotFound);
  EXPECT_EQ(RpcStatusCode(rpc::STATUS_DELAY), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace txbuf
