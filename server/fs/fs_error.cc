#include "server/fs/fs_error.h"

#include <cerrno>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/socket_util.h"

namespace txbuf::server {
namespace {

// The payload of FsError: the kind in decimal.
constexpr absl::string_view kFsErrorPayload = "txbuf/fs-error";

absl::StatusCode CodeOf(FsErrorKind kind) {
  switch (kind) {
    case FsErrorKind::kNotFound:
      return absl::StatusCode::kNotFound;
    case FsErrorKind::kAccess:
    case FsErrorKind::kPermission:
      return absl::StatusCode::kPermissionDenied;
    case FsErrorKind::kStale:
    case FsErrorKind::kNotDir:
    case FsErrorKind::kIsDir:
    case FsErrorKind::kReadOnly:
      return absl::StatusCode::kFailedPrecondition;
    case FsErrorKind::kBadHandle:
    case FsErrorKind::kInvalid:
    case FsErrorKind::kNameTooLong:
      return absl::StatusCode::kInvalidArgument;
    case FsErrorKind::kNotSupported:
      return absl::StatusCode::kUnimplemented;
    case FsErrorKind::kBusy:
      return absl::StatusCode::kUnavailable;
    case FsErrorKind::kTooBig:
      return absl::StatusCode::kResourceExhausted;
  }
  return absl::StatusCode::kInternal;
}

}  // namespace

absl::Status FsError(FsErrorKind kind, absl::string_view message) {
  absl::Status s(CodeOf(kind), message);
  s.SetPayload(kFsErrorPayload,
               absl::Cord(absl::StrCat(static_cast<int>(kind))));
  return s;
}

std::optional<FsErrorKind> FsErrorKindOf(const absl::Status& s) {
  const auto p = s.GetPayload(kFsErrorPayload);
  int kind = 0;
  if (!p.has_value() || !absl::SimpleAtoi(std::string(*p), &kind) ||
      kind < static_cast<int>(FsErrorKind::kNotFound) ||
      kind > static_cast<int>(FsErrorKind::kTooBig)) {
    return std::nullopt;
  }
  return static_cast<FsErrorKind>(kind);
}

bool IsStale(const absl::Status& s) {
  return FsErrorKindOf(s) == FsErrorKind::kStale || ErrnoOf(s) == ESTALE;
}

absl::Status WithPrefix(const absl::Status& s, absl::string_view prefix) {
  if (s.ok()) return s;
  absl::Status out(s.code(), absl::StrCat(prefix, s.message()));
  s.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

}  // namespace txbuf::server
