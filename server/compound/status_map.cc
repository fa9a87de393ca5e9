#include "server/compound/status_map.h"

#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/socket_util.h"
#include "server/fs/fs_error.h"
#include "server/fs/page_cache.h"

namespace txbuf::server {
namespace {

// The payload of RpcError: the rpc::Status in decimal.
constexpr absl::string_view kRpcStatusPayload = "txbuf/rpc-status";

rpc::Status WireStatusOfKind(FsErrorKind kind) {
  switch (kind) {
    case FsErrorKind::kNotFound:
      return rpc::STATUS_NOENT;
    case FsErrorKind::kAccess:
      return rpc::STATUS_ACCES;
    case FsErrorKind::kPermission:
      return rpc::STATUS_PERM;
    case FsErrorKind::kStale:
      return rpc::STATUS_STALE;
    case FsErrorKind::kBadHandle:
      return rpc::STATUS_BADHANDLE;
    case FsErrorKind::kInvalid:
      return rpc::STATUS_INVAL;
    case FsErrorKind::kNameTooLong:
      return rpc::STATUS_NAMETOOLONG;
    case FsErrorKind::kNotDir:
      return rpc::STATUS_NOTDIR;
    case FsErrorKind::kIsDir:
      return rpc::STATUS_ISDIR;
    case FsErrorKind::kReadOnly:
      return rpc::STATUS_ROFS;
    case FsErrorKind::kNotSupported:
      return rpc::STATUS_NOTSUPP;
    case FsErrorKind::kBusy:
      return rpc::STATUS_DELAY;
    case FsErrorKind::kTooBig:
      return rpc::STATUS_TOOBIG;
  }
  return rpc::STATUS_IO;
}

}  // namespace

absl::Status RpcError(rpc::Status status, absl::string_view message) {
  absl::Status s(RpcStatusCode(status), message);
  if (!s.ok()) {
    s.SetPayload(kRpcStatusPayload,
                 absl::Cord(absl::StrCat(static_cast<int>(status))));
  }
  return s;
}

rpc::Status WireStatusOf(const absl::Status& s) {
  if (s.ok()) return rpc::STATUS_OK;
  if (const auto p = s.GetPayload(kRpcStatusPayload); p.has_value()) {
    int status = 0;
    if (absl::SimpleAtoi(std::string(*p), &status) &&
        rpc::Status_IsValid(status)) {
      return static_cast<rpc::Status>(status);
    }
  }
  if (std::optional<FsErrorKind> kind = FsErrorKindOf(s)) {
    return WireStatusOfKind(*kind);
  }
  if (IsWouldBlock(s)) return rpc::STATUS_DELAY;
  if (int err = ErrnoOf(s); err != 0) return StatusFromErrno(err);
  return StatusFromAbslCode(s.code());
}

}  // namespace txbuf::server
