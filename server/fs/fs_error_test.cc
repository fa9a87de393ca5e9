// fs_error_test.cc: a file-system failure keeps its kind (or its errno)
// through prefixing, and nothing else is mistaken for one.
#include "server/fs/fs_error.h"

#include <cerrno>

#include "absl/status/status.h"
#include "common/socket_util.h"
#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

TEST(FsErrorTest, TheKindRidesAlongWithAnAbslCode) {
  absl::Status s = FsError(FsErrorKind::kStale, "the file was removed");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "the file was removed");
  EXPECT_EQ(FsErrorKindOf(s), FsErrorKind::kStale);
  // Kinds that share an absl code stay apart.
  EXPECT_EQ(FsErrorKindOf(FsError(FsErrorKind::kReadOnly, "x")),
            FsErrorKind::kReadOnly);
  EXPECT_EQ(FsError(FsErrorKind::kReadOnly, "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FsError(FsErrorKind::kBadHandle, "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FsError(FsErrorKind::kBusy, "x").code(),
            absl::StatusCode::kUnavailable);
}

TEST(FsErrorTest, OtherStatusesHaveNoKind) {
  EXPECT_EQ(FsErrorKindOf(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(FsErrorKindOf(absl::FailedPreconditionError("x")), std::nullopt);
  EXPECT_EQ(FsErrorKindOf(ErrnoStatus(ESTALE, "fstat")), std::nullopt);
}

TEST(FsErrorTest, StaleIsTheKindOrTheErrno) {
  EXPECT_TRUE(IsStale(FsError(FsErrorKind::kStale, "x")));
  EXPECT_TRUE(IsStale(ErrnoStatus(ESTALE, "fstat")));
  EXPECT_FALSE(IsStale(FsError(FsErrorKind::kNotFound, "x")));
  EXPECT_FALSE(IsStale(ErrnoStatus(ENOENT, "open")));
  EXPECT_FALSE(IsStale(absl::OkStatus()));
}

TEST(FsErrorTest, WithPrefixKeepsCodeAndPayloads) {
  absl::Status kind =
      WithPrefix(FsError(FsErrorKind::kNameTooLong, "name"), "lookup 'x': ");
  EXPECT_EQ(kind.message(), "lookup 'x': name");
  EXPECT_EQ(kind.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FsErrorKindOf(kind), FsErrorKind::kNameTooLong);
  absl::Status err = WithPrefix(ErrnoStatus(ENOSPC, "pwrite"), "write: ");
  EXPECT_EQ(ErrnoOf(err), ENOSPC);
  EXPECT_TRUE(WithPrefix(absl::OkStatus(), "x").ok());
}

}  // namespace
}  // namespace txbuf::server
