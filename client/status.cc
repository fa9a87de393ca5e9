#include "client/status.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"

namespace txbuf::client {
namespace {

constexpr absl::string_view kPayloadUrl = "type.txbuf/txbuf.rpc.Status";

struct StatusInfo {
  rpc::Status code;
  absl::string_view name;
  absl::string_view description;
  absl::StatusCode absl_code;
};

constexpr StatusInfo kStatusInfo[] = {
    {rpc::STATUS_OK, "OK", "success", absl::StatusCode::kOk},
    {rpc::STATUS_PERM, "PERM", "operation not permitted",
     absl::StatusCode::kPermissionDenied},
    {rpc::STATUS_NOENT, "NOENT", "no such file or directory",
     absl::StatusCode::kNotFound},
    {rpc::STATUS_IO, "IO", "input/output error", absl::StatusCode::kInternal},
    {rpc::STATUS_ACCES, "ACCES", "permission denied",
     absl::StatusCode::kPermissionDenied},
    {rpc::STATUS_EXIST, "EXIST", "already exists",
     absl::StatusCode::kAlreadyExists},
    {rpc::STATUS_XDEV, "XDEV", "rename across file systems",
     absl::StatusCode::kFailedPrecondition},
    {rpc::STATUS_NOTDIR, "NOTDIR", "not a directory",
     absl::StatusCode::kFailedPrecondition},
    {rpc::STATUS_ISDIR, "ISDIR", "is a directory",
     absl::StatusCode::kFailedPrecondition},
    {rpc::STATUS_INVAL, "INVAL", "invalid argument",
     absl::StatusCode::kInvalidArgument},
    {rpc::STATUS_FBIG, "FBIG", "file too large", absl::StatusCode::kOutOfRange},
    {rpc::STATUS_NOSPC, "NOSPC", "no space left on the export",
     absl::StatusCode::kResourceExhausted},
    {rpc::STATUS_ROFS, "ROFS", "the export is read-only",
     absl::StatusCode::kFailedPrecondition},
    {rpc::STATUS_MLINK, "MLINK", "too many links",
     absl::StatusCode::kResourceExhausted},
    {rpc::STATUS_NAMETOOLONG, "NAMETOOLONG", "name too long",
     absl::StatusCode::kInvalidArgument},
    {rpc::STATUS_NOTEMPTY, "NOTEMPTY", "directory not empty",
     absl::StatusCode::kFailedPrecondition},
    {rpc::STATUS_DQUOT, "DQUOT", "quota exceeded",
     absl::StatusCode::kResourceExhausted},
    {rpc::STATUS_STALE, "STALE",
     "stale file handle (the file no longer exists)",
     absl::StatusCode::kFailedPrecondition},
    {rpc::STATUS_BADHANDLE, "BADHANDLE", "not a file handle of this server",
     absl::StatusCode::kInvalidArgument},
    {rpc::STATUS_NOTSUPP, "NOTSUPP", "operation not supported on this object",
     absl::StatusCode::kUnimplemented},
    {rpc::STATUS_SERVERFAULT, "SERVERFAULT", "internal server error",
     absl::StatusCode::kInternal},
    {rpc::STATUS_DELAY, "DELAY", "server out of a resource for now; retry",
     absl::StatusCode::kUnavailable},
    {rpc::STATUS_NOFILEHANDLE, "NOFILEHANDLE",
     "the op needs a current file handle",
     absl::StatusCode::kFailedPrecondition},
    {rpc::STATUS_BADXDR, "BADXDR", "malformed frame or envelope",
     absl::StatusCode::kInvalidArgument},
    {rpc::STATUS_TOOBIG, "TOOBIG", "over a server limit",
     absl::StatusCode::kResourceExhausted},
    {rpc::STATUS_OP_ILLEGAL, "OP_ILLEGAL", "unknown operation",
     absl::StatusCode::kUnimplemented},
    {rpc::STATUS_AUTH, "AUTH", "authentication failed or missing",
     absl::StatusCode::kUnauthenticated},
};

const StatusInfo* Find(rpc::Status code) {
  for (const StatusInfo& i : kStatusInfo) {
    if (i.code == code) return &i;
  }
  return nullptr;
}

}  // namespace

std::string RpcStatusName(rpc::Status code) {
  if (const StatusInfo* i = Find(code)) return {i->name.data(), i->name.size()};
  return absl::StrCat("STATUS_", static_cast<int>(code));
}

absl::string_view RpcStatusDescription(rpc::Status code) {
  if (const StatusInfo* i = Find(code)) return i->description;
  return "unknown error";
}

absl::StatusCode RpcStatusCode(rpc::Status code) {
  if (const StatusInfo* i = Find(code)) return i->absl_code;
  return absl::StatusCode::kInternal;
}

absl::Status StatusFromRpc(rpc::Status code, absl::string_view error,
                           absl::string_view context) {
  if (code == rpc::STATUS_OK) return absl::OkStatus();
  std::string name = RpcStatusName(code);
  std::string msg = absl::StrCat(
      context, context.empty() ? "" : ": ",
      error.empty() ? RpcStatusDescription(code) : error, " [", name, "]");
  absl::Status s(RpcStatusCode(code), msg);
  s.SetPayload(kPayloadUrl, absl::Cord(absl::StrCat(static_cast<int>(code))));
  return s;
}

std::optional<rpc::Status> RpcStatusOf(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  absl::optional<absl::Cord> p = status.GetPayload(kPayloadUrl);
  if (!p.has_value()) return std::nullopt;
  int v = 0;
  if (!absl::SimpleAtoi(p->Flatten(), &v)) return std::nullopt;
  return static_cast<rpc::Status>(v);
}

}  // namespace txbuf::client
